"""The one mask helper: every operation (stack, resample, to_image, stats, info) asks here
which bins count, so mask_safe and mask_fit mean the same thing everywhere."""

from __future__ import annotations

import functools

import numpy as np
import xarray as xr

from xdl4.errors import ArgumentError
from xdl4.sky import WcsGrid


def safe(ds: xr.Dataset) -> xr.DataArray:
    """``mask_safe``, or all True when the dataset has none."""
    if "mask_safe" in ds:
        return ds["mask_safe"]
    return xr.ones_like(ds["counts"], dtype=bool)


def fit(ds: xr.Dataset) -> xr.DataArray:
    """Bins entering a likelihood: ``mask_safe & mask_fit`` (each True when absent)."""
    mask = safe(ds)
    return mask & ds["mask_fit"] if "mask_fit" in ds else mask


def image(mask: xr.DataArray) -> xr.DataArray:
    """Spatial mask: True where any reco-energy bin is True."""
    return mask.any("energy") if "energy" in mask.dims else mask


def spectral(mask: xr.DataArray, keep: tuple[str, ...] = ("energy",)) -> xr.DataArray:
    """The other side of :func:`image`: True for each reco-energy bin (and each of the
    ``keep`` dims, e.g. ``obs`` for one row per run) where any pixel is True."""
    return mask.any([d for d in mask.dims if d not in keep])


def on_irf_grid(mask: xr.DataArray, ds: xr.Dataset, method: str = "nearest",
                prefix: str = "irf_") -> xr.DataArray:
    """A data-grid mask sampled at the IRF pixel centres, as gammapy does it:
    ``nearest`` (PSF weights: the data pixel at floor(p + 0.5)) or ``linear`` (EDISP
    weights: True where the bilinear interpolation of the mask is > 0, i.e. any data
    pixel with a non-zero weight is True). Pixel centres off the data grid are False."""
    if f"{prefix}lat" not in ds.dims or "lat" not in mask.dims:
        return mask
    data, irf = WcsGrid.from_dataset(ds), WcsGrid.from_dataset(ds, prefix)
    dims = (f"{prefix}lat", f"{prefix}lon")
    ny, nx = data.shape
    out = None
    for ix, iy, inside in _stencil(data, irf, method):  # on Variables: no index alignment
        sampled = mask.variable.isel(lat=xr.Variable(dims, np.clip(iy, 0, ny - 1)),
                                     lon=xr.Variable(dims, np.clip(ix, 0, nx - 1)))
        term = sampled & xr.Variable(dims, inside)
        out = term if out is None else out | term
    coords = {k: v for k, v in mask.coords.items() if not set(v.dims) & {"lat", "lon"}}
    return xr.DataArray(out, coords=coords)


@functools.lru_cache(maxsize=32)
def _stencil(data: WcsGrid, irf: WcsGrid, method: str) -> list:
    """(ix, iy, valid) data-pixel indices sampled at the IRF pixel centres (cached per
    grid pair: every run of a survey shares it)."""
    x, y = data.world_to_pixel(*irf.sky_coords())
    ny, nx = data.shape
    if method == "nearest":
        stencil = [(np.floor(x + 0.5).astype(int), np.floor(y + 0.5).astype(int), True)]
    elif method == "linear":
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        stencil = [(x0 + dx, y0 + dy, (1 - np.abs(x - x0 - dx)) * (1 - np.abs(y - y0 - dy)) > 0)
                   for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1))]
    else:
        raise ArgumentError(f"method must be 'nearest' or 'linear', not {method!r}")
    return [(ix, iy, (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny) & w)
            for ix, iy, w in stencil]


def restore_masks(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with masks that plain xarray code turned into floats (``ds.where(cond)``:
    1.0 / 0.0, and NaN where it took bins or runs out) boolean again, NaN counting as
    False; unchanged when the masks are boolean or hold other values (refused by
    validation). The accessor applies it to every dataset it is given.

    >>> import xdl4
    >>> ds = xdl4.examples.spectrum_dataset()
    >>> restore_masks(ds.where(ds.livetime > 0)).mask_safe.dtype
    dtype('bool')
    """
    fixed = {}
    for name in ("mask_safe", "mask_fit"):
        if name in ds and ds[name].dtype.kind == "f" and ds[name].chunks is None:
            values = ds[name].values
            if np.all(np.isnan(values) | (values == 0) | (values == 1)):
                fixed[name] = ds[name].copy(data=values == 1)
    return ds.assign(fixed) if fixed else ds
