"""Good-time intervals: a dataset's GTIs as absolute times, livetime and ontime.

GTIs are stored as ``gti_start`` / ``gti_stop`` (seconds, or their ``units``) since MJD
``mjdrefi + mjdreff`` in the scale ``timesys`` (attrs), along a ``gti`` dimension (and
``obs`` for many runs); NaN rows are padding.

>>> import xdl4
>>> ds = xdl4.examples.spectrum_dataset()
>>> livetime(ds), ontime(ds)
(3600.0, 3600.0)
"""

from __future__ import annotations

from typing import NamedTuple

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.time import TIME_DELTA_SCALES, Time

from xdl4.axes import reference_time
from xdl4.errors import ArgumentError
from xdl4.schema import parse_unit


def _jd(t: Time) -> tuple[np.ndarray, np.ndarray]:
    """Two-part JD of `t` in the scale astropy subtracts times in (t's own; TAI for UTC)."""
    w = t if t.scale in TIME_DELTA_SCALES else t.tai  # astropy caches the conversion
    return w.jd1, w.jd2


def _duration(t_min: Time, t_max: Time) -> np.ndarray:
    """t_max - t_min in days, as astropy's Time - Time (cheap: no TimeDelta)."""
    if t_max.scale != t_min.scale:
        t_max = getattr(t_max, t_min.scale)
    (a1, a2), (b1, b2) = _jd(t_min), _jd(t_max)
    return (b1 - a1) + (b2 - a2)


def as_time(t, scale: str = "utc") -> Time:
    """A time as users give it: an astropy Time (as is), an ISO / FITS string (UTC, as
    astropy reads it) or MJD numbers in ``scale``.

    >>> float(as_time("2021-01-01").mjd), as_time(59215.0, "tt").scale
    (59215.0, 'tt')
    """
    if isinstance(t, Time):
        return t
    try:
        if isinstance(t, str) or np.asarray(t).dtype.kind in "UO":  # strings, Times in a list
            return Time(t)
        return Time(np.asarray(t, dtype=float), format="mjd", scale=scale)
    except (ValueError, TypeError):
        raise ArgumentError(f"not a time: {t!r} (give an astropy Time, an ISO / FITS string "
                            "or MJD numbers)") from None


class GoodTimes(NamedTuple):
    """A dataset's GTIs: start/stop Times of the valid intervals and, for datasets with an
    ``obs`` dimension, the run index of each interval (``run`` None: a single run)."""

    start: Time
    stop: Time
    run: np.ndarray | None
    n_runs: int


def _time_unit(attrs: dict) -> u.UnitBase:
    """The unit of GTI times: the column's, else (no column unit) TIMEUNIT, as gammapy."""
    unit = attrs.get("units") or "s"
    if attrs.get("fits_tunit") == "" and attrs.get("timeunit"):
        unit = attrs["timeunit"]
    return parse_unit(unit, "gti")


def good_times(ds: xr.Dataset) -> GoodTimes | None:
    """The GTIs of a dataset as gammapy builds them (MJDREFI + MJDREFF in TIMESYS, plus the
    seconds of ``gti_start``/``gti_stop``); None without GTI. NaN padding is dropped.

    >>> import xdl4
    >>> gti = good_times(xdl4.examples.spectrum_dataset())
    >>> gti.start.scale, (gti.stop - gti.start).to_value("h")
    ('utc', array([1.]))
    """
    if "gti_start" not in ds or "gti_stop" not in ds:
        return None
    start, stop = ds["gti_start"], ds["gti_stop"]
    runs = "obs" in start.dims
    if runs:
        start, stop = start.transpose("obs", ...), stop.transpose("obs", ...)
    unit = _time_unit(start.attrs)
    ref = reference_time(start.attrs, default_mjdrefi=51544)  # gammapy's GTI default
    a, b = np.asarray(start.values, dtype=float), np.asarray(stop.values, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    run = np.nonzero(ok)[0] if runs else None
    return GoodTimes(ref + u.Quantity(a[ok], unit), ref + u.Quantity(b[ok], unit), run,
                     a.shape[0] if runs else 1)


def time_bin_intervals(t_min: Time, t_max: Time, gti: GoodTimes | None) -> GoodTimes:
    """The intervals a light curve's temporal model is averaged over in each time bin, as
    gammapy 2.1 does: the bins themselves without GTIs, else the GTIs overlapping each bin
    (start <= bin stop and stop > bin start) clipped to it. ``run`` is the bin index.

    >>> t = Time([55197.0, 55198.0], format="mjd", scale="tt")
    >>> g = GoodTimes(Time([55196.5], format="mjd", scale="tt"), t[1:] + 0.5 * u.d, None, 1)
    >>> iv = time_bin_intervals(t, t + 1 * u.d, g)
    >>> iv.start.mjd.tolist(), iv.stop.mjd.tolist(), iv.run.tolist()
    ([55197.0, 55198.0], [55198.0, 55198.5], [0, 1])
    """
    n = len(t_min)
    if gti is None:
        return GoodTimes(t_min, t_max, np.arange(n), n)
    overlap = (_duration(t_max[:, None], gti.start[None, :]) <= 0) & \
        (_duration(t_min[:, None], gti.stop[None, :]) > 0)
    i, j = np.nonzero(overlap)
    start, stop = gti.start[j], gti.stop[j]
    lo, hi = getattr(t_min[i], start.scale), getattr(t_max[i], stop.scale)
    early, late = _duration(lo, start) < 0, _duration(hi, stop) > 0
    start[early], stop[late] = lo[early], hi[late]
    return GoodTimes(start, stop, i, n)


def livetime(ds: xr.Dataset) -> float:
    """Livetime in s; without a ``livetime`` variable a non-empty GTI sum, else NaN."""
    if "livetime" not in ds:
        total = ontime(ds)
        return total if total > 0 else np.nan
    unit = parse_unit(ds["livetime"].attrs.get("units", "s"), "livetime")
    return float(ds["livetime"].sum()) * unit.to("s")


def ontime(ds: xr.Dataset) -> float:
    """Sum of the good-time intervals in s (NaN without a GTI table)."""
    if "gti_start" not in ds:
        return np.nan
    unit = _time_unit(ds["gti_start"].attrs)
    return float((ds["gti_stop"] - ds["gti_start"]).sum()) * unit.to("s")
