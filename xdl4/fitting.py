"""Likelihood fits of DL4 datasets with iminuit: best fit, covariance, profiles, contours.

The statistic is -2 ln L summed over datasets (and over the runs of an ``obs`` dimension).
A sky model applies to every dataset unless its ``datasets_names`` restricts it; a
``FoVBackgroundModel`` applies to its own dataset (or run) only; linked parameters are one
fit parameter. Minuit sees each free parameter as a factor of order one,
``T(value) / scale`` (``scale_method`` scale10 / factor1, ``scale_transform`` lin / log /
sqrt, as gammapy), with bounds carried over. After MIGRAD a HESSE is always run for the
covariance (gammapy keeps MIGRAD's approximate matrix). Initial steps are the parameter
error when set, else 1% of the value (0.01 deg for angles), never a full scale unit.

>>> import numpy as np, xdl4
>>> from xdl4.models import Models, SkyModel, PowerLaw
>>> models = Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="src")])
>>> result = xdl4.fit(xdl4.examples.all_kinds(seed=0)["spectrum_onoff"], models)
>>> result.success, bool(np.isfinite(result.parameters.error.sel(parameter="src.index")))
(True, True)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from xdl4.errors import FitError
from xdl4.forward import Evaluator, as_models, vectorised_runs
from xdl4.schema import ONOFF_KINDS, kind_of

__all__ = ["FitError", "FitResult", "Likelihood", "confidence", "fit", "plot_contour",
           "plot_profile", "stat_contour", "stat_profile"]


# -- datasets and the joint statistic ------------------------------------------------------

def _flatten(data: Any) -> list[xr.Dataset]:
    if isinstance(data, xr.Dataset):
        return [data]
    if isinstance(data, xr.DataTree):
        out = []
        for node in data.subtree:
            if not node.has_data:
                continue
            ds = node.to_dataset()
            try:
                kind_of(ds)
            except (ValueError, KeyError):
                continue  # not a DL4 node (e.g. metadata)
            out.append(ds if ds.attrs.get("name") else ds.assign_attrs(name=node.name))
        return out
    if isinstance(data, Iterable) and not isinstance(data, str | bytes):
        return [ds for item in data for ds in _flatten(item)]
    raise TypeError(f"expected an xarray Dataset, a list of them or a DataTree, got "
                    f"{type(data).__name__}")


class _Run(Evaluator):
    """An Evaluator whose sources and background model are bound once (no per-call
    filtering by name); on/off kinds get a WStat sum with the constant terms precomputed."""

    def bind(self, label: str, sources: list, background: Any) -> None:
        self.label, self._sources, self._background = label, sources, background
        if self.kind in ONOFF_KINDS:
            m = np.flatnonzero(self.mask.ravel())
            a, n_on, n_off = (x.ravel()[m] for x in (self.alpha, self.counts, self.counts_off))
            on, off = np.flatnonzero(n_on > 0), np.flatnonzero(n_off > 0)
            xlx = (n_on[on] * np.log(n_on[on])).sum() + (n_off[off] * np.log(n_off[off])).sum()
            with np.errstate(invalid="ignore", over="ignore"):  # inf alpha: no fast path
                self._w = (m, a, 1 + a, a * (n_on + n_off), 4 * a * (1 + a) * n_off,
                           0.5 / (a * (1 + a)), on, n_on[on], off, n_off[off],
                           float(2 * (xlx - n_on.sum() - n_off.sum())))
            self._fast_ok = bool(np.all((a > 0) & np.isfinite(a)))

    def sources(self, models, names=None) -> list:
        return [m for m in self._sources if names is None or m.name in names]

    def background_model(self, models):
        return self._background

    def stat_sum(self, models=None) -> float:
        if self.kind not in ONOFF_KINDS or not self._fast_ok:
            return super().stat_sum(models)
        # WStat for alpha > 0: the closed form of xdl4.stats.wstat, constants precomputed
        m, a, a1, c0, d0, inv, on, n_on, off, n_off, const = self._w
        sig = self.npred_signal(models).ravel()[m]
        c = c0 - a1 * sig
        mu_b = (c + np.sqrt(c * c + d0 * sig)) * inv
        mu_on = sig + a * mu_b
        mu_on_pos, mu_b_pos = mu_on[on], mu_b[off]
        if not (mu_on_pos.min(initial=1.0) > 0 and mu_b_pos.min(initial=1.0) > 0):
            return super().stat_sum(models)  # edge cases: the general formula decides
        return float(2 * (sig.sum() + a1 @ mu_b - n_on @ np.log(mu_on_pos)
                          - n_off @ np.log(mu_b_pos)) + const)


class _FluxPoints:
    """A flux-points dataset: its statistic prepared once (the SED does not change)."""

    def __init__(self, ds: xr.Dataset, label: str, sources: list) -> None:
        from xdl4.kinds.flux_points import FluxPointsEvaluator

        self.label, self.name, self._sources = label, label, sources
        self._evaluator = FluxPointsEvaluator(ds)

    def stat_sum(self, models=None) -> float:
        return self._evaluator.stat_sum(self._sources)


def _nan_npred(term) -> bool:
    """NaN predicted counts (xdl4.stats.wstat reports them as an infinite statistic)."""
    return hasattr(term, "npred_signal") and bool(np.isnan(term.npred_signal(None)).any())


class Likelihood:
    """Joint -2 ln L of datasets for models: built once, evaluated many times.

    ``data``: a dataset, a list of datasets, a DataTree of datasets, or a dataset with an
    ``obs`` dimension (its runs are fitted jointly; a ``FoVBackgroundModel`` named after a
    run's ``obs`` label applies to that run, one named after the dataset to all its runs).

    >>> import xdl4
    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> lik = Likelihood(xdl4.examples.all_kinds(seed=0)["spectrum_onoff"],
    ...                  Models([SkyModel(PowerLaw(), name="src")]))
    >>> round(lik.stat() - lik.stat(), 12), lik.nfev
    (0.0, 2)
    """

    def __init__(self, data: Any, models: Any) -> None:
        from xdl4.models import Models, TemplateNPredModel

        self.models = models if isinstance(models, Models) else Models(as_models(models))
        datasets = _flatten(data)
        if not datasets:
            raise FitError("no dataset to fit")
        names = [str(ds.attrs.get("name", "")) for ds in datasets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise FitError(f"dataset names must be unique for a joint fit; repeated: {dup}")
        bkg = {m.dataset_name: m for m in self.models if hasattr(m, "dataset_name")}
        srcs = [m for m in self.models if not hasattr(m, "dataset_name")]
        for m in srcs:
            if isinstance(m, TemplateNPredModel):
                raise NotImplementedError(f"model {m.name!r}: TemplateNPredModel is not fitted")
        used: set[str] = set()
        self.terms: list = []
        for ds, name in zip(datasets, names, strict=True):
            if kind_of(ds) == "flux_points":
                mine = [m for m in srcs if m.datasets_names is None or name in m.datasets_names]
                self.terms.append(_FluxPoints(ds, name, mine))
                used.update(m.name for m in mine)
                continue
            runs = [(ds, name)] if "obs" not in ds.dims else [
                (ds.isel(obs=i), str(ds["obs"].values[i]) if "obs" in ds.coords
                 else f"{name}[{i}]") for i in range(ds.sizes["obs"])]
            if len(runs) > 1 and vectorised_runs(ds) and not any(
                    label in bkg for _, label in runs):
                runs = [(ds, name)]  # all runs in one vectorised evaluation
            for run, label in runs:
                labels = {name, label}
                mine = [m for m in srcs if m.datasets_names is None
                        or labels & set(m.datasets_names)]
                back = bkg.get(label, bkg.get(name))
                term = _Run(run)
                term.bind(label, mine, back)
                self.terms.append(term)
                used.update(m.name for m in mine)
                if back is not None:
                    used.add(back.name)
        unused = [m.name for m in self.models if m.name not in used]
        if unused:
            raise FitError(f"model(s) {unused} apply to no dataset (datasets: {names}); "
                           "check datasets_names / the FoV background dataset name")
        self.nfev = 0
        #: parameters with a prior: each adds weight x (-2 ln pdf) to the total (gammapy's
        #: Datasets.stat_sum; a dataset's own stat_sum has no priors)
        self.priors = [p for _, p in self.models.parameters.unique() if p.prior is not None]

    def stat(self) -> float:
        """The total statistic at the models' current values (raises FitError on NaN)."""
        self.nfev += 1
        total = 0.0
        for term in self.terms:
            s = term.stat_sum(self.models)
            if not math.isfinite(s) and (s != s or _nan_npred(term)):
                free = ", ".join(f"{lab}={p.value:.6g}" for lab, p in
                                 self.models.parameters.unique() if not p.frozen)
                raise FitError(f"statistic is NaN for dataset {term.label!r} at {free}")
            total += s
        return total + self.prior_stat()

    def prior_stat(self) -> float:
        """The priors' share of :meth:`stat` (0 without priors)."""
        if not self.priors:  # the usual case: nothing on the hot path
            return 0.0
        from xdl4.models.prior import prior_stat

        return sum((prior_stat(p.prior, p.value) for p in self.priors), 0.0)

    def stat_per_dataset(self) -> dict[str, float]:
        """Statistic of each dataset (runs of an ``obs`` dataset by their labels)."""
        return {t.label: float(t.stat_sum(self.models)) for t in self.terms}


# -- free parameters as factors of order one -----------------------------------------------

_T: dict[str, tuple[Callable, Callable, Callable]] = {  # T, T^-1, dT/dv
    "lin": (lambda v: v, lambda y: y, lambda v: 1.0),
    "log": (math.log, math.exp, lambda v: 1.0 / v),
    "sqrt": (math.sqrt, lambda y: y * y, lambda v: 0.5 / math.sqrt(v)),
}


@functools.lru_cache(maxsize=128)
def _is_angle(unit: str) -> bool:
    import astropy.units as u

    try:
        return u.Unit(unit).physical_type == "angle"
    except (ValueError, TypeError):
        return False


class _Free:
    """The free parameters of a fit and their factor <-> value mapping (fixed per fit)."""

    def __init__(self, models) -> None:
        free = [(lab, p) for lab, p in models.parameters.unique() if not p.frozen]
        if not free:
            raise FitError("no free parameter")
        self.labels = [lab for lab, _ in free]
        self.params = [p for _, p in free]
        self.start = [p.value for p in self.params]
        self.t = []
        self.scales = []
        for lab, p in free:
            transform = p.scale_transform or "lin"
            if transform not in _T:
                raise FitError(f"{lab}: unknown scale_transform {transform!r}")
            y = _T[transform][0](p.value)
            if not math.isfinite(y):
                raise FitError(f"{lab}: value {p.value} is not valid for scale_transform "
                               f"{transform!r} or not finite")
            if y == 0 or not p.scale_method:
                scale = 1.0
            elif p.scale_method == "factor1":
                scale = y
            else:
                scale = 10.0 ** math.floor(math.log10(abs(y)))
            self.t.append(_T[transform])
            self.scales.append(scale)

    def factors(self) -> np.ndarray:
        return np.array([t[0](p.value) / s for p, t, s in
                         zip(self.params, self.t, self.scales, strict=True)])

    def set(self, factors: Sequence[float]) -> None:
        for p, t, s, f in zip(self.params, self.t, self.scales, factors, strict=True):
            p.value = t[1](f * s)

    def values(self, factors: Sequence[float]) -> np.ndarray:
        return np.array([t[1](f * s) for t, s, f in zip(self.t, self.scales, factors,
                                                        strict=True)])

    def restore(self) -> None:
        for p, v in zip(self.params, self.start, strict=True):
            p.value = v

    def limits(self) -> list[tuple[float | None, float | None]]:
        out = []
        for p, t, s in zip(self.params, self.t, self.scales, strict=True):
            lims = []
            for b in p.bounds():
                with np.errstate(all="ignore"):
                    y = t[0](b) / s if math.isfinite(b) and (t[0] is _T["lin"][0] or b > 0) \
                        else None
                lims.append(y)
            lo, hi = lims
            out.append((lo, hi) if s > 0 else (hi, lo))
        return out

    def steps(self) -> list[float]:
        out = []
        for p, t, s in zip(self.params, self.t, self.scales, strict=True):
            v = p.value
            if math.isfinite(p.error) and p.error > 0:
                dv = p.error
            elif _is_angle(p.unit):
                import astropy.units as u

                dv = (0.01 * u.deg).to_value(p.unit)
            else:
                dv = 0.01 * abs(v) if v != 0 else 0.01 * abs(s)
            out.append(abs(t[2](v) * dv / s))
        return out

    def jacobian(self, factors: Sequence[float]) -> np.ndarray:
        """d value / d factor at `factors`."""
        vals = self.values(factors)
        return np.array([s / t[2](v) for t, s, v in zip(self.t, self.scales, vals,
                                                        strict=True)])


def _likelihood(data: Any, models: Any) -> Likelihood:
    """A new Likelihood, or ``data`` itself when it is one (built for the same models)."""
    if not isinstance(data, Likelihood):
        return Likelihood(data, models)
    if models is not None and models is not data.models and \
            [id(m) for m in as_models(models)] != [id(m) for m in data.models]:
        raise ValueError("a Likelihood was passed with other models: pass models=None or "
                         "the Likelihood's own models")
    return data


def _minuit(lik: Likelihood, free: _Free, strategy: int, tol: float):
    from iminuit import Minuit

    def fcn(factors):
        free.set(factors)
        return lik.stat()

    m = Minuit(fcn, free.factors(), name=free.labels)
    m.errordef = Minuit.LEAST_SQUARES  # 1: the statistic is -2 ln L
    m.errors = free.steps()
    m.limits = free.limits()
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


# -- results -------------------------------------------------------------------------------

@dataclass(repr=False)
class FitResult:
    """Outcome of :func:`fit` (the same numbers are written into the models).

    ``parameters``: Dataset on ``parameter`` ("model.param" labels) with ``value``,
    ``error``, ``unit``, ``min``, ``max``, ``frozen`` (and ``errn``, ``errp`` after MINOS);
    ``covariance``: DataArray (``parameter_1``, ``parameter_2``) in parameter units, zero for
    frozen parameters, linked labels sharing rows; ``minuit``: the iminuit object.
    """

    success: bool
    message: str
    nfev: int
    total_stat: float
    minuit: Any = field(default=None)
    _columns: dict = field(default_factory=dict)
    _cov: np.ndarray | None = None

    @functools.cached_property
    def parameters(self) -> xr.Dataset:
        cols = dict(self._columns)
        labels = cols.pop("parameter")
        return xr.Dataset({k: ("parameter", v) for k, v in cols.items()},
                          coords={"parameter": labels})

    @functools.cached_property
    def covariance(self) -> xr.DataArray:
        labels = self._columns["parameter"]
        return xr.DataArray(self._cov, dims=("parameter_1", "parameter_2"),
                            coords={"parameter_1": labels, "parameter_2": labels},
                            name="covariance")

    @property
    def correlation(self) -> xr.DataArray:
        c = self.covariance.values
        d = np.sqrt(np.diag(c))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(np.outer(d, d) > 0, c / np.outer(d, d), 0.0)
        return self.covariance.copy(data=r).rename("correlation")

    def __repr__(self) -> str:
        p = self.parameters
        free = ~p["frozen"].values
        lines = [f"FitResult(success={self.success}, nfev={self.nfev}, "
                 f"total_stat={self.total_stat:.6f})", f"  {self.message}",
                 f"  {'parameter':<28}{'value':>14}{'error':>12}  unit"]
        minos = "errn" in p
        for i in np.flatnonzero(free):
            lab = str(p["parameter"].values[i])
            row = f"  {lab:<28}{p['value'].values[i]:>14.6g}{p['error'].values[i]:>12.4g}"
            if minos and np.isfinite(p["errn"].values[i]):
                row += f"  (-{p['errn'].values[i]:.4g} +{p['errp'].values[i]:.4g})"
            lines.append(f"{row}  {p['unit'].values[i]}")
        lines.append(f"  ({int((~free).sum())} frozen parameter entries not shown)")
        return "\n".join(lines)


def _covariance_table(models, free: _Free, cov_free: np.ndarray) -> np.ndarray:
    """Covariance over all parameter entries (linked entries share rows; frozen: 0)."""
    entries = [p for _, p in models.parameters.items()]
    index = {id(p): i for i, p in enumerate(free.params)}
    idx = np.array([index.get(id(p), -1) for p in entries])
    out = np.zeros((len(entries), len(entries)))
    ok = idx >= 0
    out[np.ix_(ok, ok)] = cov_free[np.ix_(idx[ok], idx[ok])]
    return out


def fit(data: Any, models: Any, *, optimize: bool = True, covariance: bool = True,
        minos: bool | Sequence[str] = False, sigma: float = 1.0, strategy: int = 0,
        tol: float = 0.1, ncall: int | None = None) -> FitResult:
    """Fit ``models`` to ``data`` (dataset, list, DataTree, or a dataset with ``obs``).

    MIGRAD (``strategy``, ``tol``: EDM goal 0.002 x tol), then HESSE (``covariance``),
    then MINOS at ``sigma`` for all free parameters (``minos=True``) or the given labels.
    MIGRAD's default strategy is 0 (gammapy: 1): the HESSE that follows runs at strategy
    >= 1 anyway, and iminuit retries a failed MIGRAD at strategy 2; same minima and
    errors with ~20% fewer evaluations on the reference fits.
    Best-fit values, errors (and ``models.covariance``) are written into ``models``.

    >>> import xdl4
    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> models = Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="src")])
    >>> r = xdl4.fit(xdl4.examples.all_kinds(seed=0)["spectrum_onoff"], models)
    >>> r.success and models.parameters["src.index"].error > 0
    True
    """
    lik = _likelihood(data, models)
    models = lik.models
    free = _Free(models)
    nfev0 = lik.nfev
    m = _minuit(lik, free, strategy, tol)
    try:
        if optimize:
            m.migrad(ncall=ncall)
            success = bool(m.valid)
            message = ("MIGRAD converged" if success else "MIGRAD failed: " + _reason(m.fmin))
        else:
            success, message = True, "not optimised"
        m.strategy = max(strategy, 1)  # HESSE and MINOS: at least the default accuracy
        if covariance:
            m.hesse()
            if not m.accurate:
                success = False
                message += "; HESSE: " + (_reason(m.fmin) or "covariance not accurate")
        minos_names = list(free.labels) if minos is True else list(minos or [])
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
    columns = {"parameter": np.array([lab for lab, _ in items], dtype=object),
               "value": np.array([p.value for _, p in items]),
               "error": np.array([p.error for _, p in items]),
               "unit": np.array([p.unit for _, p in items], dtype=object),
               "min": np.array([p.bounds()[0] for _, p in items]),
               "max": np.array([p.bounds()[1] for _, p in items]),
               "frozen": np.array([p.frozen for _, p in items], dtype=bool)}
    if errs:
        where = {id(p): lab for lab, p in zip(free.labels, free.params, strict=True)}
        pick = [errs.get(where.get(id(p)), (np.nan, np.nan)) for _, p in items]
        columns["errn"] = np.array([e[0] for e in pick])
        columns["errp"] = np.array([e[1] for e in pick])
    if optimize:
        message += f" (EDM {m.fmin.edm:.2g}, goal {m.fmin.edm_goal:.2g})"
    return FitResult(success, message, lik.nfev - nfev0, total, m, columns, cov_all)


# -- beyond the best fit -------------------------------------------------------------------

class _Saved:
    """Restore values and frozen flags of all parameters on exit."""

    def __init__(self, models) -> None:
        self.models = models

    def __enter__(self) -> _Saved:
        self.state = [(p, p.value, p.frozen) for _, p in self.models.parameters.unique()]
        return self

    def __exit__(self, *exc) -> None:
        for p, v, fz in self.state:
            p.value, p.frozen = v, fz


def _hesse_error(lik: Likelihood, label: str) -> float:
    free = _Free(lik.models)
    m = _minuit(lik, free, 1, 0.1)
    m.hesse()
    i = free.labels.index(label)
    err = math.sqrt(m.covariance[i, i]) * abs(free.jacobian(free.factors())[i])
    free.restore()
    return err


def stat_profile(data: Any, models: Any, parameter: str, values: Sequence[float] | None = None,
                 *, reoptimize: bool = False, n_values: int = 11, n_sigma: float = 2.0,
                 **fit_options) -> xr.Dataset:
    """Statistic along one parameter: a slice (others fixed) or, with ``reoptimize``, the
    profile (others re-fitted at each value, warm-started). Default ``values``: ``n_values``
    over value +- ``n_sigma`` x error (HESSE error when none is set), log-spaced for
    ``interp="log"`` parameters. Models are restored afterwards.

    Returns a Dataset on a dimension named after the parameter: ``stat`` (and with
    ``reoptimize`` the other free parameters' values ``fit_value(.., parameter)`` and
    ``success``).

    >>> import xdl4
    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> ds = xdl4.examples.all_kinds(seed=0)["spectrum_onoff"]
    >>> models = Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="src")])
    >>> prof = xdl4.stat_profile(ds, models, "src.index", values=[1.9, 2.0, 2.1])
    >>> prof["stat"].dims, prof.sizes["src.index"]
    (('src.index',), 3)
    """
    lik = _likelihood(data, models)
    models = lik.models
    par = models.parameters[parameter]
    if values is None:
        err = par.error if math.isfinite(par.error) and par.error > 0 else \
            _hesse_error(lik, parameter)
        lo, hi = par.value - n_sigma * err, par.value + n_sigma * err
        values = (np.geomspace(lo, hi, n_values) if par.interp == "log" and lo > 0
                  else np.linspace(lo, hi, n_values))
    values = np.asarray(values, dtype=float)
    stat = np.empty(values.size)
    with _Saved(models):
        if not reoptimize:
            for i, v in enumerate(values):
                par.value = v
                stat[i] = lik.stat()
            variables = {"stat": (parameter, stat)}
        else:
            par.frozen = True
            others = [lab for lab, p in models.parameters.unique() if not p.frozen]
            fitted = np.full((values.size, len(others)), np.nan)
            ok = np.zeros(values.size, dtype=bool)
            fit_options.setdefault("covariance", False)
            for i, v in enumerate(values):
                par.value = v
                r = fit(lik, models, **fit_options)
                stat[i], ok[i] = r.total_stat, r.success
                fitted[i] = [models.parameters[lab].value for lab in others]
            variables = {"stat": (parameter, stat), "success": (parameter, ok),
                         "fit_value": ((parameter, "parameter"), fitted)}
    coords = {parameter: (parameter, values, {"units": par.unit})}
    if reoptimize:
        coords["parameter"] = others
    return xr.Dataset(variables, coords=coords,
                      attrs={"kind": "stat_profile", "parameter": parameter,
                             "reoptimize": int(reoptimize)})


def confidence(data: Any, models: Any, parameters: str | Sequence[str], sigma: float = 1.0,
               **fit_options) -> xr.Dataset:
    """Asymmetric MINOS errors at ``sigma`` (1-parameter confidence level 2 Phi(sigma) - 1)
    after a fresh MIGRAD. Models are restored afterwards.

    Returns a Dataset on ``parameter``: ``value``, ``errn``, ``errp`` (positive, value
    units), ``valid``.

    >>> import xdl4
    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> ds = xdl4.examples.all_kinds(seed=0)["spectrum_onoff"]
    >>> models = Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="src")])
    >>> ci = xdl4.confidence(ds, models, "src.index")
    >>> bool(ci["errn"].item() > 0 and ci["errp"].item() > 0)
    True
    """
    names = [parameters] if isinstance(parameters, str) else list(parameters)
    lik = _likelihood(data, models)
    with _Saved(lik.models):
        fit_options.setdefault("covariance", False)
        r = fit(lik, lik.models, minos=names, sigma=sigma, **fit_options)
        sel = r.parameters.sel(parameter=names)
        out = xr.Dataset({"value": sel["value"], "errn": sel["errn"], "errp": sel["errp"],
                          "valid": ("parameter", [r.minuit.merrors[n].is_valid
                                                  for n in names])},
                         attrs={"kind": "confidence", "sigma": sigma, "cl": _cl(sigma),
                                "success": int(r.success)})
    return out


def stat_contour(data: Any, models: Any, x: str, y: str, sigma: float = 1.0,
                 npoints: int = 20, **fit_options) -> xr.Dataset:
    """Points of the ``sigma`` contour of two parameters (MINOS contour after a fresh
    MIGRAD), at the 2-parameter confidence level ``cl = 2 Phi(sigma) - 1`` (68.27% for
    sigma=1), i.e. Delta stat = chi2.ppf(cl, 2 dof) = 2.30 for sigma=1 (gammapy draws
    Delta stat = sigma^2 = 1, a 39.3% region). Models are restored afterwards.

    Returns a Dataset on ``point`` with one variable per parameter; attrs ``cl``,
    ``delta_stat``, ``sigma`` and the best fit ``x_best``, ``y_best``.

    >>> import xdl4
    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> ds = xdl4.examples.all_kinds(seed=0)["spectrum_onoff"]
    >>> models = Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="src")])
    >>> c = xdl4.stat_contour(ds, models, "src.index", "src.amplitude", npoints=8)
    >>> c.sizes["point"], round(c.attrs["delta_stat"], 2)
    (8, 2.3)
    """
    from scipy.stats import chi2

    lik = _likelihood(data, models)
    cl = _cl(sigma)
    with _Saved(lik.models):
        fit_options.setdefault("covariance", False)
        r = fit(lik, lik.models, **fit_options)
        free = _Free(lik.models)
        m = r.minuit
        pts = np.asarray(m.mncontour(x, y, cl=cl, size=npoints))
        if len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
            pts = pts[:-1]  # iminuit closes the curve
        ix, iy = free.labels.index(x), free.labels.index(y)
        best = np.array(m.values)
        vals = []
        for px, py in pts:
            f = best.copy()
            f[ix], f[iy] = px, py
            v = free.values(f)
            vals.append((v[ix], v[iy]))
        vals = np.array(vals)
        bx, by = (lik.models.parameters[x].value, lik.models.parameters[y].value)
        units = (lik.models.parameters[x].unit, lik.models.parameters[y].unit)
    return xr.Dataset({x: ("point", vals[:, 0], {"units": units[0]}),
                       y: ("point", vals[:, 1], {"units": units[1]})},
                      attrs={"kind": "stat_contour", "x": x, "y": y, "sigma": sigma,
                             "cl": cl, "delta_stat": float(chi2.ppf(cl, 2)),
                             "x_best": bx, "y_best": by, "success": int(r.success)})


# -- plots (matplotlib imported lazily) ---------------------------------------------------

def plot_profile(profile: xr.Dataset, ax=None, **kwargs):
    """Plot Delta stat of a :func:`stat_profile` result; returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    name = profile.attrs["parameter"]
    stat = profile["stat"].values
    ax.plot(profile[name].values, stat - np.nanmin(stat), **kwargs)
    unit = profile[name].attrs.get("units", "")
    ax.set_xlabel(f"{name} [{unit}]" if unit else name)
    ax.set_ylabel("Delta stat")
    return ax


def plot_contour(contour: xr.Dataset, ax=None, **kwargs):
    """Plot a closed :func:`stat_contour` and its best fit; returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    x, y = contour.attrs["x"], contour.attrs["y"]
    xs, ys = contour[x].values, contour[y].values
    kwargs.setdefault("label", f"{contour.attrs['cl']:.1%} (2 dof)")
    (line,) = ax.plot(np.append(xs, xs[:1]), np.append(ys, ys[:1]), **kwargs)
    ax.plot([contour.attrs["x_best"]], [contour.attrs["y_best"]], "+", color=line.get_color())
    ax.set_xlabel(f"{x} [{contour[x].attrs['units']}]" if contour[x].attrs["units"] else x)
    ax.set_ylabel(f"{y} [{contour[y].attrs['units']}]" if contour[y].attrs["units"] else y)
    return ax
