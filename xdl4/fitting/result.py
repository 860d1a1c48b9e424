"""The outcome of a fit: values, errors, covariance as xarray objects."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr


@dataclass(repr=False)
class FitResult:
    """Outcome of :func:`fit` (the same numbers are written into the models).

    ``parameters``: Dataset on ``parameter`` ("model.param" labels) with ``value``,
    ``error``, ``unit``, ``min``, ``max``, ``frozen`` (and ``errn``, ``errp`` after MINOS);
    ``covariance``: DataArray (``parameter_1``, ``parameter_2``) in parameter units, zero for
    frozen parameters, linked labels sharing rows; ``minuit``: the iminuit object (of the
    last MIGRAD / HESSE run). How it got there: ``attempts`` (one dict per MIGRAD or HESSE
    run: ``step``, ``strategy``, ``valid``, ``accurate``, ``nfev``, ``edm``, ``reason``),
    ``bad_calls`` (NaN / infinite statistics stepped back from), ``irf_interpolation``,
    ``default_bounds`` (bounds the fit gave to unbounded source positions, by label; also
    in ``parameters.min/max``), ``gradient`` (None when MIGRAD computed it numerically,
    else the ``analytic`` and ``numeric`` labels, gradient ``calls`` and the single-dataset
    ``dataset_evals`` of its finite differences; ``nfev`` counts full evaluations only).
    """

    success: bool
    message: str
    nfev: int
    total_stat: float
    minuit: Any = field(default=None)
    _columns: dict = field(default_factory=dict)
    _cov: np.ndarray | None = None
    attempts: list = field(default_factory=list)
    bad_calls: int = 0
    irf_interpolation: str | None = None
    default_bounds: dict = field(default_factory=dict)
    gradient: dict | None = None

    @property
    def strategy(self) -> int | None:
        """MIGRAD strategy of the run that gave the result (after any retries)."""
        runs = [a for a in self.attempts if a["step"] == "migrad"]
        return runs[-1]["strategy"] if runs else None

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
