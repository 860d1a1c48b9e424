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

from ._core import TRUNCATION, cash, wstat, wstat_background

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
        if "cash" in self.parts and "wstat" not in self.parts:
            p = self.parts["cash"]
            #: template sum per group (cash only: lets best_fit step in 1/F, see there)
            self.s_sum = self._sum(p, p["s"])
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

    def plateau_edge(self) -> np.ndarray:
        """Largest norm at which every source bin of a group predicts zero counts."""
        out = np.full(self.n_groups, np.nan)
        p = self.parts.get("cash")
        if p is not None:
            use = p["s"] > 0
            np.fmin.at(out, p["g"][use], -p["b"][use] / p["s"][use])
        return out

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

def _derivatives(profile, x: np.ndarray, idx: np.ndarray):
    """Derivatives at ``x[idx]`` for the groups ``idx`` (on that subset only when the
    profile can)."""
    if getattr(profile, "takes_rows", False):
        return profile.derivatives(x[idx], idx)
    d1, d2 = profile.derivatives(x)
    return d1[idx], d2[idx]


def _newton_scale(profile, g: np.ndarray, idx: np.ndarray):
    """Newton on 1/F for cash, F = sum(n s / mu) = S - g / 2 (S the template sum): the
    plain step times F / S. 1/F is nearly linear where one bin dominates (close to the
    edge of the domain, where plain Newton steps only double the distance)."""
    total = getattr(profile, "s_sum", None)
    if total is None:
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 1.0 - g / (2.0 * total[idx])
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def _stat(profile, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    if getattr(profile, "takes_rows", False):
        return profile.stat(x[idx], idx)
    return profile.stat(x)[idx]


def best_fit(profile: NormProfile, x0=None, tol: float = 1e-12, max_iter: int = 100,
             bracket: tuple | None = None, trusted: bool = False
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Norm minimising each group's statistic: (norm, success, iterations).

    ``bracket``: (lo, hi) holding the root of the derivative (checked unless ``trusted``,
    e.g. Stewart's analytic bound; groups where it does not hold are bracketed by the
    search).
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
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    exact = np.zeros(n, bool)
    niter = np.zeros(n, int)
    if bracket is not None and trusted:
        b_lo, b_hi = (np.asarray(v, float) for v in bracket)
        good = np.isfinite(b_lo) & np.isfinite(b_hi) & (b_lo <= b_hi)
        lo = np.where(good, b_lo, lo)
        hi = np.where(good, b_hi, hi)
    elif bracket is not None:  # a bracket of the root of the derivative, checked
        b_lo, b_hi = (np.asarray(v, float) for v in bracket)
        with np.errstate(invalid="ignore"):
            g_lo, _ = profile.derivatives(np.where(np.isfinite(b_lo), b_lo, x))
            g_hi, _ = profile.derivatives(np.where(np.isfinite(b_hi), b_hi, x))
        lo = np.where(np.isfinite(b_lo) & (g_lo < 0) & (b_lo > x_dom), b_lo, lo)
        hi = np.where(np.isfinite(b_hi) & (g_hi > 0), b_hi, hi)
    if not (np.isfinite(lo) & np.isfinite(hi) | ~act).all():
        g, _ = profile.derivatives(x)
        lo = np.where(~np.isfinite(lo) & (g < 0), x, lo)
        hi = np.where(~np.isfinite(hi) & (g > 0), x, hi)
        exact = act & (g == 0) & ~(np.isfinite(lo) & np.isfinite(hi))
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
    # start from the low end (the cash derivative is concave, so Newton steps from below
    # approach the root monotonically), or from x0 when it lies inside the bracket
    start = lo
    if x0 is not None:
        guess = np.array(np.broadcast_to(x0, (n,)), float)
        start = np.where(np.isfinite(guess) & (guess > lo) & (guess < hi), guess, lo)
    x = np.where(bracketed, start, x).astype(float)
    done = ~bracketed
    converged = np.zeros(n, bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(~done)
        if idx.size == 0:
            break
        xr, lo_r, hi_r = x[idx], lo[idx], hi[idx]
        g, c = _derivatives(profile, x, idx)
        lo_r = np.where(g < 0, xr, lo_r)
        hi_r = np.where(g > 0, xr, hi_r)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = g / c * _newton_scale(profile, g, idx)
        size = tol * np.maximum(1.0, np.abs(xr))
        small = np.abs(step) <= size  # converged: the step is below the tolerance
        xn = xr - step
        bad = ~small & (~np.isfinite(xn) | (xn <= lo_r) | (xn >= hi_r))
        with np.errstate(invalid="ignore"):
            xn = np.where(bad, 0.5 * (lo_r + hi_r), xn)
        conv = small | (g == 0) | (hi_r - lo_r <= size)
        x[idx], lo[idx], hi[idx] = xn, lo_r, hi_r
        niter[idx] += 1
        converged[idx] |= conv
        done[idx] |= conv
    success = exact | converged
    # no sign change downwards: the statistic falls for ever (all-zero counts)
    degenerate = act & ~exact & ~np.isfinite(lo)
    x = np.where(degenerate, profile.plateau_edge(), x)
    x = np.where(act & (success | degenerate), x, np.nan)
    return x, success & ~degenerate, niter


def crossing(profile, x_best: np.ndarray, stat_best: np.ndarray, delta: float, side: int,
             scale: np.ndarray | None = None, tol: float = 1e-10, max_iter: int = 200
             ) -> np.ndarray:
    """Norm where each group's profile rises ``delta`` above ``stat_best``, above
    (``side=+1``) or below (``side=-1``) ``x_best``; NaN where it does not within
    gammapy's confidence range (1e5 x max(1, |x_best|)) or where ``x_best`` is NaN.
    ``scale``: first step of the search (e.g. the expected distance of the root)."""
    n = profile.n_groups
    x_best = np.asarray(x_best, float)
    target = np.asarray(stat_best, float) + delta
    ok = np.isfinite(x_best) & np.isfinite(target)
    xb = np.where(ok, x_best, 0.0)
    scale = np.ones(n) if scale is None else np.asarray(scale, float)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 0.1 * np.maximum(1.0, np.abs(xb)))
    limit = CONF_RANGE * np.maximum(1.0, np.abs(xb))

    def h(xs, idx):
        full = np.zeros(n)
        full[idx] = xs
        with np.errstate(invalid="ignore", over="ignore"):
            v = _stat(profile, full, idx) - target[idx]
        return np.where(np.isnan(v), np.inf, v)  # beyond the domain counts as "above"

    a, fa = xb.copy(), np.where(ok, -delta, np.nan)
    b, fb = xb.copy(), np.full(n, np.nan)
    found = ~ok
    for k in range(64):
        idx = np.flatnonzero(~found)
        if idx.size == 0:
            break
        dist = np.minimum(scale[idx] * 2.0 ** k, limit[idx])
        trial = xb[idx] + side * dist
        ft = h(trial, idx)
        hit = ft > 0
        b[idx] = np.where(hit, trial, b[idx])
        fb[idx] = np.where(hit, ft, fb[idx])
        a[idx] = np.where(hit, a[idx], trial)  # tighten the other end of the bracket
        fa[idx] = np.where(hit, fa[idx], ft)
        found[idx] |= hit | (dist >= limit[idx])
    valid = ok & np.isfinite(b) & (fb > 0)
    return _illinois(h, a, b, fa, fb, valid, tol, max_iter)


def bracketed_root(func, a, b, tol: float = 1e-10, max_iter: int = 200) -> np.ndarray:
    """Root of ``func(x, idx)`` between ``a`` and ``b``, elementwise (arrays of any shape;
    ``func`` gets the values ``x`` of the flat elements ``idx``); NaN where the values at
    the two ends do not differ in sign (gammapy's ``find_roots`` with one bin: brentq on
    [a, b], NaN on failure)."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    shape = a.shape
    a, b = a.ravel().copy(), b.ravel().copy()
    every = np.arange(a.size)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        fa = np.asarray(func(a, every), float)
        fb = np.asarray(func(b, every), float)
    zero_a, zero_b = fa == 0, fb == 0
    valid = np.isfinite(fa) & np.isfinite(fb) & ((fa < 0) != (fb < 0)) & ~zero_a & ~zero_b
    root = _illinois(func, a, b, fa, fb, valid, tol, max_iter)
    root = np.where(zero_a, a, np.where(zero_b, b, root))
    return root.reshape(shape)


def _illinois(func, a, b, fa, fb, valid, tol, max_iter) -> np.ndarray:
    """Illinois false position on brackets [a, b] with values of opposite signs where
    ``valid`` (``func(x, idx)`` evaluates the elements ``idx`` still iterating);
    bisection where a value is not finite or the secant leaves the bracket."""
    done = ~valid
    a, b, fa, fb = (np.array(v, float) for v in (a, b, fa, fb))
    for _ in range(max_iter):
        idx = np.flatnonzero(~done)
        if idx.size == 0:
            break
        ai, bi, fai, fbi = a[idx], b[idx], fa[idx], fb[idx]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            c = bi - fbi * (bi - ai) / (fbi - fai)
            inside = np.isfinite(c) & ((c - ai) * (c - bi) < 0)
            c = np.where(inside, c, 0.5 * (ai + bi))
            fc = np.asarray(func(c, idx), float)
        fc = np.where(np.isnan(fc), np.inf, fc)
        flip = (fc > 0) != (fbi > 0)
        # Illinois: keep the bracket; halve the stale end's value when not flipping
        a[idx] = np.where(flip, bi, ai)
        fa[idx] = np.where(flip, fbi, 0.5 * fai)
        b[idx], fb[idx] = c, fc
        conv = (np.abs(c - a[idx]) <= tol * np.maximum(1.0, np.abs(c))) | (fc == 0)
        done[idx] |= conv
    return np.where(valid, b, np.nan)
