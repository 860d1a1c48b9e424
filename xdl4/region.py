"""A map dataset reduced to an on-region: the spectrum dataset of gammapy 2.1's
``MapDataset.to_spectrum_dataset``, the ``region`` reduction of :mod:`xdl4.reduce`.

Rules (those of gammapy, declared per variable in :data:`xdl4.schema.VARIABLES`):

* a point region takes the pixel nearest each point; other regions the data pixels
  whose centres they contain (gammapy's rule:
  :meth:`xdl4.sky.Region.contains_pixels`); the region must lie
  inside the map (no pixel centre of the ring just outside the map is in it) and the fit
  mask (``mask_safe & mask_fit``) must be the same for all its pixels in each energy bin;
* counts, background and counts_off are summed over the region's safe pixels;
* masks are OR-ed over the region; exposure is the plain mean over the region;
* EDISP (and its exposure) is the IRF pixel nearest the region centre (ties to the lower
  pixel, as gammapy's nearest-neighbour interpolation);
* ``containment_correction`` multiplies the exposure by the PSF containment within the
  radius of a circular region, with the PSF interpolated bilinearly at its centre;
* the PSF is not carried (a spectrum dataset holds the containment in its exposure);
* on/off: acceptance is the mean over the region's safe pixels and acceptance_off keeps
  the summed background alpha x counts_off.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from astropy.io import fits

from xdl4 import masks
from xdl4.errors import ArgumentError, GridError
from xdl4.reduce import RegionPixels, reduce
from xdl4.schema import REGION
from xdl4.sky import Region, WcsGrid, nearest_index
from xdl4.validation import dataset_name, kind_record, with_name

SKY = ("lat", "lon")


def to_region(ds: xr.Dataset, region: Region | str, containment_correction: bool = False,
              name: str | None = None) -> xr.Dataset:
    """Reduce a map dataset to a region dataset in ``region`` (a :class:`~xdl4.sky.Region`
    or its string): of the kind's declared ``region_kind`` (``map`` -> ``spectrum``,
    ``map_onoff`` -> ``spectrum_onoff``), each variable by its declared ``region`` rule.

    ``containment_correction`` (circular regions, needs a PSF) scales the exposure by the
    fraction of a point source's PSF inside the region; ``name`` defaults to the input's.

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset()
    >>> lon, lat = ds.dl4.grid.center
    >>> spec = to_region(ds, f"icrs;circle({lon},{lat},0.3)")  # or ds.dl4.to_region(...)
    >>> spec.attrs["dl4_kind"], dict(spec.counts.sizes)
    ('spectrum', {'energy': 12})
    """
    kind = kind_record(ds).region_kind
    if "lat" not in ds.dims or kind is None:
        raise GridError(f"to_region needs a map dataset on a pixel grid, got a "
                        f"{ds.attrs.get('dl4_kind')!r} dataset without lat/lon dims")
    if "obs" in ds.dims:
        raise ArgumentError("to_region takes one run; select one with ds.isel(obs=i) or stack")
    region = Region.parse(region) if isinstance(region, str) else region
    grid = WcsGrid.from_dataset(ds)
    inside = region_pixels(grid, region)
    _check_uniform(ds, inside)
    centre = _in_frame(*region.center, region.frame, grid.frame)
    out = reduce(ds, RegionPixels(inside, (float(centre[0]), float(centre[1]))))
    if containment_correction:
        out["exposure"] = (out["exposure"] * xr.DataArray(
            psf_containment(ds, region), dims="energy_true")).assign_attrs(
            out["exposure"].attrs)
    header = fits.Header.fromstring(grid.header, sep="\n")
    header["WCSSHAPE"] = f"({grid.shape[1]},{grid.shape[0]})"
    out = out.assign_coords({REGION: region.to_coord(header.tostring(sep="\n"))})
    return with_name(out.assign_attrs(dl4_kind=kind), dataset_name(ds) if name is None
                     else name)


def region_pixels(grid: WcsGrid, region: Region) -> xr.DataArray:
    """Boolean (lat, lon) mask of the pixels whose centres lie in ``region``; raises if
    the region is empty on the grid or reaches beyond it."""
    ny, nx = grid.shape
    if region.is_points:  # gammapy: the value of the pixel nearest each point
        inside = np.zeros((ny, nx), bool)
        for _, (lon, lat) in region.shapes:
            x, y = grid.world_to_pixel(*_in_frame(lon, lat, region.frame, grid.frame))
            if not (-0.5 <= x < nx - 0.5 and -0.5 <= y < ny - 0.5):
                raise GridError(f"region {region} is not inside the map")
            inside[nearest_index(float(y), ny), nearest_index(float(x), nx)] = True
        return xr.DataArray(inside, dims=SKY)
    inside = region.contains_pixels(grid, *np.mgrid[:ny, :nx][::-1])
    if not inside.any():
        raise GridError(f"region {region} contains no pixel centre of the map")
    # the ring of pixels just outside the map, as gammapy pads the grid by one pixel
    x = np.concatenate([np.arange(-1, nx + 1), np.arange(-1, nx + 1), np.full(ny, -1),
                        np.full(ny, nx)])
    y = np.concatenate([np.full(nx + 2, -1), np.full(nx + 2, ny), np.arange(ny),
                        np.arange(ny)])
    if region.contains_pixels(grid, x, y).any():
        raise GridError(f"region {region} is not fully inside the map: it reaches the "
                         "pixels just outside the grid")
    return xr.DataArray(inside, dims=SKY)


def psf_containment(ds: xr.Dataset, region: Region) -> np.ndarray:
    """PSF containment (n_energy_true,) within the radius of a circular ``region``, the
    PSF taken bilinearly at the region centre and at the true-energy bin centres."""
    from xdl4.forward import Evaluator
    from xdl4.psf import containment

    if region.radius is None:
        raise GridError(f"containment correction needs a single circle region, got {region}")
    if "psf" not in ds or not {"energy_true", "irf_energy_true"} & set(ds["psf"].dims):
        raise GridError("containment correction needs a PSF in true energy; the dataset "
                         "has none")
    ev = Evaluator(ds)
    lon, lat = _in_frame(*region.center, region.frame, ev.grid.frame)
    return containment(ev.psf_profiles(lon, lat), ev.rad_nodes, region.radius)


def _check_uniform(ds: xr.Dataset, inside: xr.DataArray) -> None:
    if "mask_safe" not in ds and "mask_fit" not in ds:
        return
    m = masks.fit(ds).where(inside)
    mixed = (m == 1).any(SKY) & (m == 0).any(SKY)
    if mixed.any():
        bins = np.flatnonzero(mixed.values).tolist()
        raise GridError("the mask (mask_safe & mask_fit) is not uniform within the region "
                         f"in energy bins {bins}: shrink or move the region")


def _in_frame(lon, lat, src: str, dst: str):
    from xdl4.skymath import convert_lonlat

    return convert_lonlat(lon, lat, src, dst)


__all__ = ["psf_containment", "region_pixels", "to_region"]
