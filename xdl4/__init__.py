"""xdl4: reduced gamma-ray data (DL4) as xarray Datasets.

>>> import xdl4
>>> ds = xdl4.examples.map_dataset()
>>> ds.dl4.kind
'map'
"""

from xdl4 import accessor as _accessor  # noqa: F401  (registers the .dl4 accessor)
from xdl4 import examples
from xdl4.create import create
from xdl4.io.netcdf import open_netcdf
from xdl4.kinds.flux_points import create_flux_points
from xdl4.schema import KINDS, VARIABLES, DL4ValidationError, validate
from xdl4.sky import Region, WcsGrid

__version__ = "0.1.0"


def open_dataset(path, chunks=None, **kwargs):
    """Open a DL4 file as an ``xarray.Dataset`` (NetCDF; lazily with ``chunks``)."""
    return open_netcdf(path, chunks=chunks, **kwargs)


__all__ = [
    "KINDS", "VARIABLES", "DL4ValidationError", "Region", "WcsGrid", "create",
    "create_flux_points", "examples", "open_dataset", "validate",
]
