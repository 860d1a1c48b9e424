"""xdl4: reduced gamma-ray data (DL4) as xarray Datasets.

>>> import xdl4
>>> ds = xdl4.examples.map_dataset()
>>> ds.dl4.kind
'map'
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from xdl4 import accessor as _accessor  # noqa: F401  (registers the .dl4 accessor)

__version__ = "0.1.0"

#: public names -> the module defining them, imported on first use (``import xdl4`` stays
#: as cheap as ``import xarray``)
_LAZY = {
    "create": "xdl4.constructors",
    "create_flux_points": "xdl4.kinds.flux_points",
    "KINDS": "xdl4.schema",
    "VARIABLES": "xdl4.schema",
    "validate": "xdl4.kinds",
    "Region": "xdl4.sky",
    "WcsGrid": "xdl4.sky",
    "open_datasets": "xdl4.io.datasets_index",
    "write_datasets": "xdl4.io.datasets_index",
    "read_models": "xdl4.models",
    "Models": "xdl4.models",
    "stack_files": "xdl4.streaming",
    "fit": "xdl4.fitting",
    "FitResult": "xdl4.fitting",
    "Likelihood": "xdl4.fitting",
    "stat_profile": "xdl4.fitting",
    "stat_contour": "xdl4.fitting",
    "confidence": "xdl4.fitting",
    "summary": "xdl4.summaries",
    **dict.fromkeys(["ArgumentError", "DL4Error", "DL4ValidationError", "DL4FileExistsError",
                     "DL4FileNotFoundError", "DL4Warning", "KindError", "GridError",
                     "StackError", "RunReadError", "FormatError", "ModelError", "FitError",
                     "UnitError"],
                    "xdl4.errors"),
    "flux_points": "xdl4.estimators",
    "light_curve": "xdl4.estimators",
}
#: public submodules, imported on first use
_SUBMODULES = ("estimators", "examples", "fitting", "kinds", "models", "plot", "runs", "testing")

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from xdl4 import estimators, examples, fitting, kinds, models, plot, runs, testing
    from xdl4.constructors import create
    from xdl4.errors import (
        ArgumentError,
        DL4Error,
        DL4FileExistsError,
        DL4FileNotFoundError,
        DL4ValidationError,
        DL4Warning,
        FitError,
        FormatError,
        GridError,
        KindError,
        ModelError,
        RunReadError,
        StackError,
        UnitError,
    )
    from xdl4.estimators import flux_points, light_curve
    from xdl4.fitting import FitResult, Likelihood, confidence, fit, stat_contour, stat_profile
    from xdl4.io.datasets_index import open_datasets, write_datasets
    from xdl4.kinds import validate
    from xdl4.kinds.flux_points import create_flux_points
    from xdl4.models import Models, read_models
    from xdl4.schema import KINDS, VARIABLES
    from xdl4.sky import Region, WcsGrid
    from xdl4.streaming import stack_files
    from xdl4.summaries import summary


def __getattr__(name: str):
    if name in _SUBMODULES:
        value = import_module(f"xdl4.{name}")
    elif name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'xdl4' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY, *_SUBMODULES])


def open_dataset(path, chunks=None, **kwargs):
    """Open any DL4 file (NetCDF, GADF map/region dataset, OGIP PHA, flux points) as an
    ``xarray.Dataset``; lazily (dask) with ``chunks``. A list of files or a glob pattern
    (``"runs/run*.fits.gz"``) opens the runs as one dataset along ``obs``, labelled by
    their names (:func:`xdl4.validation.concat_runs`).

    >>> import os, tempfile, xdl4
    >>> folder = tempfile.mkdtemp()
    >>> for i in range(2):
    ...     xdl4.examples.spectrum_dataset(i).dl4.renamed(f"run{i}").dl4.to_netcdf(
    ...         os.path.join(folder, f"run{i}.nc"))
    >>> xdl4.open_dataset(os.path.join(folder, "run*.nc")).obs.values.tolist()
    ['run0', 'run1']
    """
    import glob
    import os

    from xdl4.io.backends import open_dataset as _open
    from xdl4.validation import as_run, concat_runs

    if isinstance(path, str | os.PathLike) and glob.has_magic(os.fspath(path)):
        pattern, path = os.fspath(path), sorted(glob.glob(os.fspath(path)))
        if not path:
            from xdl4.errors import DL4FileNotFoundError

            raise DL4FileNotFoundError(f"no file matches {pattern!r}")
    if isinstance(path, list | tuple):
        return concat_runs([_open(p, chunks=chunks, **kwargs) for p in path])
    ds = _open(path, chunks=chunks, **kwargs)
    return ds if "obs" in ds.dims else as_run(ds)


__all__ = [  # every name of _LAZY and _SUBMODULES, and open_dataset (a test checks)
    "KINDS", "VARIABLES", "ArgumentError", "DL4Error", "DL4FileExistsError",
    "DL4FileNotFoundError", "DL4ValidationError", "DL4Warning", "FitError",
    "FitResult", "FormatError", "GridError", "KindError", "Likelihood", "ModelError",
    "Models", "Region", "RunReadError", "StackError", "WcsGrid", "confidence", "create",
    "create_flux_points", "estimators", "examples", "fit", "fitting", "flux_points", "kinds",
    "light_curve", "models", "open_dataset", "open_datasets", "plot", "read_models", "runs",
    "stack_files", "stat_contour", "stat_profile", "summary", "testing", "UnitError",
    "validate",
    "write_datasets",
]
