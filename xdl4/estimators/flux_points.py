"""Flux points: the source's norm fitted in energy bins, all bins at once.

In each energy bin the source model is scaled by a norm (gammapy's ``ScaleSpectralModel``
of the reference model), every other parameter frozen (``reoptimize=False``, the
default). The statistic of a bin group then depends on its own norm only, so the norms,
their errors, upper limits, TS and likelihood scans of all bins (and of all time bins of
a light curve, and of independent runs) come from one :class:`NormProfile` and a few
vectorised solver steps, never a fit per bin. ``reoptimize=True`` re-fits the other free
parameters at every norm, as gammapy does (one fit per bin and profile point).

>>> import xdl4
>>> from xdl4.models import Models, SkyModel, PowerLaw
>>> ds = xdl4.examples.spectrum_dataset(onoff=True)
>>> models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
>>> fp = xdl4.flux_points(ds, models, "src", energy_edges=[1, 3, 10])
>>> fp.dl4.kind, fp.attrs["sed_type"], fp.sizes["energy"]
('flux_points', 'likelihood', 2)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import xarray as xr

from xdl4.errors import ArgumentError

from ._core import cash, run_blocks, snap_edges, source_model, wstat, wstat_background
from .profile import NormProfile, best_fit, crossing

#: gammapy's optional steps of its flux estimators
OPTIONAL = ("errn-errp", "ul", "scan")
#: gammapy's default norm scan of flux points: 11 values log-spaced over [0.2, 5]
DEFAULT_NORM_SCAN = np.geomspace(0.2, 5.0, 11)
DNDE, FLUX, EFLUX = "cm-2 s-1 TeV-1", "cm-2 s-1", "erg cm-2 s-1"


def parse_selection(selection, available=OPTIONAL) -> set:
    """gammapy's ``selection_optional``: None (nothing), "all", or a list of names."""
    if selection is None:
        return set()
    if isinstance(selection, str):
        selection = [selection]
    if "all" in selection:
        return set(available)
    unknown = set(selection) - set(available)
    if unknown:
        raise ArgumentError(f"unknown selection_optional {sorted(unknown)}; "
                         f"available: {list(available)} or 'all'")
    return set(selection)


@dataclass
class Groups:
    """Bins of all runs tagged with their group ``row * n_energy + energy_group``."""

    profile: NormProfile
    n_rows: int
    n_energy: int
    n_datasets: int
    contributes: np.ndarray  # (groups,) any fit bin in the group
    present: np.ndarray  # (groups, datasets) dataset takes part in the group's row
    counts: np.ndarray  # (groups, datasets)
    npred_const: np.ndarray  # (groups, datasets) npred of bins without source
    active_cash: dict
    active_wstat: dict
    s_sum: np.ndarray  # (groups, datasets) source counts at norm 1

    @property
    def n_groups(self) -> int:
        return self.n_rows * self.n_energy

    def npred(self, x: np.ndarray) -> np.ndarray:
        """Total predicted counts per (group, dataset) with norms ``x`` per group."""
        out = self.npred_const.copy()
        size = self.n_groups * self.n_datasets
        p = self.active_cash
        if p["g"].size:
            mu = np.maximum(p["b"] + x[p["g"]] * p["s"], 0.0)
            out += np.bincount(p["g"] * self.n_datasets + p["d"], mu, size).reshape(out.shape)
        p = self.active_wstat
        if p["g"].size:
            sig = p["o"] + x[p["g"]] * p["s"]
            mu = sig + wstat_background(p["n_on"], p["n_off"], p["alpha"], sig)
            out += np.bincount(p["g"] * self.n_datasets + p["d"], mu, size).reshape(out.shape)
        return out


def build_groups(blocks, e_group: np.ndarray, n_energy: int, run_rows: list[int],
                 n_rows: int, run_dataset: list[int], n_datasets: int) -> Groups:
    """Flatten the fit bins of all runs into one :class:`NormProfile`.

    ``e_group[k]``: energy group of reco bin k (-1: none); ``run_rows[r]``: row of run r
    (-1: unused); ``run_dataset[r]``: its index in the per-dataset columns.
    """
    n_groups = n_rows * n_energy
    size = n_groups * n_datasets
    const = np.zeros(n_groups)
    counts = np.zeros(size)
    npred_const = np.zeros(size)
    s_sum = np.zeros(size)
    n_valid = np.zeros(n_groups)
    present = np.zeros((n_groups, n_datasets), bool)
    cash_parts = {k: [] for k in ("n", "b", "s", "g", "d")}
    wstat_parts = {k: [] for k in ("n_on", "n_off", "alpha", "o", "s", "g", "d")}
    r = 0
    for blk in blocks:
        for i in range(blk.counts.shape[0]):
            row, d = run_rows[r], run_dataset[r]
            r += 1
            if row < 0:
                continue
            present[row * n_energy:(row + 1) * n_energy, d] = True
            eg = np.broadcast_to(e_group[:, None], blk.counts.shape[1:])
            valid = blk.mask[i] & (eg >= 0)
            g = (row * n_energy + eg)[valid]
            cd = g * n_datasets + d
            n = blk.counts[i][valid]
            s = blk.s[i][valid]
            counts += np.bincount(cd, n, size)
            s_sum += np.bincount(cd, s, size)
            n_valid += np.bincount(g, minlength=n_groups)
            act = s != 0
            if blk.stat == "cash":
                b = blk.b[i][valid]
                const += np.bincount(g[~act], cash(n[~act], np.maximum(b[~act], 0.0)),
                                     n_groups)
                npred_const += np.bincount(cd[~act], np.maximum(b[~act], 0.0), size)
                for k, v in (("n", n), ("b", b), ("s", s), ("g", g), ("d", np.full(g.size, d))):
                    cash_parts[k].append(v[act])
            else:
                n_off, alpha, o = (x[i][valid] for x in (blk.n_off, blk.alpha, blk.o))
                na = ~act
                const += np.bincount(g[na], wstat(n[na], n_off[na], alpha[na], o[na]), n_groups)
                mu_on = o[na] + wstat_background(n[na], n_off[na], alpha[na], o[na])
                npred_const += np.bincount(cd[na], mu_on, size)
                for k, v in (("n_on", n), ("n_off", n_off), ("alpha", alpha), ("o", o),
                             ("s", s), ("g", g), ("d", np.full(g.size, d))):
                    wstat_parts[k].append(v[act])

    def cat(parts):
        out = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
        out["g"] = out["g"].astype(int)
        out["d"] = out["d"].astype(int)
        return out

    cp, wp = cat(cash_parts), cat(wstat_parts)
    profile = NormProfile(n_groups, {k: v for k, v in cp.items() if k != "d"},
                          {k: v for k, v in wp.items() if k != "d"}, const)
    shape = (n_groups, n_datasets)
    return Groups(profile, n_rows, n_energy, n_datasets, n_valid > 0, present,
                  counts.reshape(shape), npred_const.reshape(shape), cp, wp,
                  s_sum.reshape(shape))


def solve(groups: Groups, selection: set, n_sigma: float, n_sigma_ul: float,
          norm_scan: np.ndarray) -> dict:
    """All flux-point quantities of all groups (gammapy's definitions), (groups, ...)."""
    prof = groups.profile
    contrib = groups.contributes
    x, success, niter = best_fit(prof)
    x = np.where(contrib, x, np.nan)
    success &= contrib
    stat = np.where(contrib, prof.stat(np.where(np.isfinite(x), x, 0.0)), 0.0)
    stat = np.where(contrib & ~np.isfinite(x), np.nan, stat)
    stat_null = np.where(contrib, prof.stat(np.zeros(prof.n_groups)), 0.0)
    ts = np.where(contrib, stat_null - stat, np.nan)
    _, curv = prof.derivatives(np.where(np.isfinite(x), x, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(np.isfinite(x) & (curv > 0), np.sqrt(2.0 / curv), np.nan)
    out = {"norm": x, "norm_err": err * n_sigma, "ts": ts, "stat": stat,
           "stat_null": stat_null, "success": success, "niter": niter}
    if "errn-errp" in selection:
        up = crossing(prof, x, stat, n_sigma ** 2, +1, err)
        down = crossing(prof, x, stat, n_sigma ** 2, -1, err)
        out["norm_errn"] = x - down
        out["norm_errp"] = up - x
    if "ul" in selection:
        out["norm_ul"] = crossing(prof, x, stat, n_sigma_ul ** 2, +1, err)
    if "scan" in selection:
        scan = np.broadcast_to(norm_scan, (prof.n_groups, norm_scan.size))
        out["stat_scan"] = np.where(contrib[:, None], prof.stat(scan), np.nan)
    xs = np.where(np.isfinite(x), x, 0.0)
    npred = groups.npred(xs)
    excess = groups.s_sum * xs[:, None]
    nan_rows = ~contrib[:, None] | ~groups.present
    out["npred"] = np.where(nan_rows, np.nan, np.where(np.isfinite(x)[:, None], npred, np.nan))
    # gammapy sums the source's counts over the (empty) mask of a group without fit bins: 0
    out["npred_excess"] = np.where(~groups.present, np.nan,
                                   np.where(np.isfinite(x)[:, None], excess, 0.0))
    out["counts"] = np.where(groups.present, groups.counts, np.nan)
    return out


def sqrt_ts(ts: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """gammapy's signed sqrt(TS): negative unless the norm is positive."""
    with np.errstate(invalid="ignore"):
        root = np.sqrt(np.clip(ts, 0, None))
    return np.where(norm > 0, root, -root)


def reference_fluxes(spectral, e_lo: np.ndarray, e_hi: np.ndarray) -> dict:
    """ref_dnde at the log centre, ref_flux and ref_eflux over each bin (gammapy's
    ``reference_fluxes``; internal units cm-2 s-1 TeV-1, TeV)."""
    from astropy import units as u

    e_ref = np.sqrt(e_lo * e_hi)
    tev_to_erg = (1 * u.TeV).to_value("erg")
    return {"e_ref": e_ref, "ref_dnde": spectral.evaluate_numpy(e_ref),
            "ref_flux": spectral._integral_exact(e_lo, e_hi),
            "ref_eflux": spectral._energy_flux_exact(e_lo, e_hi) * tev_to_erg}


def energy_groups(e_reco: np.ndarray, energy_edges) -> tuple[np.ndarray, np.ndarray,
                                                             np.ndarray, np.ndarray]:
    """Reco bins of each requested energy bin, snapped to the dataset edges as gammapy
    does: (group of each reco bin, e_min, e_max, empty) per requested bin."""
    from xdl4.axes import as_quantity

    req = as_quantity(energy_edges, "TeV").value
    if req.ndim != 1 or req.size < 2 or np.any(np.diff(req) <= 0):
        raise ArgumentError(f"energy_edges must be increasing, at least two values: {req}")
    idx = snap_edges(e_reco, req)
    group = np.full(e_reco.size - 1, -1)
    e_min, e_max = req[:-1].copy(), req[1:].copy()
    empty = idx[1:] <= idx[:-1]
    for j, (a, b) in enumerate(zip(idx[:-1], idx[1:], strict=True)):
        if b > a:
            group[a:b] = j
            e_min[j], e_max[j] = e_reco[a], e_reco[b]
    return group, e_min, e_max, empty


def _check_aligned(blocks) -> np.ndarray:
    e = blocks[0].e_reco
    for blk in blocks[1:]:
        if blk.e_reco.shape != e.shape or not np.allclose(blk.e_reco, e, rtol=1e-6):
            raise ArgumentError("all datasets must have the same reco energy axis (gammapy: "
                             "'All datasets must have aligned energy axes')")
    return e


def flux_points(data, models, source=0, energy_edges=None, *, n_sigma: float = 1.0,
                n_sigma_ul: float = 2.0, selection_optional="all", norm_scan=None,
                reoptimize: bool = False, sqrt_ts_threshold_ul: float = 2.0,
                independent: bool = False, irf_interpolation: str | None = None,
                **fit_options) -> xr.Dataset:
    """Flux points of ``source`` in ``energy_edges`` (gammapy's ``FluxPointsEstimator``).

    ``data``: a dataset, a list, a DataTree, or runs along ``obs`` (fitted jointly; with
    ``independent=True`` each run gets its own flux points along ``obs``). ``models``: all
    models of the data (the others stay frozen at their values unless ``reoptimize``).
    ``energy_edges``: requested bin edges (Quantity, strings or TeV), snapped to the
    nearest dataset edges as gammapy does; default gammapy's [1, 10] TeV.
    ``selection_optional``: "all" (default here: it costs little), None, or a subset of
    ``errn-errp``, ``ul``, ``scan``. ``norm_scan``: the norms of ``stat_scan`` (default
    gammapy's 11 values log-spaced over [0.2, 5]). ``irf_interpolation``: as in
    :func:`xdl4.fit` (default bilinear; ``"nearest"`` for gammapy's numbers).

    Returns a ``flux_points`` dataset of sed_type ``likelihood`` with gammapy's columns:
    ``ref_dnde``, ``ref_flux``, ``ref_eflux``, ``norm``, ``norm_err`` (x ``n_sigma``),
    ``norm_errn``, ``norm_errp`` (Delta stat = n_sigma^2), ``norm_ul`` (n_sigma_ul^2),
    ``ts`` = stat(norm=0) - stat(best), signed ``sqrt_ts``, ``npred``, ``npred_excess``,
    ``counts`` (per dataset), ``stat``, ``stat_null``, ``stat_scan``/``norm_scan``,
    ``is_ul`` (sqrt_ts < ``sqrt_ts_threshold_ul``), ``success``; the reference spectral
    model as JSON in ``attrs["reference_model"]``. ``ds.dl4.to_gadf(path)`` writes
    gammapy's FluxPoints FITS.

    >>> import xdl4
    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
    >>> fp = xdl4.flux_points(xdl4.examples.spectrum_dataset(onoff=True), models, "src")
    >>> fp["norm"].dims, round(float(fp["norm"][0]), 2), bool(fp["is_ul"][0])
    (('energy',), 1.12, False)
    """
    selection = parse_selection(selection_optional)
    norm_scan = DEFAULT_NORM_SCAN if norm_scan is None else np.asarray(norm_scan, float)
    energy_edges = [1.0, 10.0] if energy_edges is None else energy_edges
    src = source_model(models, source)
    blocks = run_blocks(data, models, src.name, irf_interpolation)
    e_reco = _check_aligned(blocks)
    e_group, e_min, e_max, _ = energy_groups(e_reco, energy_edges)
    n_runs = sum(b.counts.shape[0] for b in blocks)
    labels = [lab for b in blocks for lab in b.labels]
    lead = None
    if reoptimize:
        if independent:
            raise ArgumentError("independent=True is not available with reoptimize=True")
        from ._core import datasets_in
        from .reoptimize import solve_reoptimized

        res = solve_reoptimized([(d, 0) for d in datasets_in(data)], models, src, e_group,
                                e_min.size, [0] * n_runs, 1, labels, selection, n_sigma,
                                n_sigma_ul, norm_scan, irf_interpolation=irf_interpolation,
                                **fit_options)
        res = {k: v.reshape((1, e_min.size) + v.shape[1:])[0] for k, v in res.items()}
    else:
        if independent:
            rows, dsets, n_rows, n_d = list(range(n_runs)), [0] * n_runs, n_runs, 1
            lead = ("obs", labels)
            labels = [str(blocks[0].datasets[0].attrs.get("name", ""))]
        else:
            rows, dsets, n_rows, n_d = [0] * n_runs, list(range(n_runs)), 1, n_runs
        groups = build_groups(blocks, e_group, e_min.size, rows, n_rows, dsets, n_d)
        res = solve(groups, selection, n_sigma, n_sigma_ul, norm_scan)
        res = {k: v.reshape((n_rows, e_min.size) + v.shape[1:]) for k, v in res.items()}
        if not independent:
            res = {k: v[0] for k, v in res.items()}
    gti = None if independent else dataset_gtis([d for b in blocks for d in b.datasets])
    return to_dataset(res, src, e_min, e_max, labels, selection, n_sigma, n_sigma_ul,
                      sqrt_ts_threshold_ul, norm_scan, lead=lead,
                      name=f"{src.name}_flux_points", gti=gti)


def gti_variables(starts, stops) -> dict:
    """GTI variables of a flux-point dataset as gammapy writes them: seconds since MJD
    51544 in TT."""
    from astropy.time import Time

    if not len(starts):
        return {}
    ref = Time(51544, 0.0, format="mjd", scale="tt")
    t0 = np.array([(t - ref).sec for t in starts], float)
    t1 = np.array([(t - ref).sec for t in stops], float)
    order = np.argsort(t0, kind="stable")
    attrs = {"units": "s", "mjdrefi": 51544, "mjdreff": 0.0, "timesys": "tt"}
    return {"gti_start": xr.Variable("gti", t0[order], attrs),
            "gti_stop": xr.Variable("gti", t1[order], dict(attrs))}


def dataset_gtis(datasets) -> tuple[list, list]:
    """All GTI rows (start, stop Times) of the runs (those with GTIs)."""
    from ._core import gti_range

    starts, stops = [], []
    for d in datasets:
        r = gti_range(d) if "gti_start" in d and d["gti_start"].ndim == 1 else None
        if r is not None:
            starts += list(r[0])
            stops += list(r[1])
    return starts, stops


def to_dataset(res: dict, src, e_min, e_max, labels, selection, n_sigma, n_sigma_ul,
               threshold, norm_scan, lead=None, time=None, name="flux_points", gti=None
               ) -> xr.Dataset:
    """The ``flux_points`` dataset (gammapy's column order) of solved quantities shaped
    (lead..., energy, ...); ``gti``: (start, stop) Times."""
    from scipy.stats import norm as normal

    from xdl4.axes import axis_coords

    coords = axis_coords(np.append(e_min, e_max[-1]), "energy", "TeV")
    coords["energy_bounds"] = xr.Variable(("energy", "bound"), np.stack([e_min, e_max], 1),
                                          {"units": "TeV"})
    dims: tuple = ("energy",)
    if lead is not None:
        dims = (lead[0],) + dims
        coords[lead[0]] = xr.Variable(lead[0], np.asarray(lead[1]))
    if time is not None:
        dims = ("time",) + dims
        coords.update(time)
    ref = reference_fluxes(src.spectral, np.asarray(e_min, float), np.asarray(e_max, float))
    shape = np.shape(res["norm"])
    data = {}

    def put(name, values, unit=None, extra=()):
        attrs = {} if unit is None else {"units": unit}
        data[name] = xr.Variable(dims + extra, np.asarray(values), attrs)

    for key, unit in (("ref_dnde", DNDE), ("ref_flux", FLUX), ("ref_eflux", EFLUX)):
        put(key, np.broadcast_to(ref[key], shape), unit)
    put("norm", res["norm"], "")
    put("norm_err", res["norm_err"], "")
    if "errn-errp" in selection:
        put("norm_errn", res["norm_errn"], "")
        put("norm_errp", res["norm_errp"], "")
    if "ul" in selection:
        put("norm_ul", res["norm_ul"], "")
    put("ts", res["ts"], "")
    sq = sqrt_ts(res["ts"], res["norm"])
    put("sqrt_ts", sq, "")
    put("npred", res["npred"], "", ("dataset",))
    put("npred_excess", res["npred_excess"], "", ("dataset",))
    put("stat", res["stat"], "")
    put("stat_null", res["stat_null"], "")
    if "scan" in selection:
        put("stat_scan", res["stat_scan"], "", ("scan",))
    if "ul" in selection:
        with np.errstate(invalid="ignore"):
            put("is_ul", sq < threshold)
    put("counts", res["counts"], "", ("dataset",))
    put("success", res["success"].astype(bool))
    if "scan" in selection:
        put("norm_scan", np.broadcast_to(norm_scan, shape + (norm_scan.size,)), "", ("scan",))
    coords["dataset"] = xr.Variable("dataset", np.asarray(labels, dtype=str))
    if gti is not None and len(gti[0]):
        data.update(gti_variables(*gti))
        coords["gti"] = xr.Variable("gti", np.arange(len(gti[0])))
    attrs = {"dl4_kind": "flux_points", "name": name, "sed_type": "likelihood",
             "ul_conf": float(np.round(1 - 2 * normal.sf(n_sigma_ul), 7)),
             "n_sigma": float(n_sigma), "n_sigma_ul": float(n_sigma_ul),
             "sqrt_ts_threshold_ul": float(threshold), "source": src.name,
             "reference_model": json.dumps(src.spectral.to_dict(full_output=True),
                                           default=float)}
    return xr.Dataset(data, coords=coords, attrs=attrs)
