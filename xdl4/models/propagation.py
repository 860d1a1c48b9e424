"""Error propagation of a fitted spectral model: from the parameters' covariance to dN/dE,
E^2 dN/dE and integral (energy) fluxes, returned as xarray.

Linear (first-order) propagation: with J the Jacobian of the quantity with respect to the
spectral parameters (each in its own unit, as the fit's covariance is) and C their
covariance block, the variance is ``diag(J C J^T)``. J is taken by central finite
differences of the model itself, with a step of 1e-3 standard deviation per parameter
(the scale on which linearity matters; exact for parameters the model is linear in).
Parameters without variance (frozen, or absent from the covariance) do not contribute.

:func:`sample` draws parameter vectors from the covariance instead (seeded, vectorised
over the samples for the built-in analytic models), for a check of the linear
approximation or asymmetric bands.

>>> from xdl4.models import PowerLaw
>>> pl = PowerLaw(index=2.0, amplitude=1e-12)
>>> band = propagate(pl, [1.0], covariance=[[0.01, 0, 0], [0, 1e-26, 0], [0, 0, 0]])
>>> round(float(band["error"][0]) / 1e-13, 9)  # the amplitude's error at the reference
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from xdl4.errors import ArgumentError, ModelError

__all__ = ["SED_TYPES", "covariance_block", "jacobian", "propagate", "sample", "sed_values"]

#: quantities the propagation knows, with their long names (units follow the model's)
SED_TYPES = {
    "dnde": "dN/dE",
    "e2dnde": "E² dN/dE",
    "flux": "integral flux",
    "eflux": "energy flux",
}
_ENERGY_POWER = {"dnde": 0, "e2dnde": 2, "flux": 1, "eflux": 2}
_REL_STEP = 1e-3


def _spectral(model):
    """The spectral model of a SkyModel, or the model itself."""
    return getattr(model, "spectral", model)


def sed_unit(model, sed_type: str) -> str:
    """Unit of ``sed_type`` for ``model`` (its dN/dE unit times TeV^power)."""
    from astropy import units as u

    _check_sed_type(sed_type)
    unit = u.Unit(_spectral(model).unit or "") * u.TeV ** _ENERGY_POWER[sed_type]
    return unit.to_string()


def _check_sed_type(sed_type: str) -> None:
    if sed_type not in SED_TYPES:
        raise ArgumentError(f"sed_type must be one of {list(SED_TYPES)}, not {sed_type!r}")


def _energies(energy, sed_type: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(evaluation energies or bin centres, bin edges or None) in TeV. ``flux``/``eflux``
    take bins: n+1 edges, or a pair (energy_min, energy_max) of arrays."""
    from xdl4.axes import as_quantity

    if sed_type in ("flux", "eflux"):
        if isinstance(energy, tuple) and len(energy) == 2:
            lo = np.atleast_1d(as_quantity(energy[0]).to_value("TeV")).astype(float)
            hi = np.atleast_1d(as_quantity(energy[1]).to_value("TeV")).astype(float)
        else:
            edges = np.atleast_1d(as_quantity(energy).to_value("TeV")).astype(float)
            if edges.size < 2:
                raise ArgumentError(f"{sed_type} needs energy bin edges (n + 1 values)")
            lo, hi = edges[:-1], edges[1:]
        return np.sqrt(lo * hi), np.stack([lo, hi], axis=-1)
    return np.atleast_1d(as_quantity(energy).to_value("TeV")).astype(float), None


def sed_values(model, energy_tev: np.ndarray, sed_type: str,
               bounds: np.ndarray | None = None) -> np.ndarray:
    """``sed_type`` of the spectral model at its current parameter values (numpy, TeV in;
    the model's units times TeV^power out). Integrals are exact (the model's own)."""
    spec = _spectral(model)
    if sed_type == "dnde":
        return np.asarray(spec.evaluate_numpy(energy_tev), float)
    if sed_type == "e2dnde":
        return energy_tev**2 * np.asarray(spec.evaluate_numpy(energy_tev), float)
    lo, hi = bounds[:, 0], bounds[:, 1]
    if sed_type == "flux":
        return np.asarray(spec.integral(lo, hi), float)
    return np.asarray(spec.energy_flux(lo, hi), float)


# -- which parameters, which covariance ----------------------------------------------------

def _parameter_labels(model) -> list[tuple[list[str], Any]]:
    """(candidate labels, Parameter) of the spectral parameters: a SkyModel's short and long
    labels (``"src.index"``, ``"src.spectral.index"``), else the parameter paths."""
    if hasattr(model, "labelled_parameters"):
        return [([short, long], p) for short, long, p in model.labelled_parameters()
                if long.startswith(f"{model.name}.spectral.")]
    from xdl4.models.sky import _component_parameters

    return [([path], p) for path, p in _component_parameters(model)]


def covariance_block(model, result=None, covariance=None) -> tuple[list, np.ndarray]:
    """The spectral parameters of ``model`` and their covariance (each in its own unit).

    Sources, in order: ``result`` (a :class:`xdl4.FitResult`: its ``covariance``, matched
    by the "model.param" labels); ``covariance``: a labelled DataArray (the same), a
    :class:`xdl4.Models` after a fit (matched by parameter identity), or a square array
    in the order of the spectral model's parameters; else the parameters' ``error``s
    squared (no correlations). A bare spectral model (no SkyModel name) matches labelled
    covariances by the label's last part(s) when they are unique.
    """
    entries = _parameter_labels(model)
    params = [p for _, p in entries]
    n = len(params)
    if result is not None:
        if covariance is not None:
            raise ArgumentError("give result or covariance, not both")
        covariance = result.covariance
    if covariance is None:
        err = np.array([p.error if np.isfinite(p.error) else 0.0 for p in params])
        return params, np.diag(err**2)
    if hasattr(covariance, "parameters") and hasattr(covariance, "covariance") and \
            not isinstance(covariance, xr.DataArray):  # a Models container
        cov = covariance.covariance
        if cov is None:
            raise ModelError("these models carry no covariance (fit them first)")
        where = {}
        for i, (_, p) in enumerate(covariance.parameters.items()):
            where.setdefault(id(p), i)
        idx = [where.get(id(p), -1) for p in params]
        if all(i < 0 for i in idx):
            raise ModelError("none of the model's spectral parameters is in these models")
        return params, _pick(np.asarray(cov, float), idx)
    if isinstance(covariance, xr.DataArray):
        labels = [str(v) for v in covariance[covariance.dims[0]].values]
        idx = [_find_label(cands, labels, not hasattr(model, "labelled_parameters"))
               for cands, _ in entries]
        if all(i < 0 for i in idx):
            raise ModelError(f"none of the spectral parameters {[c[0] for c, _ in entries]} "
                             f"is in the covariance (labels {labels})")
        return params, _pick(np.asarray(covariance.values, float), idx)
    cov = np.asarray(covariance, float)
    if cov.shape != (n, n):
        raise ModelError(f"covariance of shape {cov.shape}: expected ({n}, {n}), the "
                         f"spectral parameters {[c[0] for c, _ in entries]}")
    return params, cov


def _find_label(candidates: list[str], labels: list[str], by_suffix: bool) -> int:
    for c in candidates:
        if c in labels:
            return labels.index(c)
    if by_suffix:
        hits = [i for i, lab in enumerate(labels) if lab.endswith("." + candidates[0])]
        if len(hits) > 1:
            raise ModelError(f"parameter {candidates[0]!r} matches {[labels[i] for i in hits]}"
                             "; pass the SkyModel (its name picks the labels)")
        if hits:
            return hits[0]
    return -1


def _pick(cov: np.ndarray, idx: Sequence[int]) -> np.ndarray:
    idx = np.asarray(idx)
    ok = idx >= 0
    out = np.zeros((idx.size, idx.size))
    out[np.ix_(ok, ok)] = cov[np.ix_(idx[ok], idx[ok])]
    return out


# -- linear propagation ---------------------------------------------------------------------

def jacobian(fn, params: list, cov: np.ndarray, rel_step: float = _REL_STEP) -> np.ndarray:
    """d fn / d p_i (columns; each parameter in its own unit) by central differences with
    a step of ``rel_step`` standard deviations; zero columns for parameters without
    variance. ``fn()`` reads the parameters' current values; they are restored."""
    f0 = np.asarray(fn(), float)
    jac = np.zeros(f0.shape + (len(params),))
    sigma = np.sqrt(np.clip(np.diag(cov), 0, None))
    for i, (p, s) in enumerate(zip(params, sigma, strict=True)):
        if s == 0:
            continue
        h = rel_step * s
        v0 = p.value
        try:
            p.value = v0 + h
            f_plus = np.asarray(fn(), float)
            p.value = v0 - h
            f_minus = np.asarray(fn(), float)
        finally:
            p.value = v0
        jac[..., i] = (f_plus - f_minus) / (2 * h)
    return jac


def propagate(model, energy, sed_type: str = "dnde", result=None, covariance=None,
              n_sigma: float = 1.0) -> xr.Dataset:
    """Value and 1st-order propagated error of ``sed_type`` (dnde, e2dnde, flux, eflux)
    of a spectral model (or SkyModel) on an ``energy`` coordinate.

    ``energy``: evaluation energies (TeV numbers, Quantity or strings); for ``flux`` and
    ``eflux`` bin edges (n + 1) or a pair (energy_min, energy_max) of arrays, giving the
    integral over each bin on a coordinate of bin centres with ``energy_bounds``.
    ``result`` / ``covariance``: see :func:`covariance_block`. Returns ``value``,
    ``error``, ``lower`` = value - n_sigma x error, ``upper`` = value + n_sigma x error,
    each with ``units``.
    """
    _check_sed_type(sed_type)
    e, bounds = _energies(energy, sed_type)
    params, cov = covariance_block(model, result, covariance)
    fn = lambda: sed_values(model, e, sed_type, bounds)  # noqa: E731
    value = np.asarray(fn(), float)
    jac = jacobian(fn, params, cov)
    var = np.einsum("ei,ij,ej->e", jac, cov, jac)
    error = np.sqrt(np.clip(var, 0, None))
    return _as_dataset(model, e, bounds, sed_type, n_sigma, value=value, error=error,
                       lower=value - n_sigma * error, upper=value + n_sigma * error)


def _as_dataset(model, e, bounds, sed_type, n_sigma, method="linear", **arrays) -> xr.Dataset:
    unit = sed_unit(model, sed_type)
    name = SED_TYPES[sed_type]
    long = {"value": name, "error": f"error of {name}",
            "lower": f"{name}, lower {n_sigma:g} sigma",
            "upper": f"{name}, upper {n_sigma:g} sigma",
            "median": f"median of sampled {name}"}
    coords = {"energy": ("energy", e, {"units": "TeV", "long_name": "Energy"})}
    if bounds is not None:
        coords["energy"][2]["bounds"] = "energy_bounds"
        coords["energy_bounds"] = (("energy", "bound"), bounds, {"units": "TeV"})
    data = {k: ("energy", np.asarray(v, float), {"units": unit, "long_name": long[k]})
            for k, v in arrays.items()}
    return xr.Dataset(data, coords=coords, attrs={
        "sed_type": sed_type, "n_sigma": float(n_sigma), "method": method,
        "model": getattr(model, "name", type(_spectral(model)).__name__)})


# -- sampling -------------------------------------------------------------------------------

def sample(model, energy, sed_type: str = "dnde", result=None, covariance=None,
           n_samples: int = 10000, seed=0, n_sigma: float = 1.0) -> xr.Dataset:
    """``sed_type`` of ``n_samples`` parameter vectors drawn from the covariance
    (multivariate normal, seeded): ``value`` (best fit), ``error`` (the samples' standard
    deviation), ``median``, ``lower``/``upper`` (the quantiles n_sigma away in a normal
    distribution). Vectorised over the samples for models with an analytic formula
    (one call for all samples), else a loop."""
    from scipy.special import ndtr

    _check_sed_type(sed_type)
    e, bounds = _energies(energy, sed_type)
    params, cov = covariance_block(model, result, covariance)
    draws = _draw(np.array([p.value for p in params]), cov, int(n_samples), seed)
    values = _sampled_values(model, params, draws, e, sed_type, bounds)
    q = ndtr(-n_sigma)
    lower, median, upper = np.quantile(values, [q, 0.5, 1 - q], axis=0)
    return _as_dataset(model, e, bounds, sed_type, n_sigma, method="samples",
                       value=sed_values(model, e, sed_type, bounds),
                       error=values.std(axis=0, ddof=1), median=median, lower=lower,
                       upper=upper)


def _draw(best: np.ndarray, cov: np.ndarray, n: int, seed) -> np.ndarray:
    """Multivariate-normal draws (n, n_par), sampled on the correlation matrix and scaled
    by the standard deviations: parameters of very different scales (1e-12 amplitudes
    beside O(1) indices) keep their precision. Parameters without variance stay fixed."""
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(np.clip(np.diag(cov), 0, None))
    free = sigma > 0
    out = np.repeat(best[None], n, axis=0)
    if free.any():
        s = sigma[free]
        corr = cov[np.ix_(free, free)] / np.outer(s, s)
        out[:, free] += rng.multivariate_normal(np.zeros(s.size), corr, size=n,
                                                method="eigh") * s
    return out


def _sampled_values(model, params, draws, e, sed_type, bounds) -> np.ndarray:
    """(n_samples, n_energy) values: the analytic formula broadcast over the samples when
    the model has one (``_eval`` of its own parameters), else one call per sample."""
    from xdl4.models.spectral import SpectralModel

    spec = _spectral(model)
    own = list(spec.parameters)
    vectorised = (type(spec).evaluate_numpy is SpectralModel.evaluate_numpy
                  and len(own) == len(params) and all(a is b for a, b in zip(own, params,
                                                                              strict=True)))
    if vectorised:
        factors = np.array([p._factor for p in params])
        cols = [(draws[:, i] * factors[i])[:, None, None] for i in range(len(params))]
        if sed_type in ("dnde", "e2dnde"):
            nodes, weights = e[:, None], None
        else:
            nodes, weights = _quadrature(bounds[:, 0], bounds[:, 1], spec._breaks())
        f = type(spec)._eval(nodes[None], *cols)
        if sed_type == "e2dnde":
            f = f * nodes[None] ** 2
        if sed_type == "eflux":
            f = f * nodes[None]
        return f[..., 0] if weights is None else (f * weights[None]).sum(axis=-1)
    out = np.empty((draws.shape[0], e.size))
    saved = [p.value for p in params]
    try:
        for k, row in enumerate(draws):
            for p, v in zip(params, row, strict=True):
                p.value = v
            out[k] = sed_values(model, e, sed_type, bounds)
    finally:
        for p, v in zip(params, saved, strict=True):
            p.value = v
    return out


def _quadrature(lo: np.ndarray, hi: np.ndarray, breaks=(), max_width_dex: float = 0.02):
    """Gauss-Legendre nodes and weights (n_bins, k) in ln E for integrals over each bin
    (sub-intervals <= ``max_width_dex``, split at ``breaks``): sum(w f(nodes))."""
    x, w = np.polynomial.legendre.leggauss(16)
    nodes, weights = [], []
    for a, b in zip(lo, hi, strict=True):
        cuts = np.unique(np.concatenate([[a], [c for c in breaks if a < c < b], [b]]))
        ta, tb = np.log(cuts[:-1]), np.log(cuts[1:])
        n_sub = np.maximum(1, np.ceil((tb - ta) / (max_width_dex * np.log(10)))).astype(int)
        t_edges = np.concatenate([np.linspace(s, t, k + 1)[:-1] for s, t, k in
                                  zip(ta, tb, n_sub, strict=True)] + [[tb[-1]]])
        half = np.diff(t_edges)[:, None] / 2
        t = (t_edges[:-1, None] + half * (x[None] + 1)).ravel()
        nodes.append(np.exp(t))
        weights.append((half * w[None]).ravel() * np.exp(t))
    size = max(len(n) for n in nodes)
    pad = lambda arrs, v: np.stack([np.pad(a, (0, size - a.size), constant_values=v)  # noqa: E731
                                    for a in arrs])
    return pad(nodes, 1.0), pad(weights, 0.0)
