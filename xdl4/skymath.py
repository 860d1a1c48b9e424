"""Spherical geometry on plain numpy arrays (degrees in, degrees out)."""

from __future__ import annotations

import numpy as np


def separation(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance in deg (Vincenty's formula, shared with the models: see
    :func:`xdl4.models.geometry.angular_separation`).

    >>> round(float(separation(0, 0, 1, 0)), 12)
    1.0
    """
    from xdl4.models.geometry import angular_separation

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
