"""Spatial operations on map datasets, with gammapy 2.1's rules (``MapDataset.downsample``,
``cutout`` and ``pad``).

* :func:`downsample` merges ``factor x factor`` pixels: counts, background and counts_off
  are summed over safe pixels, exposure and acceptance averaged, masks OR-ed; the IRF maps
  keep their own grid. With ``axis_name="energy"`` reco-energy bins are merged instead
  (:func:`xdl4.resample.resample_energy`).
* :func:`cutout` cuts every grid (data and IRF grids) around one sky position as astropy's
  ``Cutout2D`` does; a trimmed cut-out keeps its pixel indices in the parent grid, so
  :func:`xdl4.stack.stack` can put it back.
* :func:`pad` adds pixels around the data grid (IRF maps unchanged).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdl4.axes import as_quantity, edges
from xdl4.errors import ArgumentError, GridError
from xdl4.reduce import PixelBlocks, reduce
from xdl4.resample import resample_energy
from xdl4.schema import GRID_MAPPING, GRID_PREFIXES, IRF_SKY, VARIABLES
from xdl4.sky import WcsGrid, cutout_range, tag_grids
from xdl4.validation import with_name

#: variables that live on the IRF grid (or on the data grid when there is no IRF grid)
_IRF_VARS = tuple(n for n, v in VARIABLES.items() if any(IRF_SKY in d for d in v.dims))


def downsample(ds: xr.Dataset, factor: int, axis_name: str | None = None,
               name: str | None = None) -> xr.Dataset:
    """Merge ``factor x factor`` data pixels (or ``factor`` reco-energy bins with
    ``axis_name="energy"``), as gammapy's ``MapDataset.downsample``.

    Counts, background and counts_off become sums over safe pixels, masks are OR-ed,
    exposure and acceptance are block means, acceptance_off keeps the summed background
    ``alpha x counts_off`` (the ``pixels`` rules declared per variable). IRF maps are
    unchanged. The WCS is gammapy's: CDELT x factor,
    CRPIX = (CRPIX - 0.5) / factor + 0.5. The grid must divide by ``factor``.

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset(width=1.0, binsz=0.1)
    >>> out = downsample(ds, 2)
    >>> dict(out.sizes)["lon"], out.dl4.grid.binsz
    (5, (0.2, 0.2))
    >>> bool(out.counts.sum() == ds.counts.where(ds.mask_safe, 0).sum())
    True
    """
    _check_map(ds, "downsample")
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise ArgumentError(f"factor must be a positive integer, got {factor!r}")
    if axis_name == "energy":
        old = edges(ds, "energy")
        if (old.size - 1) % factor:
            raise GridError(f"number of energy bins ({old.size - 1}) is not divisible by "
                             f"{factor}")
        return with_name(resample_energy(ds, old[::factor]), name)
    if axis_name is not None:
        raise ArgumentError(f"axis_name must be None (spatial) or 'energy', got {axis_name!r}")
    ds = _irfs_on_own_grid(ds)
    grid = WcsGrid.from_dataset(ds)
    if grid.shape[0] % factor or grid.shape[1] % factor:
        raise GridError(f"sky grid shape {grid.shape} (lat, lon) is not divisible by factor "
                         f"{factor}; pad the dataset first")
    out = reduce(ds.drop_vars(_grid_coord_names(ds, "")), PixelBlocks(factor))
    new = WcsGrid.from_wcs(_scaled_wcs(grid, factor),
                           (grid.shape[0] // factor, grid.shape[1] // factor))
    return with_name(out.assign_coords(new.coords()), name)


def cutout(ds: xr.Dataset, position, width, mode: str = "trim",
           name: str | None = None) -> xr.Dataset:
    """The part of ``ds`` around ``position`` ((lon, lat) deg in the grid's frame, or a
    SkyCoord), ``width`` wide (deg; one value or (lon, lat)), as gammapy's
    ``MapDataset.cutout``.

    Each grid is cut as astropy's ``Cutout2D``: round(width / pixel size) pixels (IRF grids:
    at least 3) starting at ceil(pixel position - npix / 2). ``mode``: ``"trim"`` drops
    pixels outside the grid and keeps the pixel indices of the parent grid (``stack`` pads
    it back); ``"partial"`` keeps the full size, pixels outside filled with 0 / False (a grid
    of its own); ``"strict"`` raises unless the cut-out is inside the grid.

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset(width=2.0, binsz=0.1)
    >>> out = cutout(ds, (83.63, 22.01), 0.5)
    >>> dict(out.sizes)["lon"], int(out.lon_pixel[0]), int(out.irf_lon.size)
    (5, 7, 3)
    """
    _check_map(ds, "cutout")
    if mode not in ("trim", "partial", "strict"):
        raise ArgumentError(f"mode must be 'trim', 'partial' or 'strict', got {mode!r}")
    ds = _irfs_on_own_grid(ds)
    width = np.broadcast_to(as_quantity(width, "deg").to_value("deg"), 2)
    for prefix in _prefixes(ds):
        grid = WcsGrid.from_dataset(ds, prefix)
        x, y = _pixel_position(grid, position)
        boxes = [_cutout_range(p, w / s, n, mode, min_npix=3 if prefix else 1)
                 for p, w, s, n in zip((x, y), width, grid.binsz, grid.shape[::-1], strict=True)]
        (x0, nx), (y0, ny) = boxes
        inside = {f"{prefix}lon": slice(max(x0, 0), min(x0 + nx, grid.shape[1])),
                  f"{prefix}lat": slice(max(y0, 0), min(y0 + ny, grid.shape[0]))}
        ds = ds.isel(inside)
        if mode == "partial":
            before = (inside[f"{prefix}lon"].start - x0, inside[f"{prefix}lat"].start - y0)
            after = (x0 + nx - inside[f"{prefix}lon"].stop, y0 + ny - inside[f"{prefix}lat"].stop)
            ds = _pad_grid(ds, prefix, before, after, "constant", 0)
    return with_name(ds, name)


def pad(ds: xr.Dataset, pad_width, mode: str = "constant", cval: float = 0,
        name: str | None = None) -> xr.Dataset:
    """Add ``pad_width`` pixels (one value or (lon, lat)) on both sides of the data grid,
    as gammapy's ``MapDataset.pad``: data variables padded with ``cval`` (``mode="edge"``:
    the edge values), masks with False; IRF maps unchanged. gammapy 2.1 ignores ``mode``
    and pads with 0; it has no pad for on/off datasets, xdl4 neither.

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset(width=1.0, binsz=0.1)
    >>> out = pad(ds, 2)
    >>> dict(out.sizes)["lat"], out.dl4.grid.wcs.wcs.crpix.tolist()
    (14, [7.5, 7.5])
    """
    _check_map(ds, "pad")
    if mode not in ("constant", "edge"):
        raise ArgumentError(f"mode must be 'constant' or 'edge', got {mode!r}")
    widths = np.broadcast_to(np.asarray(pad_width), 2)
    if widths.dtype.kind not in "iu" or np.any(widths < 0):
        raise ArgumentError(f"pad_width must be non-negative integers, got {pad_width!r}")
    ds = _irfs_on_own_grid(ds)
    x, y = (int(w) for w in widths)
    return with_name(_pad_grid(ds, "", (x, y), (x, y), mode, cval), name)


# --------------------------------------------------------------------------------------
# helpers


def _check_map(ds: xr.Dataset, what: str) -> None:
    if "lat" not in ds.dims or "lon" not in ds.dims:
        raise GridError(f"{what} needs a map dataset on a WCS pixel grid (lat/lon dims); "
                        f"this {ds.attrs.get('dl4_kind')!r} dataset has none")


def _prefixes(ds: xr.Dataset) -> list[str]:
    return [p for p in GRID_PREFIXES if f"{p}lat" in ds.dims]


def _grid_coord_names(ds: xr.Dataset, prefix: str) -> list[str]:
    dims = {f"{prefix}lat", f"{prefix}lon"}
    return [str(c) for c, v in ds.coords.items() if dims & set(v.dims)] + \
        [f"{prefix}{GRID_MAPPING}"]


def _irfs_on_own_grid(ds: xr.Dataset) -> xr.Dataset:
    """IRF maps sharing the data grid moved to an IRF grid (a copy of the data grid), so
    that spatial operations on the data leave them as they are (as in gammapy)."""
    moved = [n for n in _IRF_VARS if n in ds and "lat" in ds[n].dims]
    if not moved or "irf_lat" in ds.dims:
        return ds
    rename = {"lat": "irf_lat", "lon": "irf_lon"}
    irfs = {n: xr.Variable([rename.get(str(d), d) for d in ds[n].dims], ds[n].data,
                           ds[n].attrs) for n in moved}
    return tag_grids(ds.drop_vars(moved).assign(irfs).assign_coords(
        WcsGrid.from_dataset(ds).coords("irf_")))


def _replaced(bare: xr.Dataset, new: dict, coords: dict) -> xr.Dataset:
    """``bare`` with the variables of ``new`` (on a resized grid with ``coords``) replaced,
    in the original order."""
    data = {k: new.get(k, v).variable for k, v in bare.data_vars.items()}
    return xr.Dataset(data, coords={**bare.coords, **coords}, attrs=bare.attrs)


def _scaled_wcs(grid: WcsGrid, factor: int):
    """gammapy's downsampled WCS: pixels ``factor`` times larger, same sky."""
    wcs = grid.wcs.deepcopy()
    wcs.wcs.cdelt = wcs.wcs.cdelt * factor
    wcs.wcs.crpix = (wcs.wcs.crpix - 0.5) / factor + 0.5
    return wcs


def _pixel_position(grid: WcsGrid, position) -> tuple[float, float]:
    if hasattr(position, "transform_to"):  # a SkyCoord
        sph = position.transform_to(grid.frame).spherical
        position = (sph.lon.deg, sph.lat.deg)
    x, y = grid.world_to_pixel(*np.broadcast_to(np.asarray(position, float), 2))
    if not (np.isfinite(x) and np.isfinite(y)):
        raise GridError(f"position {position} has no pixel in the grid's projection")
    return float(x), float(y)


def _cutout_range(pix: float, npix: float, size: int, mode: str,
                  min_npix: int) -> tuple[int, int]:
    """(first pixel, number of pixels) of a cut-out along one axis (astropy's, see
    :func:`xdl4.sky.cutout_range`), checked against a grid of ``size`` pixels."""
    start, n = cutout_range(pix, npix, min_npix)
    if start + n <= 0 or start >= size:
        raise GridError(f"the cut-out (pixels {start}..{start + n - 1}) does not overlap the "
                         f"grid (0..{size - 1})")
    if mode == "strict" and (start < 0 or start + n > size):
        raise GridError("the cut-out overlaps the grid only partially (mode='strict')")
    return start, n


def _pad_grid(ds: xr.Dataset, prefix: str, before: tuple[int, int], after: tuple[int, int],
              mode: str, cval: float) -> xr.Dataset:
    """``ds`` with ``before``/``after`` (lon, lat) pixels added to the grid of ``prefix``:
    a grid of its own (CRPIX shifted, pixel indices from 0); masks padded with False."""
    grid = WcsGrid.from_dataset(ds, prefix)
    wcs = grid.wcs.deepcopy()
    wcs.wcs.crpix = wcs.wcs.crpix + np.asarray(before, float)
    shape = (grid.shape[0] + before[1] + after[1], grid.shape[1] + before[0] + after[0])
    widths = {f"{prefix}lon": (before[0], after[0]), f"{prefix}lat": (before[1], after[1])}
    bare = ds.drop_vars(_grid_coord_names(ds, prefix))
    out = {}
    for key, da in bare.data_vars.items():
        if not set(widths) & set(da.dims):
            continue
        if da.dtype == bool:
            res = da.pad(widths, mode="constant", constant_values=False)
        elif mode == "edge":
            res = da.pad(widths, mode="edge")
        else:
            res = da.pad(widths, mode="constant", constant_values=cval).astype(da.dtype)
        out[key] = res.assign_attrs(da.attrs)
    return _replaced(bare, out, WcsGrid.from_wcs(wcs, shape).coords(prefix))
