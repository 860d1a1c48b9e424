"""Model parameters, per-model parameter lists and the flat view used by fitters."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from functools import lru_cache

import astropy.units as u
import numpy as np
import xarray as xr

from xdl4.errors import ArgumentError, DL4Warning, ModelError

__all__ = ["Parameter", "Parameters", "ModelsParameters"]

_FIELDS = ("min", "max", "error", "interp", "scale_method", "scale_transform")


@lru_cache(maxsize=512)
def _unit(unit: str) -> u.UnitBase:
    return u.Unit(unit)


@lru_cache(maxsize=512)
def _factor(unit: str, canonical: str | None) -> float:
    """Scale from `unit` to `canonical` (1 when no canonical unit is declared)."""
    if canonical is None or unit == canonical:
        return 1.0
    return float(_unit(unit).to(_unit(canonical)))


def unit_string(unit: str) -> str:
    """FITS spelling of a unit string ('' stays '')."""
    return _unit(unit).to_string("fits") if unit.strip() else ""


class Parameter:
    """A model parameter: value in `unit`, bounds, frozen flag, error and YAML extras.

    The same object may be held by several models (a linked parameter).
    """

    __slots__ = (
        "name", "_value", "_unit", "min", "max", "frozen", "error", "interp",
        "scale_method", "scale_transform", "prior", "link_label", "_canonical", "_factor",
    )

    def __init__(
        self,
        name: str,
        value: float,
        unit: str = "",
        min: float = np.nan,
        max: float = np.nan,
        frozen: bool = False,
        error: float = 0.0,
        interp: str = "lin",
        scale_method: str = "scale10",
        scale_transform: str = "lin",
        prior: dict | None = None,
        canonical: str | None = None,
    ) -> None:
        self.name = name
        self._canonical = canonical
        self._unit = ""
        self._factor = 1.0
        self.unit = unit
        self.value = value
        self.min, self.max = _float(min, unit, name), _float(max, unit, name)
        self.frozen = bool(frozen)
        self.error = _float(error, unit, name)
        self.interp, self.scale_method, self.scale_transform = interp, scale_method, scale_transform
        self.prior = prior
        self.link_label: str | None = None

    @property
    def value(self) -> float:
        """Value in `unit`."""
        return self._value

    @value.setter
    def value(self, v: float | str | u.Quantity) -> None:
        self._value = _float(v, self._unit, self.name)

    @property
    def unit(self) -> str:
        """Unit string; setting it re-interprets the value (no conversion), as gammapy."""
        return self._unit

    @unit.setter
    def unit(self, unit: str | u.UnitBase) -> None:
        unit = unit.to_string() if isinstance(unit, u.UnitBase) else str(unit)
        try:
            self._factor = _factor(unit, self._canonical)
        except (ValueError, u.UnitsError) as exc:
            raise ModelError(
                f"parameter {self.name!r}: unit {unit!r} is not convertible to "
                f"{self._canonical!r}"
            ) from exc
        self._unit = unit

    @property
    def quantity(self) -> u.Quantity:
        """Value as an astropy Quantity; setting converts to the current unit."""
        return u.Quantity(self._value, _unit(self._unit))

    @quantity.setter
    def quantity(self, q: u.Quantity) -> None:
        self.value = u.Quantity(q).to_value(_unit(self._unit))

    @property
    def canonical_value(self) -> float:
        """Value in the model's internal unit (TeV, deg, cm-2 s-1 TeV-1, ...)."""
        return self._value * self._factor

    def bounds(self) -> tuple[float, float]:
        """(min, max) for fitting: the range of a uniform or log-uniform prior (as gammapy's
        ``Parameter.min``/``max``), else ``min``/``max``."""
        from .prior import prior_bounds

        return prior_bounds(self.prior) or (self.min, self.max)

    def copy(self) -> Parameter:
        p = Parameter.__new__(Parameter)
        for k in self.__slots__:
            setattr(p, k, getattr(self, k))
        p.prior = None if self.prior is None else dict(self.prior)
        return p

    def to_dict(self) -> dict:
        """All fields, YAML order of gammapy (`link`/`prior` only when set)."""
        d = {"name": self.name, "value": self._value, "unit": unit_string(self._unit),
             "error": self.error, "min": self.min, "max": self.max, "frozen": self.frozen,
             "interp": self.interp, "scale_method": self.scale_method,
             "scale_transform": self.scale_transform}
        if self.link_label is not None:
            d["link"] = self.link_label
        if self.prior is not None:
            d["prior"] = self.prior
        return d

    def update(self, data: dict, where: str = "") -> None:
        """Update fields from a YAML parameter dict; unknown keys, values that are not
        numbers and ``min > max`` raise :class:`xdl4.ModelError`, a value outside
        ``[min, max]`` warns (:class:`xdl4.DL4Warning`), all naming the parameter."""
        if not isinstance(data, dict):
            raise ModelError(f"{where}: parameter entry is not a mapping: {data!r}")
        # the unit first: a value with a unit of its own ("500 GeV") is converted to it
        for key, val in sorted(data.items(), key=lambda item: item[0] != "unit"):
            if key == "name":
                continue
            if key == "unit":
                try:
                    self.unit = "" if val is None else str(val).strip()
                except ValueError as exc:
                    raise ModelError(f"{where}: {exc}") from None
            elif key in ("value", "min", "max", "error"):
                try:
                    setattr(self, key, _float(val, self.unit, self.name))
                except (TypeError, ValueError):
                    raise ModelError(f"{where}: {key} of parameter {self.name!r} is not a "
                                     f"number: {val!r}") from None
            elif key == "frozen":
                self.frozen = bool(val)
            elif key == "prior":
                if val is not None:
                    from .prior import prior_parameters

                    try:
                        prior_parameters(val)
                    except (ValueError, TypeError, KeyError, AttributeError) as exc:
                        raise ModelError(f"{where}: parameter {self.name!r}: {exc}") from None
                self.prior = val
            elif key in ("interp", "scale_method", "scale_transform"):
                setattr(self, key, val)
            elif key == "link":
                self.link_label = val
            elif key == "is_norm":
                pass
            else:
                raise ModelError(f"{where}: unknown field {key!r} for parameter {self.name!r}")
        check_bounds(self, where)

    def __repr__(self) -> str:
        fz = ", frozen" if self.frozen else ""
        return f"Parameter({self.name}={self._value!r} {self._unit}{fz})"


def check_bounds(p: Parameter, where: str = "") -> None:
    """``min > max`` raises :class:`xdl4.ModelError`; a value outside ``[min, max]`` warns
    (:class:`xdl4.DL4Warning`: a fit would start there, see
    :func:`xdl4.models.check_fit_start`). NaN bounds are open.

    >>> check_bounds(Parameter("index", 2.0, min=3.0, max=1.0), "pl")
    Traceback (most recent call last):
    ...
    xdl4.errors.ModelError: pl: parameter 'index' has min 3 > max 1
    """
    head = f"{where}: " if where else ""
    if p.min > p.max:
        raise ModelError(f"{head}parameter {p.name!r} has min {p.min:g} > max {p.max:g}")
    if p.value < p.min or p.value > p.max:
        warnings.warn(f"{head}parameter {p.name!r} value {p.value:g} is outside its bounds "
                      f"[{p.min:g}, {p.max:g}]", DL4Warning, stacklevel=4)


def parameter_entries(entries, known: list[str], where: str) -> dict[str, dict]:
    """The YAML parameter entries by name, checked: a list of mappings with known, unique
    names (else :class:`xdl4.ModelError`); a known parameter without an entry keeps its
    default value, with a :class:`xdl4.DL4Warning` naming it (as gammapy warns) unless the
    component has no ``parameters`` at all (``entries`` None: all defaults, deliberately).

    >>> parameter_entries([{"name": "a", "value": 1}, {"name": "a", "value": 2}], ["a"], "m")
    Traceback (most recent call last):
    ...
    xdl4.errors.ModelError: m: parameter 'a' appears twice
    """
    given = entries is not None
    entries = [] if entries is None else entries
    if not isinstance(entries, list):
        raise ModelError(f"{where}: 'parameters' must be a list, got {entries!r}")
    out: dict[str, dict] = {}
    for entry in entries:
        if not isinstance(entry, dict) or "name" not in entry:
            raise ModelError(f"{where}: parameter entry without a 'name': {entry!r}")
        name = entry["name"]
        if name not in known:
            raise ModelError(f"{where}: unknown parameter {name!r} (expected one of "
                             f"{sorted(known)})")
        if name in out:
            raise ModelError(f"{where}: parameter {name!r} appears twice")
        out[name] = entry
    missing = [n for n in known if n not in out]
    if given and missing:
        warnings.warn(f"{where}: parameters {missing} not given in the YAML: they keep their "
                      "default values", DL4Warning, stacklevel=4)
    return out


def parse_quantity(text: str, name: str = "") -> float | u.Quantity:
    """``"2.3"`` -> 2.3, ``"1e-11 cm-2 s-1 TeV-1"`` -> a Quantity; else a ModelError."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return u.Quantity(text)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"parameter {name!r}: {text!r} is not a number or quantity") from exc


def _float(v, unit: str | None = None, name: str = "") -> float:
    """A parameter number: a float, None (NaN), or a quantity (a Quantity or a string such
    as ``"1e-11 cm-2 s-1 TeV-1"``) converted to ``unit``; anything else is a ModelError."""
    if v is None:
        return math.nan
    if isinstance(v, str):
        v = parse_quantity(v, name)
    if isinstance(v, u.Quantity):
        if unit is None or (v.unit == u.dimensionless_unscaled and v.isscalar):
            return float(v.value)  # a bare number: in the parameter's unit
        try:
            return float(v.to_value(_unit(unit)))
        except (u.UnitsError, ValueError, TypeError) as exc:
            raise ModelError(f"parameter {name!r}: {v} is not convertible to the "
                             f"parameter's unit {unit!r}") from exc
    try:
        return float(v)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"parameter {name!r}: {v!r} is not a number") from exc


class Parameters:
    """Ordered parameters of one model (list + access by name)."""

    def __init__(self, params: Iterable[Parameter]) -> None:
        self._list = list(params)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._list)

    def __len__(self) -> int:
        return len(self._list)

    def __getitem__(self, key: int | str) -> Parameter:
        if isinstance(key, str):
            for p in self._list:
                if p.name == key:
                    return p
            raise KeyError(key)
        return self._list[key]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._list]

    def values_tuple(self) -> tuple[float, ...]:
        """Current values (in each parameter's unit) as a hashable tuple, for cache keys."""
        return tuple(p._value for p in self._list)

    def canonical_values(self) -> tuple[float, ...]:
        """Current values in the model's internal units."""
        return tuple(p._value * p._factor for p in self._list)

    def __repr__(self) -> str:
        return _parameters_repr("Parameters", [(p.name, p) for p in self._list], False)

    def _repr_html_(self) -> str:
        return _parameters_repr("Parameters", [(p.name, p) for p in self._list], True)


class ModelsParameters:
    """Flat mapping ``"model.param" -> Parameter`` over a `Models` container.

    Labels are ``<model>.<param>``; when a name occurs twice within one model (compound
    spectra, or spectral and spatial parameters of the same name) the label is the long form
    ``<model>.<spectral|spatial|temporal>[.modelN].<param>``. The long form is always accepted.
    Linked parameters (one object) appear once in the free vector.
    """

    def __init__(self, entries: list[tuple[str, str, Parameter]]) -> None:
        # entries: (short label, long label, parameter)
        self._labels = [e[0] for e in entries]
        self._params = [e[2] for e in entries]
        self._lookup = {e[0]: e[2] for e in entries}
        self._lookup.update({e[1]: e[2] for e in entries})
        self._long = [e[1] for e in entries]

    def __getitem__(self, label: str) -> Parameter:
        try:
            return self._lookup[label]
        except KeyError:
            raise KeyError(f"no parameter {label!r}; known: {self._labels}") from None

    def __contains__(self, label: object) -> bool:
        return label in self._lookup

    def __iter__(self) -> Iterator[str]:
        return iter(self._labels)

    def __len__(self) -> int:
        return len(self._labels)

    def keys(self) -> list[str]:
        return list(self._labels)

    def items(self) -> list[tuple[str, Parameter]]:
        return list(zip(self._labels, self._params, strict=True))

    @property
    def long_names(self) -> list[str]:
        """Labels ``<model>.<spectral|spatial|temporal>.<param>`` (covariance-file names)."""
        return list(self._long)

    def unique(self) -> list[tuple[str, Parameter]]:
        """(label, parameter) for each distinct parameter object, first appearance order."""
        seen: set[int] = set()
        out = []
        for lab, p in zip(self._labels, self._params, strict=True):
            if id(p) not in seen:
                seen.add(id(p))
                out.append((lab, p))
        return out

    def free(self) -> list[tuple[str, Parameter]]:
        """(label, parameter) of the free unique parameters."""
        return [(lab, p) for lab, p in self.unique() if not p.frozen]

    def free_names(self) -> list[str]:
        """Labels of the free unique parameters (order of `free_values`)."""
        return [lab for lab, _ in self.free()]

    def free_values(self) -> np.ndarray:
        """Values of the free unique parameters, each in its own unit."""
        return np.array([p.value for _, p in self.free()], dtype=float)

    def set_free_values(self, values: np.ndarray) -> None:
        """Set the free unique parameters from a vector (order of `free_names`)."""
        free = self.free()
        values = np.asarray(values, dtype=float).ravel()
        if values.size != len(free):
            raise ArgumentError(f"expected {len(free)} free values, got {values.size}")
        for (_, p), v in zip(free, values, strict=True):
            p.value = float(v)

    def free_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) arrays of the free parameters (NaN = unbounded)."""
        free = self.free()
        return (np.array([p.min for _, p in free], dtype=float),
                np.array([p.max for _, p in free], dtype=float))

    def values_tuple(self) -> tuple[float, ...]:
        """All unique values, hashable (cache key)."""
        return tuple(p.value for _, p in self.unique())

    def to_dataset(self) -> xr.Dataset:
        """Table of all parameters on a ``parameter`` dimension."""
        ps = self._params
        return xr.Dataset(
            {
                "value": ("parameter", np.array([p.value for p in ps], dtype=float)),
                "error": ("parameter", np.array([p.error for p in ps], dtype=float)),
                "unit": ("parameter", np.array([p.unit for p in ps], dtype=object)),
                "min": ("parameter", np.array([p.min for p in ps], dtype=float)),
                "max": ("parameter", np.array([p.max for p in ps], dtype=float)),
                "frozen": ("parameter", np.array([p.frozen for p in ps], dtype=bool)),
            },
            coords={"parameter": np.array(self._labels, dtype=object)},
        )

    def __repr__(self) -> str:
        return _parameters_repr("ModelsParameters", self.items(), False)

    def _repr_html_(self) -> str:
        return _parameters_repr("ModelsParameters", self.items(), True)


# ---- tables for reprs (text and HTML) ------------------------------------------------------
#: the columns of a parameter table (``Parameters``, ``ModelsParameters``, ``Models``)
PARAMETER_COLUMNS = ("name", "value", "error", "unit", "min", "max", "frozen", "linked")


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_)


def format_cell(v, digits: int = 6) -> str:
    """A table cell: numbers with ``digits`` significant digits, booleans as True/False."""
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if _is_number(v):
        return f"{v:.{digits}g}"
    return "" if v is None else str(v)


def text_table(header, rows, indent: str = "  ") -> str:
    """Fixed-width text table; columns whose cells are all numbers are right-aligned."""
    rows = [list(r) for r in rows]
    cells = [[str(h) for h in header]] + [[format_cell(v) for v in r] for r in rows]
    widths = [max(len(c[j]) for c in cells) for j in range(len(header))]
    right = [bool(rows) and all(_is_number(r[j]) for r in rows) for j in range(len(header))]
    lines = ["  ".join(c.rjust(w) if rt else c.ljust(w)
                       for c, w, rt in zip(row, widths, right, strict=True)).rstrip()
             for row in cells]
    return "\n".join(indent + line for line in lines)


def html_table(header, rows, caption: str | None = None) -> str:
    """A plain, escaped HTML table (numbers right-aligned; no header row when all
    ``header`` cells are empty)."""
    import html

    esc = html.escape
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{esc(str(h))}</th>" for h in header)
    head = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    body = "".join(
        "<tr>" + "".join(
            f'<td style="text-align:{"right" if _is_number(v) else "left"}">'
            f"{esc(format_cell(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f'<table class="xdl4-table">{cap}{head}<tbody>{body}</tbody></table>'


def parameter_rows(entries: list[tuple[str, Parameter]]) -> list[list]:
    """Rows of :data:`PARAMETER_COLUMNS` for (label, parameter) entries; ``linked`` names
    the other labels holding the same parameter object (else its YAML link label)."""
    labels: dict[int, list[str]] = {}
    for lab, p in entries:
        labels.setdefault(id(p), []).append(lab)
    rows = []
    for lab, p in entries:
        linked = ", ".join(o for o in labels[id(p)] if o != lab) or (p.link_label or "")
        rows.append([lab, p.value, p.error, p.unit, p.min, p.max, p.frozen, linked])
    return rows


def _parameters_repr(title: str, entries: list[tuple[str, Parameter]], as_html: bool) -> str:
    n_free = len({id(p) for _, p in entries if not p.frozen})
    head = f"{title}: {len(entries)} parameters, {n_free} free"
    rows = parameter_rows(entries)
    if as_html:
        import html

        return (f"<div><b>{html.escape(title)}</b>: {len(entries)} parameters, {n_free} free"
                f"{html_table(PARAMETER_COLUMNS, rows)}</div>")
    return head + ("\n" + text_table(PARAMETER_COLUMNS, rows) if rows else "")

