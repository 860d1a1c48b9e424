"""Fit statistics (all -2 ln L up to constants) and counts statistics for info().

One table of edge cases, each tested in ``tests/test_stats.py``:

============================  ===============================================================
case                          xdl4 (gammapy 2.1 where different)
============================  ===============================================================
cash, mu -> 0                 mu floored at 1e-25 (as gammapy)
cash, n = 0                   term is 2 mu (0 * ln mu := 0)
wstat, n_on = 0               log and extra terms of n_on dropped; mu_b = n_off/(1+alpha)
wstat, n_off = 0              mu_b = max(0, n_on/(1+alpha) - mu_sig/alpha); ln mu_b dropped
wstat, n_on = n_off = 0       2 mu_sig
wstat, alpha = 0              limit alpha -> 0: background = 0, W = cash(n_on, mu_sig) with
                              the extra terms (gammapy: NaN silently turned into 0)
wstat, mu_sig < 0             allowed: the profiled mu_b keeps mu_sig + alpha mu_b > 0;
                              an impossible given mu_bkg costs +inf (gammapy: NaN -> 0)
wstat, alpha = inf            acceptance_off = 0 (merged bins without OFF counts): limit
                              alpha -> inf, the ON background is free: b = max(0, n_on -
                              mu_sig), W = 0 if n_on >= mu_sig, else cash(n_on, mu_sig)
                              with the extra terms; n_off > 0 is impossible: +inf
                              (gammapy: NaN turned into 0, whatever mu_sig)
============================  ===============================================================
"""

from __future__ import annotations

import numpy as np

from xdl4.errors import ArgumentError

TRUNCATION = 1e-25


def cash(n, mu) -> np.ndarray:
    """Cash statistic per bin, 2 (mu - n ln mu), mu floored at 1e-25.

    >>> float(cash(2.0, 2.0))
    1.2274112777602189
    """
    n = np.asarray(n, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), TRUNCATION)
    return 2.0 * (mu - np.where(n > 0, n * np.log(mu), 0.0))


def _xlogx(x):
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0)


def wstat_mu_bkg(n_on, n_off, alpha, mu_sig) -> np.ndarray:
    """Profile-likelihood estimate of the expected OFF counts for fixed mu_sig.

    >>> float(wstat_mu_bkg(0, 10, 0.25, 1.0))
    8.0
    """
    n_on, n_off, alpha, mu_sig = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (n_on, n_off, alpha, mu_sig)))
    with np.errstate(divide="ignore", invalid="ignore"):
        c = alpha * (n_on + n_off) - (1 + alpha) * mu_sig
        d = np.sqrt(c**2 + 4 * alpha * (1 + alpha) * n_off * mu_sig)
        mu_b = (c + d) / (2 * alpha * (1 + alpha))
        # exact limits where the closed form is 0/0 or loses precision
        mu_b = np.where(mu_sig == 0, (n_on + n_off) / (1 + alpha), mu_b)
        mu_b = np.where(n_off == 0, np.maximum(0.0, n_on / (1 + alpha) - mu_sig / alpha), mu_b)
        mu_b = np.where(alpha == 0, n_off, mu_b)
        mu_b = np.where(np.isinf(alpha), 0.0, mu_b)  # no OFF exposure: no OFF expectation
    return np.where(np.isfinite(mu_b), mu_b, 0.0)


def wstat_background(n_on, n_off, alpha, mu_sig) -> np.ndarray:
    """The profiled ON background ``alpha x mu_b``; for alpha = inf its limit
    ``max(0, n_on - mu_sig)``.

    >>> float(wstat_background(10, 0, np.inf, 3.0))
    7.0
    """
    n_on, n_off, alpha, mu_sig = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (n_on, n_off, alpha, mu_sig)))
    inf = np.isinf(alpha)
    finite = np.where(inf, 0.0, alpha) * wstat_mu_bkg(n_on, n_off, alpha, mu_sig)
    return np.where(inf, np.maximum(0.0, n_on - mu_sig), finite)


def wstat(n_on, n_off, alpha, mu_sig, mu_bkg=None) -> np.ndarray:
    """WStat per bin (Poisson ON and OFF with the background profiled out), including
    gammapy's "extra terms" so that the minimum is near 0 for a perfect model.

    >>> round(float(wstat(5, 0, 0.2, 2.0)), 4)
    3.1629
    """
    n_on, n_off, alpha, mu_sig = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (n_on, n_off, alpha, mu_sig)))
    inf = np.isinf(alpha)
    if inf.any():  # the alpha -> inf limit (edge-case table), the rest as usual
        mu_on = np.maximum(n_on, mu_sig)
        with np.errstate(divide="ignore", invalid="ignore"):
            limit = 2 * (mu_on - np.where(n_on > 0, n_on * np.log(mu_on), 0.0)
                         + _xlogx(n_on) - n_on)
        limit = np.where(n_off > 0, np.inf, limit)
        alpha = np.where(inf, 1.0, alpha)
        rest = wstat(n_on, n_off, alpha, mu_sig,
                     None if mu_bkg is None else np.where(inf, 0.0, mu_bkg))
        return np.where(inf, limit, rest)
    if mu_bkg is None:
        mu_bkg = wstat_mu_bkg(n_on, n_off, alpha, mu_sig)
    mu_on = mu_sig + alpha * mu_bkg
    with np.errstate(divide="ignore", invalid="ignore"):
        term_on = np.where(n_on > 0, n_on * np.log(np.where(mu_on > 0, mu_on, np.nan)), 0.0)
        term_off = np.where(n_off > 0, n_off * np.log(np.where(mu_bkg > 0, mu_bkg, np.nan)),
                            0.0)
    extra = _xlogx(n_on) - n_on + _xlogx(n_off) - n_off
    w = 2 * (mu_sig + (1 + alpha) * mu_bkg - term_on - term_off + extra)
    # a non-positive ON expectation with observed counts is impossible: infinite cost;
    # a NaN model stays NaN (never hidden)
    return np.where(np.isnan(w) & ~np.isnan(mu_sig), np.inf, w)


# -- the on/off exposure ratio ---------------------------------------------------------------

#: what alpha is in a bin with ON acceptance but no OFF acceptance (acceptance_off = 0):
#: ``"inf"`` in the likelihood (the alpha -> inf limit of the edge-case table: the ON
#: background is free), ``"zero"`` in summaries, stacking and merging (no OFF background)
NO_OFF = ("inf", "zero")


def _where(cond, x, other):
    """``x`` where ``cond`` else ``other``, for numpy arrays and xarray objects alike."""
    return x.where(cond, other) if hasattr(x, "dims") else np.where(cond, x, other)


def alpha(acceptance, acceptance_off, no_off: str = "zero"):
    """The on/off exposure ratio ``acceptance / acceptance_off`` (numpy or xarray): 0
    where there is no acceptance at all; where only the OFF acceptance is 0, ``no_off``
    (:data:`NO_OFF`) decides.

    >>> alpha(np.array([1.0, 1.0, 0.0]), np.array([4.0, 0.0, 0.0]), no_off="inf").tolist()
    [0.25, inf, 0.0]
    >>> alpha(np.array([1.0, 1.0, 0.0]), np.array([4.0, 0.0, 0.0])).tolist()
    [0.25, 0.0, 0.0]
    """
    if no_off not in NO_OFF:
        raise ArgumentError(f"no_off must be one of {NO_OFF}, got {no_off!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = acceptance / acceptance_off
    keep = ~np.isnan(ratio) if no_off == "inf" else np.isfinite(ratio)
    return _where(keep, ratio, 0.0)


def merged_acceptance_off(acceptance, counts_off, off_background):
    """The ``acceptance_off`` of merged on/off bins (or runs): the one whose alpha turns the
    merged OFF counts into the merged OFF background ``sum(alpha x counts_off)``; 0 where
    there is none (gammapy's rule when merging bins).

    >>> merged_acceptance_off(np.array([2.0, 2.0]), np.array([10.0, 0.0]),
    ...                       np.array([4.0, 0.0])).tolist()
    [5.0, 0.0]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        out = acceptance * counts_off / off_background
    return _where(np.isfinite(out), out, 0.0)


def cash_ts(n, b) -> np.ndarray:
    """TS of an excess over known background b: 2 [n ln(n/b) - (n - b)]."""
    n, b = np.asarray(n, float), np.asarray(b, float)
    return np.clip(cash(n, b) - cash(n, n), 0, None)


def wstat_ts(n_on, n_off, alpha) -> np.ndarray:
    """Li & Ma-type TS of the ON excess over alpha * n_off."""
    excess = np.asarray(n_on, float) - np.asarray(alpha, float) * np.asarray(n_off, float)
    ts = wstat(n_on, n_off, alpha, 0.0) - wstat(n_on, n_off, alpha, excess)
    return np.clip(ts, 0, None)


def sqrt_ts(ts, excess) -> np.ndarray:
    return np.sign(excess) * np.sqrt(ts)


#: the residual methods: data - model, divided by nothing, the model or its square root
RESIDUAL_METHODS = ("diff", "diff/model", "diff/sqrt(model)")


def residuals(data, model, method: str = "diff", methods=RESIDUAL_METHODS):
    """Residuals of ``data`` against ``model`` (numpy or xarray) by ``method``, one of
    ``methods``.

    >>> residuals(np.array([4.0]), np.array([1.0]), "diff/sqrt(model)").tolist()
    [3.0]
    """
    if method not in methods:
        raise ArgumentError(f"residual method must be {', '.join(methods[:-1])} or "
                         f"{methods[-1]}, not {method!r}")
    diff = data - model
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "diff/model":
            return diff / model
        if method == "diff/sqrt(model)":
            return diff / np.sqrt(model)
    return diff


# -- hot-path forms: the constant parts of a fit's statistic prepared once -----------------

class PreparedCash:
    """Cash summed over bins with counts ``n`` (the bins of a fit mask): the positive
    counts and their indices kept, so that a call costs one log over those bins.

    >>> s = PreparedCash(np.array([0.0, 2.0]))
    >>> round(s(np.array([1.0, 2.0])), 12) == round(float(cash([0, 2], [1, 2]).sum()), 12)
    True
    """

    def __init__(self, n: np.ndarray):
        n = np.asarray(n, dtype=float)
        self.positive = n > 0
        self.n_positive = n[self.positive]

    def __call__(self, mu: np.ndarray) -> float:
        mu = np.maximum(mu, TRUNCATION)
        return float(2.0 * (mu.sum() - np.dot(self.n_positive, np.log(mu[self.positive]))))


class PreparedWStat:
    """WStat summed over bins (``n_on``, ``n_off``, ``alpha`` of a fit mask, flat) in the
    closed form of :func:`wstat` for alpha > 0, with every term that does not depend on the
    signal computed once. A call returns None where the closed form does not apply (some
    alpha not finite and positive, or a non-positive expectation): the caller then uses
    :func:`wstat`, which handles every edge case.

    >>> n_on, n_off, a = np.array([5.0, 0.0]), np.array([10.0, 3.0]), np.array([0.2, 0.2])
    >>> s = PreparedWStat(n_on, n_off, a)
    >>> mu = np.array([2.0, 0.5])
    >>> bool(np.isclose(s(mu), wstat(n_on, n_off, a, mu).sum(), rtol=1e-12))
    True
    """

    def __init__(self, n_on: np.ndarray, n_off: np.ndarray, alpha: np.ndarray):
        a = np.asarray(alpha, dtype=float)
        n_on, n_off = np.asarray(n_on, dtype=float), np.asarray(n_off, dtype=float)
        on, off = np.flatnonzero(n_on > 0), np.flatnonzero(n_off > 0)
        xlx = (n_on[on] * np.log(n_on[on])).sum() + (n_off[off] * np.log(n_off[off])).sum()
        self.applies = bool(np.all((a > 0) & np.isfinite(a)))
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            self._terms = (a, 1 + a, a * (n_on + n_off), 4 * a * (1 + a) * n_off,
                           0.5 / (a * (1 + a)), on, n_on[on], off, n_off[off],
                           float(2 * (xlx - n_on.sum() - n_off.sum())))

    def __call__(self, mu_sig: np.ndarray) -> float | None:
        if not self.applies:
            return None
        a, a1, c0, d0, inv, on, n_on, off, n_off, const = self._terms
        c = c0 - a1 * mu_sig
        mu_b = (c + np.sqrt(c * c + d0 * mu_sig)) * inv
        mu_on = mu_sig + a * mu_b
        mu_on_pos, mu_b_pos = mu_on[on], mu_b[off]
        if not (mu_on_pos.min(initial=1.0) > 0 and mu_b_pos.min(initial=1.0) > 0):
            return None  # edge cases: the general formula decides
        return float(2 * (mu_sig.sum() + a1 @ mu_b - n_on @ np.log(mu_on_pos)
                          - n_off @ np.log(mu_b_pos)) + const)
