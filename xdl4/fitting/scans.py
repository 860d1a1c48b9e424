"""Beyond the best fit: likelihood profiles, MINOS confidence intervals, contours."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from xdl4.fitting.likelihood import Likelihood, _likelihood
from xdl4.fitting.minuit import _cl, _minuit, fit
from xdl4.fitting.parameters import _Free
from xdl4.models.routing import ModelsLike


class _Saved:
    """Restore values and frozen flags of all parameters on exit."""

    def __init__(self, models: ModelsLike) -> None:
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


def stat_profile(data: Any, models: ModelsLike, parameter: str,
                 values: Sequence[float] | None = None, *, reoptimize: bool = False,
                 n_values: int = 11, n_sigma: float = 2.0, **fit_options) -> xr.Dataset:
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
    lik = _likelihood(data, models, fit_options.pop("irf_interpolation", None))
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
            others = models.parameters.free_names()
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


def confidence(data: Any, models: ModelsLike, parameters: str | Sequence[str], sigma: float = 1.0,
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
    lik = _likelihood(data, models, fit_options.pop("irf_interpolation", None))
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


def stat_contour(data: Any, models: ModelsLike, x: str, y: str, sigma: float = 1.0,
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

    lik = _likelihood(data, models, fit_options.pop("irf_interpolation", None))
    cl = _cl(sigma)
    with _Saved(lik.models):
        fit_options.setdefault("covariance", False)
        free = _Free(lik.models)  # the fit's factor scales: taken from the start values
        r = fit(lik, lik.models, **fit_options)
        m = r.minuit
        params = lik.models.parameters
        ix, iy = (free.params.index(params[label]) for label in (x, y))
        # the best fit, read before MINOS moves the parameters: mncontour leaves the
        # models at the last contour point it evaluated
        best = np.array(m.values)
        bx, by = free.values(best)[[ix, iy]]
        pts = np.asarray(m.mncontour(free.labels[ix], free.labels[iy], cl=cl, size=npoints))
        if len(pts) > 1 and np.array_equal(pts[0], pts[-1]):
            pts = pts[:-1]  # iminuit closes the curve
        vals = []
        for px, py in pts:
            f = best.copy()
            f[ix], f[iy] = px, py
            v = free.values(f)
            vals.append((v[ix], v[iy]))
        vals = np.array(vals)
        units = (params[x].unit, params[y].unit)
    return xr.Dataset({x: ("point", vals[:, 0], {"units": units[0]}),
                       y: ("point", vals[:, 1], {"units": units[1]})},
                      attrs={"kind": "stat_contour", "x": x, "y": y, "sigma": sigma,
                             "cl": cl, "delta_stat": float(chi2.ppf(cl, 2)),
                             "x_best": float(bx), "y_best": float(by),
                             "success": int(r.success)})
