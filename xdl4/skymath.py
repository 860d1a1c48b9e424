"""Sky geometry on plain numpy arrays: spherical distances and angles, frame rotations,
WCS pixel grids and pixel solid angles (shared by the grids, the IRFs and the models).

Pixel grids are cached by a WCS fingerprint and the image shape, so repeated model
integrations on the same map only do numpy arithmetic.
"""


from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import Any

import numpy as np
from astropy.wcs import WCS

from xdl4.errors import GridError

__all__ = [
    "angular_separation", "position_angle", "lonlat_to_xyz", "xyz_to_lonlat",
    "convert_lonlat", "frame_rotation", "wcs_frame", "pixel_solid_angle",
    "pixel_solid_angle_exact", "pixel_grid", "PixelGrid",
]

_FRAMES = {"icrs": "icrs", "galactic": "galactic", "fk5": "fk5"}



def degrees(angle: Any) -> float:
    """An angle in degrees from a number (taken as deg), an angle Quantity or a string
    (``"0.1 deg"``, ``"6 arcmin"``, ``"0d6m"``); anything else is an ArgumentError.

    >>> degrees(0.1), degrees("6 arcmin")
    (0.1, 0.1)
    """
    if isinstance(angle, int | float | np.integer | np.floating):
        return float(angle)
    from astropy.coordinates import Angle

    from xdl4.errors import ArgumentError

    try:
        return float(Angle(angle).deg)
    except (ValueError, TypeError) as err:  # astropy's unit errors are ValueErrors
        raise ArgumentError(f"not an angle: {angle!r} ({err})") from None

def angular_separation(lon1, lat1, lon2, lat2):
    """Great-circle distance (Vincenty formula, as astropy); radians in and out."""
    sdlon, cdlon = np.sin(lon2 - lon1), np.cos(lon2 - lon1)
    slat1, slat2, clat1, clat2 = np.sin(lat1), np.sin(lat2), np.cos(lat1), np.cos(lat2)
    num1 = clat2 * sdlon
    num2 = clat1 * slat2 - slat1 * clat2 * cdlon
    return np.arctan2(np.hypot(num1, num2), slat1 * slat2 + clat1 * clat2 * cdlon)


def position_angle(lon1, lat1, lon2, lat2):
    """Position angle of point 2 seen from point 1, east of north (as astropy); radians."""
    dlon = lon2 - lon1
    y = np.sin(dlon) * np.cos(lat2)
    x = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(dlon)
    return np.arctan2(y, x)


def lonlat_to_xyz(lon_deg, lat_deg) -> np.ndarray:
    """Unit vectors, shape (3, ...), from lon/lat in degrees."""
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    clat = np.cos(lat)
    return np.stack(np.broadcast_arrays(clat * np.cos(lon), clat * np.sin(lon), np.sin(lat)))


def xyz_to_lonlat(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lon in [0, 360), lat in degrees from unit vectors (3, ...)."""
    lon = np.degrees(np.arctan2(xyz[1], xyz[0])) % 360.0
    lat = np.degrees(np.arctan2(xyz[2], np.hypot(xyz[0], xyz[1])))
    return lon, lat


def _normalise_frame(frame: str) -> str:
    try:
        return _FRAMES[str(frame).lower()]
    except KeyError:
        raise GridError(f"unsupported frame {frame!r} (use 'icrs' or 'galactic')") from None


@lru_cache(maxsize=16)
def frame_rotation(src: str, dst: str) -> np.ndarray:
    """3x3 matrix R with xyz_dst = R @ xyz_src (taken once from astropy)."""
    src, dst = _normalise_frame(src), _normalise_frame(dst)
    if src == dst:
        return np.eye(3)
    from astropy.coordinates import CartesianRepresentation, SkyCoord

    basis = CartesianRepresentation(np.eye(3))  # columns: x, y, z unit vectors
    t = SkyCoord(basis, frame=src).transform_to(dst).cartesian.xyz.value
    return np.asarray(t)  # t[i, j] = component i of the image of basis vector j


def convert_lonlat(lon_deg, lat_deg, src: str, dst: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert lon/lat (deg) between 'icrs', 'galactic' and 'fk5' with numpy only."""
    if _normalise_frame(src) == _normalise_frame(dst):
        return np.asarray(lon_deg, dtype=float), np.asarray(lat_deg, dtype=float)
    xyz = lonlat_to_xyz(lon_deg, lat_deg)
    return xyz_to_lonlat(np.tensordot(frame_rotation(src, dst), xyz, axes=1))


def wcs_frame(wcs: WCS) -> str:
    """Celestial frame name of a 2-D WCS ('icrs', 'galactic' or 'fk5')."""
    ctype = wcs.wcs.ctype[0].upper()
    if ctype.startswith("GLON"):
        return "galactic"
    if ctype.startswith("RA"):
        return "fk5" if wcs.wcs.radesys.upper() == "FK5" else "icrs"
    raise GridError(f"unsupported WCS axis type {wcs.wcs.ctype[0]!r}")


def _pix2world(wcs: WCS, x, y) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = wcs.wcs_pix2world(np.asarray(x, dtype=float), np.asarray(y, dtype=float), 0)
    return lon, lat


def _corners(wcs: WCS, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = shape
    x, y = np.meshgrid(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5)
    lon, lat = _pix2world(wcs, x, y)
    return np.radians(lon), np.radians(lat)


def _solid_angle_planar(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """gammapy 2.1's two-planar-triangle pixel area from corner lon/lat (rad)."""
    ll = (lon[:-1, :-1], lat[:-1, :-1])  # "low_left"  (y, x)
    lr = (lon[1:, :-1], lat[1:, :-1])  # "low_right" (y+1, x)
    ul = (lon[:-1, 1:], lat[:-1, 1:])  # "up_left"   (y, x+1)
    ur = (lon[1:, 1:], lat[1:, 1:])  # "up_right"  (y+1, x+1)
    low = angular_separation(*ll, *lr)
    left = angular_separation(*ll, *ul)
    up = angular_separation(*ul, *ur)
    right = angular_separation(*lr, *ur)
    ang_lr = position_angle(*lr, *ur) - position_angle(*lr, *ll)
    ang_ul = position_angle(*ul, *ur) - position_angle(*ll, *ul)
    return np.abs(0.5 * low * right * np.sin(ang_lr) + 0.5 * up * left * np.sin(ang_ul))


def _triangle_excess(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Spherical excess of triangles with unit-vector vertices (3, ...)."""
    num = np.abs(np.einsum("i...,i...->...", a, np.cross(b, c, axis=0)))
    den = 1.0 + (a * b).sum(0) + (b * c).sum(0) + (c * a).sum(0)
    return 2.0 * np.arctan2(num, den)


def pixel_solid_angle(wcs: WCS, shape: tuple[int, int]) -> np.ndarray:
    """Pixel solid angles (sr), gammapy's planar-triangle approximation, shape (ny, nx)."""
    return pixel_grid(wcs, shape).solid_angle


def pixel_solid_angle_exact(wcs: WCS, shape: tuple[int, int]) -> np.ndarray:
    """Exact pixel solid angles (sr): spherical quadrilaterals with great-circle sides."""
    lon, lat = _corners(wcs, shape)
    v = lonlat_to_xyz(np.degrees(lon), np.degrees(lat))
    p00, p10, p01, p11 = v[:, :-1, :-1], v[:, 1:, :-1], v[:, :-1, 1:], v[:, 1:, 1:]
    return _triangle_excess(p00, p10, p11) + _triangle_excess(p00, p11, p01)


def wcs_key(wcs: WCS, shape: tuple[int, int]) -> tuple:
    """Cheap hashable fingerprint of a celestial WCS and image shape."""
    w = wcs.wcs
    return (tuple(w.ctype), tuple(w.crval), tuple(w.crpix), tuple(w.cdelt),
            tuple(np.asarray(w.get_pc()).ravel()), w.lonpole, w.latpole, w.radesys,
            tuple(int(s) for s in shape))


class PixelGrid:
    """Pixel-centre coordinates of a (ny, nx) WCS image with lazily cached derived arrays."""

    def __init__(self, wcs: WCS, shape: tuple[int, int]) -> None:
        self.wcs = wcs
        self.shape = (int(shape[0]), int(shape[1]))
        self.frame = wcs_frame(wcs)
        ny, nx = self.shape
        x, y = np.meshgrid(np.arange(nx, dtype=float), np.arange(ny, dtype=float))
        self.lon, self.lat = _pix2world(wcs, x, y)
        scales = np.sqrt((np.asarray(wcs.pixel_scale_matrix) ** 2).sum(axis=0))
        self.pixel_scales = np.abs(scales)  # deg, (x, y)
        self._cache: dict[Any, Any] = {}

    @property
    def solid_angle(self) -> np.ndarray:
        if "omega" not in self._cache:
            self._cache["omega"] = _solid_angle_planar(*_corners(self.wcs, self.shape))
        return self._cache["omega"]

    def xyz(self, frame: str) -> np.ndarray:
        """Unit vectors (3, ny, nx) of the pixel centres in `frame`."""
        key = ("xyz", _normalise_frame(frame))
        if key not in self._cache:
            v = lonlat_to_xyz(self.lon, self.lat)
            if key[1] != self.frame:
                v = np.tensordot(frame_rotation(self.frame, key[1]), v, axes=1)
            self._cache[key] = v
        return self._cache[key]

    def lonlat(self, frame: str) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre lon/lat (deg) in `frame`."""
        key = ("lonlat", _normalise_frame(frame))
        if key not in self._cache:
            if key[1] == self.frame:
                self._cache[key] = (self.lon, self.lat)
            else:
                self._cache[key] = xyz_to_lonlat(self.xyz(frame))
        return self._cache[key]

    def sub_xyz(self, sl: tuple[slice, slice], factor: int, frame: str) -> np.ndarray:
        """Unit vectors (3, ny*f, nx*f) of the f x f sub-pixel centres of a cutout."""
        key = ("sub", sl[0].start, sl[0].stop, sl[1].start, sl[1].stop, factor,
               _normalise_frame(frame))
        subs = self._cache.setdefault("subs", OrderedDict())
        if key in subs:
            subs.move_to_end(key)
            return subs[key]
        off = (np.arange(factor) + 0.5) / factor - 0.5
        ys = (np.arange(sl[0].start, sl[0].stop)[:, None] + off).ravel()
        xs = (np.arange(sl[1].start, sl[1].stop)[:, None] + off).ravel()
        x, y = np.meshgrid(xs, ys)
        v = lonlat_to_xyz(*_pix2world(self.wcs, x, y))
        if key[-1] != self.frame:
            v = np.tensordot(frame_rotation(self.frame, key[-1]), v, axes=1)
        subs[key] = v
        while len(subs) > 8:
            subs.popitem(last=False)
        return v


_GRIDS: OrderedDict[tuple, PixelGrid] = OrderedDict()


def pixel_grid(wcs: WCS, shape: tuple[int, int]) -> PixelGrid:
    """Cached `PixelGrid` for (wcs, shape) (LRU of 32 grids)."""
    key = wcs_key(wcs, shape)
    grid = _GRIDS.get(key)
    if grid is None:
        grid = _GRIDS[key] = PixelGrid(wcs, shape)
        while len(_GRIDS) > 32:
            _GRIDS.popitem(last=False)
    else:
        _GRIDS.move_to_end(key)
    return grid


def separation(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance in deg (Vincenty's formula, :func:`angular_separation`).

    >>> round(float(separation(0, 0, 1, 0)), 12)
    1.0
    """
    l1, b1, l2, b2 = (np.radians(np.asarray(v, float)) for v in (lon1, lat1, lon2, lat2))
    return np.degrees(angular_separation(l1, b1, l2, b2))


def offset_xy(lon, lat, lon0, lat0) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (tangent-plane) offsets (deg) of positions from (lon0, lat0); x grows
    towards increasing longitude, y towards the north."""
    l, b, l0, b0 = (np.radians(np.asarray(v, float)) for v in (lon, lat, lon0, lat0))
    cosc = np.sin(b0) * np.sin(b) + np.cos(b0) * np.cos(b) * np.cos(l - l0)
    x = np.cos(b) * np.sin(l - l0) / cosc
    y = (np.cos(b0) * np.sin(b) - np.sin(b0) * np.cos(b) * np.cos(l - l0)) / cosc
    return np.degrees(x), np.degrees(y)
