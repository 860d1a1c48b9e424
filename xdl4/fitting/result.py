"""The outcome of a fit: values, errors, covariance as xarray objects; its summaries (text
and HTML) and its files (gammapy's layout: models YAML with the fit status + covariance)."""

from __future__ import annotations

import contextlib
import functools
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdl4.errors import ModelError

#: correlation matrices of more free parameters are left out of the text summary
_MAX_TEXT_CORRELATION = 10


def parameter_columns(items: list, bounds: dict | None = None) -> dict:
    """The parameter table of a fit result from ``(label, parameter)`` pairs; ``bounds``:
    the (min, max) the fit used, by ``id(parameter)`` (default: the parameters' own)."""
    lo_hi = [(bounds or {}).get(id(p), p.bounds()) for _, p in items]
    return {"parameter": np.array([lab for lab, _ in items], dtype=object),
            "value": np.array([p.value for _, p in items], dtype=float),
            "error": np.array([p.error for _, p in items], dtype=float),
            "unit": np.array([p.unit for _, p in items], dtype=object),
            "min": np.array([b[0] for b in lo_hi], dtype=float),
            "max": np.array([b[1] for b in lo_hi], dtype=float),
            "frozen": np.array([p.frozen for _, p in items], dtype=bool)}


@dataclass(repr=False)
class FitResult:
    """Outcome of :func:`fit` (the same numbers are written into the models).

    ``parameters``: Dataset on ``parameter`` ("model.param" labels) with ``value``,
    ``error``, ``unit``, ``min``, ``max``, ``frozen`` (and ``errn``, ``errp`` after MINOS);
    ``covariance``: DataArray (``parameter_1``, ``parameter_2``) in parameter units, zero for
    frozen parameters, linked labels sharing rows; ``minuit``: the iminuit object (of the
    last MIGRAD / HESSE run); ``models``: the fitted models (the objects, which later fits
    may change: ``parameters`` keeps this fit's numbers). ``write`` / ``read`` save and
    load a fit as gammapy does. How it got there: ``attempts`` (one dict per MIGRAD or
    HESSE run: ``step``, ``strategy``, ``valid``, ``accurate``, ``nfev``, ``edm``,
    ``reason``), ``bad_calls`` (NaN / infinite statistics stepped back from),
    ``irf_interpolation``, ``default_bounds`` (bounds the fit gave to unbounded source
    positions, by label; also in ``parameters.min/max``), ``gradient`` (None when MIGRAD
    computed it numerically, else the ``analytic`` and ``numeric`` labels, gradient
    ``calls`` and the single-dataset ``dataset_evals`` of its finite differences; ``nfev``
    counts full evaluations only).

    >>> import xdl4
    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> models = Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="src")])
    >>> result = xdl4.fit(xdl4.examples.spectrum_dataset(onoff=True), models)
    >>> result.success, round(float(result.parameters["value"].loc["src.index"]), 2)
    (True, 2.45)
    """

    success: bool
    message: str
    nfev: int
    total_stat: float
    minuit: Any = field(default=None)
    _columns: dict = field(default_factory=dict)
    _cov: np.ndarray | None = None
    models: Any = None
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
        labels = np.asarray(cols.pop("parameter"), dtype=str)
        return xr.Dataset({k: ("parameter", v) for k, v in cols.items()},
                          coords={"parameter": labels})

    @functools.cached_property
    def covariance(self) -> xr.DataArray:
        # labels as numpy strings (not objects): xarray plots them as categories
        labels = np.asarray(self._columns["parameter"], dtype=str)
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

    # -- summaries ------------------------------------------------------------------------
    def _free_rows(self) -> list[int]:
        """Rows of the free parameters, a linked parameter once (by object when the
        models are at hand)."""
        frozen = self.parameters["frozen"].values
        labels = list(self.parameters["parameter"].values)
        objects = labels
        if self.models is not None and list(self.models.parameters.keys()) == labels:
            objects = [id(p) for _, p in self.models.parameters.items()]
        seen: set = set()
        rows = []
        for i, key in enumerate(objects):
            if not frozen[i] and key not in seen:
                seen.add(key)
                rows.append(i)
        return rows

    def _tables(self) -> tuple[list[str], list[list], list[str], list[list]]:
        """(columns, rows) of the free parameters, and of their correlation matrix."""
        p = self.parameters
        rows = self._free_rows()
        labels = [str(v) for v in p["parameter"].values]
        minos = "errn" in p
        columns = ["name", "value", "error", *(["errn", "errp"] if minos else []),
                   "unit", "min", "max"]
        prows = []
        for i in rows:
            row = [labels[i], float(p["value"][i]), float(p["error"][i])]
            if minos:
                row += [float(p["errn"][i]), float(p["errp"][i])]
            prows.append(row + [str(p["unit"].values[i]), float(p["min"][i]),
                                float(p["max"][i])])
        corr = np.round(self.correlation.values[np.ix_(rows, rows)], 3) + 0.0  # no -0
        crows = [[labels[i], *map(float, corr[k])] for k, i in enumerate(rows)]
        return columns, prows, ["", *(labels[i] for i in rows)], crows

    def _status(self) -> str:
        return (f"success={self.success}, nfev={self.nfev}, "
                f"total_stat={self.total_stat:.6f}")

    def __repr__(self) -> str:
        from xdl4.models.parameter import text_table

        columns, prows, ccols, crows = self._tables()
        n_frozen = int(self.parameters["frozen"].values.sum())
        lines = [f"FitResult({self._status()})", f"  {self.message}",
                 f"  free parameters ({n_frozen} frozen parameter entries not shown):",
                 text_table(columns, prows, indent="    ")]
        if 1 < len(crows) <= _MAX_TEXT_CORRELATION:
            lines += ["  correlation:", text_table(ccols, crows, indent="    ")]
        elif len(crows) > _MAX_TEXT_CORRELATION:
            lines.append(f"  correlation: {len(crows)} x {len(crows)}, see .correlation")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        from xdl4.models.parameter import html_table

        columns, prows, ccols, crows = self._tables()
        status = [["success", bool(self.success)], ["message", self.message],
                  ["nfev", int(self.nfev)], ["total_stat", float(self.total_stat)]]
        n_frozen = int(self.parameters["frozen"].values.sum())
        parts = [f"<div><b>FitResult</b>: {html.escape(self._status())}",
                 html_table(["", ""], status),
                 html_table(columns, prows, caption=f"free parameters ({n_frozen} frozen "
                                                    "parameter entries not shown)")]
        if crows:
            parts.append(html_table(ccols, crows, caption="correlation of the free parameters"))
        return "".join(parts) + "</div>"

    # -- files ----------------------------------------------------------------------------
    def _header(self) -> dict:
        """The fit's status as gammapy writes it (``OptimizeResult``, ``CovarianceResult``),
        plus the MINOS errors (``MinosResult``, which gammapy does not have)."""
        status = {"success": bool(self.success), "message": str(self.message)}
        out: dict = {"OptimizeResult": {"backend": "minuit", "method": "migrad", **status,
                                        "nfev": int(self.nfev),
                                        "total_stat": float(self.total_stat)}}
        if self._cov is not None and np.any(self._cov):
            hesse = self.message.partition("; HESSE: ")[2].partition(";")[0]  # fit's wording
            out["CovarianceResult"] = {"backend": "minuit", "method": "hesse",
                                       "success": not hesse,
                                       "message": hesse or "HESSE covariance accurate"}
        p = self.parameters
        if "errn" in p:
            errors = {str(lab): {"errn": float(n), "errp": float(e)}
                      for lab, n, e in zip(p["parameter"].values, p["errn"].values,
                                           p["errp"].values, strict=True)
                      if math.isfinite(n) or math.isfinite(e)}
            out["MinosResult"] = {"backend": "minuit", "method": "minos", "errors": errors}
        return out

    @contextlib.contextmanager
    def _fitted(self):
        """The models with this fit's values, errors and frozen flags (restored after)."""
        models = self.models
        if models is None:
            raise ModelError("this FitResult holds no models: nothing to write")
        labels = [str(v) for v in self.parameters["parameter"].values]
        if list(models.parameters.keys()) != labels:
            raise ModelError("the models changed since the fit: parameters "
                             f"{list(models.parameters.keys())} vs the fit's {labels}")
        p = self.parameters
        saved = [(q, q.value, q.error, q.frozen) for _, q in models.parameters.items()]
        try:
            for (_, q), v, e, fz in zip(models.parameters.items(), p["value"].values,
                                        p["error"].values, p["frozen"].values, strict=True):
                q.value, q.error, q.frozen = float(v), float(e), bool(fz)
            yield models
        finally:
            for q, v, e, fz in saved:
                q.value, q.error, q.frozen = v, e, fz

    def write(self, path: str | os.PathLike, overwrite: bool = False, full_output: bool = True,
              write_covariance: bool = True) -> Path:
        """Write the fit as gammapy 2.1's ``FitResult.write``: one models YAML headed by the
        fit status (``OptimizeResult``, ``CovarianceResult``; MINOS errors as
        ``MinosResult``) with this fit's values and errors, and the covariance in
        ``<stem>_covariance.dat`` (named by its ``covariance:`` key). gammapy's
        ``Models.read`` reads it. Both files are written all or nothing
        (:func:`xdl4.files.write_all`); existing files raise
        :class:`~xdl4.errors.DL4FileExistsError` unless ``overwrite``."""
        import yaml

        from xdl4.files import write_all
        from xdl4.models.container import _covariance_text

        path = Path(path)
        cov_path = path.parent / f"{path.stem}_covariance.dat"
        write_covariance = write_covariance and self._cov is not None and self._cov.size > 0
        with self._fitted() as models:
            data = {**self._header(), **models.to_dict(full_output)}
            names = models.parameters.long_names
        data.pop("covariance", None)
        files = []
        if write_covariance:
            cov_text = _covariance_text(names, np.asarray(self._cov, float))
            files.append((cov_path, lambda tmp: tmp.write_text(cov_text)))
            data["covariance"] = cov_path.name
        data["metadata"] = {"creator": "xdl4", "date": datetime.now().isoformat(),
                            "origin": None}
        text = yaml.safe_dump(data, sort_keys=False, indent=4, width=80,
                              default_flow_style=False)
        write_all([*files, (path, lambda tmp: tmp.write_text(text))], overwrite)
        return path

    @classmethod
    def read(cls, path: str | os.PathLike) -> FitResult:
        """Read a fit written by :meth:`write` or by gammapy's ``FitResult.write``: the
        models (``models``), their values, errors and covariance, the fit status (success
        of both steps, the optimiser's message, nfev, total_stat); ``minuit`` is None."""
        from xdl4.models.container import load_yaml, models_of

        path, data = load_yaml(path)
        opt = data.get("OptimizeResult") or {}
        cov_step = data.get("CovarianceResult") or {}
        minos = (data.get("MinosResult") or {}).get("errors") or {}
        models = models_of(path, {k: data[k] for k in ("components", "covariance")
                                  if k in data})
        items = models.parameters.items()
        columns = parameter_columns(items)
        if minos:
            for key in ("errn", "errp"):
                columns[key] = np.array([minos.get(lab, {}).get(key, np.nan)
                                         for lab, _ in items], dtype=float)
        cov = models.covariance
        if cov is None:
            cov = np.zeros((len(items), len(items)))
        success = bool(opt.get("success", True)) and bool(cov_step.get("success", True))
        return cls(success, str(opt.get("message", "")), int(opt.get("nfev", 0)),
                   float(opt.get("total_stat", np.nan)), None, columns, np.array(cov), models)
