"""Temporal models: light curves that scale a source's flux, and their mean over GTIs.

A temporal model is a dimensionless light curve f(t). What enters the predicted counts is
its *temporal norm*, the mean of f over the dataset's good-time intervals (GTIs):

    norm = sum_i integral_{start_i}^{stop_i} f(t) dt / sum_i (stop_i - start_i)

computed as gammapy 2.1 does: closed forms for Constant, Linear, ExpDecay, Gaussian,
PowerLaw and Sine (gammapy's Sine formula, see `SineTemporalModel`), and gammapy's numeric
rule for GeneralizedGaussian and LightCurveTemplate (100 equally spaced nodes per interval,
ends included, summed and multiplied by the node spacing). Times are `astropy.time.Time`;
``t_ref`` is an MJD in the model's ``scale`` (default utc), and differences to it are taken
between absolute times, so a GTI in TT and a model in UTC differ by TT-UTC (~69 s), as in
gammapy.

>>> from astropy.time import Time
>>> m = ExpDecayTemporalModel(t0=0.5, t_ref=51544.0)
>>> t = Time([51544.0, 51544.5], format="mjd")
>>> [round(float(x), 6) for x in m.evaluate(t)]
[1.0, 0.367879]
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, ClassVar

import astropy.units as u
import numpy as np
from astropy.time import TIME_DELTA_SCALES, Time
from scipy.special import erf

from xdl4.errors import DL4FileNotFoundError, DL4ValidationError, ModelError
from xdl4.files import check_readable
from xdl4.gti import GoodTimes, _duration, _jd, as_time

from .core import Model, par
from .spatial import resolve_path

__all__ = [
    "TemporalModel", "ConstantTemporalModel", "LinearTemporalModel", "ExpDecayTemporalModel",
    "GaussianTemporalModel", "GeneralizedGaussianTemporalModel", "PowerLawTemporalModel",
    "SineTemporalModel", "LightCurveTemplateTemporalModel", "temporal_norm",
]

#: 2000-01-01 00:00 (utc) in MJD: gammapy's default ``t_ref``
T_REF_DEFAULT = 51544.0
#: nodes per interval of gammapy's numeric time integral
OVERSAMPLING = 100


def _t_ref(frozen: bool) -> Any:
    return par("t_ref", T_REF_DEFAULT, "d", frozen=frozen)


@lru_cache(maxsize=256)
def _ref_jd(mjd: float, scale: str, work: str) -> tuple[float, float]:
    """Two-part JD in scale `work` of the MJD `mjd` read in `scale`."""
    r = getattr(Time(mjd, format="mjd", scale=scale), work)
    return float(r.jd1), float(r.jd2)




class TemporalModel(Model):
    """Base temporal model: a light curve f(t) with ``evaluate`` and ``integral``.

    Subclasses implement `_evaluate_mjd` (MJD floats in the model's scale) and, when
    gammapy has a closed form, `_integrals` (per-interval integrals in days).
    """

    kind: ClassVar[str] = "temporal"

    def __init__(self, scale: str = "utc", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    @property
    def scale(self) -> str:
        """Time scale of ``t_ref`` (an astropy scale: utc, tt, tai, tdb, ...)."""
        return self._scale

    @scale.setter
    def scale(self, value: str) -> None:
        if value not in Time.SCALES:
            raise ModelError(f"{type(self).__name__}: time scale {value!r} is not one of "
                             f"{', '.join(Time.SCALES)}")
        object.__setattr__(self, "_scale", value)

    @property
    def reference_time(self) -> Time:
        """``t_ref`` as a Time (its value read as MJD in the model's scale)."""
        return Time(self.t_ref.value, format="mjd", scale=self.scale)

    def _since_ref(self, t: Time) -> np.ndarray:
        """t - t_ref in days between absolute times, as astropy's ``t - reference_time``."""
        a1, a2 = _jd(t)
        r1, r2 = _ref_jd(self.t_ref.value, self.scale,
                         t.scale if t.scale in TIME_DELTA_SCALES else "tai")
        return (a1 - r1) + (a2 - r2)

    def _evaluate_mjd(self, mjd: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def evaluate(self, time: Any) -> np.ndarray:
        """f(time): a Time (converted to the model's scale) or MJD numbers in that scale."""
        mjd = Time(time, scale=self.scale).mjd if isinstance(time, Time) else \
            np.asarray(time, dtype=float)
        return np.asarray(self._evaluate_mjd(mjd), dtype=float)

    __call__ = evaluate

    def _integrals(self, t_min: Time, t_max: Time) -> np.ndarray:
        """Integral of f over each interval, in days. This default is gammapy's numeric rule:
        `OVERSAMPLING` equally spaced nodes (ends included) summed, times their spacing; as
        in gammapy the nodes are the intervals' MJD in *their* scale read in the model's."""
        nodes, step = np.linspace(t_min.mjd, t_max.mjd, OVERSAMPLING, retstep=True, axis=-1)
        return self._evaluate_mjd(nodes).sum(axis=-1) * step

    def integral(self, t_min: Any, t_max: Any) -> np.ndarray:
        """Integral of f over each interval [t_min, t_max] divided by the *total* duration of
        all intervals (gammapy's convention: the sum over intervals is the mean of f).

        Times are Time objects, ISO strings (UTC) or MJD numbers in the model's scale.

        >>> m = LinearTemporalModel(alpha=1.0, beta=0.5, t_ref=51544.0)
        >>> [round(float(x), 6) for x in m.integral([51544.0, 51545.0], [51544.5, 51546.0])]
        [0.375, 1.166667]
        """
        t_min, t_max = as_time(t_min, self.scale), as_time(t_max, self.scale)
        return self._integrals(t_min, t_max) / np.sum(_duration(t_min, t_max))

    def to_dict(self, full_output: bool = False) -> dict:
        d = super().to_dict(full_output)
        d["scale"] = self.scale
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "", base_path: Any = None) -> TemporalModel:
        where = where or cls.tag[0]
        extra = set(data) - {"type", "parameters", "scale"}
        if extra:
            raise ModelError(f"{where}: unknown key(s) {sorted(extra)}")
        return cls(scale=str(data.get("scale", "utc")),
                   **cls._params_from_list(data.get("parameters"), where))

    def __repr__(self) -> str:
        body = ", ".join([f"{p.name}={p.value:g}" for p in self.parameters]
                         + [f"scale={self.scale!r}"])
        return f"{type(self).__name__}({body})"


class ConstantTemporalModel(TemporalModel):
    """f(t) = 1 (its temporal norm is 1, with or without GTIs)."""

    tag = ("ConstantTemporalModel", "const")

    def _evaluate_mjd(self, mjd):
        return np.ones(np.shape(mjd))

    def _integrals(self, t_min, t_max):
        return _duration(t_min, t_max)


class LinearTemporalModel(TemporalModel):
    """f(t) = alpha + beta (t - t_ref)."""

    tag = ("LinearTemporalModel", "linear")
    _defaults = (par("alpha", 1.0), par("beta", 0.0, "d-1"), _t_ref(True))

    def _evaluate_mjd(self, mjd):
        alpha, beta, _ = self._vals()
        return alpha + beta * (mjd - self.t_ref.value)

    def _integrals(self, t_min, t_max):
        alpha, beta, _ = self._vals()
        lo, hi = self._since_ref(t_min), self._since_ref(t_max)
        return alpha * _duration(t_min, t_max) + beta / 2.0 * (hi * hi - lo * lo)


class ExpDecayTemporalModel(TemporalModel):
    """f(t) = exp(-(t - t_ref) / t0)."""

    tag = ("ExpDecayTemporalModel", "exp-decay")
    _defaults = (par("t0", 1.0, "d"), _t_ref(True))

    def _evaluate_mjd(self, mjd):
        t0 = self._vals()[0]
        return np.exp(-(mjd - self.t_ref.value) / t0)

    def _integrals(self, t_min, t_max):
        t0 = self._vals()[0]
        lo, hi = self._since_ref(t_min), self._since_ref(t_max)
        return -t0 * (np.exp(-hi / t0) - np.exp(-lo / t0))


class GaussianTemporalModel(TemporalModel):
    """f(t) = exp(-(t - t_ref)^2 / (2 sigma^2))."""

    tag = ("GaussianTemporalModel", "gauss")
    _defaults = (_t_ref(False), par("sigma", 1.0, "d"))

    def _evaluate_mjd(self, mjd):
        sigma = self._vals()[1]
        return np.exp(-((mjd - self.t_ref.value) ** 2) / (2 * sigma**2))

    def _integrals(self, t_min, t_max):
        sigma = self._vals()[1]
        s = np.sqrt(2) * sigma
        lo, hi = self._since_ref(t_min) / s, self._since_ref(t_max) / s
        return np.sqrt(np.pi / 2) * sigma * (erf(hi) - erf(lo))


class GeneralizedGaussianTemporalModel(TemporalModel):
    """f(t) = exp(-|t - t_ref|^(1/eta) / (2 tau^(1/eta))), tau = t_rise before t_ref and
    t_decay after; integrated with gammapy's numeric rule (see `TemporalModel._integrals`)."""

    tag = ("GeneralizedGaussianTemporalModel", "gengauss")
    _defaults = (_t_ref(False), par("t_rise", 1.0, "d"), par("t_decay", 1.0, "d"),
                 par("eta", 0.5))

    def _evaluate_mjd(self, mjd):
        _, t_rise, t_decay, eta = self._vals()
        dt = np.asarray(mjd) - self.t_ref.value
        x = np.abs(dt) ** (1 / eta)
        return np.where(dt < 0, np.exp(-0.5 * x / t_rise ** (1 / eta)),
                        np.exp(-0.5 * x / t_decay ** (1 / eta)))


class PowerLawTemporalModel(TemporalModel):
    """f(t) = ((t - t_ref) / t0)^alpha (defined after t_ref)."""

    tag = ("PowerLawTemporalModel", "powerlaw")
    _defaults = (par("alpha", 1.0), _t_ref(True), par("t0", 1.0, "d", frozen=True))

    def _evaluate_mjd(self, mjd):
        alpha, _, t0 = self._vals()
        return np.power((mjd - self.t_ref.value) / t0, alpha)

    def _integrals(self, t_min, t_max):
        alpha, _, t0 = self._vals()
        lo, hi = self._since_ref(t_min), self._since_ref(t_max)
        if alpha == -1:
            return t0 * np.log(hi / lo)
        a1 = alpha + 1.0
        return t0 / a1 * (np.power(hi / t0, a1) - np.power(lo / t0, a1))


class SineTemporalModel(TemporalModel):
    """f(t) = 1 + amp sin(omega (t - t_ref)), omega in rad/d.

    The integral follows gammapy 2.1, which subtracts amp/omega [sin(omega dt)] between
    the interval ends: the exact integral of f has -cos there, so gammapy's (and this)
    temporal norm of a sine is that of 1 - amp cos(omega (t - t_ref)).
    """

    tag = ("SineTemporalModel", "sinus")
    _defaults = (par("amp", 1.0), par("omega", 1.0, "rad d-1"), _t_ref(False))

    def _evaluate_mjd(self, mjd):
        amp, omega, _ = self._vals()
        return 1.0 + amp * np.sin(omega * (mjd - self.t_ref.value))

    def _integrals(self, t_min, t_max):
        amp, omega, _ = self._vals()
        lo, hi = self._since_ref(t_min), self._since_ref(t_max)
        return _duration(t_min, t_max) - amp / omega * (np.sin(omega * hi)
                                                               - np.sin(omega * lo))


class LightCurveTemplateTemporalModel(TemporalModel):
    """Light curve tabulated in a file: ``norm`` at ``time`` since ``t_ref``, interpolated
    linearly (extrapolated linearly outside the nodes, then clipped at 0) and integrated with
    gammapy's numeric rule.

    Reading a models YAML with the file at hand (``format: table``: columns TIME, NORM;
    MJDREFI, MJDREFF, TIMESYS in the header) takes ``t_ref`` from the file, converted to utc,
    and the utc scale, as gammapy does (the YAML's values are gammapy's own writing of
    them). Without the file, or for ``format: map`` (energy-dependent light curves), the
    model is read and written back but evaluating it raises.

    >>> lc = LightCurveTemplateTemporalModel([0, 12, 24] * u.h, [0.0, 1.0, 0.5],
    ...                                      t_ref=51544.0)
    >>> [round(float(x), 6) for x in lc.evaluate([51544.25, 51545.0, 51546.0])]
    [0.5, 0.5, 0.0]
    """

    tag = ("LightCurveTemplateTemporalModel", "template")
    _defaults = (_t_ref(True),)

    def __init__(self, time: Any = None, norm: Any = None, filename: str | None = None,
                 format: str = "table", unit: str = "", scale: str = "utc",
                 **kwargs: Any) -> None:
        super().__init__(scale=scale, **kwargs)
        self.filename, self.format, self.unit = filename, format, unit
        self.time = None if time is None else u.Quantity(time)  # nodes since t_ref
        self.norm = None if norm is None else np.asarray(norm, dtype=float)

    @classmethod
    def read(cls, path: str | os.PathLike, filename: str | None = None,
             **kwargs: Any) -> LightCurveTemplateTemporalModel:
        """From a table file (TIME, NORM); ``t_ref`` from MJDREFI + MJDREFF in TIMESYS. A
        missing file is a DL4FileNotFoundError, an unreadable one a ModelError naming it."""
        from astropy.table import Table

        path = check_readable(os.path.expandvars(str(path)))
        try:
            table = Table.read(path)
        except Exception as err:  # noqa: BLE001 - astropy, OS and format errors: typed
            raise ModelError(f"light curve {path.name}: cannot read it as a table: "
                             f"{type(err).__name__}: {err}") from err
        meta = table.meta
        try:
            ref = Time(float(meta["MJDREFI"]), float(meta["MJDREFF"]), format="mjd",
                       scale=str(meta.get("TIMESYS", "utc")).lower())
            time = table["TIME"].quantity
            if not time.unit.is_equivalent("d"):
                time = u.Quantity(time.value, meta["TIMEUNIT"])
            norm = table["NORM"]
        except (KeyError, ValueError, TypeError) as err:  # astropy's unit errors included
            raise ModelError(f"light curve {path.name}: not a light-curve table (TIME, NORM, "
                             f"MJDREFI/F, TIMEUNIT): {type(err).__name__}: {err}") from err
        kwargs["t_ref"] = float(ref.utc.mjd)
        return cls(time, norm, filename=str(path) if filename is None else filename, **kwargs)

    def _evaluate_mjd(self, mjd):
        if self.time is None:
            if self.format != "table":
                raise NotImplementedError(f"{self.tag[0]}: format {self.format!r} is read and "
                                          "written back only, not evaluated")
            raise DL4FileNotFoundError(f"{self.tag[0]}: light-curve file {self.filename!r} "
                                       "not found when the model was read")
        x, y = self.time.value, self.norm
        t = u.Quantity(np.asarray(mjd) - self.t_ref.value, "d").to_value(self.time.unit)
        i = np.clip(np.searchsorted(x, t) - 1, 0, x.size - 2)
        value = y[i] + (t - x[i]) * (y[i + 1] - y[i]) / (x[i + 1] - x[i])
        return np.clip(value, 0, None)

    def to_dict(self, full_output: bool = False) -> dict:
        d = super().to_dict(full_output)
        d.update(filename=self.filename, format=self.format, unit=self.unit)
        return d

    def copy(self) -> LightCurveTemplateTemporalModel:
        """Copy sharing the (read-only) tabulated light curve; the file is not re-read."""
        params = self._params_from_list(self.to_dict(True)["parameters"], self.tag[0])
        return type(self)(self.time, self.norm, self.filename, self.format, self.unit,
                          self.scale, **params)

    @classmethod
    def from_dict(cls, data: dict, where: str = "",
                  base_path: Any = None) -> LightCurveTemplateTemporalModel:
        where = where or cls.tag[0]
        extra = set(data) - {"type", "parameters", "scale", "filename", "format", "unit"}
        if extra:
            raise ModelError(f"{where}: unknown key(s) {sorted(extra)}")
        params = cls._params_from_list(data.get("parameters"), where)
        keys = {"filename": data.get("filename"), "format": data.get("format", "table"),
                "unit": data.get("unit", "")}
        path = None if keys["filename"] is None else resolve_path(keys["filename"], base_path)
        if keys["format"] == "table" and path is not None and os.path.exists(path):
            model = cls.read(path, **keys)
            if "t_ref" in params:  # keep the YAML's parameter object (links), file's value
                params["t_ref"].value = model.t_ref.value
                model.t_ref = params["t_ref"]
            return model
        return cls(scale=str(data.get("scale", "utc")), **keys, **params)


# ---- the temporal norm over good-time intervals -------------------------------------------
def temporal_norm(model: TemporalModel, gti: GoodTimes | None, name: str = "",
                  group: str = "run") -> float | np.ndarray:
    """Mean of the light curve over the GTIs (gammapy's ``sum(model.integral(start,
    stop))``); one value per run when the GTIs have runs (per time bin for the intervals
    of `time_bin_intervals`, ``group`` names them in errors). Constant: 1 (GTIs not needed).

    >>> import xdl4
    >>> from xdl4.gti import good_times
    >>> gti = good_times(xdl4.examples.spectrum_dataset())
    >>> round(temporal_norm(ExpDecayTemporalModel(t0=1.0), gti), 6)  # GTI: 1 h from t_ref
    0.979453
    """
    if isinstance(model, ConstantTemporalModel):
        return 1.0
    what = f"model {name!r}: temporal model {getattr(model, 'type_name', model.tag[0])}"
    if gti is None:
        raise DL4ValidationError(f"{what} needs the dataset's good-time intervals (gti_start, "
                         "gti_stop) and the dataset has none")
    try:
        integrals = model._integrals(gti.start, gti.stop)
    except (NotImplementedError, FileNotFoundError) as err:  # err: "<type>: ..."
        raise type(err)(f"model {name!r}: temporal model {err}") from None
    duration = _duration(gti.start, gti.stop)
    if gti.run is None:
        if duration.size == 0:
            raise DL4ValidationError(f"{what}: the dataset's GTI table is empty")
        return float(integrals.sum() / duration.sum())
    total = np.bincount(gti.run, duration, gti.n_runs)
    if not np.all(total > 0):
        raise DL4ValidationError(f"{what}: {group}(s) {np.flatnonzero(total <= 0).tolist()} "
                         "have no GTI")
    return np.bincount(gti.run, integrals, gti.n_runs) / total
