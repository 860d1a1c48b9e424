"""The MIGRAD / HESSE / MINOS driver: :func:`fit`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from xdl4.errors import ModelError
from xdl4.fitting.likelihood import Likelihood, NaNStatistic, _likelihood
from xdl4.fitting.parameters import _Free
from xdl4.fitting.result import FitResult, parameter_columns
from xdl4.models.routing import ModelsLike


class _Objective:
    """-2 ln L as a function of Minuit's factors, safe for MIGRAD's excursions.

    A NaN or infinite statistic after the start (e.g. an index of 500 with a negative
    amplitude) returns a large finite value above every statistic seen, so that MIGRAD's
    line search steps back instead of stopping; the count is kept. A NaN at the start is
    an error of the data or model and raises (FitError naming the dataset). The best
    point seen is kept for restarts.
    """

    def __init__(self, lik: Likelihood, free: _Free) -> None:
        self.lik, self.free = lik, free
        self.bad_calls = 0
        self.best_stat, self.best_x = math.inf, None
        self.worst = -math.inf

    def __call__(self, factors) -> float:
        self.free.set(factors)
        try:
            if self.best_x is None:  # the start: numpy's warnings say what went wrong
                s = self.lik.stat()
            else:  # an excursion's overflows are expected (handled below): no warnings
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    s = self.lik.stat()
        except NaNStatistic:
            if self.best_x is None:
                raise
            s = math.nan
        if not math.isfinite(s):
            if self.best_x is None:
                return s  # an infinite start: Minuit reports it
            self.bad_calls += 1
            return self.penalty()
        if s < self.best_stat:
            self.best_stat, self.best_x = s, np.array(factors, dtype=float)
        self.worst = max(self.worst, s)
        return s

    def penalty(self) -> float:
        return self.worst + 1e4 + 1e-3 * abs(self.worst)


def _minuit(lik: Likelihood, free: _Free, strategy: int, tol: float, *,
            objective: _Objective | None = None, start=None, steps=None, limits=None,
            grad=None):
    from iminuit import Minuit

    fcn = _Objective(lik, free) if objective is None else objective
    m = Minuit(fcn, free.factors() if start is None else start, name=free.labels,
               grad=grad)
    m.errordef = Minuit.LEAST_SQUARES  # 1: the statistic is -2 ln L
    m.errors = free.steps() if steps is None else steps
    m.limits = free.limits() if limits is None else limits
    m.strategy = strategy
    m.tol = tol
    m.print_level = 0
    return m


def _cl(sigma: float) -> float:
    """Probability content of +-sigma of a normal distribution, 2 Phi(sigma) - 1."""
    return math.erf(sigma / math.sqrt(2.0))


def _reason(fmin) -> str:
    if fmin is None:
        return "not run"
    why = []
    if fmin.has_reached_call_limit:
        why.append("call limit reached")
    if fmin.is_above_max_edm:
        why.append(f"EDM {fmin.edm:.3g} above goal {fmin.edm_goal:.3g}")
    if fmin.hesse_failed:
        why.append("HESSE failed")
    if fmin.has_made_posdef_covar:
        why.append("covariance not positive definite (forced)")
    if not why and not fmin.is_valid:
        why.append("invalid minimum")
    if fmin.has_parameters_at_limit:
        why.append("parameter(s) at limit")
    return "; ".join(why)


def _covariance_table(models: ModelsLike, free: _Free, cov_free: np.ndarray) -> np.ndarray:
    """Covariance over all parameter entries (linked entries share rows; frozen: 0)."""
    entries = [p for _, p in models.parameters.items()]
    index = {id(p): i for i, p in enumerate(free.params)}
    idx = np.array([index.get(id(p), -1) for p in entries])
    out = np.zeros((len(entries), len(entries)))
    ok = idx >= 0
    out[np.ix_(ok, ok)] = cov_free[np.ix_(idx[ok], idx[ok])]
    return out


def _attempt(step: str, m) -> dict:
    fmin = m.fmin
    return {"step": step, "strategy": int(m.strategy.strategy), "valid": bool(m.valid),
            "accurate": bool(m.accurate), "nfev": int(fmin.nfcn) if fmin else 0,
            "edm": float(fmin.edm) if fmin else math.nan, "reason": _reason(fmin)}


def fit(data: Any, models: ModelsLike, *, optimize: bool = True, covariance: bool = True,
        minos: bool | Sequence[str] = False, sigma: float = 1.0, strategy: int = 0,
        tol: float = 0.1, ncall: int | None = None, irf_interpolation: str | None = None,
        retry: bool = True, grad: bool | None = None) -> FitResult:
    """Fit ``models`` to ``data`` (dataset, list, DataTree, or a dataset with ``obs``).

    MIGRAD (``strategy``, ``tol``: EDM goal 0.002 x tol), then HESSE (``covariance``),
    then MINOS at ``sigma`` for all free parameters (``minos=True``) or the given labels.
    MIGRAD's default strategy is 0 (gammapy: 1): the HESSE that follows runs at strategy
    >= 1 anyway; same minima and errors with ~20% fewer evaluations on the reference fits.
    Best-fit values, errors (and ``models.covariance``) are written into ``models``.

    Made to converge on real data by default (``retry=True``): a MIGRAD that ends
    invalid is run again from the best point seen at the next strategies (up to 2), and
    a HESSE that fails or has to force its matrix positive definite triggers one more
    MIGRAD + HESSE at strategy 2; a NaN statistic met on the way is stepped back from
    (``_Objective``); free source positions without bounds are kept within the data's
    sky grids (:mod:`xdl4.fitting.bounds`). ``result.attempts`` lists every MIGRAD /
    HESSE run (strategy, validity, evaluations, EDM), ``result.bad_calls`` the NaN /
    infinite statistics met. ``irf_interpolation``: ``"bilinear"`` (default: a
    likelihood smooth in the source position) or ``"nearest"`` (gammapy's numbers);
    see :class:`~xdl4.fitting.Likelihood`. ``grad``: give MIGRAD the gradient of
    :mod:`xdl4.fitting.gradient` (analytic for spectral parameters and background norms,
    finite differences of the datasets concerned for the others); ``None``: only when
    at least half of the free parameters are analytic; ``result.gradient`` reports it.

    >>> import xdl4
    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> models = Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="src")])
    >>> r = xdl4.fit(xdl4.examples.all_kinds(seed=0)["spectrum_onoff"], models)
    >>> r.success and models.parameters["src.index"].error > 0
    True
    """
    from xdl4.fitting.bounds import position_limits
    from xdl4.models.checks import check_fit_start

    lik = _likelihood(data, models, irf_interpolation)
    models = lik.models
    check_fit_start(models, lik.datasets)  # start values within bounds, bins left to fit
    free = _Free(models)
    minos_names = list(free.labels) if minos is True else \
        [minos] if isinstance(minos, str) else list(minos or [])
    unknown = [name for name in minos_names if name not in free.labels]
    if unknown:  # before any work
        raise ModelError(f"MINOS for {unknown}: not free parameters of these models "
                         f"(free: {list(free.labels)})")
    nfev0 = lik.nfev
    default_limits = position_limits(lik, free)
    limits = free.limits(default_limits)
    steps0 = free.steps()
    objective = _Objective(lik, free)
    gradient = None
    if grad is not False:
        from xdl4.fitting.gradient import Gradient

        gradient = Gradient(lik, free, steps0)
        if grad is None and gradient.fraction_analytic < 0.5:
            gradient = None
    m = _minuit(lik, free, strategy, tol, objective=objective, limits=limits, steps=steps0,
                grad=gradient)
    attempts: list[dict] = []

    def restart(at_strategy: int, steps=None):
        """A fresh Minuit (no state of a failed run) from the best point seen."""
        start = objective.best_x if objective.best_x is not None else np.array(m.values)
        return _minuit(lik, free, at_strategy, tol, objective=objective, start=start,
                       limits=limits, steps=steps0 if steps is None else steps,
                       grad=gradient)

    try:
        if optimize:
            m.migrad(ncall=ncall)
            attempts.append(_attempt("migrad", m))
            if retry and not m.valid and not m.fmin.has_reached_call_limit:
                for s in range(strategy + 1, 3):
                    m = restart(s)
                    m.migrad(ncall=ncall)
                    attempts.append(_attempt("migrad", m))
                    if m.valid or m.fmin.has_reached_call_limit:
                        break
            success = bool(m.valid)
            message = ("MIGRAD converged" if success else "MIGRAD failed: " + _reason(m.fmin))
        else:
            success, message = True, "not optimised"
        m.strategy = max(m.strategy.strategy, 1)  # HESSE and MINOS: at least the default accuracy
        if covariance:
            m.hesse()
            attempts.append(_attempt("hesse", m))
            if retry and optimize and success and not m.accurate:
                errs = np.array(m.errors)
                ok = np.isfinite(errs) & (errs > 0) & (errs < 10 * np.abs(steps0) + 1)
                m = restart(2, np.where(ok, errs, steps0))
                m.migrad(ncall=ncall)
                attempts.append(_attempt("migrad", m))
                m.hesse()
                attempts.append(_attempt("hesse", m))
                success = bool(m.valid)
                if not success:
                    message = "MIGRAD failed: " + _reason(m.fmin)
            if not m.accurate:
                success = False
                message += "; HESSE: " + (_reason(m.fmin) or "covariance not accurate")
        errs = {}
        if minos_names:
            m.minos(*minos_names, cl=_cl(sigma))
            for lab in minos_names:
                me = m.merrors[lab]
                i = free.labels.index(lab)
                f = np.array(m.values)
                lo, hi = f.copy(), f.copy()
                lo[i] += me.lower
                hi[i] += me.upper
                v0 = free.values(f)[i]
                errs[lab] = (v0 - free.values(lo)[i], free.values(hi)[i] - v0,
                             me.is_valid)
                if not me.is_valid:
                    success = False
                    message += f"; MINOS failed for {lab}"
    except Exception:
        free.restore()
        raise
    f = np.array(m.values)
    if not np.all(np.isfinite(f)):
        success, message = False, message + "; non-finite parameter values"
    free.set(f)
    total = lik.stat()
    items = models.parameters.items()
    cov_all = np.zeros((len(items), len(items)))
    if covariance and m.covariance is not None:
        jac = free.jacobian(f)
        cov_free = np.array(m.covariance) * np.outer(jac, jac)
        for p, var in zip(free.params, np.diag(cov_free), strict=True):
            p.error = math.sqrt(var) if var >= 0 else math.nan
        cov_all = _covariance_table(models, free, cov_free)
        models.covariance = cov_all
    bounds = {id(p): default_limits.get(i, p.bounds()) for i, p in enumerate(free.params)}
    columns = parameter_columns(items, bounds)
    if errs:
        where = {id(p): lab for lab, p in zip(free.labels, free.params, strict=True)}
        pick = [errs.get(where.get(id(p)), (np.nan, np.nan)) for _, p in items]
        columns["errn"] = np.array([e[0] for e in pick])
        columns["errp"] = np.array([e[1] for e in pick])
    if optimize:
        message += f" (EDM {m.fmin.edm:.2g}, goal {m.fmin.edm_goal:.2g})"
    retried = [a for a in attempts if a["step"] == "migrad"][1:]
    if retried:
        message += f"; retried MIGRAD at strategy {', '.join(str(a['strategy']) for a in retried)}"
    if objective.bad_calls:
        message += f"; stepped back from {objective.bad_calls} NaN/inf statistic(s)"
    info = None if gradient is None else {
        "analytic": gradient.analytic, "numeric": gradient.numeric, "calls": gradient.ncalls,
        "dataset_evals": gradient.nterm_evals}
    return FitResult(success, message, lik.nfev - nfev0, total, m, columns, cov_all,
                     models, attempts=attempts, bad_calls=objective.bad_calls, gradient=info,
                     irf_interpolation=lik.irf_interpolation,
                     default_bounds={free.labels[i]: b for i, b in default_limits.items()})
