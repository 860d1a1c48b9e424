"""Flux points with the other free parameters re-fitted (gammapy's ``reoptimize=True``).

In each group (energy bin, and time bin of a light curve) the source's spectrum becomes
``norm x reference`` (all its other parameters frozen); every other free parameter of the
models is fitted together with the norm (MIGRAD + HESSE, :func:`xdl4.fit`), re-fitted at
norm = 0 for the TS, and re-fitted at every point of the error / upper-limit root search
and of the scan. This is one fit per group and per profile point, as in gammapy: the
statistic is no longer separable, so only the root searches stay vectorised over groups.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import xarray as xr

from ._core import FitError, Likelihood, fit, masks, run_labels
from .profile import crossing


def _masked(ds: xr.Dataset, in_group: np.ndarray) -> xr.Dataset:
    """``ds`` with its fit mask restricted to the reco bins ``in_group``."""
    sel = xr.DataArray(np.asarray(in_group, bool), dims="energy")
    return ds.assign(mask_fit=(masks.fit(ds) & sel).transpose(*ds["counts"].dims))


class _Group:
    """One group's likelihood with the source scaled by a free norm."""

    def __init__(self, datasets: list, models, source: str, fit_options: dict):
        from xdl4.models import Models, ScaleSpectralModel

        self.source = source
        models = copy.deepcopy(models if isinstance(models, Models) else Models(models))
        src = models[source]
        for p in src.parameters:
            p.frozen = True
        scale = ScaleSpectralModel(src.spectral, norm=1.0)
        object.__setattr__(src, "spectral", scale)
        self.models = models
        self.norm = scale.parameters[0]
        self.norm.frozen = False
        fit_options = dict(fit_options)  # shared by the groups: never changed in place
        self.lik = Likelihood(datasets, models, fit_options.pop("irf_interpolation", None))
        self.others = [p for lab, p in models.parameters.unique()
                       if not p.frozen and p is not self.norm]
        self.fit_options = {"covariance": False, **fit_options}

    def best(self) -> tuple[float, float, float, bool]:
        """(norm, error, stat, success) of the fit of the norm and the other parameters."""
        r = fit(self.lik, self.models, **{**self.fit_options, "covariance": True})
        self.best_values = [p.value for p in self.others]
        return self.norm.value, self.norm.error, r.total_stat, r.success

    def profile(self, value: float) -> float:
        """Statistic at norm = ``value`` with the other parameters re-fitted (warm start
        from the best fit)."""
        norm0 = self.norm.value
        try:
            self.norm.value = value
            if not self.others:
                return self.lik.stat()
            for p, v in zip(self.others, self.best_values, strict=True):
                p.value = v
            self.norm.frozen = True
            try:
                return fit(self.lik, self.models, **self.fit_options).total_stat
            except FitError:
                return math.nan
        finally:
            self.norm.frozen = False
            self.norm.value = norm0
            for p, v in zip(self.others, self.best_values, strict=True):
                p.value = v

    def sums(self) -> tuple[dict, dict, dict]:
        """Per run label: counts, npred and the source's npred (at the current norm) summed
        over the fit mask."""
        counts, npred, excess = {}, {}, {}
        for term in self.lik.terms:
            m = term.mask
            labels = run_labels(term.ds) if term.lead else [term.label]
            c = np.where(m, term.counts, 0.0)
            n = np.where(m, term.npred(None), 0.0)
            s = np.where(m, term.npred_signal(None, [self.source]), 0.0)
            if term.lead:
                for i, lab in enumerate(labels):
                    counts[lab], npred[lab], excess[lab] = c[i].sum(), n[i].sum(), s[i].sum()
            else:
                counts[labels[0]], npred[labels[0]], excess[labels[0]] = c.sum(), n.sum(), \
                    s.sum()
        return counts, npred, excess


class _Profiles:
    """``stat(x)`` of every group with the others re-fitted (for :func:`crossing`)."""

    def __init__(self, groups: list):
        self.groups = groups
        self.n_groups = len(groups)

    def stat(self, x) -> np.ndarray:
        x = np.asarray(x, float)
        out = np.full(x.shape, np.nan)
        for g, grp in enumerate(self.groups):
            if grp is None:
                continue
            for idx in np.ndindex(x.shape[1:]):
                v = x[(g,) + idx]
                if np.isfinite(v):
                    out[(g,) + idx] = grp.profile(float(v))
        return out


def solve_reoptimized(units: list, models, src, e_group: np.ndarray, n_energy: int,
                      run_rows: list[int], n_rows: int, labels: list[str], selection: set,
                      n_sigma: float, n_sigma_ul: float, norm_scan: np.ndarray,
                      **fit_options) -> dict:
    """The quantities of :func:`xdl4.estimators.flux_points.solve` with re-fitting, one
    entry per group ``row * n_energy + energy``. ``units``: (dataset, row) pairs given to
    the likelihood; ``labels`` / ``run_rows``: the runs of the per-dataset columns and
    their rows."""
    index = {lab: i for i, lab in enumerate(labels)}
    n_d = len(labels)
    n_groups = n_rows * n_energy
    groups: list = []
    for row in range(n_rows):
        mine = [d for d, r in units if r == row]
        for e in range(n_energy):
            sel = [_masked(d, e_group == e) for d in mine]
            if not sel or not any(bool(masks.fit(d).any()) for d in sel):
                groups.append(None)
                continue
            groups.append(_Group(sel, models, src.name, fit_options))
    x = np.full(n_groups, np.nan)
    err = np.full(n_groups, np.nan)
    stat = np.zeros(n_groups)
    stat_null = np.zeros(n_groups)
    success = np.zeros(n_groups, bool)
    rows = np.asarray(run_rows)
    present = rows[None, :] == (np.arange(n_groups) // n_energy)[:, None]
    counts = np.where(present, 0.0, np.nan)
    npred = np.full((n_groups, n_d), np.nan)
    excess = np.full((n_groups, n_d), np.nan)
    for g, grp in enumerate(groups):
        if grp is None:
            continue
        x[g], err[g], stat[g], success[g] = grp.best()
        stat_null[g] = grp.profile(0.0)
        npred[g] = np.where(present[g], 0.0, np.nan)
        excess[g] = np.where(present[g], 0.0, np.nan)
        c, n, s = grp.sums()
        for lab in c:
            d = index.get(lab)
            if d is not None:
                counts[g, d], npred[g, d], excess[g, d] = c[lab], n[lab], s[lab]
    contrib = np.array([grp is not None for grp in groups])
    out = {"norm": x, "norm_err": err * n_sigma, "stat": np.where(contrib, stat, 0.0),
           "stat_null": stat_null, "ts": np.where(contrib, stat_null - stat, np.nan),
           "success": success, "npred": npred, "npred_excess": excess, "counts": counts}
    prof = _Profiles(groups)
    if "errn-errp" in selection:
        up = crossing(prof, x, stat, n_sigma ** 2, +1, err, tol=1e-6)
        down = crossing(prof, x, stat, n_sigma ** 2, -1, err, tol=1e-6)
        out["norm_errn"], out["norm_errp"] = x - down, up - x
    if "ul" in selection:
        out["norm_ul"] = crossing(prof, x, stat, n_sigma_ul ** 2, +1, err, tol=1e-6)
    if "scan" in selection:
        scan = np.broadcast_to(norm_scan, (n_groups, norm_scan.size))
        out["stat_scan"] = prof.stat(np.where(contrib[:, None], scan, np.nan))
    return out
