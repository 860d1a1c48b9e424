"""Likelihood profiles of a norm, many at once: the shared engine of the estimators.

With every other parameter frozen, the statistic of a group of bins (an energy bin of a
flux point, a time bin of a light curve, a pixel of a TS map) depends on the source norm
``x`` only through ``mu_i = b_i + x s_i`` in each bin (for WStat through the signal
``o_i + x s_i``, the background being profiled bin by bin). A :class:`NormProfile` holds
those bins for all groups at once, each bin tagged with its group, and evaluates the
statistic, its derivative and curvature for a vector of norms (one per group) as a few
numpy operations. The solvers below then run vectorised over all groups:

* :func:`best_fit`: Newton steps on the derivative, safeguarded by a bracket (bisection
  when a step leaves it), from a bracket found by doubling steps;
* :func:`crossing`: where the profile rises by ``delta`` above its minimum, on either
  side (Illinois false position, bisection where a value is not finite), which gives
  asymmetric errors (``delta = n_sigma**2``) and upper limits (``n_sigma_ul**2``);
* scans are a broadcast evaluation on a (groups, scan) grid.

Any object with ``stat(x)`` (and ``n_groups``) works with :func:`crossing` (the
``reoptimize`` path of the flux points uses fits there).
"""

from __future__ import annotations

import numpy as np

from ._core import cash, wstat, wstat_background

TRUNCATION = 1e-25  # gammapy's floor of the predicted counts in cash
#: largest excursion from the best fit searched for error roots (gammapy's conf_min/max:
#: 1e5 x max(1, |value|))
CONF_RANGE = 1e5


def _group_sum(values: np.ndarray, starts: np.ndarray, nonempty: np.ndarray,
               n_groups: int) -> np.ndarray:
    """Sums of consecutive runs of ``values`` (rows sorted by group) per group."""
    out = np.zeros((n_groups,) + values.shape[1:])
    if values.shape[0]:
        out[nonempty] = np.add.reduceat(values, starts[nonempty], axis=0)
    return out


class NormProfile:
    """Statistic of each group as a function of its own norm (see the module docstring).

    ``cash``: dict of 1D arrays ``n, b, s, g`` (counts, predicted counts without the
    source, the source's counts at norm 1, group index); ``wstat``: ``n_on, n_off,
    alpha, o, s, g``; ``const``: per-group statistic of bins the norm does not change.
    """

    def __init__(self, n_groups: int, cash: dict | None = None, wstat: dict | None = None,
                 const: np.ndarray | None = None):
        self.n_groups = n_groups
        self.const = np.zeros(n_groups) if const is None else np.asarray(const, float)
        self.parts = {}
        n_active = np.zeros(n_groups, int)
        for name, part in (("cash", cash), ("wstat", wstat)):
            if part is None or len(part["g"]) == 0:
                continue
            order = np.argsort(part["g"], kind="stable")
            p = {k: np.asarray(v)[order] for k, v in part.items()}
            counts = np.bincount(p["g"], minlength=n_groups)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            p["_starts"], p["_nonempty"] = starts, counts > 0
            n_active += counts
            self.parts[name] = p
        #: groups whose statistic depends on the norm at all
        self.active = n_active > 0
        self.x_dom = self._domain()

    def _domain(self) -> np.ndarray:
        """Lowest norm of each group's continuous domain: where a bin with counts (cash)
        reaches zero predicted counts (-inf when there is none)."""
        lo = np.full(self.n_groups, -np.inf)
        p = self.parts.get("cash")
        if p is not None:
            use = (p["n"] > 0) & (p["s"] > 0)
            if np.any(use):
                np.maximum.at(lo, p["g"][use], -p["b"][use] / p["s"][use])
        return lo

    def _x(self, p: dict, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, float)[p["g"]]

    def _sum(self, p: dict, values: np.ndarray) -> np.ndarray:
        return _group_sum(values, p["_starts"], p["_nonempty"], self.n_groups)

    def stat(self, x) -> np.ndarray:
        """Statistic per group at norms ``x`` (n_groups,) or (n_groups, m) -> same shape."""
        x = np.asarray(x, float)
        out = np.broadcast_to(self.const.reshape((-1,) + (1,) * (x.ndim - 1)),
                              x.shape).copy()
        for name, p in self.parts.items():
            xi = self._x(p, x)
            if name == "cash":
                mu = p["b"].reshape((-1,) + (1,) * (x.ndim - 1)) + xi * \
                    p["s"].reshape((-1,) + (1,) * (x.ndim - 1))
                terms = cash(p["n"].reshape((-1,) + (1,) * (x.ndim - 1)),
                             np.maximum(mu, 0.0))
            else:
                shp = (-1,) + (1,) * (x.ndim - 1)
                terms = wstat(p["n_on"].reshape(shp), p["n_off"].reshape(shp),
                              p["alpha"].reshape(shp),
                              p["o"].reshape(shp) + xi * p["s"].reshape(shp))
            out += self._sum(p, terms)
        return out

    def derivatives(self, x) -> tuple[np.ndarray, np.ndarray]:
        """First and second derivative of the statistic per group at norms ``x`` (n_groups,)."""
        x = np.asarray(x, float)
        d1 = np.zeros(self.n_groups)
        d2 = np.zeros(self.n_groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            for name, p in self.parts.items():
                xi = self._x(p, x)
                s = p["s"]
                if name == "cash":
                    mu = p["b"] + xi * s
                    ok = mu > TRUNCATION
                    n = p["n"]
                    g1 = np.where(ok, 2 * s * (1 - np.where(n > 0, n / mu, 0.0)), 0.0)
                    g2 = np.where(ok & (n > 0), 2 * n * s * s / (mu * mu), 0.0)
                else:
                    n_on, n_off, a = p["n_on"], p["n_off"], p["alpha"]
                    mu = p["o"] + xi * s
                    mu_on = mu + wstat_background(n_on, n_off, a, mu)
                    g1 = 2 * s * (1 - np.where(n_on > 0, n_on / mu_on, 0.0))
                    g2 = 2 * s * s * np.where(n_on > 0, n_on / (mu_on * mu_on), 0.0) * \
                        _dmu_on(n_on, n_off, a, mu)
                d1 += self._sum(p, g1)
                d2 += self._sum(p, g2)
        return d1, d2


def _dmu_on(n_on, n_off, alpha, mu_sig) -> np.ndarray:
    """d(mu_sig + alpha mu_b) / d mu_sig for the profiled WStat background."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = alpha
        c = a * (n_on + n_off) - (1 + a) * mu_sig
        d = np.sqrt(c * c + 4 * a * (1 + a) * n_off * mu_sig)
        regular = 0.5 * (1 + (2 * a * n_off - c) / d)
        zero_off = np.where(n_on / (1 + a) - mu_sig / a > 0, 0.0, 1.0)
        out = np.where(n_off > 0, regular, zero_off)
        out = np.where(a == 0, 1.0, out)
        out = np.where(np.isinf(a), np.where(mu_sig > n_on, 1.0, 0.0), out)
    return np.where(np.isfinite(out), out, 1.0)


# -- solvers, vectorised over groups -------------------------------------------------------

def best_fit(profile: NormProfile, x0=None, tol: float = 1e-12, max_iter: int = 100
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Norm minimising each group's statistic: (norm, success, iterations).

    Groups whose statistic does not depend on the norm get NaN. When the statistic keeps
    falling as the norm decreases (no counts where the source predicts any) the norm is
    the largest minimiser, ``success`` False.
    """
    n = profile.n_groups
    act = profile.active
    x_dom = profile.x_dom
    x = np.ones(n) if x0 is None else np.array(np.broadcast_to(x0, (n,)), float)
    x = np.where(np.isfinite(x), x, 1.0)
    finite_dom = np.where(np.isfinite(x_dom), x_dom, 0.0)
    x = np.where(x > x_dom, x, finite_dom + np.maximum(1.0, np.abs(finite_dom)))
    g, _ = profile.derivatives(x)
    lo = np.where(g < 0, x, -np.inf)
    hi = np.where(g > 0, x, np.inf)
    exact = act & (g == 0)
    niter = np.zeros(n, int)
    # bracket: double the step away from x0 (halve the distance to the edge of the
    # domain below it) until the derivative changes sign
    step = np.maximum(1.0, np.abs(x))
    for k in range(1, 64):
        need_hi = act & ~exact & ~np.isfinite(hi)
        need_lo = act & ~exact & ~np.isfinite(lo)
        if not (need_hi.any() or need_lo.any()):
            break
        up = x + step * 2.0 ** k
        down = np.where(np.isfinite(x_dom), finite_dom + (x - finite_dom) * 2.0 ** -k,
                        x - step * 2.0 ** k)
        trial = np.where(need_hi, up, np.where(need_lo, down, x))
        gt, _ = profile.derivatives(trial)
        need = need_hi | need_lo
        hi = np.where(need & (gt > 0), trial, hi)
        lo = np.where(need & (gt < 0), trial, lo)
        zero = need & (gt == 0)
        x = np.where(zero, trial, x)
        exact |= zero
        niter += need
    bracketed = act & ~exact & np.isfinite(lo) & np.isfinite(hi)
    # start from the low end: the cash derivative is concave, so Newton steps from below
    # approach the root monotonically
    x = np.where(bracketed, lo, x)
    done = ~bracketed
    converged = np.zeros(n, bool)
    for _ in range(max_iter):
        run = ~done
        if not run.any():
            break
        g, c = profile.derivatives(x)
        lo = np.where(run & (g < 0), x, lo)
        hi = np.where(run & (g > 0), x, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = x - g / c
        bad = ~np.isfinite(xn) | (xn <= lo) | (xn >= hi)
        with np.errstate(invalid="ignore"):
            xn = np.where(bad, 0.5 * (lo + hi), xn)
        size = tol * np.maximum(1.0, np.abs(x))
        conv = (np.abs(xn - x) <= size) | (g == 0) | (hi - lo <= size)
        x = np.where(run, xn, x)
        niter += run
        converged |= run & conv
        done |= run & conv
    success = exact | converged
    # no sign change downwards: the statistic falls for ever (all-zero counts)
    degenerate = act & ~exact & ~np.isfinite(lo)
    x = np.where(degenerate, _plateau_edge(profile), x)
    x = np.where(act & (success | degenerate), x, np.nan)
    return x, success & ~degenerate, niter


def _plateau_edge(profile: NormProfile) -> np.ndarray:
    """Largest norm at which every source bin of a group predicts zero counts."""
    out = np.full(profile.n_groups, np.nan)
    p = profile.parts.get("cash")
    if p is not None:
        use = p["s"] > 0
        np.fmin.at(out, p["g"][use], -p["b"][use] / p["s"][use])
    return out


def crossing(profile, x_best: np.ndarray, stat_best: np.ndarray, delta: float, side: int,
             scale: np.ndarray | None = None, tol: float = 1e-10, max_iter: int = 200
             ) -> np.ndarray:
    """Norm where each group's profile rises ``delta`` above ``stat_best``, above
    (``side=+1``) or below (``side=-1``) ``x_best``; NaN where it does not within
    gammapy's confidence range (1e5 x max(1, |x_best|)) or where ``x_best`` is NaN."""
    n = profile.n_groups
    x_best = np.asarray(x_best, float)
    target = np.asarray(stat_best, float) + delta
    ok = np.isfinite(x_best) & np.isfinite(target)
    xb = np.where(ok, x_best, 0.0)
    scale = np.ones(n) if scale is None else np.asarray(scale, float)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 0.1 * np.maximum(1.0, np.abs(xb)))
    limit = CONF_RANGE * np.maximum(1.0, np.abs(xb))

    def h(x):
        with np.errstate(invalid="ignore", over="ignore"):
            v = profile.stat(x) - target
        return np.where(np.isnan(v), np.inf, v)  # beyond the domain counts as "above"

    a, fa = xb.copy(), np.where(ok, -delta, np.nan)
    b, fb = xb.copy(), np.full(n, np.nan)
    found = ~ok
    for k in range(64):
        need = ~found
        if not need.any():
            break
        dist = np.minimum(scale * 2.0 ** k, limit)
        trial = xb + side * dist
        ft = h(np.where(need, trial, xb))
        hit = need & (ft > 0)
        b = np.where(hit, trial, b)
        fb = np.where(hit, ft, fb)
        below = need & ~hit
        a = np.where(below, trial, a)  # tighten the other end of the bracket
        fa = np.where(below, ft, fa)
        found |= hit | (need & (dist >= limit))
    valid = ok & np.isfinite(b) & (fb > 0)
    done = ~valid
    for _ in range(max_iter):
        run = ~done
        if not run.any():
            break
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            c = b - fb * (b - a) / (fb - fa)
        inside = np.isfinite(c) & ((c - a) * (c - b) < 0)
        c = np.where(inside, c, 0.5 * (a + b))
        fc = h(np.where(run, c, xb))
        flip = run & ((fc > 0) != (fb > 0))
        # Illinois: keep the bracket; halve the stale end's value when not flipping
        a_new = np.where(flip, b, a)
        fa_new = np.where(flip, fb, 0.5 * fa)
        a, fa = np.where(run, a_new, a), np.where(run, fa_new, fa)
        b, fb = np.where(run, c, b), np.where(run, fc, fb)
        conv = (np.abs(b - a) <= tol * np.maximum(1.0, np.abs(b))) | (fc == 0)
        done |= run & conv
    return np.where(valid, b, np.nan)
