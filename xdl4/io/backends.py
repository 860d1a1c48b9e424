"""One opener for every DL4 file, and the xarray backend entry points ``gadf`` and ``ogip``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr
from xarray.backends import BackendEntrypoint

from xdl4.files import check_readable
from xdl4.io import fitsutil as fu

FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fts", ".fit.gz")


def detect_format(path: str | os.PathLike) -> str:
    """``"netcdf"``, ``"gadf"``, ``"ogip"`` or ``"flux_points"`` from the file contents.

    A file that does not exist raises :class:`xdl4.DL4FileNotFoundError`; one that is none
    of these (or cannot be read) a :class:`xdl4.FormatError` naming it."""
    path = Path(path)
    with fu.reading(path):
        return _detect_format(path)


def _detect_format(path: Path) -> str:
    name = path.name.lower()
    check_readable(path)
    if name.endswith(".ecsv"):
        return "flux_points"
    if name.endswith((".nc", ".nc4", ".netcdf", ".h5")):
        return "netcdf"
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89HDF") or head.startswith(b"CDF"):
        return "netcdf"
    if not (head.startswith(b"SIMPLE") or head.startswith(b"\x1f\x8b")):
        raise fu.fail(path, None, "unknown file format (not NetCDF, FITS or ECSV)")
    try:  # fast path: the first extension decides for files written by gammapy
        first = fu.peek_headers(path, 2)[1:]
    except Exception:  # noqa: BLE001 - corrupt files: open_fits below names the problem
        first = []
    if first:
        ext = first[0]
        if ext.get("PIXTYPE", "").upper() == "HEALPIX":
            raise fu.fail(path, None, "HEALPix maps are not supported by xdl4")
        if ext.get("EXTNAME", "").upper() == "COUNTS":
            return "gadf"
        if ext.get("EXTNAME", "").upper() == "SPECTRUM" or ext.get("HDUCLAS1") == "SPECTRUM":
            return "ogip"
        if ext.get("EXTNAME", "").upper() == "FLUXPOINTS":
            return "flux_points"
    with fu.open_fits(path, verify=False) as hdul:  # the reader verifies
        names = [h.name.upper() for h in hdul]
        if "COUNTS" in names:
            return "gadf"
        if any(h.header.get("HDUCLAS1", "").strip() == "SPECTRUM" or h.name == "SPECTRUM"
               for h in hdul[1:]):
            return "ogip"
        if "FLUXPOINTS" in names or any(not n.strip() for n in names[1:]):
            return "flux_points"
        if any(h.header.get("PIXTYPE", "").upper() == "HEALPIX" for h in hdul[1:]):
            raise fu.fail(path, None, "HEALPix maps are not supported by xdl4")
    raise fu.fail(path, None, f"not a DL4 file: no COUNTS, SPECTRUM or FLUXPOINTS HDU "
                  f"(HDUs: {names})")


def open_dataset(path: str | os.PathLike, chunks=None, verify: bool = True,
                 **kwargs) -> xr.Dataset:
    """Open any DL4 file (NetCDF, GADF map/region dataset, OGIP PHA, flux-point FITS/ECSV)
    as an ``xarray.Dataset``; with ``chunks`` the arrays are dask arrays.

    Every failure to open or read the file raises an :class:`xdl4.DL4Error` naming it
    (:class:`xdl4.FormatError`, :class:`xdl4.DL4FileNotFoundError`); checksums written in
    the file are verified unless ``verify=False`` (see ``docs/reliability.md``)."""
    fmt = detect_format(path)
    if fmt == "netcdf":
        from xdl4.io.netcdf import open_netcdf

        return open_netcdf(path, chunks=chunks, verify=verify, **kwargs)
    if kwargs:
        raise TypeError(f"open_dataset of a FITS file takes no options {sorted(kwargs)}")
    if chunks is None:
        return read_fits(path, fmt, verify)
    from xdl4.stack import load_coords

    return load_coords(_open_fits_dask(path, fmt, verify).chunk(chunks))


def read_fits(path: str | os.PathLike, fmt: str, verify: bool = True) -> xr.Dataset:
    if fmt == "gadf":
        from xdl4.io.gadf import read_gadf

        return read_gadf(path, verify)
    if fmt == "ogip":
        from xdl4.io.ogip import read_ogip

        return read_ogip(path, verify)
    from xdl4.io.flux_points import read_flux_points

    return read_flux_points(path, verify)


def _open_fits_dask(path: str | os.PathLike, fmt: str, verify: bool = True) -> xr.Dataset:
    """The dataset with dask arrays that all come from one read of the file at compute
    time: one task per file, so computing many runs reads each once and holds few at a
    time. The file is read once here too, to check it and learn shapes and dtypes.

    >>> import tempfile, os, xdl4
    >>> path = os.path.join(tempfile.mkdtemp(), "run.fits")
    >>> _ = xdl4.examples.map_dataset().dl4.to_gadf(path)
    >>> ds = _open_fits_dask(path, "gadf")
    >>> type(ds.counts.data).__name__, float(ds.counts.sum())
    ('Array', 22805.0)
    """
    import dask
    import dask.array as da

    path = os.fspath(path)
    eager = read_fits(path, fmt, verify)
    st = os.stat(path)
    whole = dask.delayed(read_fits, pure=True)(path, fmt, verify, dask_key_name=(
        f"read-fits-{dask.base.tokenize(path, fmt, verify, st.st_mtime_ns, st.st_size)}"))
    lazy = {name: xr.Variable(var.dims, da.from_delayed(
                dask.delayed(_values, pure=True)(whole, name), var.shape, dtype=var.dtype),
                var.attrs)
            for name, var in eager.data_vars.items() if var.ndim}
    return eager.assign(lazy)


def _values(ds: xr.Dataset, name: str) -> np.ndarray:
    return ds[name].values


def _as_backend_result(ds: xr.Dataset, drop_variables) -> xr.Dataset:
    """What an xarray engine returns: a run labelled by its name (so that
    ``open_mfdataset(..., concat_dim="obs")`` labels the runs), with a no-op closer (the
    file was read and closed)."""
    from xdl4.validation import as_run

    out = as_run(ds.drop_vars(drop_variables or [], errors="ignore"))
    out.set_close(lambda: None)
    return out


class _FitsEntrypoint(BackendEntrypoint):
    fmt = ""
    open_dataset_parameters = ("filename_or_obj", "drop_variables")

    def open_dataset(self, filename_or_obj, *, drop_variables=None) -> xr.Dataset:
        return _as_backend_result(read_fits(filename_or_obj, self.fmt), drop_variables)

    def guess_can_open(self, filename_or_obj) -> bool:
        try:
            return str(filename_or_obj).lower().endswith(FITS_SUFFIXES) and \
                detect_format(filename_or_obj) == self.fmt
        except (OSError, ValueError, TypeError):
            return False


class GADFBackendEntrypoint(_FitsEntrypoint):
    """``xr.open_dataset(path, engine="gadf")``: gammapy GADF dataset files and flux points."""

    description = "gammapy GADF DL4 dataset files (maps, region spectra, flux points)"
    url = "https://gamma-astro-data-formats.readthedocs.io"
    fmt = "gadf"

    def open_dataset(self, filename_or_obj, *, drop_variables=None) -> xr.Dataset:
        fmt = detect_format(filename_or_obj)
        ds = read_fits(filename_or_obj, "gadf" if fmt == "gadf" else fmt)
        return _as_backend_result(ds, drop_variables)


class OGIPBackendEntrypoint(_FitsEntrypoint):
    """``xr.open_dataset(path, engine="ogip")``: OGIP PHA with ARF/RMF/BKG companions."""

    description = "OGIP PHA spectra with ARF, RMF and BKG files"
    url = "https://heasarc.gsfc.nasa.gov/docs/heasarc/ofwg/docs/spectra/ogip_92_007"
    fmt = "ogip"
