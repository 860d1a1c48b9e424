"""The free parameters of a fit as factors of order one: ``T(value) / scale``."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np

from xdl4.errors import FitError
from xdl4.models.routing import ModelsLike

_T: dict[str, tuple[Callable, Callable, Callable]] = {  # T, T^-1, dT/dv
    "lin": (lambda v: v, lambda y: y, lambda v: 1.0),
    "log": (math.log, math.exp, lambda v: 1.0 / v),
    "sqrt": (math.sqrt, lambda y: y * y, lambda v: 0.5 / math.sqrt(v)),
}


@functools.lru_cache(maxsize=128)
def _is_angle(unit: str) -> bool:
    import astropy.units as u

    try:
        return u.Unit(unit).physical_type == "angle"
    except (ValueError, TypeError):
        return False


class _Free:
    """The free parameters of a fit and their factor <-> value mapping (fixed per fit)."""

    def __init__(self, models: ModelsLike) -> None:
        free = models.parameters.free()
        if not free:
            raise FitError("no free parameter")
        self.labels = [lab for lab, _ in free]
        self.params = [p for _, p in free]
        self.start = [p.value for p in self.params]
        self.t = []
        self.scales = []
        for lab, p in free:
            transform = p.scale_transform or "lin"
            if transform not in _T:
                raise FitError(f"{lab}: unknown scale_transform {transform!r}")
            y = _T[transform][0](p.value)
            if not math.isfinite(y):
                raise FitError(f"{lab}: value {p.value} is not valid for scale_transform "
                               f"{transform!r} or not finite")
            if y == 0 or not p.scale_method:
                scale = 1.0
            elif p.scale_method == "factor1":
                scale = y
            else:
                scale = 10.0 ** math.floor(math.log10(abs(y)))
            self.t.append(_T[transform])
            self.scales.append(scale)

    def factors(self) -> np.ndarray:
        return np.array([t[0](p.value) / s for p, t, s in
                         zip(self.params, self.t, self.scales, strict=True)])

    def set(self, factors: Sequence[float]) -> None:
        for p, t, s, f in zip(self.params, self.t, self.scales, factors, strict=True):
            p.value = t[1](f * s)

    def values(self, factors: Sequence[float]) -> np.ndarray:
        return np.array([t[1](f * s) for t, s, f in zip(self.t, self.scales, factors,
                                                        strict=True)])

    def restore(self) -> None:
        for p, v in zip(self.params, self.start, strict=True):
            p.value = v

    def limits(self, overrides: dict[int, tuple[float, float]] | None = None
               ) -> list[tuple[float | None, float | None]]:
        """Minuit's limits on the factors, from the parameters' bounds (``overrides``:
        other (min, max) in value units by parameter index)."""
        out = []
        for i, (p, t, s) in enumerate(zip(self.params, self.t, self.scales, strict=True)):
            lims = []
            for b in (overrides or {}).get(i, p.bounds()):
                with np.errstate(all="ignore"):
                    y = t[0](b) / s if math.isfinite(b) and (t[0] is _T["lin"][0] or b > 0) \
                        else None
                lims.append(y)
            lo, hi = lims
            out.append((lo, hi) if s > 0 else (hi, lo))
        return out

    def steps(self) -> list[float]:
        out = []
        for p, t, s in zip(self.params, self.t, self.scales, strict=True):
            v = p.value
            if math.isfinite(p.error) and p.error > 0:
                dv = p.error
            elif _is_angle(p.unit):
                import astropy.units as u

                dv = (0.01 * u.deg).to_value(p.unit)
            else:
                dv = 0.01 * abs(v) if v != 0 else 0.01 * abs(s)
            out.append(abs(t[2](v) * dv / s))
        return out

    def jacobian(self, factors: Sequence[float]) -> np.ndarray:
        """d value / d factor at `factors`."""
        vals = self.values(factors)
        return np.array([s / t[2](v) for t, s, v in zip(self.t, self.scales, vals,
                                                        strict=True)])
