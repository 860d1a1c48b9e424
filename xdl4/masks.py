"""The one mask helper: every operation (stack, resample, to_image, stats, info) asks here
which bins count, so mask_safe and mask_fit mean the same thing everywhere."""

from __future__ import annotations

import numpy as np
import xarray as xr

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


def on_irf_grid(mask: xr.DataArray, ds: xr.Dataset) -> xr.DataArray:
    """A data-grid mask sampled at the IRF pixel centres (nearest data pixel)."""
    if "irf_lat" not in ds.dims or "lat" not in mask.dims:
        return mask
    data, irf = WcsGrid.from_dataset(ds), WcsGrid.from_dataset(ds, "irf_")
    lon, lat = irf.sky_coords()
    x, y = data.world_to_pixel(lon, lat)
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    ny, nx = data.shape
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    iy_da = xr.DataArray(np.clip(iy, 0, ny - 1), dims=("irf_lat", "irf_lon"))
    ix_da = xr.DataArray(np.clip(ix, 0, nx - 1), dims=("irf_lat", "irf_lon"))
    sampled = mask.isel(lat=iy_da, lon=ix_da, drop=True)
    return sampled & xr.DataArray(inside, dims=("irf_lat", "irf_lon"))
