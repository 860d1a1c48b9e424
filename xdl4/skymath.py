"""Spherical geometry on plain numpy arrays (degrees in, degrees out)."""

from __future__ import annotations

import numpy as np


def separation(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance (deg), Vincenty's formula (stable at all separations).

    >>> round(float(separation(0, 0, 1, 0)), 12)
    1.0
    """
    l1, b1, l2, b2 = (np.radians(np.asarray(v, float)) for v in (lon1, lat1, lon2, lat2))
    dl = l2 - l1
    sb1, cb1, sb2, cb2 = np.sin(b1), np.cos(b1), np.sin(b2), np.cos(b2)
    num = np.hypot(cb2 * np.sin(dl), cb1 * sb2 - sb1 * cb2 * np.cos(dl))
    den = sb1 * sb2 + cb1 * cb2 * np.cos(dl)
    return np.degrees(np.arctan2(num, den))


def offset_xy(lon, lat, lon0, lat0) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (tangent-plane) offsets (deg) of positions from (lon0, lat0); x grows
    towards increasing longitude, y towards the north."""
    l, b, l0, b0 = (np.radians(np.asarray(v, float)) for v in (lon, lat, lon0, lat0))
    cosc = np.sin(b0) * np.sin(b) + np.cos(b0) * np.cos(b) * np.cos(l - l0)
    x = np.cos(b) * np.sin(l - l0) / cosc
    y = (np.cos(b0) * np.sin(b) - np.sin(b0) * np.cos(b) * np.cos(l - l0)) / cosc
    return np.degrees(x), np.degrees(y)
