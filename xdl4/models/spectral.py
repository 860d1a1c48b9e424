"""Spectral models: dN/dE, integral and energy flux, with gammapy-compatible bin integrals.

Internal units: energies in TeV, differential fluxes in cm-2 s-1 TeV-1 (norm models:
dimensionless). ``integral_bins`` reproduces gammapy 2.1's per-bin numbers (analytic where
gammapy has a closed form, else its log-log trapezoid); ``integral`` / ``energy_flux`` are
exact (closed form or 16-point Gauss-Legendre in log E on sub-intervals <= 0.02 decade).
"""

from __future__ import annotations

import operator
from functools import lru_cache
from typing import Any, ClassVar

import astropy.units as u
import numpy as np
from scipy.special import erf, exprel

from xdl4.errors import ModelError

from .core import Model, apply_numeric, get_model_class, par
from .parameter import Parameter, Parameters, unit_string

__all__ = [
    "SpectralModel", "ConstantSpectralModel", "PowerLawSpectralModel", "PowerLaw2SpectralModel",
    "PowerLawNormSpectralModel", "BrokenPowerLawSpectralModel",
    "SmoothBrokenPowerLawSpectralModel", "ExpCutoffPowerLawSpectralModel",
    "ExpCutoffPowerLawNormSpectralModel", "ExpCutoffPowerLaw3FGLSpectralModel",
    "SuperExpCutoffPowerLaw3FGLSpectralModel", "SuperExpCutoffPowerLaw4FGLSpectralModel",
    "SuperExpCutoffPowerLaw4FGLDR3SpectralModel", "LogParabolaSpectralModel",
    "LogParabola2SpectralModel", "LogParabolaNormSpectralModel", "GaussianSpectralModel",
    "TemplateSpectralModel", "PiecewiseNormSpectralModel", "CompoundSpectralModel",
    "ScaleSpectralModel", "loglog_trapz_bins", "gauss_legendre_loglog",
]

DNDE = "cm-2 s-1 TeV-1"
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
_TINY = np.finfo(float).tiny


# ---- generic integrators ---------------------------------------------------------------
def _powerlaw_piece(x1, x2, y1, index):
    """gammapy's power-law integral with reference=x1, amplitude=y1 (|1-index|<=1e-8 -> log)."""
    val = 1.0 - index
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        res = y1 * x1 / val * ((x2 / x1) ** val - 1.0)
        small = np.abs(val) <= 1e-8
        if np.any(small):
            res = np.where(small, y1 * x1 * np.log(x2 / x1), res)
    return res


def loglog_trapz_bins(func, e_lo: np.ndarray, e_hi: np.ndarray, ndecade: int = 100) -> np.ndarray:
    """gammapy's ``integrate_spectrum``: one node count for all bins, exact power law per piece.

    n = int(max(2, max(ndecade * log10(e_hi / e_lo)))) geometric nodes per bin (ends included);
    on each sub-interval the power law through the two end values is integrated exactly.
    """
    e_lo = np.atleast_1d(np.asarray(e_lo, dtype=float))
    e_hi = np.atleast_1d(np.asarray(e_hi, dtype=float))
    n = int(np.maximum(np.max(ndecade * np.log10(e_hi / e_lo)), 2))
    e = np.geomspace(e_lo, e_hi, num=n, axis=-1)
    y = np.asarray(func(e), dtype=float)
    x1, x2, y1, y2 = e[..., :-1], e[..., 1:], y[..., :-1], y[..., 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        index = -np.log(np.clip(y1 / y2, _TINY, np.inf)) / np.log(x1 / x2)
    index = np.where(np.isnan(index), np.inf, index)
    return _powerlaw_piece(x1, x2, y1, index).sum(axis=-1)


def gauss_legendre_loglog(func, e_lo, e_hi, breaks=(), max_width_dex: float = 0.02) -> np.ndarray:
    """High-order quadrature of func(E) dE in ln E, splitting at `breaks` (1e-12 typical)."""
    lo, hi = np.broadcast_arrays(np.asarray(e_lo, dtype=float), np.asarray(e_hi, dtype=float))
    sign = np.where(hi < lo, -1.0, 1.0)
    a, b = np.minimum(lo, hi), np.maximum(lo, hi)
    pts = [a] + [np.clip(br, a, b) for br in sorted(breaks)] + [b]
    ta, tb = np.log(np.stack(pts[:-1])), np.log(np.stack(pts[1:]))  # (npiece, ...)
    width = tb - ta
    nsub = int(max(1, np.ceil(np.nanmax(width, initial=0.0) / (max_width_dex * np.log(10)))))
    k = (np.arange(nsub)[:, None] + 0.5 * (_GL_X[None, :] + 1.0)).ravel() / nsub  # in [0, 1]
    t = ta[..., None] + width[..., None] * k
    e = np.exp(t)
    y = np.asarray(func(e), dtype=float) * e
    w = np.tile(_GL_W, nsub) / (2.0 * nsub)
    res = (y * w).sum(axis=-1) * width
    return sign * res.sum(axis=0)


# ---- base class --------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _times_energy(unit: str, power: int) -> str:
    return (u.Unit(unit) * u.TeV**power).to_string()


class SpectralModel(Model):
    """Base spectral model: callables in energy; subclasses implement `_eval` (numpy, TeV)."""

    kind: ClassVar[str] = "spectral"
    unit: ClassVar[str] = DNDE
    #: True where gammapy 2.1 integrates bins with a closed form (`_integral_gp`)
    _gammapy_analytic: ClassVar[bool] = False

    @staticmethod
    def _eval(energy: np.ndarray, *vals: float) -> np.ndarray:
        raise NotImplementedError

    def _breaks(self) -> tuple[float, ...]:
        return ()

    def evaluate_numpy(self, energy_tev: np.ndarray) -> np.ndarray:
        """dN/dE at energies in TeV (numpy in, numpy out, internal units)."""
        return self._eval(energy_tev, *self._vals())

    def __call__(self, energy: Any) -> Any:
        """dN/dE; numpy (TeV), Quantity or DataArray in; same kind out."""
        return apply_numeric(self.evaluate_numpy, (energy,), ("TeV",), self.unit)

    # closed forms, if any, on numpy arrays in TeV (None -> numerical)
    def _integral_exact(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return gauss_legendre_loglog(self.evaluate_numpy, lo, hi, self._breaks())

    def _energy_flux_exact(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return gauss_legendre_loglog(lambda e: e * self.evaluate_numpy(e), lo, hi, self._breaks())

    def _integral_gp(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return self._integral_exact(lo, hi)

    def integral(self, energy_min: Any, energy_max: Any) -> Any:
        """Exact integral flux between energy_min and energy_max."""
        return apply_numeric(self._integral_exact, (energy_min, energy_max), ("TeV", "TeV"),
                             _times_energy(self.unit, 1))

    def energy_flux(self, energy_min: Any, energy_max: Any) -> Any:
        """Exact energy flux (integral of E dN/dE) between energy_min and energy_max."""
        return apply_numeric(self._energy_flux_exact, (energy_min, energy_max), ("TeV", "TeV"),
                             _times_energy(self.unit, 2))

    def integral_bins(self, edges_tev: np.ndarray) -> np.ndarray:
        """Per-bin integrals over consecutive `edges_tev` (TeV), as gammapy 2.1 computes them.

        Closed form where gammapy has one, else gammapy's log-log trapezoid. Hot path:
        float64 numpy only (cm-2 s-1 for flux models, TeV for norm models).
        """
        edges = np.asarray(edges_tev, dtype=float)
        lo, hi = edges[:-1], edges[1:]
        if self._gammapy_analytic:
            return np.asarray(self._integral_gp(lo, hi), dtype=float)
        return loglog_trapz_bins(self.evaluate_numpy, lo, hi)

    # arithmetic -> compound models
    def __add__(self, other: SpectralModel) -> CompoundSpectralModel:
        return CompoundSpectralModel(self, other, operator.add)

    def __sub__(self, other: SpectralModel) -> CompoundSpectralModel:
        return CompoundSpectralModel(self, other, operator.sub)

    def __mul__(self, other: SpectralModel) -> CompoundSpectralModel:
        return CompoundSpectralModel(self, other, operator.mul)

    def __truediv__(self, other: SpectralModel) -> CompoundSpectralModel:
        return CompoundSpectralModel(self, other, operator.truediv)


def _amp(value: float = 1e-12, unit: str = DNDE) -> Parameter:
    return par("amplitude", value, unit, interp="log")


def _norm() -> Parameter:
    return par("norm", 1.0, "", interp="log")


def _ref(value: float = 1.0, name: str = "reference") -> Parameter:
    return par(name, value, "TeV", frozen=True)


def _pl_integral(lo, hi, index, amp, ref):
    """Stable exact power-law integral (exprel handles index -> 1)."""
    lg = np.log(hi / lo)
    return amp * lo * (lo / ref) ** (-index) * lg * exprel((1.0 - index) * lg)


# ---- concrete models ---------------------------------------------------------------------
class ConstantSpectralModel(SpectralModel):
    """dN/dE = const."""

    tag = ("ConstantSpectralModel", "const")
    _defaults = (par("const", 1e-12, DNDE),)
    _gammapy_analytic = True  # the log-log trapezoid is exact for a constant

    @staticmethod
    def _eval(energy, const):
        return np.ones_like(energy, dtype=float) * const

    def _integral_exact(self, lo, hi):
        return self._vals()[0] * (np.asarray(hi) - np.asarray(lo))

    def _energy_flux_exact(self, lo, hi):
        return self._vals()[0] * 0.5 * (np.asarray(hi) ** 2 - np.asarray(lo) ** 2)

    _integral_gp = _integral_exact


class PowerLawSpectralModel(SpectralModel):
    """dN/dE = amplitude (E/reference)^-index."""

    tag = ("PowerLawSpectralModel", "pl")
    _defaults = (par("index", 2.0), _amp(), _ref())
    _gammapy_analytic = True

    @staticmethod
    def _eval(energy, index, amplitude, reference):
        return amplitude * (energy / reference) ** (-index)

    def _integral_exact(self, lo, hi):
        index, amp, ref = self._vals()
        return _pl_integral(np.asarray(lo), np.asarray(hi), index, amp, ref)

    def _energy_flux_exact(self, lo, hi):
        index, amp, ref = self._vals()
        return _pl_integral(np.asarray(lo), np.asarray(hi), index - 1.0, amp * ref, ref)

    def _integral_gp(self, lo, hi):
        index, amp, ref = self._vals()
        return _gp_pl(lo, hi, index, amp, ref)


def _gp_pl(lo, hi, index, amp, ref):
    """gammapy's PowerLaw.evaluate_integral (log form when |1-index| <= 1e-8)."""
    val = 1.0 - index
    if abs(val) <= 1e-8:
        return amp * ref * np.log(hi / lo)
    return amp * ref / val * ((hi / ref) ** val - (lo / ref) ** val)


class PowerLawNormSpectralModel(PowerLawSpectralModel):
    """Norm factor: norm (E/reference)^-tilt (dimensionless); the power law's formulas with
    (tilt, norm, reference) in place of (index, amplitude, reference)."""

    tag = ("PowerLawNormSpectralModel", "pl-norm")
    unit = ""
    _defaults = (par("tilt", 0.0, frozen=True), _norm(), _ref())


class PowerLaw2SpectralModel(SpectralModel):
    """Power law normalised by its integral `amplitude` between emin and emax."""

    tag = ("PowerLaw2SpectralModel", "pl-2")
    _defaults = (_amp(1e-12, "cm-2 s-1"), par("index", 2.0), _ref(0.1, "emin"),
                 _ref(100.0, "emax"))
    _gammapy_analytic = True

    @staticmethod
    def _eval(energy, amplitude, index, emin, emax):
        top = 1.0 - index
        bottom = emax - emin * (emin / emax) ** (-index)
        return amplitude * (top / bottom) * (energy / emax) ** (-index)

    def _integral_gp(self, lo, hi):
        amp, index, emin, emax = self._vals()
        g = 1.0 - index
        return amp * (hi**g - lo**g) / (emax**g - emin**g)

    _integral_exact = _integral_gp


class BrokenPowerLawSpectralModel(SpectralModel):
    """amplitude (E/ebreak)^-index1 below ebreak, ^-index2 above."""

    tag = ("BrokenPowerLawSpectralModel", "bpl")
    _defaults = (par("index1", 2.0), par("index2", 2.0), _amp(), par("ebreak", 1.0, "TeV"))

    @staticmethod
    def _eval(energy, index1, index2, amplitude, ebreak):
        x = energy / ebreak
        return amplitude * np.where(x < 1.0, x ** (-index1), x ** (-index2))

    def _breaks(self):
        return (self._vals()[3],)


class SmoothBrokenPowerLawSpectralModel(SpectralModel):
    """amplitude (E/E0)^-index1 (1 + (E/ebreak)^((index2-index1)/beta'))^-beta'.

    beta' = beta * sign(index2 - index1) (sign 0 taken as +1; gammapy gives NaN there).
    """

    tag = ("SmoothBrokenPowerLawSpectralModel", "sbpl")
    _defaults = (par("index1", 2.0), par("index2", 2.0), _amp(), par("ebreak", 1.0, "TeV"),
                 _ref(), par("beta", 1.0, frozen=True))

    @staticmethod
    def _eval(energy, index1, index2, amplitude, ebreak, reference, beta):
        beta = beta * (np.sign(index2 - index1) or 1.0)
        pwl = amplitude * (energy / reference) ** (-index1)
        return pwl * (1.0 + (energy / ebreak) ** ((index2 - index1) / beta)) ** (-beta)


class ExpCutoffPowerLawSpectralModel(SpectralModel):
    """amplitude (E/E0)^-index exp(-(lambda_ E)^alpha)."""

    tag = ("ExpCutoffPowerLawSpectralModel", "ecpl")
    _defaults = (par("index", 1.5), _amp(), _ref(), par("lambda_", 0.1, "TeV-1"),
                 par("alpha", 1.0, frozen=True))

    @staticmethod
    def _eval(energy, index, amplitude, reference, lambda_, alpha):
        return amplitude * (energy / reference) ** (-index) * np.exp(-((energy * lambda_) ** alpha))


class ExpCutoffPowerLawNormSpectralModel(ExpCutoffPowerLawSpectralModel):
    """norm (E/E0)^-index exp(-(lambda_ E)^alpha) (dimensionless)."""

    tag = ("ExpCutoffPowerLawNormSpectralModel", "ecpl-norm")
    unit = ""
    _defaults = (par("index", 0.0), _norm(), _ref(), par("lambda_", 0.1, "TeV-1"),
                 par("alpha", 1.0, frozen=True))


class ExpCutoffPowerLaw3FGLSpectralModel(SpectralModel):
    """amplitude (E/E0)^-index exp((E0 - E)/ecut)."""

    tag = ("ExpCutoffPowerLaw3FGLSpectralModel", "ecpl-3fgl")
    _defaults = (par("index", 1.5), _amp(), _ref(), par("ecut", 10.0, "TeV"))

    @staticmethod
    def _eval(energy, index, amplitude, reference, ecut):
        return amplitude * (energy / reference) ** (-index) * np.exp((reference - energy) / ecut)


class SuperExpCutoffPowerLaw3FGLSpectralModel(SpectralModel):
    """amplitude (E/E0)^-index_1 exp((E0/ecut)^index_2 - (E/ecut)^index_2)."""

    tag = ("SuperExpCutoffPowerLaw3FGLSpectralModel", "secpl-3fgl")
    _defaults = (_amp(), _ref(), par("ecut", 10.0, "TeV"), par("index_1", 1.5),
                 par("index_2", 2.0))

    @staticmethod
    def _eval(energy, amplitude, reference, ecut, index_1, index_2):
        cut = np.exp((reference / ecut) ** index_2 - (energy / ecut) ** index_2)
        return amplitude * (energy / reference) ** (-index_1) * cut


class SuperExpCutoffPowerLaw4FGLSpectralModel(SpectralModel):
    """amplitude (E/E0)^-index_1 exp(expfactor (E0^index_2 - E^index_2)), energies in MeV."""

    tag = ("SuperExpCutoffPowerLaw4FGLSpectralModel", "secpl-4fgl")
    _defaults = (_amp(), _ref(), par("expfactor", 1e-14), par("index_1", 1.5),
                 par("index_2", 2.0))

    @staticmethod
    def _eval(energy, amplitude, reference, expfactor, index_1, index_2):
        cut = np.exp(expfactor * ((reference * 1e6) ** index_2 - (energy * 1e6) ** index_2))
        return amplitude * (energy / reference) ** (-index_1) * cut


class SuperExpCutoffPowerLaw4FGLDR3SpectralModel(SpectralModel):
    """4FGL-DR3 PLSuperExpCutoff4 (series expansion when |index_2 ln(E/E0)| < 1e-2)."""

    tag = ("SuperExpCutoffPowerLaw4FGLDR3SpectralModel", "secpl-4fgl-dr3")
    _defaults = (_amp(), _ref(), par("expfactor", 1e-2), par("index_1", 1.5),
                 par("index_2", 2.0))

    @staticmethod
    def _eval(energy, amplitude, reference, expfactor, index_1, index_2):
        x = energy / reference
        ln_ = np.log(x)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            full = x ** (expfactor / index_2) * np.exp(expfactor / index_2**2 * (1 - x**index_2))
        power = -expfactor * (ln_ / 2.0 + index_2 / 6.0 * ln_**2 + index_2**2 / 24.0 * ln_**3)
        series = x**power
        cut = np.where(np.abs(index_2 * ln_) < 1e-2, series, full)
        return amplitude * x ** (-index_1) * cut


class LogParabolaSpectralModel(SpectralModel):
    """amplitude x^(-alpha - beta ln x), x = E/reference (natural log)."""

    tag = ("LogParabolaSpectralModel", "lp")
    _defaults = (_amp(), _ref(10.0), par("alpha", 2.0), par("beta", 1.0))

    @staticmethod
    def _eval(energy, amplitude, reference, alpha, beta):
        x = energy / reference
        return amplitude * x ** (-alpha - beta * np.log(x))


class LogParabola2SpectralModel(SpectralModel):
    """amplitude (E/reference)^(-alpha - beta ln(E/escale))."""

    tag = ("LogParabola2SpectralModel", "lp2")
    _defaults = (_amp(), _ref(10.0), par("alpha", 2.0), par("beta", 1.0), _ref(1.0, "escale"))

    @staticmethod
    def _eval(energy, amplitude, reference, alpha, beta, escale):
        return amplitude * (energy / reference) ** (-alpha - beta * np.log(energy / escale))


class LogParabolaNormSpectralModel(SpectralModel):
    """norm x^(-alpha - beta ln x) (dimensionless)."""

    tag = ("LogParabolaNormSpectralModel", "lp-norm")
    unit = ""
    _defaults = (_norm(), _ref(10.0), par("alpha", 0.0), par("beta", 0.0))
    _eval = staticmethod(LogParabolaSpectralModel._eval)


class GaussianSpectralModel(SpectralModel):
    """amplitude / (sigma sqrt(2 pi)) exp(-(E - mean)^2 / (2 sigma^2))."""

    tag = ("GaussianSpectralModel", "gauss")
    _defaults = (_amp(1e-12, "cm-2 s-1"), par("mean", 1.0, "TeV"), par("sigma", 2.0, "TeV"))
    _gammapy_analytic = True

    @staticmethod
    def _eval(energy, amplitude, mean, sigma):
        norm = amplitude / (sigma * np.sqrt(2 * np.pi))
        return norm * np.exp(-((energy - mean) ** 2) / (2 * sigma**2))

    def _integral_exact(self, lo, hi):
        amp, mean, sigma = self._vals()
        s = np.sqrt(2) * sigma
        return amp / 2 * (erf((np.asarray(hi) - mean) / s) - erf((np.asarray(lo) - mean) / s))

    def _energy_flux_exact(self, lo, hi):
        amp, mean, sigma = self._vals()
        s = np.sqrt(2) * sigma
        umin, umax = (np.asarray(lo) - mean) / s, (np.asarray(hi) - mean) / s
        a = amp * sigma / np.sqrt(2 * np.pi)
        b = amp * mean / 2
        return a * (np.exp(-(umin**2)) - np.exp(-(umax**2))) + b * (erf(umax) - erf(umin))

    _integral_gp = _integral_exact


def _loglog_interp(x, xp_log, yp_log):
    """Piecewise-linear interpolation in log-log, linear extrapolation, values >= 0."""
    lx = np.log(x)
    if xp_log.size == 1:
        return np.exp(np.broadcast_to(yp_log[0], np.shape(x))).copy()
    i = np.clip(np.searchsorted(xp_log, lx) - 1, 0, xp_log.size - 2)
    slope = (yp_log[i + 1] - yp_log[i]) / (xp_log[i + 1] - xp_log[i])
    out = np.exp(yp_log[i] + slope * (lx - xp_log[i]))
    return np.where(out <= 2 * _TINY, 0.0, out)


class _ArraySpec:
    """Helper for energy/value arrays stored in YAML as ``{data: [...], unit: ...}``."""

    @staticmethod
    def read(d: dict, where: str, to: str | None = None) -> tuple[np.ndarray, str]:
        try:
            data = np.asarray(d["data"], dtype=float)
            unit = str(d.get("unit", ""))
        except (KeyError, TypeError) as exc:
            raise ModelError(f"{where}: expected {{data: [...], unit: ...}}") from exc
        if to is not None:
            try:
                data = data * u.Unit(unit).to(to)
            except u.UnitsError as exc:
                raise ModelError(f"{where}: unit {unit!r} not convertible to {to}") from exc
        return data, unit


class TemplateSpectralModel(SpectralModel):
    """Tabulated dN/dE, log-log interpolated (linear extrapolation, clipped at 0)."""

    tag = ("TemplateSpectralModel", "template")
    _defaults = ()

    def __init__(self, energy: Any, values: Any, values_unit: str | None = None) -> None:
        super().__init__()
        e = u.Quantity(energy, u.TeV).to_value(u.TeV)
        if isinstance(values, u.Quantity):
            vunit, v = values.unit.to_string(), values.value
        else:
            vunit, v = (DNDE if values_unit is None else values_unit), np.asarray(values)
        object.__setattr__(self, "energy_tev", np.asarray(e, dtype=float).ravel())
        object.__setattr__(self, "values", np.asarray(v, dtype=float).ravel())
        object.__setattr__(self, "unit", vunit)
        object.__setattr__(self, "_lx", np.log(self.energy_tev))
        object.__setattr__(self, "_ly", np.log(np.clip(self.values, _TINY, np.inf)))

    def evaluate_numpy(self, energy_tev):
        return _loglog_interp(np.asarray(energy_tev, dtype=float), self._lx, self._ly)

    def _breaks(self):
        return tuple(self.energy_tev)

    def to_dict(self, full_output: bool = False) -> dict:
        d = super().to_dict(full_output)
        d["energy"] = {"data": self.energy_tev.tolist(), "unit": "TeV"}
        d["values"] = {"data": self.values.tolist(), "unit": unit_string(self.unit)}
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> TemplateSpectralModel:
        where = where or cls.tag[0]
        e, _ = _ArraySpec.read(data.get("energy"), f"{where}.energy", "TeV")
        v, vunit = _ArraySpec.read(data.get("values"), f"{where}.values")
        return cls(e, v, values_unit=vunit)


class PiecewiseNormSpectralModel(SpectralModel):
    """Norm interpolated between free nodes norm_i at fixed energies ('log' or 'lin')."""

    tag = ("PiecewiseNormSpectralModel", "piecewise-norm")
    unit = ""

    def __init__(self, energy: Any, norms: Any = None, interp: str = "log") -> None:
        e = np.asarray(u.Quantity(energy, u.TeV).to_value(u.TeV), dtype=float).ravel()
        if norms is None:
            norms = np.ones(e.size)
        if len(norms) != e.size or e.size < 2:
            raise ModelError("PiecewiseNormSpectralModel: need >= 2 norms, one per energy node")
        defaults = tuple(par(f"norm_{i}", 1.0) for i in range(e.size))
        object.__setattr__(self, "_defaults", defaults)
        kw = {f"norm_{i}": n for i, n in enumerate(norms)}
        super().__init__(**kw)
        object.__setattr__(self, "energy_tev", e)
        object.__setattr__(self, "interp", interp)

    def evaluate_numpy(self, energy_tev):
        norms = np.array(self._vals())
        x = np.asarray(energy_tev, dtype=float)
        if self.interp == "log":
            return np.exp(np.interp(np.log(x), np.log(self.energy_tev),
                                    np.log(np.clip(norms, _TINY, None))))
        return np.interp(x, self.energy_tev, norms)

    def _breaks(self):
        return tuple(self.energy_tev)

    def to_dict(self, full_output: bool = False) -> dict:
        d = super().to_dict(full_output)
        d["energy"] = {"data": self.energy_tev.tolist(), "unit": "TeV"}
        d["interp"] = self.interp
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> PiecewiseNormSpectralModel:
        where = where or cls.tag[0]
        e, _ = _ArraySpec.read(data.get("energy"), f"{where}.energy", "TeV")
        model = cls(e, interp=data.get("interp", "log"))
        for p in model._params_from_list(data.get("parameters"), where).values():
            setattr(model, p.name, p)
        return model

    def _params_from_list(self, data, where):  # instance-level defaults
        out = {}
        for entry in data or []:
            try:
                d = self.parameters[entry.get("name")]
            except KeyError:
                raise ModelError(f"{where}: unknown parameter {entry.get('name')!r}") from None
            p = d.copy()
            p.update(entry, where=f"{where}.{p.name}")
            out[p.name] = p
        return out


_OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv}


class CompoundSpectralModel(SpectralModel):
    """model1 <op> model2 with op in add, sub, mul, truediv (integrated numerically)."""

    tag = ("CompoundSpectralModel", "compound")

    def __init__(self, model1: SpectralModel, model2: SpectralModel, operator: Any) -> None:
        op = operator if isinstance(operator, str) else operator.__name__
        if op not in _OPS:
            raise ModelError(f"CompoundSpectralModel: unknown operator {op!r}")
        object.__setattr__(self, "model1", model1)
        object.__setattr__(self, "model2", model2)
        object.__setattr__(self, "operator", op)
        u1, u2 = model1.unit, model2.unit
        if op in ("add", "sub") or not u2:
            unit = u1
        elif op == "mul" and not u1:
            unit = u2
        else:
            q = u.Unit(u1) * u.Unit(u2) if op == "mul" else u.Unit(u1) / u.Unit(u2)
            unit = unit_string(q.to_string())
        object.__setattr__(self, "unit", unit)

    @property
    def parameters(self) -> Parameters:
        return Parameters(list(self.model1.parameters) + list(self.model2.parameters))

    def _vals(self):
        return self.model1._vals() + self.model2._vals()

    def evaluate_numpy(self, energy_tev):
        return _OPS[self.operator](self.model1.evaluate_numpy(energy_tev),
                                   self.model2.evaluate_numpy(energy_tev))

    def _breaks(self):
        return self.model1._breaks() + self.model2._breaks()

    def to_dict(self, full_output: bool = False) -> dict:
        return {"type": self.tag[0], "model1": self.model1.to_dict(full_output),
                "model2": self.model2.to_dict(full_output), "operator": self.operator}

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> CompoundSpectralModel:
        where = where or cls.tag[0]
        try:
            m1, m2, op = data["model1"], data["model2"], data["operator"]
        except KeyError as exc:
            raise ModelError(f"{where}: missing key {exc}") from None
        return cls(spectral_from_dict(m1, f"{where}.model1"),
                   spectral_from_dict(m2, f"{where}.model2"), op)

    def __repr__(self) -> str:
        return f"CompoundSpectralModel({self.model1!r} {self.operator} {self.model2!r})"


class ScaleSpectralModel(SpectralModel):
    """norm * model (gammapy's ScaleSpectralModel; integral = norm * model.integral)."""

    tag = ("ScaleSpectralModel", "scale")
    _defaults = (_norm(),)

    def __init__(self, model: SpectralModel, norm: Any = 1.0) -> None:
        super().__init__(norm=norm)
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "unit", model.unit)
        object.__setattr__(self, "_gammapy_analytic", model._gammapy_analytic)

    @property
    def parameters(self) -> Parameters:
        return Parameters([self._parameters[0], *self.model.parameters])

    def _vals(self):
        return self._parameters.canonical_values() + self.model._vals()

    def evaluate_numpy(self, energy_tev):
        return self._parameters[0].canonical_value * self.model.evaluate_numpy(energy_tev)

    def _integral_exact(self, lo, hi):
        return self._parameters[0].canonical_value * self.model._integral_exact(lo, hi)

    def _integral_gp(self, lo, hi):
        return self._parameters[0].canonical_value * self.model._integral_gp(lo, hi)

    def integral_bins(self, edges_tev):
        return self._parameters[0].canonical_value * self.model.integral_bins(edges_tev)

    def to_dict(self, full_output: bool = False) -> dict:
        d = super().to_dict(full_output)
        d["model"] = self.model.to_dict(full_output)
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> ScaleSpectralModel:
        where = where or cls.tag[0]
        if "model" not in data:
            raise ModelError(f"{where}: missing key 'model'")
        inner = spectral_from_dict(data["model"], f"{where}.model")
        pars = cls._params_from_list(data.get("parameters"), where)
        return cls(inner, pars.get("norm", 1.0))


def spectral_from_dict(data: dict, where: str = "spectral") -> SpectralModel:
    """Spectral model from its YAML dict (tag or alias in ``type``)."""
    if not isinstance(data, dict) or "type" not in data:
        raise ModelError(f"{where}: spectral model needs a 'type'")
    cls = get_model_class("spectral", data["type"], f"{where}: ")
    return cls.from_dict(data, where=f"{where}[{data['type']}]")
