"""NetCDF, the native format: an exact round trip of every DL4 variable and attribute.

Integrity: every numeric array is written with HDF5's Fletcher-32 checksum of each
chunk (checked by HDF5 on every read), and the attribute ``xdl4_checksums`` of the group
``xdl4`` (out of sight of a plain ``xr.open_dataset``) holds
the CRC-32 of every variable's values (JSON ``{name: crc}``), checked whenever a whole
variable is read (eager reads, ``.load()``, dask chunks spanning the variable): this also
catches what Fletcher-32 cannot (scalars and strings; a damaged chunk index that makes
HDF5 return fill values). Every failure to open or read the file, also later when lazily
loaded data is first touched, raises :class:`xdl4.errors.FormatError` naming the file
and the variable.
"""

from __future__ import annotations

import inspect
import json
import os
import zlib
from pathlib import Path

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, NetCDF4BackendEntrypoint
from xarray.core import indexing

from xdl4.errors import DL4Error, FormatError
from xdl4.files import atomic_write, check_readable
from xdl4.kinds import validate
from xdl4.schema import BOUND
from xdl4.stack import load_coords

CRC_ATTR = "xdl4_checksums"
CRC_GROUP = "xdl4"


def _fail(path, variable: str | None, problem: str) -> FormatError:
    where = Path(path).name + (f" [variable {variable}]" if variable else "")
    return FormatError(f"{where}: {problem}")


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
    return load_coords(ds)


def _protected(var: xr.Variable) -> bool:
    """Whether HDF5's Fletcher-32 can cover ``var`` (numeric arrays with data)."""
    return var.ndim > 0 and var.size > 0 and var.dtype.kind in "biuf"


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _crc(values) -> int | None:
    """CRC-32 of the values as a reader sees them (native byte order, one NaN); None for
    types not covered (dates)."""
    a = np.asarray(values)
    if a.dtype.kind in "OUS":
        return zlib.crc32("\x1f".join(map(_text, a.ravel().tolist())).encode("utf-8",
                                                                             "replace"))
    if a.dtype.kind not in "biuf":
        return None
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")).reshape(-1)
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        if nan.any():
            a = np.where(nan, np.nan, a)
    return zlib.crc32(memoryview(a).cast("B"))


def _checksums(ds: xr.Dataset) -> str:
    crcs = {str(n): _crc(v.values) for n, v in ds.variables.items()}
    return json.dumps({n: c for n, c in crcs.items() if c is not None}, sort_keys=True)


def to_netcdf(ds: xr.Dataset, path: str | os.PathLike, overwrite: bool = False,
              checksum: bool = True, **kwargs) -> None:
    """Write ``ds`` to NetCDF4 atomically (temporary file, then rename); a DL4 dataset
    (with ``dl4_kind``) is validated first as every writer does (:func:`xdl4.validate`).
    ``checksum`` adds the Fletcher-32 and CRC-32 checksums (see the module docstring).

    >>> import tempfile, os, xdl4
    >>> path = os.path.join(tempfile.mkdtemp(), "ds.nc")
    >>> xdl4.examples.spectrum_dataset().dl4.to_netcdf(path)
    >>> xdl4.open_dataset(path).dl4.kind
    'spectrum'
    """
    if "dl4_kind" in ds.attrs:
        validate(ds)
    ds = _encodable(ds)
    if checksum:
        for var in ds.variables.values():
            if _protected(var):
                var.encoding = {k: v for k, v in var.encoding.items() if k != "contiguous"}
                var.encoding["fletcher32"] = True
    crcs = _checksums(ds) if checksum else None

    def write(tmp) -> None:
        ds.to_netcdf(tmp, engine="netcdf4", **kwargs)
        if crcs is not None:  # in a group of its own: plain xr.open_dataset does not see it
            import netCDF4

            with netCDF4.Dataset(tmp, "a") as nc:
                nc.createGroup(CRC_GROUP).setncattr(CRC_ATTR, crcs)

    atomic_write(path, write, overwrite=overwrite)


def _stored_checksums(path: str) -> dict:
    """The CRC-32 of each variable written by :func:`to_netcdf` (attribute of the group
    ``xdl4``), {} without."""
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        group = nc.groups.get(CRC_GROUP)
        text = group.getncattr(CRC_ATTR) if group is not None and \
            CRC_ATTR in group.ncattrs() else "{}"
    try:
        return json.loads(text)
    except (TypeError, ValueError) as err:
        raise _fail(path, None, f"the {CRC_ATTR} attribute is corrupt: {err}") from err


class _CheckedArray(BackendArray):
    """A variable's lazily read data whose every read failure (HDF5 checksum errors
    included) raises a :class:`FormatError` naming the file and the variable, and whose
    whole reads are checked against the variable's CRC-32 (``expected``)."""

    def __init__(self, inner, path: str, name: str, expected: int | None):
        self.inner, self.path, self.name, self.expected = inner, path, name, expected
        self.shape, self.dtype = inner.shape, inner.dtype

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape,
                                                  indexing.IndexingSupport.OUTER, self._read)

    def _read(self, key: tuple) -> np.ndarray:
        try:
            dims = tuple(f"d{i}" for i in range(len(self.shape)))
            values = np.asarray(xr.Variable(dims, self.inner)[key].values)
        except DL4Error:
            raise
        except Exception as err:  # noqa: BLE001 - netCDF4/HDF5 errors, re-raised typed
            raise _fail(self.path, self.name, f"cannot read (corrupt file?): "
                        f"{type(err).__name__}: {err}") from err
        if self.expected is not None and values.shape == self.shape and all(
                isinstance(k, slice) and k.indices(n) == (0, n, 1)
                for k, n in zip(key, self.shape, strict=True)):
            check(self.path, self.name, values, self.expected)
        return values


def check(path, name: str, values, expected: int) -> None:
    """Raise if ``values`` do not have the CRC-32 written for variable ``name``."""
    if _crc(values) != expected:
        raise _fail(path, name, f"the values do not match their checksum ({CRC_ATTR}): the "
                    "file is corrupt (read it anyway with verify=False)")


class _CheckedNetCDF4(NetCDF4BackendEntrypoint):
    """xarray's netCDF4 engine with every variable's data read through _CheckedArray."""

    open_dataset_parameters = (*(
        p for p in inspect.signature(NetCDF4BackendEntrypoint.open_dataset).parameters
        if p != "self"), "xdl4_verify")

    def open_dataset(self, filename_or_obj, *, xdl4_verify: bool = True,
                     **kwargs) -> xr.Dataset:
        ds = super().open_dataset(filename_or_obj, **kwargs)
        path = os.fspath(filename_or_obj)
        crcs = _stored_checksums(path) if xdl4_verify else {}
        for name, var in ds.variables.items():  # this fresh dataset's own variables
            expected = crcs.get(str(name))
            if name in ds.indexes:  # already read (a pandas index): check it now
                if expected is not None:
                    check(path, str(name), var.values, expected)
                continue
            var.data = indexing.LazilyIndexedArray(_CheckedArray(var._data, path, str(name),
                                                                 expected))
        return ds


def open_netcdf(path: str | os.PathLike, chunks=None, verify: bool = True,
                **kwargs) -> xr.Dataset:
    """Open a DL4 NetCDF file (lazily with ``chunks``); ``verify=False`` skips the CRC-32
    checks of ``xdl4_checksums`` (HDF5 always checks its Fletcher-32 checksums)."""
    path = Path(path)
    check_readable(path)
    kwargs.setdefault("decode_timedelta", False)
    kwargs.setdefault("decode_times", False)
    try:
        ds = xr.open_dataset(path, engine=_CheckedNetCDF4, chunks=chunks,
                             xdl4_verify=verify, **kwargs)
    except DL4Error:
        raise
    except Exception as err:  # noqa: BLE001 - netCDF4/HDF5/xarray errors, re-raised typed
        raise _fail(path, None, f"not a readable NetCDF file (truncated or corrupt?): "
                    f"{type(err).__name__}: {err}") from err
    try:
        return _decoded(ds)
    except DL4Error:
        raise
    except Exception as err:  # noqa: BLE001 - decoding errors, re-raised typed
        raise _fail(path, None, f"cannot read: {type(err).__name__}: {err}") from err
