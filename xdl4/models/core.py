"""Model base class, tag registry and numpy / Quantity / xarray input handling."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import astropy.units as u
import numpy as np
import xarray as xr

from xdl4.errors import ModelError

from .parameter import Parameter, Parameters, parameter_entries, parse_quantity

#: the number that starts a quantity string ("1e-11cm-2 s-1 TeV-1": the rest is the unit)
_LEADING_NUMBER = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

__all__ = ["Model", "REGISTRY", "get_model_class", "par"]

# kind ("spectral" | "spatial" | "temporal" | "sky") -> tag or alias -> class
REGISTRY: dict[str, dict[str, type]] = {"spectral": {}, "spatial": {}, "temporal": {}, "sky": {}}


def get_model_class(kind: str, tag: str, where: str = "") -> type:
    """Class registered for `tag` (long name or alias); a ModelError otherwise."""
    try:
        return REGISTRY[kind][tag]
    except KeyError:
        known = sorted({c.tag[0] for c in REGISTRY[kind].values()})
        raise ModelError(
            f"{where}unknown {kind} model type {tag!r}; supported: {', '.join(known)}"
        ) from None


def par(name: str, value: float, unit: str = "", **kwargs: Any) -> Parameter:
    """Default-parameter declaration; its unit is the model's internal (canonical) unit."""
    return Parameter(name, value, unit, canonical=unit, **kwargs)


class Model:
    """Base class: parameters built from the class' `_defaults`, registered by `tag`.

    Parameters are reachable as attributes (``model.index``); assigning a `Parameter`
    object to such an attribute links it (the object is shared).
    """

    tag: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = ""
    _defaults: ClassVar[tuple[Parameter, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.tag and cls.kind:
            for t in cls.tag:
                REGISTRY[cls.kind][t] = cls

    def __init__(self, **kwargs: Any) -> None:
        params = []
        for d in self._defaults:
            p = d.copy()
            p._canonical = d._canonical
            if d.name in kwargs:
                v = kwargs.pop(d.name)
                if isinstance(v, str):  # "1e-11 cm-2 s-1 TeV-1", as gammapy takes it
                    text, v = v, parse_quantity(v, d.name)
                    if isinstance(v, u.Quantity):  # the unit as the user spelt it
                        p.unit = _LEADING_NUMBER.sub("", text, count=1).strip() or \
                            v.unit.to_string()
                        v = v.value
                if isinstance(v, Parameter):
                    v._canonical = d._canonical
                    v.unit = v.unit  # validates convertibility
                    p = v
                elif isinstance(v, u.Quantity) and v.unit != u.dimensionless_unscaled:
                    p.unit = v.unit.to_string()
                    p.value = v.value
                else:
                    p.value = v
            params.append(p)
        if kwargs:
            raise ModelError(f"{type(self).__name__}: unknown parameter(s) {sorted(kwargs)}")
        object.__setattr__(self, "_parameters", Parameters(params))

    @property
    def parameters(self) -> Parameters:
        """Parameters of this model (for compound models: of all components)."""
        return self._parameters

    def values_tuple(self) -> tuple[float, ...]:
        """Hashable tuple of current values (cache key)."""
        return self.parameters.values_tuple()

    def _vals(self) -> tuple[float, ...]:
        return self._parameters.canonical_values()

    def __getattr__(self, name: str) -> Parameter:
        params = self.__dict__.get("_parameters")
        if params is not None:
            for p in params:
                if p.name == name:
                    return p
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is not None and name in params.names:
            if not isinstance(value, Parameter):
                raise TypeError(f"set {name}.value, or assign a Parameter to link it")
            i = params.names.index(name)
            value._canonical = params[i]._canonical
            value.unit = value.unit
            params._list[i] = value
            return
        object.__setattr__(self, name, value)

    def copy(self) -> Model:
        """Deep copy (parameters are copied, links are not kept)."""
        return type(self).from_dict(self.to_dict(full_output=True))

    # ---- YAML dictionaries -------------------------------------------------------------
    def _params_to_list(self, full_output: bool) -> list[dict]:
        out = []
        for p, d in zip(self.parameters, self._defaults, strict=False):
            pd = p.to_dict()
            if not full_output:
                dd = d.to_dict()
                for key in ("min", "max", "error", "interp", "scale_method", "scale_transform"):
                    if pd[key] == dd[key] or (_isnan(pd[key]) and _isnan(dd[key])):
                        del pd[key]
                if pd["frozen"] == dd["frozen"]:
                    del pd["frozen"]
                if dd["unit"] == "":
                    del pd["unit"]
            out.append(pd)
        return out

    def to_dict(self, full_output: bool = False) -> dict:
        """gammapy-style dict: ``{"type": tag, "parameters": [...]}`` (+ model keys)."""
        return {"type": self.tag[0], "parameters": self._params_to_list(full_output)}

    @classmethod
    def _params_from_list(cls, data: list[dict] | None, where: str) -> dict[str, Parameter]:
        entries = parameter_entries(data, [d.name for d in cls._defaults], where)
        out = {}
        for d in cls._defaults:
            if d.name in entries:
                p = d.copy()
                p._canonical = d._canonical
                p.update(entries[d.name], where=f"{where}.{d.name}")
                out[d.name] = p
        return out

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> Model:
        """Build from a gammapy-style dict (missing parameters take their defaults)."""
        where = where or cls.tag[0]
        return cls(**cls._params_from_list(data.get("parameters"), where))

    def __repr__(self) -> str:
        body = ", ".join(f"{p.name}={p.value:g}" for p in self.parameters)
        return f"{type(self).__name__}({body})"


def _isnan(x: Any) -> bool:
    return isinstance(x, float) and x != x


# ---- generic array dispatch ------------------------------------------------------------
def apply_numeric(
    fn: Callable[..., np.ndarray],
    args: tuple,
    in_units: tuple[str, ...],
    out_unit: str,
) -> Any:
    """Call ``fn(*numpy args in in_units)`` for numpy / Quantity / xarray inputs.

    numpy in -> numpy out (inputs assumed in `in_units`); Quantity in -> Quantity out;
    DataArray in (``units`` attr honoured) -> DataArray out with a ``units`` attr, lazily
    for dask-backed arrays.
    """
    if any(isinstance(a, xr.DataArray) for a in args):
        conv = []
        for a, unit in zip(args, in_units, strict=True):
            if isinstance(a, xr.DataArray):
                src = a.attrs.get("units")
                f = u.Unit(src).to(unit) if src not in (None, "") and unit else 1.0
                conv.append(a * f if f != 1.0 else a)
            else:
                conv.append(_to_numpy(a, unit))
        res = xr.apply_ufunc(
            fn, *conv, dask="parallelized", output_dtypes=[float], keep_attrs=False
        )
        res.attrs["units"] = out_unit
        return res
    quantity = any(isinstance(a, u.Quantity) for a in args)
    res = fn(*(_to_numpy(a, unit) for a, unit in zip(args, in_units, strict=True)))
    return u.Quantity(res, out_unit) if quantity else res


def _to_numpy(a: Any, unit: str) -> Any:
    if isinstance(a, u.Quantity):
        return a.to_value(unit) if unit else a.to_value(u.dimensionless_unscaled)
    return np.asarray(a, dtype=float) if not np.isscalar(a) else float(a)
