"""NetCDF, the native format: an exact round trip of every DL4 variable and attribute."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from xdl4.io.util import atomic_write
from xdl4.schema import BOUND


def _encodable(ds: xr.Dataset) -> xr.Dataset:
    """NetCDF attributes cannot hold bools or None: store bools as int8 0/1 tagged in
    ``_xdl4_bool_attrs`` so that reading restores them."""
    ds = ds.copy(deep=False)
    for obj in [ds, *ds.variables.values()]:
        bools = [k for k, v in obj.attrs.items() if isinstance(v, bool | np.bool_)]
        nones = [k for k, v in obj.attrs.items() if v is None]
        if bools or nones:
            obj.attrs = {k: v for k, v in obj.attrs.items() if k not in nones}
            for k in bools:
                obj.attrs[k] = np.int8(obj.attrs[k])
            if bools:
                obj.attrs["_xdl4_bool_attrs"] = ",".join(bools)
    return ds


def _decoded(ds: xr.Dataset) -> xr.Dataset:
    for obj in [ds, *ds.variables.values()]:
        names = obj.attrs.pop("_xdl4_bool_attrs", None)
        for k in names.split(",") if names else []:
            obj.attrs[k] = bool(obj.attrs[k])
    # CF bounds inherit their parent's units (xarray writes them without): read as
    # xr.open_dataset reads them, every reader of bounds falls back to the parent's units
    bounds = [v for v in ds.variables if v.endswith("_bounds") and BOUND in ds[v].dims]
    ds = ds.set_coords([b for b in bounds if b in ds.data_vars])
    # coordinates are small metadata: keep them in memory so planning never touches dask
    lazy = {c: ds[c].variable.load() for c in ds.coords if ds[c].chunks is not None}
    return ds.assign_coords(lazy) if lazy else ds


def to_netcdf(ds: xr.Dataset, path: str | os.PathLike, overwrite: bool = False,
              **kwargs) -> None:
    """Write ``ds`` to NetCDF4 atomically (temporary file, then rename).

    >>> import tempfile, os, xdl4
    >>> path = os.path.join(tempfile.mkdtemp(), "ds.nc")
    >>> xdl4.examples.spectrum_dataset().dl4.to_netcdf(path)
    >>> xdl4.open_dataset(path).dl4.kind
    'spectrum'
    """
    ds = _encodable(ds)
    atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="netcdf4", **kwargs),
                 overwrite=overwrite)


def open_netcdf(path: str | os.PathLike, chunks=None, **kwargs) -> xr.Dataset:
    """Open a DL4 NetCDF file (lazily with ``chunks``)."""
    kwargs.setdefault("decode_timedelta", False)
    kwargs.setdefault("decode_times", False)
    ds = xr.open_dataset(path, engine="netcdf4", chunks=chunks, **kwargs)
    return _decoded(ds)
