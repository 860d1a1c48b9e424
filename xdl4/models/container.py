"""`Models` container and gammapy-compatible models YAML (+ covariance file) I/O."""

from __future__ import annotations

import io
import os
import secrets
import string
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from xdl4.errors import ArgumentError, DL4FileNotFoundError, ModelError
from xdl4.files import check_readable

from .core import get_model_class
from .parameter import ModelsParameters, Parameter
from .sky import SkyModel

__all__ = ["Models", "read_models"]


def _make_label() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


class Models(Sequence):
    """Ordered collection of sky / background models with a flat parameter view.

    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
    >>> models.names, list(models.parameters)
    (['src'], ['src.index', 'src.amplitude', 'src.reference'])
    """

    def __init__(self, models: Iterable[Any] = (), covariance: np.ndarray | None = None) -> None:
        self._models = list(models)
        names = [m.name for m in self._models]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ModelError(f"model names must be unique; duplicated: {sorted(dup)}")
        self._covariance = None
        self.covariance_filename: str | None = None
        if covariance is not None:
            self.covariance = covariance

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            for m in self._models:
                if m.name == key:
                    return m
            raise KeyError(f"no model named {key!r}; models: {self.names}")
        return self._models[key]

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._models)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self._models]

    def append(self, model: Any) -> None:
        if model.name in self.names:
            raise ModelError(f"model names must be unique; duplicated: {model.name!r}")
        self._models.append(model)
        self._covariance = None

    @property
    def parameters(self) -> ModelsParameters:
        """Flat mapping ``"<model>.<param>" -> Parameter`` (see `ModelsParameters`)."""
        return ModelsParameters([e for m in self._models for e in m.labelled_parameters()])

    def values_tuple(self) -> tuple[float, ...]:
        return self.parameters.values_tuple()

    @property
    def covariance(self) -> np.ndarray | None:
        """Covariance over all parameter entries (order of ``parameters.long_names``)."""
        return self._covariance

    @covariance.setter
    def covariance(self, value: np.ndarray | None) -> None:
        if value is None:
            self._covariance = None
            return
        value = np.asarray(value, dtype=float)
        n = len(self.parameters)
        if value.shape != (n, n):
            raise ModelError(f"covariance shape {value.shape} does not match {n} parameters")
        self._covariance = value

    # ---- dicts ------------------------------------------------------------------------------
    def _update_link_labels(self) -> None:
        seen: dict[int, Parameter] = {}
        shared: dict[int, Parameter] = {}
        for _, p in self.parameters.items():
            if id(p) in seen:
                shared[id(p)] = p
            seen[id(p)] = p
        for i, p in seen.items():
            if i in shared:
                if p.link_label is None:
                    p.link_label = f"{p.name}@{_make_label()}"
            else:
                p.link_label = None

    def to_dict(self, full_output: bool = False) -> dict:
        """gammapy-style dict ``{"components": [...], "covariance": file?}``."""
        self._update_link_labels()
        d: dict[str, Any] = {"components": [m.to_dict(full_output) for m in self._models]}
        if self.covariance_filename is not None:
            d["covariance"] = self.covariance_filename
        return d

    @classmethod
    def from_dict(cls, data: dict, base_path: str | os.PathLike | None = None) -> Models:
        """Build from a models dict; links by label; covariance file read from `base_path`.
        Every problem raises :class:`xdl4.ModelError` naming the component (and the
        parameter); parameters left at their defaults or starting outside their bounds
        warn (:class:`xdl4.DL4Warning`)."""
        if not isinstance(data, dict) or not isinstance(data.get("components"), list):
            raise ModelError("models YAML: expected a mapping with a 'components' list")
        models = []
        for i, comp in enumerate(data["components"]):
            if not isinstance(comp, dict) or "type" not in comp:
                raise ModelError(f"models YAML: component {i} has no 'type'")
            label = f"component {i} ({comp.get('name', comp['type'])})"
            try:
                mcls = get_model_class("sky", comp["type"])
                models.append(mcls.from_dict(comp, base_path=base_path))
            except FileNotFoundError as err:  # a template file (named by the component)
                raise DL4FileNotFoundError(f"models YAML: {label}: {err}") from err
            except ModelError as err:
                raise ModelError(f"models YAML: {label}: {err}") from err
            except Exception as err:  # noqa: BLE001 - template files, astropy: typed
                raise ModelError(f"models YAML: {label}: {type(err).__name__}: {err}") \
                    from err
        out = cls(models)
        out._apply_links()
        cov = data.get("covariance")
        if cov is not None:
            path = Path(str(cov))
            if base_path is not None and not path.is_absolute():
                path = Path(base_path) / path
            out.covariance = _read_covariance(path, out.parameters.long_names)
            out.covariance_filename = str(cov)
        return out

    def _apply_links(self) -> None:
        register: dict[str, Parameter] = {}
        for m in self._models:
            for _, comp in m.components:
                _link_component(comp, register)

    # ---- files ------------------------------------------------------------------------------
    def write(self, path: str | os.PathLike, overwrite: bool = False, full_output: bool = False,
              write_covariance: bool = True) -> None:
        """Write the models YAML (and ``<stem>_covariance.dat`` if a covariance is set).

        Atomic and all or nothing (see :func:`xdl4.files.write_all`);
        :class:`xdl4.DL4FileExistsError` unless `overwrite`.
        """
        from xdl4.files import write_all

        path = Path(path)
        files = []
        cov_name = None
        if write_covariance and self._covariance is not None and len(self.parameters):
            cov_name = f"{path.stem}_covariance.dat"
            cov_text = _covariance_text(self.parameters.long_names, self._covariance)
            files.append((path.parent / cov_name, lambda tmp: tmp.write_text(cov_text)))
        previous, self.covariance_filename = self.covariance_filename, \
            cov_name or self.covariance_filename
        try:
            d = self.to_dict(full_output)
        finally:
            self.covariance_filename = previous
        d["metadata"] = {"creator": "xdl4", "date": datetime.now().isoformat(), "origin": None}
        text = yaml.safe_dump(d, sort_keys=False, indent=4, width=80, default_flow_style=False)
        write_all([*files, (path, lambda tmp: tmp.write_text(text))], overwrite)
        if cov_name is not None:
            self.covariance_filename = cov_name

    @classmethod
    def read(cls, path: str | os.PathLike) -> Models:
        return read_models(path)

    # ---- freezing and selection (gammapy's Models.freeze / unfreeze / select) ------------
    def copy(self) -> Models:
        """A deep copy, as gammapy's ``Models.copy()``: new parameters, the links between
        these models kept, the covariance copied (e.g. to fit again from the same start).

        >>> from xdl4.models import Models, SkyModel, PowerLaw
        >>> models = Models([SkyModel(PowerLaw(index=2.5), name="src")])
        >>> other = models.copy()
        >>> other.parameters["src.index"].value = 3.0
        >>> models.parameters["src.index"].value
        2.5
        """
        import copy

        return copy.deepcopy(self)

    def freeze(self, model_type: str | None = None) -> None:
        """Freeze all parameters, or those of one component (``model_type``: "spectral",
        "spatial", "temporal") of every model; background models (FoV, template npred)
        freeze their spectral part only, as gammapy's."""
        for m in self._models:
            for comp in _components(m, _check_model_type(model_type)):
                for p in comp.parameters:
                    p.frozen = True

    def unfreeze(self, model_type: str | None = None) -> None:
        """Restore the frozen flags of all parameters (or of one component) to their
        model's defaults, as gammapy's: ``reference`` stays frozen, ``index`` is freed."""
        for m in self._models:
            for comp in _components(m, _check_model_type(model_type)):
                for p, default in _defaults_of(comp):
                    p.frozen = default.frozen

    def select(self, name_substring: str | None = None,
               datasets_names: str | list[str] | None = None,
               tag: str | list[str] | None = None, model_type: str | None = None,
               frozen: bool | None = None) -> Models:
        """The models meeting all conditions, as gammapy's ``Models.select``: name contains
        ``name_substring``; applies to one of ``datasets_names`` (models without
        ``datasets_names`` apply everywhere); ``tag`` is one of the model's tags (of its
        ``model_type`` component if given, e.g. ``tag="pl", model_type="spectral"``);
        ``frozen``: all its parameters frozen (True) or not (False). The same model
        objects, with the covariance block of their parameters."""
        _check_model_type(model_type)
        tags = [tag] if isinstance(tag, str) else tag
        names = [datasets_names] if isinstance(datasets_names, str) else datasets_names
        keep = []
        for m in self._models:
            ok = not name_substring or name_substring in m.name
            if names:
                own = getattr(m, "datasets_names", None)
                ok &= own is None or any(n in own for n in names)
            if tags:
                sub = m if model_type is None else getattr(m, model_type, None)
                ok &= sub is not None and any(t in _model_tags(sub) for t in tags)
            if frozen is not None:
                ok &= all(p.frozen for p in m.parameters) == bool(frozen)
            keep.append(bool(ok))
        out = Models([m for m, k in zip(self._models, keep, strict=True) if k])
        if self._covariance is not None:
            sizes = [len(m.labelled_parameters()) for m in self._models]
            rows = np.concatenate([np.full(n, k) for n, k in zip(sizes, keep, strict=True)]
                                  + [np.zeros(0, bool)])
            out.covariance = self._covariance[np.ix_(rows, rows)]
        return out

    # ---- reprs ----------------------------------------------------------------------------
    def _summary(self) -> tuple[str, list[str], list[list]]:
        n_free = len(self.parameters.free_names())
        head = f"Models: {len(self)} models, {n_free} free parameters"
        if self._covariance is not None:
            head += ", with covariance"
        columns = ["name", "type", "spectral", "spatial", "temporal", "datasets_names"]
        rows = [[m.name, _model_tags(m)[0]]
                + [_model_tags(c)[0] if c is not None else ""
                   for c in (getattr(m, k, None) for k in ("spectral", "spatial", "temporal"))]
                + [", ".join(m.datasets_names) if m.datasets_names is not None else "all"]
                for m in self._models]
        return head, columns, rows

    def __repr__(self) -> str:
        from .parameter import PARAMETER_COLUMNS, parameter_rows, text_table

        head, columns, rows = self._summary()
        if not rows:
            return head
        return "\n".join([head, text_table(columns, rows), "Parameters:",
                          text_table(PARAMETER_COLUMNS, parameter_rows(self.parameters.items()))])

    def _repr_html_(self) -> str:
        import html

        from .parameter import PARAMETER_COLUMNS, html_table, parameter_rows

        head, columns, rows = self._summary()
        return (f"<div><b>{html.escape(head)}</b>{html_table(columns, rows)}"
                f"{html_table(PARAMETER_COLUMNS, parameter_rows(self.parameters.items()))}"
                "</div>")


_MODEL_TYPES = (None, "spectral", "spatial", "temporal")


def _check_model_type(model_type: str | None) -> str | None:
    if model_type not in _MODEL_TYPES:
        raise ArgumentError(f"model_type must be one of {list(_MODEL_TYPES)}, not {model_type!r}")
    return model_type


def _model_tags(model: Any) -> tuple[str, ...]:
    """The tags of a model (read-only models: their YAML type)."""
    own = getattr(model, "type_name", None)
    return (own,) if own else tuple(model.tag)


def _components(model: Any, model_type: str | None) -> list[Any]:
    """A sky model's components of ``model_type`` (all for None); background models (FoV,
    template npred) only their spectral part, as in gammapy. A component the model lacks
    is skipped (gammapy 2.1 raises AttributeError)."""
    if isinstance(model, SkyModel):
        kinds = ("spectral", "spatial", "temporal") if model_type is None else (model_type,)
    else:
        kinds = ("spectral",) if model_type in (None, "spectral") else ()
    return [c for c in (getattr(model, k, None) for k in kinds) if c is not None]


def _defaults_of(comp: Any) -> list[tuple[Parameter, Any]]:
    """(parameter, its class default) of a component. Compound and scaled spectra: their
    components' defaults (gammapy 2.1 leaves those parameters as they are); read-only
    models declare no defaults: their flags are kept."""
    from .spectral import CompoundSpectralModel, ScaleSpectralModel

    if isinstance(comp, CompoundSpectralModel):
        return _defaults_of(comp.model1) + _defaults_of(comp.model2)
    own = list(zip(comp._parameters, comp._defaults, strict=False))
    if isinstance(comp, ScaleSpectralModel):
        own += _defaults_of(comp.model)
    return own


def _link_component(model: Any, register: dict[str, Parameter]) -> None:
    from .spectral import CompoundSpectralModel, ScaleSpectralModel

    if isinstance(model, CompoundSpectralModel):
        _link_component(model.model1, register)
        _link_component(model.model2, register)
        return
    if isinstance(model, ScaleSpectralModel):
        _link_component(model.model, register)
    plist = model._parameters._list
    for i, p in enumerate(plist):
        if p.link_label is None:
            continue
        if p.link_label in register:
            shared = register[p.link_label]
            shared._canonical = p._canonical
            shared.unit = shared.unit  # validate against this model's unit
            plist[i] = shared
        else:
            register[p.link_label] = p


def read_models(path: str | os.PathLike) -> Models:
    """Read a gammapy models YAML; ``$ENV`` and relative template/covariance paths resolved.

    A missing file raises :class:`xdl4.DL4FileNotFoundError`, anything wrong inside it
    :class:`xdl4.ModelError` naming the file, the component and the parameter.

    >>> import os, tempfile, xdl4
    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> path = os.path.join(tempfile.mkdtemp(), "models.yaml")
    >>> Models([SkyModel(PowerLaw(index=2.2, amplitude=1e-11), name="src")]).write(path)
    >>> float(xdl4.read_models(path).parameters["src.index"].value)
    2.2
    """
    path, data = load_yaml(path)
    return models_of(path, {k: v for k, v in data.items() if k not in ("metadata", "checksum")})


def load_yaml(path: str | os.PathLike) -> tuple[Path, dict]:
    """(path, mapping) of a YAML file of models (or a fit of them): a missing file is a
    DL4FileNotFoundError, invalid YAML or another top level a ModelError naming it."""
    path = check_readable(path)
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ModelError(f"{path.name}: not valid YAML: {err}") from err
    if data is not None and not isinstance(data, dict):
        raise ModelError(f"{path.name}: expected a mapping with a 'components' list")
    return path, dict(data or {})


def models_of(path: Path, data: dict) -> Models:
    """The models of the mapping ``data`` read from ``path`` (relative files resolved
    beside it); errors name the file first."""
    try:
        return Models.from_dict(data, base_path=path.parent)
    except (ModelError, DL4FileNotFoundError) as err:
        raise type(err)(f"{path.name}: {err}") from err


def _covariance_text(names: list[str], cov: np.ndarray) -> str:
    """astropy ascii.fixed_width table, delimiter '|', header ``Parameters | 0 | 1 ...``."""
    from astropy.table import Table

    t = Table()
    t["Parameters"] = names
    for i in range(len(names)):
        t[str(i)] = cov[i]
    buf = io.StringIO()
    t.write(buf, format="ascii.fixed_width", delimiter="|")
    return buf.getvalue()


def _read_covariance(path: Path, names: list[str]) -> np.ndarray:
    from astropy.table import Table

    if not path.exists():
        raise DL4FileNotFoundError(f"covariance file not found: {path}")
    try:
        t = Table.read(str(path), format="ascii.fixed_width", delimiter="|")
        rows = [str(x) for x in t["Parameters"]]
        t.remove_column("Parameters")
        data = np.array([np.asarray(t[c], dtype=float) for c in t.colnames]).T
    except Exception as err:  # noqa: BLE001 - astropy's table errors, re-raised typed
        raise ModelError(f"covariance file {path}: cannot read: {err}") from err
    if data.shape != (len(names), len(names)):
        raise ModelError(f"covariance file {path}: shape {data.shape} does not match "
                         f"{len(names)} parameters")
    if rows != names:
        raise ModelError(f"covariance file {path}: parameter names {rows} differ from {names}")
    return data


# SkyModel is re-exported for convenience in type hints of callers
_ = SkyModel
