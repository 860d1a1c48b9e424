"""xdl4: reduced gamma-ray data (DL4) as xarray Datasets.

>>> import xdl4
>>> ds = xdl4.examples.map_dataset()
>>> ds.dl4.kind
'map'
"""

from importlib import import_module

from xdl4 import accessor as _accessor  # noqa: F401  (registers the .dl4 accessor)

__version__ = "0.1.0"

# public names -> the module defining them; imported on first use so `import xdl4` is fast
_LAZY = {
    "examples": "xdl4.examples",
    "create": "xdl4.constructors",
    "create_flux_points": "xdl4.kinds.flux_points",
    "KINDS": "xdl4.schema",
    "VARIABLES": "xdl4.schema",
    "DL4Error": "xdl4.errors",
    "DL4ValidationError": "xdl4.errors",
    "DL4FileExistsError": "xdl4.errors",
    "DL4FileNotFoundError": "xdl4.errors",
    "DL4Warning": "xdl4.errors",
    "KindError": "xdl4.errors",
    "GridError": "xdl4.errors",
    "StackError": "xdl4.errors",
    "RunReadError": "xdl4.errors",
    "FormatError": "xdl4.errors",
    "ModelError": "xdl4.errors",
    "FitError": "xdl4.errors",
    "validate": "xdl4.schema",
    "Region": "xdl4.sky",
    "open_datasets": "xdl4.io.datasets_index",
    "write_datasets": "xdl4.io.datasets_index",
    "read_models": "xdl4.models",
    "stack_files": "xdl4.streaming",
    "fit": "xdl4.fitting",
    "FitResult": "xdl4.fitting",
    "Likelihood": "xdl4.fitting",
    "stat_profile": "xdl4.fitting",
    "stat_contour": "xdl4.fitting",
    "confidence": "xdl4.fitting",
    "Models": "xdl4.models",
    "WcsGrid": "xdl4.sky",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'xdl4' has no attribute {name!r}")
    module = import_module(_LAZY[name])
    value = getattr(module, name) if hasattr(module, name) else module
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY])


def open_dataset(path, chunks=None, **kwargs):
    """Open any DL4 file (NetCDF, GADF map/region dataset, OGIP PHA, flux points) as an
    ``xarray.Dataset``; lazily (dask) with ``chunks``."""
    from xdl4.io.backends import open_dataset as _open

    return _open(path, chunks=chunks, **kwargs)


__all__ = ["open_dataset", *_LAZY]
