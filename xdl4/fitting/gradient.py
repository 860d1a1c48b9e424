"""The gradient of the joint statistic for MIGRAD: analytic where it is cheap.

For a Cash dataset the statistic is ``2 sum_bins (mu - n ln mu)``, so

    d stat / d theta = sum_bins W d mu / d theta,    W = 2 (1 - n / mu)   (0 off the mask)

A source's predicted counts are *linear* in its spectrum integrated over the true-energy
bins, F_t: mu = L(F) with L the folding (exposure x morphology x PSF, EDISP, a reco-energy
PSF). Hence for any spectral parameter

    d stat / d theta = sum_t (d F_t / d theta) g_t,     g_t = (L^T W)_t

One adjoint pass g (the cost of one spectral evaluation of the folding) serves every
spectral parameter of the source; d F / d theta are central differences of the spectral
integral alone (a few numbers, no dataset involved). FoV background norms likewise:
mu_b = background x norm(E_r), so d stat / d theta = sum_r (d norm_r / d theta) h_r with
h_r = sum_p W background. The other parameters (positions, morphology, parameters seen by
on/off or flux-point datasets) get central finite differences of the statistic of the
datasets they touch only. Priors: finite differences of the prior term.

``fit(..., grad=True)`` passes this to MIGRAD (``Minuit(grad=...)``); the default
(``grad=None``) uses it when at least half of the free parameters are analytic (see
docs/fitting.md for the measurements behind that rule).
"""

from __future__ import annotations

import numpy as np

from xdl4.kinds.counts import CashEvaluator
from xdl4.stats import TRUNCATION

#: relative step of the central differences of spectral integrals and background norms
SPECTRAL_STEP = 1e-6
#: step of the statistic's finite differences, as a fraction of the initial MIGRAD step
NUMERIC_STEP = 1e-3


def _value_step(p) -> float:
    return SPECTRAL_STEP * (abs(p.value) if p.value != 0 else 1.0)


class Gradient:
    """d stat / d factor of a :class:`~xdl4.fitting.Likelihood` over the free parameters
    ``free`` (a :class:`~xdl4.fitting.parameters._Free`), ``steps`` MIGRAD's initial steps
    (factor space). Call it with Minuit's factors. ``analytic`` / ``numeric``: the labels
    of each kind; ``ncalls``, ``nterm_evals``: work done (finite-difference evaluations
    of single datasets)."""

    def __init__(self, lik, free, steps) -> None:
        self.lik, self.free = lik, free
        self.h = np.abs(np.asarray(steps, float)) * NUMERIC_STEP
        index = {id(p): i for i, p in enumerate(free.params)}
        self.plans = []
        analytic: set[int] = set()
        numeric: set[int] = set()
        for term in lik.terms:
            # the models the fit routed to it
            sources, background = term.sources(None), term.background_model(None)
            touched = {index[id(p)] for m in term.bound_models() for p in m.parameters
                       if id(p) in index}
            spec: list[tuple] = []
            bkg: list[tuple[int, object]] = []
            if isinstance(term, CashEvaluator):  # the folding the adjoint handles
                for m in sources:
                    pars = [(index[id(p)], p) for p in m.spectral.parameters if id(p) in index]
                    if pars:
                        spec.append((m, pars))
                if background is not None and getattr(background, "spatial", None) is None:
                    bkg = [(index[id(p)], p) for p in background.spectral.parameters
                           if id(p) in index]
            done = {i for _, pars in spec for i, _ in pars} | {i for i, _ in bkg}
            self.plans.append((term, spec, bkg, sorted(touched - done)))
            analytic |= done
            numeric |= touched - done
        # a parameter is analytic only if every dataset it touches gives it analytically
        self.analytic_index = sorted(analytic - numeric)
        self.analytic = [free.labels[i] for i in self.analytic_index]
        self.numeric = [lab for i, lab in enumerate(free.labels) if i not in analytic - numeric]
        self.priors = [i for i, p in enumerate(free.params) if p.prior is not None]
        self.ncalls = 0
        self.nterm_evals = 0

    @property
    def fraction_analytic(self) -> float:
        return len(self.analytic) / max(len(self.free.labels), 1)

    def __call__(self, factors) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # excursions
            return self._gradient(factors)

    def _gradient(self, factors) -> np.ndarray:
        self.ncalls += 1
        x = np.array(factors, dtype=float)
        free, models = self.free, self.lik.models
        free.set(x)
        grad = np.zeros(x.size)  # d stat / d value for analytic entries, d / d factor else
        jac = free.jacobian(x)
        numeric_factor = np.zeros(x.size)
        for term, spec, bkg, num in self.plans:
            if spec or bkg:
                w = _cash_weights(term, models)
                for model, pars in spec:
                    g_t = adjoint(term, model, w)
                    for i, p in pars:
                        grad[i] += jac[i] * (g_t @ _flux_derivative(term, model, p))
                if bkg:
                    h_r = _background_weights(term, w)
                    for i, p in bkg:
                        grad[i] += jac[i] * (h_r @ _norm_derivative(term, p))
            for i in num:
                numeric_factor[i] += self._central(term, x, i)
        if self.priors:
            for i in self.priors:
                numeric_factor[i] += self._central(None, x, i)
        free.set(x)
        out = grad + numeric_factor
        # e.g. at a NaN statistic: no direction
        return np.where(np.isfinite(out), out, 0.0)

    def _central(self, term, x: np.ndarray, i: int) -> float:
        """d stat_term / d factor_i by central differences (term None: the priors)."""
        out = []
        for sign in (1.0, -1.0):
            y = x.copy()
            y[i] += sign * self.h[i]
            self.free.set(y)
            if term is None:
                out.append(self.lik.prior_stat())
            else:
                self.nterm_evals += 1
                out.append(term.stat_sum(self.lik.models))
        return (out[0] - out[1]) / (2 * self.h[i])



def _cash_weights(term, models) -> np.ndarray:
    """W = d stat / d mu = 2 (1 - n / mu) on the fit mask (0 elsewhere and where mu sits
    at the statistic's floor)."""
    sig = term.npred_signal(models)
    total = sig + term.npred_background(models)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = 2.0 * (1.0 - term.counts / total)
    return np.where(term.mask & (total > TRUNCATION), w, 0.0)


def adjoint(term, model, w: np.ndarray) -> np.ndarray:
    """g_t = sum_bins W d mu / d F_t for one source of an Evaluator, F_t its spectrum
    integrated over true-energy bin t (the transpose of the folding applied to W),
    from the evaluator's caches at the current parameter values."""
    from xdl4.forward import _convert_position

    cache = term._cache[model.name]
    folded, edisp, box = cache["folded"], cache["edisp"], cache["box"]
    scale = cache["unit"]
    if model.temporal is not None:
        scale = scale * term.temporal_norm(model)
    if not term.is_map:  # region: (runs,) true energy -> (runs,) reco energy
        g = np.einsum("...tr,...r,...t->...t", edisp, w, folded[..., 0] * scale)
        return g.reshape(-1, g.shape[-1]).sum(axis=0)
    if folded.size == 0:
        return np.zeros(folded.shape[0])
    if term.psf_axis == "energy" and model.apply_irf["psf"]:
        big = cache["box_reco"]
        kern = term.psf_kernels(*_convert_position(model, term.grid.frame))
        # c[r, p] = sum_p' W[r, p'] K_r(p' - p) on the pre-PSF box
        c = correlate(w[:, big[0], big[1]], kern, folded, box, big)
    else:
        c = w[:, box[0], box[1]]
    a = np.einsum("rp,tp->rt", c.reshape(c.shape[0], -1),
                  folded.reshape(folded.shape[0], -1))
    return np.einsum("tr,rt->t", edisp, a) * scale


def correlate(w_big: np.ndarray, kern: np.ndarray, folded: np.ndarray, box: tuple,
              big: tuple) -> np.ndarray:
    """The reco-PSF adjoint: sum_p W[r, p] K_r(p - q) for the pixels q of the pre-PSF
    ``box`` (inside the post-PSF box ``big``): at a point source's few pixels directly,
    else by FFT."""
    n, bh, bw = w_big.shape
    h = kern.shape[-1] // 2
    oy, ox = box[0].start - big[0].start, box[1].start - big[1].start
    hy, hx = box[0].stop - box[0].start, box[1].stop - box[1].start
    nz = np.argwhere(np.any(folded != 0, axis=0))
    out = np.zeros((n, hy, hx))
    if len(nz) <= 16:
        for y, x in nz:
            yb, xb = y + oy, x + ox
            y0, y1 = max(yb - h, 0), min(yb + h + 1, bh)
            x0, x1 = max(xb - h, 0), min(xb + h + 1, bw)
            out[:, y, x] = np.einsum("rij,rij->r", w_big[:, y0:y1, x0:x1],
                                     kern[:, y0 - yb + h:y1 - yb + h, x0 - xb + h:x1 - xb + h])
        return out
    from scipy.signal import fftconvolve

    full = fftconvolve(w_big, kern[:, ::-1, ::-1], mode="same", axes=(1, 2))
    return full[:, oy:oy + hy, ox:ox + hx]


def _flux_derivative(term, model, p) -> np.ndarray:
    """d F_t / d value of parameter p (central difference of the spectral integral)."""
    v, d = p.value, _value_step(p)
    try:
        p.value = v + d
        hi = model.spectral.integral_bins(term.e_true)
        p.value = v - d
        lo = model.spectral.integral_bins(term.e_true)
    finally:
        p.value = v
    return (hi - lo) / (2 * d)


def _background_weights(term, w: np.ndarray) -> np.ndarray:
    """h_r = sum_p W background (per reco energy)."""
    base = np.broadcast_to(term.background, w.shape) if term.background is not None else \
        np.zeros(w.shape)
    prod = w * base
    return prod.reshape(prod.shape[0], -1).sum(axis=1) if term.is_map else prod.reshape(
        -1, prod.shape[-1]).sum(axis=0)


def _norm_derivative(term, p) -> np.ndarray:
    """d norm_r / d value of a FoV background parameter (central difference)."""
    v, d = p.value, _value_step(p)
    bkg = term.background_model(None)
    try:
        p.value = v + d
        hi = bkg.evaluate_bins(term.e_reco_center)
        p.value = v - d
        lo = bkg.evaluate_bins(term.e_reco_center)
    finally:
        p.value = v
    return (hi - lo) / (2 * d)


def check(gradient: Gradient, factors, rel_step: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """(gradient, central differences of the whole statistic) at ``factors``, for tests."""
    x = np.array(factors, float)
    g = gradient(x)
    num = np.empty(x.size)
    for i in range(x.size):
        h = rel_step * max(abs(x[i]), 1e-3)
        vals = []
        for s in (1, -1):
            y = x.copy()
            y[i] += s * h
            gradient.free.set(y)
            vals.append(gradient.lik.stat())
        num[i] = (vals[0] - vals[1]) / (2 * h)
    gradient.free.set(x)
    return g, num

