"""Parameter priors as gammapy 2.1 defines them: a prior adds ``weight x (-2 ln pdf(value))``
to the joint fit statistic (``value`` in the parameter's own unit), and a uniform or
log-uniform prior also bounds the parameter.

A prior is kept as gammapy's YAML dict (``Parameter.prior``); the closed forms below equal
scipy's ``norm``, ``uniform``, ``loguniform`` and ``gennorm`` log-densities (tested).
Priors of frozen parameters count too (a constant), as in gammapy; a parameter shared by
links counts once (gammapy adds its prior once per model that holds it).

>>> from xdl4.models.prior import prior_stat
>>> prior = {"type": "GaussianPrior", "weight": 1,
...          "parameters": [{"name": "mu", "value": 2.0}, {"name": "sigma", "value": 0.5}]}
>>> round(prior_stat(prior, 2.5), 6)  # 1 + ln(2 pi 0.25)
1.451583
"""

from __future__ import annotations

import math

from xdl4.errors import ModelError

#: prior type -> its parameters and their defaults (gammapy's)
PRIOR_PARAMETERS: dict[str, dict[str, float]] = {
    "GaussianPrior": {"mu": 0.0, "sigma": 1.0},
    "UniformPrior": {"min": 0.0, "max": 1.0},
    "LogUniformPrior": {"min": 1e-14, "max": 1e-10},
    "GeneralizedGaussianPrior": {"mu": 0.0, "sigma": 1.0, "eta": 0.5},
}


def prior_parameters(prior: dict) -> tuple[str, dict[str, float], float]:
    """(type, {parameter: value}, weight) of a prior dict; a clear error for bad ones."""
    prior_type = prior.get("type") if isinstance(prior, dict) else None
    if prior_type not in PRIOR_PARAMETERS:
        raise ModelError(f"unknown prior type {prior_type!r}: expected one of "
                         f"{list(PRIOR_PARAMETERS)}")
    values = dict(PRIOR_PARAMETERS[prior_type])
    for par in prior.get("parameters") or []:
        if par.get("name") not in values:
            raise ModelError(f"{prior_type}: unknown parameter {par.get('name')!r} "
                             f"(expected {list(values)})")
        values[par["name"]] = float(par["value"])
    return prior_type, values, float(prior.get("weight", 1.0))


def prior_stat(prior: dict, value: float) -> float:
    """``weight x (-2 ln pdf(value))``; ``inf`` outside a uniform prior's support."""
    prior_type, p, weight = prior_parameters(prior)
    if prior_type == "GaussianPrior":
        stat = ((value - p["mu"]) / p["sigma"]) ** 2 + math.log(2 * math.pi * p["sigma"] ** 2)
    elif prior_type == "UniformPrior":
        inside = p["min"] <= value <= p["max"]
        stat = 2 * math.log(p["max"] - p["min"]) if inside else math.inf
    elif prior_type == "LogUniformPrior":
        inside = p["min"] <= value <= p["max"]
        stat = 2 * (math.log(value) + math.log(math.log(p["max"] / p["min"]))) if inside \
            else math.inf
    else:  # GeneralizedGaussianPrior: scipy gennorm(beta=1/eta, mu, sigma sqrt(2))
        beta, scale = 1 / p["eta"], p["sigma"] * math.sqrt(2)
        log_pdf = (math.log(beta / (2 * scale)) - math.lgamma(1 / beta)
                   - abs((value - p["mu"]) / scale) ** beta)
        stat = -2 * log_pdf
    return weight * stat


def prior_bounds(prior: dict | None) -> tuple[float, float] | None:
    """(min, max) a uniform or log-uniform prior imposes on its parameter (as gammapy's
    ``Parameter.min`` / ``max``), else None."""
    if prior is None:
        return None
    prior_type, p, _ = prior_parameters(prior)
    return (p["min"], p["max"]) if prior_type in ("UniformPrior", "LogUniformPrior") else None
