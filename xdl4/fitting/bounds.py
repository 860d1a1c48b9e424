"""Natural default bounds of a fit: a source position stays within the data it is fitted to.

A free ``lon_0`` / ``lat_0`` without bounds set by the user (``lat_0``'s own -90..90 does
not count) is bounded by the footprint of the sky grids of the map datasets its model
applies to, in the model's frame: MIGRAD then cannot walk a source off the data, where
the likelihood is flat and the covariance singular. Sources fitted to spectra only (no
sky grid) get none.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["position_limits"]


def _footprint(grid, frame: str, lon_ref: float) -> tuple[float, float, float, float] | None:
    """(lon_min, lon_max, lat_min, lat_max) deg of a grid's outer pixel edges in ``frame``,
    longitudes unwrapped around ``lon_ref``; None for a grid around a pole or all-sky."""
    from xdl4.skymath import convert_lonlat

    ny, nx = grid.shape
    xs, ys = np.linspace(-0.5, nx - 0.5, 4 * nx + 1), np.linspace(-0.5, ny - 0.5, 4 * ny + 1)
    x = np.concatenate([xs, xs, np.full(ys.size, -0.5), np.full(ys.size, nx - 0.5)])
    y = np.concatenate([np.full(xs.size, -0.5), np.full(xs.size, ny - 0.5), ys, ys])
    lon, lat = grid.pixel_to_world(x, y)
    lon, lat = convert_lonlat(np.asarray(lon, float), np.asarray(lat, float), grid.frame, frame)
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return None
    lon = lon_ref + (lon[ok] - lon_ref + 180.0) % 360.0 - 180.0
    lat = lat[ok]
    if lon.max() - lon.min() > 300.0 or np.abs(lat).max() > 89.0:
        return None
    return float(lon.min()), float(lon.max()), float(lat.min()), float(lat.max())


def position_limits(lik, free) -> dict[int, tuple[float, float]]:
    """Default (min, max) in parameter units for the free position parameters of ``free``
    (a :class:`~xdl4.fitting.parameters._Free`) that the user left unbounded, keyed by
    their index in ``free``."""
    import astropy.units as u

    index = {id(p): i for i, p in enumerate(free.params)}
    out: dict[int, tuple[float, float]] = {}
    for model in lik.models:
        spatial = getattr(model, "spatial", None)
        if spatial is None or not hasattr(spatial, "lon_0") or spatial.position is None:
            continue
        pars = {"lon_0": spatial.lon_0, "lat_0": spatial.lat_0}
        todo = {k: p for k, p in pars.items() if id(p) in index}
        if not todo:
            continue
        boxes = []
        for term in lik.terms:
            grid = getattr(term, "grid", None)
            if grid is None or not any(m is model for m in term.bound_models()):
                continue
            box = _footprint(grid, spatial.frame, spatial.position[0])
            if box is None:
                boxes = []
                break
            boxes.append(box)
        if not boxes:
            continue
        lon_lo, lon_hi = min(b[0] for b in boxes), max(b[1] for b in boxes)
        lat_lo, lat_hi = min(b[2] for b in boxes), max(b[3] for b in boxes)
        for name, (lo, hi) in (("lon_0", (lon_lo, lon_hi)), ("lat_0", (lat_lo, lat_hi))):
            p = todo.get(name)
            if p is None:
                continue
            natural = (-90.0, 90.0) if name == "lat_0" else (-math.inf, math.inf)
            user = p.bounds()
            factor = (1 * u.deg).to_value(p.unit)
            lo_v, hi_v = lo * factor, hi * factor
            if not (lo_v <= p.value <= hi_v):
                continue  # a start outside the data: leave it to the user's bounds
            new_lo = lo_v if not math.isfinite(user[0]) or user[0] == natural[0] else user[0]
            new_hi = hi_v if not math.isfinite(user[1]) or user[1] == natural[1] else user[1]
            if (new_lo, new_hi) != tuple(user):
                out[index[id(p)]] = (new_lo, new_hi)
    return out
