"""Light curves: flux points per time interval, all intervals and energy bins at once.

As gammapy's ``LightCurveEstimator``: the intervals are the runs' GTIs by default (one per
GTI row, sorted; overlapping intervals are an error); a run takes part in an interval
when its whole GTI range lies in it (within ``atol``); intervals without runs are
dropped. Each (interval, energy bin) is a group of the shared norm profile, so the whole
light curve is one vectorised solve.

>>> import numpy as np, xarray as xr, xdl4
>>> from xdl4.models import Models, SkyModel, PowerLaw
>>> ds = xdl4.examples.spectrum_dataset(onoff=True)
>>> s = {"units": "s", "mjdrefi": 51544, "timesys": "tt"}
>>> runs = [ds.assign_attrs(name=f"run{i}").assign(gti_start=("gti", [3600.0 * i], s),
...         gti_stop=("gti", [3600.0 * i + 1800], s)) for i in range(3)]
>>> models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
>>> lc = xdl4.light_curve(runs, models, "src", energy_edges=[1, 10])
>>> dict(lc["norm"].sizes)
{'time': 3, 'energy': 1}
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdl4.errors import ArgumentError, DL4ValidationError

from ._core import gti_range, run_blocks, source_model
from .flux_points import (
    DEFAULT_NORM_SCAN,
    _check_aligned,
    build_groups,
    energy_groups,
    parse_selection,
    solve,
    to_dataset,
)


def _intervals(starts, stops) -> list[tuple]:
    """Sorted, checked time intervals (gammapy: ``GTI.union(overlap_ok=False,
    merge_equal=False)``: touching intervals stay apart, overlapping ones are an error)."""
    from astropy.time import Time

    from xdl4.gti import as_time

    t0 = Time([as_time(t) for t in starts])  # Times, ISO strings (UTC) or MJD (UTC)
    t1 = Time([as_time(t) for t in stops])
    order = np.argsort((t0 - t0[0]).sec, kind="stable")
    t0, t1 = t0[order], t1[order]
    for i in range(1, len(t0)):
        if (t0[i] - t1[i - 1]).sec < 0:
            raise ArgumentError(f"overlapping time intervals: {t0[i - 1].iso}-{t1[i - 1].iso} "
                             f"and {t0[i].iso}-{t1[i].iso}")
    return list(zip(t0, t1, strict=True))


def light_curve(runs, models, source=0, time_intervals=None, energy_edges=None, *,
                atol="1e-6 s", n_sigma: float = 1.0, n_sigma_ul: float = 2.0,
                selection_optional="all", norm_scan=None, sqrt_ts_threshold_ul: float = 2.0,
                reoptimize: bool = False, irf_interpolation: str | None = None,
                **fit_options) -> xr.Dataset:
    """Light curve of ``source``: flux points (see :func:`xdl4.flux_points`) per time
    interval, as a ``flux_points`` dataset with a ``time`` axis (gammapy's light-curve
    format once written with ``to_gadf``).

    ``runs``: datasets with GTIs (a list, a DataTree or runs along ``obs``).
    ``time_intervals``: ``[(t_min, t_max), ...]`` of astropy Times, ISO strings (UTC) or
    MJD (UTC) (default: the runs' GTIs). ``energy_edges``: default gammapy's [1, 10] TeV.
    Counts, npred and npred_excess are per run (``dataset`` dim), NaN for runs outside a
    time bin.

    >>> import xdl4
    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> runs = [xdl4.examples.spectrum_dataset(i, onoff=True, name=f"run{i}") for i in range(2)]
    >>> models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
    >>> lc = xdl4.light_curve(runs, models, "src", time_intervals=[(51544.0, 51544.5)])
    >>> dict(lc["norm"].sizes), lc["counts"].dims  # both runs in the one time bin
    ({'time': 1, 'energy': 1}, ('time', 'energy', 'dataset'))
    """
    from astropy import units as u

    from xdl4.axes import time_coords

    selection = parse_selection(selection_optional)
    norm_scan = DEFAULT_NORM_SCAN if norm_scan is None else np.asarray(norm_scan, float)
    energy_edges = [1.0, 10.0] if energy_edges is None else energy_edges
    atol = u.Quantity(atol)
    src = source_model(models, source)
    blocks = run_blocks(runs, models, src.name, irf_interpolation)
    datasets = [d for b in blocks for d in b.datasets]
    labels = [lab for b in blocks for lab in b.labels]
    ranges = [gti_range(d) for d in datasets]
    missing = [lab for lab, r in zip(labels, ranges, strict=True) if r is None]
    if missing:
        raise DL4ValidationError(f"light curves need the runs' GTIs; no GTI in {missing}")
    if time_intervals is None:
        starts = [t for r in ranges for t in r[0]]
        stops = [t for r in ranges for t in r[1]]
    else:
        starts = [t[0] for t in time_intervals]
        stops = [t[1] for t in time_intervals]
    intervals = _intervals(starts, stops)
    rows = []
    for r in ranges:
        t_start, t_stop = r[0][0], r[1][-1]
        row = -1
        for i, (t0, t1) in enumerate(intervals):
            if (t_start - t0) >= -atol and (t_stop - t1) <= atol:
                row = i
                break
        rows.append(row)
    used = sorted({r for r in rows if r >= 0})
    if not used:
        raise ArgumentError("no run lies in any time interval")
    renumber = {old: new for new, old in enumerate(used)}
    rows = [renumber.get(r, -1) for r in rows]
    intervals = [intervals[i] for i in used]
    # gammapy writes the bins as TT MJDs (and the GTIs of the bins, in TT)
    t_min = np.array([t0.tt.mjd for t0, _ in intervals], float)
    t_max = np.array([t1.tt.mjd for _, t1 in intervals], float)
    time = time_coords(t_min, t_max, "d", 0, 0.0, "tt")
    e_reco = _check_aligned(blocks)
    e_group, e_min, e_max, _ = energy_groups(e_reco, energy_edges)
    n_runs = len(datasets)
    if reoptimize:
        from .reoptimize import solve_reoptimized

        # runs split off an obs dim are named after their obs label for the likelihood
        units = []
        r = 0
        for b in blocks:
            for d, lab in zip(b.datasets, b.labels, strict=True):
                units.append((d.assign_attrs(name=lab) if len(b.labels) > 1 else d, rows[r]))
                r += 1
        res = solve_reoptimized(units, models, src, e_group, e_min.size, rows, len(used),
                                labels, selection, n_sigma, n_sigma_ul, norm_scan,
                                irf_interpolation=irf_interpolation, **fit_options)
    else:
        groups = build_groups(blocks, e_group, e_min.size, rows, len(used),
                              list(range(n_runs)), n_runs)
        res = solve(groups, selection, n_sigma, n_sigma_ul, norm_scan)
    res = {k: v.reshape((len(used), e_min.size) + v.shape[1:]) for k, v in res.items()}
    return to_dataset(res, src, e_min, e_max, labels, selection, n_sigma, n_sigma_ul,
                      sqrt_ts_threshold_ul, norm_scan, time=time,
                      name=f"{src.name}_light_curve",
                      gti=([t0 for t0, _ in intervals], [t1 for _, t1 in intervals]))
