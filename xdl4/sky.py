"""Sky grids: a WCS pixel grid held in one grid-mapping coordinate, and on-regions.

A WCS grid is stored as

* a scalar coordinate ``spatial_ref`` whose attrs hold the full FITS WCS header
  (``wcs_header``), so any projection round-trips;
* 1D coordinates ``lon(lon)`` and ``lat(lat)``: world coordinates of pixel centres along the
  reference row / column (exact for separable grids; use :meth:`WcsGrid.sky_coords` for
  the 2D truth);
* integer coordinates ``lon_pixel(lon)``, ``lat_pixel(lat)``: 0-based pixel indices in the
  WCS of ``spatial_ref``. Plain ``isel``/``sel`` slicing keeps them, so a cut-out dataset still
  knows exactly where it lies.

IRF grids use the same layout with the prefix ``irf_`` (and ``psf_`` for a PSF grid that
differs from the EDISP grid).
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from dataclasses import dataclass

import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.wcs import WCS

from xdl4.errors import GridError
from xdl4.schema import GRID_MAPPING, GRID_PREFIXES, REGION

FRAMES = {"icrs": ("RA---", "DEC--"), "galactic": ("GLON-", "GLAT-")}


@functools.lru_cache(maxsize=256)
def _wcs_from_header(header: str) -> WCS:
    return WCS(fits.Header.fromstring(header, sep="\n"))


def _wrap(lon: np.ndarray, centre: float) -> np.ndarray:
    """Longitudes unwrapped to (centre - 180, centre + 180]."""
    return centre - np.mod(centre - lon + 180.0, 360.0) + 180.0


@dataclass(frozen=True)
class WcsGrid:
    """A 2D celestial pixel grid: a FITS WCS header and a shape ``(ny, nx)``.

    >>> g = WcsGrid.create((83.63, 22.01), width=1.0, binsz=0.1)
    >>> g.shape, g.frame
    ((10, 10), 'icrs')
    """

    header: str
    shape: tuple[int, int]

    @classmethod
    def create(cls, center, width, binsz: float, frame: str = "icrs",
               proj: str = "CAR") -> WcsGrid:
        """A grid centred on ``center`` (lon, lat in deg), ``width`` deg (one value or
        (lon, lat)), pixel size ``binsz`` deg, like gammapy's ``WcsGeom.create``."""
        if frame not in FRAMES:
            raise GridError(f"frame must be one of {list(FRAMES)}, got {frame!r}")
        wx, wy = np.broadcast_to(np.asarray(width, dtype=float), 2)
        nx, ny = (max(1, int(np.rint(w / binsz))) for w in (wx, wy))
        x, y = FRAMES[frame]
        hdr = {
            "NAXIS": 2, "NAXIS1": nx, "NAXIS2": ny,
            "CTYPE1": x + proj.rjust(3, "-")[-3:], "CTYPE2": y + proj.rjust(3, "-")[-3:],
            "CRVAL1": float(center[0]), "CRVAL2": float(center[1]),
            "CRPIX1": (nx + 1) / 2.0, "CRPIX2": (ny + 1) / 2.0,
            "CDELT1": -float(binsz), "CDELT2": float(binsz),
            "CUNIT1": "deg", "CUNIT2": "deg",
        }
        if frame == "icrs":
            hdr["RADESYS"] = "ICRS"
        wcs = WCS(fits.Header(hdr))
        return cls(wcs.to_header().tostring(sep="\n"), (ny, nx))

    @classmethod
    def from_wcs(cls, wcs: WCS, shape) -> WcsGrid:
        return cls(wcs.celestial.to_header().tostring(sep="\n"),
                   (int(shape[0]), int(shape[1])))

    @property
    def wcs(self) -> WCS:
        return _wcs_from_header(self.header)

    @property
    def frame(self) -> str:
        return "galactic" if self.wcs.wcs.ctype[0].startswith("GLON") else "icrs"

    @property
    def projection(self) -> str:
        return self.wcs.wcs.ctype[0][-3:]

    @property
    def binsz(self) -> tuple[float, float]:
        """Absolute pixel sizes (lon, lat) in deg at the reference point."""
        scale = np.abs(self.wcs.wcs.get_cdelt())
        return float(scale[0]), float(scale[1])

    @property
    def center(self) -> tuple[float, float]:
        """World coordinates of the grid's central point."""
        ny, nx = self.shape
        lon, lat = self.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
        return float(lon), float(lat)

    def pixel_to_world(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = self.wcs.wcs_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
        return _wrap(np.asarray(lon), self.wcs.wcs.crval[0]), np.asarray(lat)

    def world_to_pixel(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.wcs.wcs_world2pix(np.asarray(lon, float), np.asarray(lat, float), 0)
        return np.asarray(x), np.asarray(y)

    def sky_coords(self) -> tuple[np.ndarray, np.ndarray]:
        """2D arrays (ny, nx) of pixel-centre longitudes and latitudes (deg)."""
        ny, nx = self.shape
        y, x = np.mgrid[:ny, :nx]
        return self.pixel_to_world(x, y)

    def axis_values(self, x0: int = 0, y0: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """1D lon values along the reference row and lat values along the reference
        column, for pixels starting at (x0, y0)."""
        ny, nx = self.shape
        crpix = self.wcs.wcs.crpix
        x = np.arange(x0, x0 + nx, dtype=float)
        y = np.arange(y0, y0 + ny, dtype=float)
        lon, _ = self.pixel_to_world(x, np.full(nx, crpix[1] - 1))
        _, lat = self.pixel_to_world(np.full(ny, crpix[0] - 1), y)
        return lon, lat

    def coords(self, prefix: str = "") -> dict:
        """The xarray coordinates describing this grid (``prefix`` is ``""`` or ``"irf_"``)."""
        lon, lat = self.axis_values()
        ny, nx = self.shape
        ref = f"{prefix}{GRID_MAPPING}"
        frame_attrs = {"frame": self.frame}
        attrs = {"grid_mapping_name": "fits_wcs", "wcs_header": self.header,
                 "wcs_shape": np.array(self.shape, dtype=np.int64), **frame_attrs}
        return {
            ref: xr.Variable((), np.int32(_remember(attrs)), attrs),
            f"{prefix}lon": xr.Variable(f"{prefix}lon", lon, {
                "units": "deg", "long_name": f"longitude ({self.frame})", **frame_attrs}),
            f"{prefix}lat": xr.Variable(f"{prefix}lat", lat, {
                "units": "deg", "long_name": f"latitude ({self.frame})", **frame_attrs}),
            f"{prefix}lon_pixel": xr.Variable(f"{prefix}lon", np.arange(nx, dtype=np.int64)),
            f"{prefix}lat_pixel": xr.Variable(f"{prefix}lat", np.arange(ny, dtype=np.int64)),
        }

    @classmethod
    def from_dataset(cls, ds: xr.Dataset | xr.DataArray, prefix: str = "") -> WcsGrid:
        """The grid of ``ds`` (cut-outs included: CRPIX follows the pixel coordinates)."""
        ref = f"{prefix}{GRID_MAPPING}"
        if ref not in ds.coords:
            raise GridError(f"dataset has no {ref!r} grid-mapping coordinate (no "
                            f"{prefix or 'data '}sky grid)")
        header = _grid_attrs(ds[ref]).get("wcs_header")
        if header is None:
            raise GridError(
                f"the grid-mapping coordinate {ref!r} lost its 'wcs_header' attribute (an "
                "xarray operation dropped attributes, e.g. xr.where or arithmetic on "
                "coordinates); restore it with ds.assign_coords("
                f"{ref}=original[{ref!r}]) or compute under "
                "xr.set_options(keep_attrs=True)")
        x0, y0 = (int(ds[f"{prefix}{a}_pixel"].values[0]) for a in ("lon", "lat"))
        shape = (ds.sizes[f"{prefix}lat"], ds.sizes[f"{prefix}lon"])
        if x0 or y0:
            hdr = fits.Header.fromstring(header, sep="\n")
            hdr["CRPIX1"] -= x0
            hdr["CRPIX2"] -= y0
            header = hdr.tostring(sep="\n")
        return cls(header, shape)

    @functools.lru_cache(maxsize=256)  # noqa: B019 - grids are immutable and few
    def pixel_offset_in(self, parent: WcsGrid) -> tuple[int, int] | None:
        """(x0, y0) if this grid is ``parent`` or a pixel-aligned cut-out of it, else None."""
        a, b = self.wcs.wcs, parent.wcs.wcs
        same = (list(a.ctype) == list(b.ctype) and np.allclose(a.crval, b.crval, atol=1e-10)
                and np.allclose(a.get_cdelt(), b.get_cdelt(), rtol=1e-10)
                and np.allclose(a.get_pc(), b.get_pc(), atol=1e-12)
                and np.allclose([a.lonpole, a.latpole], [b.lonpole, b.latpole], equal_nan=True))
        d = b.crpix - a.crpix
        if not same or not np.allclose(d, np.round(d), atol=1e-6):
            return None
        x0, y0 = (int(v) for v in np.round(d))
        if x0 < 0 or y0 < 0 or x0 + self.shape[1] > parent.shape[1] or \
                y0 + self.shape[0] > parent.shape[0]:
            return None
        return x0, y0


def cutout_range(p: float, npix: float, min_npix: int = 1) -> tuple[int, int]:
    """(first pixel, number of pixels) of astropy's ``Cutout2D`` of ``npix`` pixels (rounded,
    at least ``min_npix``) around pixel coordinate ``p``, along one axis; the first pixel
    may lie outside the grid.

    >>> cutout_range(6.2, 2.0), cutout_range(1.5, 3.0)
    ((6, 2), (0, 3))
    """
    n = int(np.round(max(npix, min_npix)))
    return math.ceil(p - n / 2.0), n


def nearest_index(p: float, n: int) -> int:
    """The pixel nearest to pixel coordinate ``p`` on an axis of ``n`` pixels, clipped to
    the axis; a tie goes to the lower pixel, as gammapy's nearest-pixel IRF lookup does.

    >>> nearest_index(1.5, 4), nearest_index(1.51, 4), nearest_index(-3.0, 4)
    (1, 2, 0)
    """
    return int(np.clip(math.ceil(p - 0.5), 0, n - 1))


#: grid-mapping attributes by grid id (the value of the ``spatial_ref`` coordinates): an
#: xarray operation that drops the coordinate's attributes (``xr.where``, arithmetic on
#: coordinates) leaves its value, from which the grid is restored (bounded: oldest first out)
_GRIDS: dict[int, dict] = {}
_GRIDS_MAX = 1024


def _remember(attrs: dict) -> int:
    """The id of a grid (a CRC of its WCS header and shape), its attributes remembered."""
    key = zlib.crc32(f"{attrs['wcs_header']}{attrs['wcs_shape'].tolist()}".encode())
    _GRIDS[key & 0x7FFFFFFF] = attrs
    while len(_GRIDS) > _GRIDS_MAX:
        del _GRIDS[next(iter(_GRIDS))]
    return key & 0x7FFFFFFF


def _grid_attrs(ref: xr.DataArray) -> dict:
    """The attributes of a grid-mapping coordinate, restored by its id if dropped."""
    if "wcs_header" in ref.attrs or ref.ndim:
        return ref.attrs
    return _GRIDS.get(int(ref.values), ref.attrs)


def restore_grids(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the attributes of its grid-mapping coordinates restored where an xarray
    operation dropped them (from the grid id each coordinate's value holds); unchanged
    when nothing was lost or the grid is unknown to this process.

    >>> import xarray as xr, xdl4
    >>> ds = xdl4.examples.map_dataset()
    >>> lost = ds.assign_coords(flag=xr.where(ds.livetime > 0, "yes", "no"))
    >>> "wcs_header" in lost.spatial_ref.attrs, "wcs_header" in restore_grids(
    ...     lost).spatial_ref.attrs
    (False, True)
    """
    lost = {ref: _GRIDS[int(ds[ref].values)] for ref in
            (f"{p}{GRID_MAPPING}" for p in GRID_PREFIXES)
            if ref in ds.coords and ds[ref].ndim == 0 and "wcs_header" not in ds[ref].attrs
            and int(ds[ref].values) in _GRIDS}
    if not lost:
        return ds
    return ds.assign_coords({ref: ds[ref].copy().assign_attrs(attrs)
                             for ref, attrs in lost.items()})


def grid_of(var: xr.DataArray | xr.Variable) -> str | None:
    """The pixel grid ``var`` lives on, as the prefix of its dims and grid-mapping
    coordinate (``""`` data grid, ``"irf_"``, ``"psf_"``), or None (no pixel grid). Read
    from its CF ``grid_mapping`` attribute (or encoding) when that names a grid whose
    dims it has; a stale attribute (the variable moved by plain xarray code) yields to the
    dims.

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset()
    >>> ds.counts.attrs["grid_mapping"], grid_of(ds.counts), grid_of(ds.edisp)
    ('spatial_ref', '', 'irf_')
    """
    name = str(var.attrs.get("grid_mapping") or var.encoding.get("grid_mapping") or "")
    prefix = name[: -len(GRID_MAPPING)] if name.endswith(GRID_MAPPING) else None
    if prefix in GRID_PREFIXES and {f"{prefix}lat", f"{prefix}lon"} <= set(var.dims):
        return prefix
    return next((p for p in GRID_PREFIXES if f"{p}lat" in var.dims), None)


def tag_grids(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with each variable's CF ``grid_mapping`` attribute naming the grid-mapping
    coordinate of the pixel grid it lives on (and removed where it has none). A shallow
    copy; variables already tagged right are left as they are."""
    changed = {}
    for name, var in ds.data_vars.items():
        prefix = next((p for p in GRID_PREFIXES if f"{p}lat" in var.dims), None)
        want = None if prefix is None else f"{prefix}{GRID_MAPPING}"
        if var.attrs.get("grid_mapping") != want:
            attrs = {k: v for k, v in var.attrs.items() if k != "grid_mapping"}
            changed[name] = var.variable.copy(deep=False)
            changed[name].attrs = attrs if want is None else {**attrs, "grid_mapping": want}
    return ds.assign(changed) if changed else ds


def check_sky(ds: xr.Dataset, geometry: str = "map") -> list[str]:
    """Problems with the sky grid(s) of ``ds`` (see :func:`xdl4.validate`); ``geometry``
    is the kind's (``"region"`` kinds have no pixel grid)."""
    problems = []
    has_wcs = "lat" in ds.dims or "lon" in ds.dims
    if geometry == "region" and has_wcs:
        problems.append(f"kind {ds.attrs.get('dl4_kind')!r} has a region, not a pixel grid: "
                        "found lat/lon dims")
    for prefix in GRID_PREFIXES:
        if f"{prefix}lat" not in ds.dims and f"{prefix}lon" not in ds.dims:
            continue
        ref = f"{prefix}{GRID_MAPPING}"
        if f"{prefix}lat" not in ds.dims or f"{prefix}lon" not in ds.dims:
            problems.append(f"sky grid needs both {prefix}lat and {prefix}lon dims")
            continue
        missing = [c for c in (ref, f"{prefix}lon", f"{prefix}lat", f"{prefix}lon_pixel",
                               f"{prefix}lat_pixel") if c not in ds.coords]
        if missing:
            problems.append(f"sky grid coordinates missing: {', '.join(missing)}")
            continue
        if "wcs_header" not in ds[ref].attrs:
            problems.append(f"{ref} has no 'wcs_header' attribute")
            continue
        pix = [np.asarray(ds[f"{prefix}{a}_pixel"].values) for a in ("lon", "lat")]
        if any(p.size and np.any(np.diff(p) != 1) for p in pix):
            problems.append(f"mismatched sky grid: {prefix}lon/{prefix}lat pixels are not "
                            "contiguous (the grid was re-ordered or subsampled)")
            continue
        try:
            grid = WcsGrid.from_dataset(ds, prefix)
        except Exception as err:  # noqa: BLE001 - reported as a validation problem
            problems.append(f"{ref}: invalid WCS header ({err})")
            continue
        if not grid.wcs.has_celestial:
            problems.append(f"{ref}: the WCS is not celestial (CTYPE "
                            f"{list(grid.wcs.wcs.ctype)}): xdl4 needs sky longitude/latitude")
            continue
        lon, lat = grid.axis_values()
        if not (np.allclose(lon, ds[f"{prefix}lon"].values, atol=1e-7) and
                np.allclose(lat, ds[f"{prefix}lat"].values, atol=1e-7)):
            problems.append(f"mismatched sky grid: {prefix}lon/{prefix}lat coordinates do not "
                            f"match the WCS in {ref}")
    return problems


# --------------------------------------------------------------------------------------
# Regions

_SHAPES = {"circle": 3, "point": 2, "ellipse": 5, "box": 5, "annulus": 4}


@dataclass(frozen=True)
class Region:
    """A sky region in a DS9-like string form, e.g. ``"icrs;circle(83.63,22.01,0.15)"``
    (angles in deg). Several shapes joined with ``|`` form their union.

    >>> r = Region.parse("icrs;circle(83.63,22.01,0.15)")
    >>> r.center, r.frame
    ((83.63, 22.01), 'icrs')
    """

    frame: str
    shapes: tuple[tuple[str, tuple[float, ...]], ...]

    @classmethod
    def parse(cls, text: str) -> Region:
        text = text.strip()
        frame, _, body = text.partition(";")
        if not body:
            raise GridError(f"region {text!r} must start with a frame, e.g. 'icrs;circle(...)'")
        frame = frame.strip().lower()
        if frame not in FRAMES:
            raise GridError(f"region frame must be one of {list(FRAMES)}, got {frame!r}")
        shapes = []
        for part in body.split("|"):
            m = re.fullmatch(r"\s*(\w+)\s*\(([^)]*)\)\s*", part)
            if not m:
                raise GridError(f"cannot parse region shape {part!r}")
            try:
                shape, args = m.group(1).lower(), tuple(float(a) for a in m.group(2).split(","))
            except ValueError:
                raise GridError(f"region shape {part!r}: its arguments must be numbers") \
                    from None
            if shape == "polygon":
                if len(args) < 6 or len(args) % 2:
                    raise GridError("polygon needs at least three (lon, lat) vertices")
            elif _SHAPES.get(shape) != len(args):
                raise GridError(f"region shape {shape!r} needs {_SHAPES.get(shape, '?')} "
                                 f"numbers, got {len(args)}")
            shapes.append((shape, args))
        return cls(frame, tuple(shapes))

    def __str__(self) -> str:
        return self.display(None)

    def display(self, digits: int | None = 6) -> str:
        """The region as text, its numbers to ``digits`` significant digits (None: exact,
        the form ``str`` gives and files keep).

        >>> Region("icrs", (("circle", (83.63, 22.01, 0.14999999999666613)),)).display()
        'icrs;circle(83.63,22.01,0.15)'
        """
        number = repr if digits is None else (lambda a: f"{a:.{digits}g}")
        body = "|".join(f"{s}({','.join(number(float(a)) for a in args)})"
                        for s, args in self.shapes)
        return f"{self.frame};{body}"

    @property
    def center(self) -> tuple[float, float]:
        shape, args = self.shapes[0]
        if shape == "polygon":
            return float(np.mean(args[0::2])), float(np.mean(args[1::2]))
        return float(args[0]), float(args[1])

    @property
    def is_points(self) -> bool:
        return all(s == "point" for s, _ in self.shapes)

    @property
    def radius(self) -> float | None:
        """Radius (deg) of a single circle, else None."""
        if len(self.shapes) == 1 and self.shapes[0][0] == "circle":
            return self.shapes[0][1][2]
        return None

    def contains(self, lon, lat) -> np.ndarray:
        """Whether sky positions (deg, in the region's frame) are inside."""
        from xdl4.skymath import offset_xy, separation

        lon, lat = np.asarray(lon, float), np.asarray(lat, float)
        inside = np.zeros(np.broadcast(lon, lat).shape, bool)
        for shape, a in self.shapes:
            if shape == "circle":
                inside |= separation(lon, lat, a[0], a[1]) <= a[2]
            elif shape == "annulus":
                sep = separation(lon, lat, a[0], a[1])
                inside |= (sep >= a[2]) & (sep <= a[3])
            elif shape in ("ellipse", "box"):
                x, y = offset_xy(lon, lat, a[0], a[1])
                c, s = np.cos(np.radians(a[4])), np.sin(np.radians(a[4]))
                xr_, yr_ = x * c + y * s, -x * s + y * c
                if shape == "ellipse":
                    inside |= (xr_ / a[2]) ** 2 + (yr_ / a[3]) ** 2 <= 1
                else:
                    inside |= (np.abs(xr_) <= a[2] / 2) & (np.abs(yr_) <= a[3] / 2)
            elif shape == "polygon":
                x, y = offset_xy(lon, lat, *self.center)
                vx, vy = offset_xy(np.array(a[0::2]), np.array(a[1::2]), *self.center)
                inside |= _in_polygon(x, y, vx, vy)
        return inside

    def to_coord(self, wcs_header: str | None = None) -> xr.Variable:
        lon, lat = self.center
        attrs = {"region": str(self), "frame": self.frame, "center_lon": lon,
                 "center_lat": lat}
        if wcs_header:
            attrs["wcs_header"] = wcs_header
        return xr.Variable((), np.int32(0), attrs)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> Region | None:
        if REGION not in ds.coords or "region" not in ds[REGION].attrs:
            return None
        return cls.parse(ds[REGION].attrs["region"])

    def contains_pixels(self, grid: WcsGrid, x, y) -> np.ndarray:
        """Whether pixel positions (x, y) of ``grid`` are inside, as gammapy's
        ``region_mask`` decides: a circle in pixel space (centre and radius mapped at the
        centre, strict ``<``), other shapes by their sky positions.

        >>> g = WcsGrid.create((83.63, 22.01), width=1.0, binsz=0.1)
        >>> int(Region.parse("icrs;circle(83.63,22.01,0.2)").contains_pixels(
        ...     g, *np.mgrid[:10, :10][::-1]).sum())
        12
        """
        from xdl4.skymath import convert_lonlat

        x, y = np.asarray(x, float), np.asarray(y, float)
        if self.radius is not None:
            cx, cy = grid.world_to_pixel(*convert_lonlat(*self.center, self.frame, grid.frame))
            return np.hypot(x - cx, y - cy) < self.radius / grid.binsz[1]
        lon, lat = grid.pixel_to_world(x, y)
        return self.contains(*convert_lonlat(lon, lat, grid.frame, self.frame))

    def overlaps_box(self, lon: float, lat: float, width: float,
                     wcs_header: str | None = None) -> bool:
        """gammapy's test whether a source at (lon, lat) (deg, region frame) contributes
        to a region dataset: does the square cut-out ``width`` deg wide around it (astropy
        Cutout2D's pixel rounding) hold a pixel of the region, on the region's own pixel
        grid (``wcs_header``; else gammapy's default: TAN, 0.1 deg, centred on the region)?

        >>> r = Region.parse("icrs;circle(83.63,22.01,0.15)")
        >>> r.overlaps_box(83.7, 22.0, 0.1), r.overlaps_box(85.0, 22.0, 0.1)
        (True, False)
        """
        if self.is_points:  # gammapy: point regions take every source
            return True
        grid, mask = _region_pixels(str(self), wcs_header)
        x, y = (float(v) for v in grid.world_to_pixel(lon, lat))
        if not (math.isfinite(x) and math.isfinite(y)):
            return False
        (bx, by) = grid.binsz
        (x0, sx), (y0, sy) = cutout_range(x, width / bx), cutout_range(y, width / by)
        return bool(mask[max(y0, 0):max(y0 + sy, 0), max(x0, 0):max(x0 + sx, 0)].any())


#: gammapy's pixel size (deg) of a region's WCS when none is stored (RegionGeom binsz_wcs)
REGION_BINSZ = 0.1


@functools.lru_cache(maxsize=64)
def _region_pixels(region: str, wcs_header: str | None) -> tuple[WcsGrid, np.ndarray]:
    """The pixel grid of a region and the mask of the pixels inside it (gammapy's
    ``RegionGeom.to_wcs_geom().region_mask``: circles tested in pixel space, strictly)."""
    reg = Region.parse(region)
    if wcs_header:
        header = fits.Header.fromstring(wcs_header, sep="\n")
        shape = header.get("WCSSHAPE")
        nx, ny = (int(v) for v in shape.strip("() ").split(",")[:2]) if shape else \
            (int(header.get("NAXIS1", 0)), int(header.get("NAXIS2", 0)))
        grid = WcsGrid(wcs_header, (ny, nx))
    else:  # gammapy: a TAN grid around the centre just covering the region's bounding box
        extent = max(_extent(shape, args) for shape, args in reg.shapes)
        r = extent / REGION_BINSZ
        n = math.ceil(r + 0.5) - math.floor(-r + 0.5)
        grid = WcsGrid.create(reg.center, n * REGION_BINSZ, REGION_BINSZ, reg.frame, "TAN")
    yy, xx = np.mgrid[:grid.shape[0], :grid.shape[1]]
    return grid, reg.contains_pixels(grid, xx, yy)


def _extent(shape: str, args: tuple[float, ...]) -> float:
    """Half-width (deg) of a shape's bounding box around the region centre (upper bound)."""
    if shape in ("circle", "annulus"):
        return args[-1]
    if shape in ("ellipse", "box"):
        return float(np.hypot(args[2], args[3]))
    if shape == "polygon":
        return float(np.max(np.hypot(np.subtract(args[0::2], np.mean(args[0::2])),
                                     np.subtract(args[1::2], np.mean(args[1::2])))))
    return 0.0


def _in_polygon(x, y, vx, vy) -> np.ndarray:
    """Even-odd rule point-in-polygon test on tangent-plane offsets."""
    inside = np.zeros(np.shape(x), bool)
    for i in range(len(vx)):
        x1, y1, x2, y2 = vx[i - 1], vy[i - 1], vx[i], vy[i]
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < xc)
    return inside
