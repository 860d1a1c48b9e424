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

from xdl4.errors import DL4FileNotFoundError, ModelError

from .core import get_model_class
from .parameter import ModelsParameters, Parameter
from .sky import SkyModel

__all__ = ["Models", "read_models"]


def _make_label() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


class Models(Sequence):
    """Ordered collection of sky / background models with a flat parameter view."""

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
                mcls = get_model_class("sky", comp["type"], f"{label}: ")
                models.append(mcls.from_dict(comp, base_path=base_path))
            except (ModelError, DL4FileNotFoundError):
                raise
            except FileNotFoundError as err:  # a template file
                raise DL4FileNotFoundError(f"models YAML: {label}: {err}") from err
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

        Atomic and all or nothing (see :func:`xdl4.io.util.write_all`);
        :class:`xdl4.DL4FileExistsError` unless `overwrite`.
        """
        from xdl4.io.util import write_all

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

    def __repr__(self) -> str:
        return "Models(\n  " + ",\n  ".join(repr(m) for m in self._models) + "\n)"


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
    :class:`xdl4.ModelError` naming the file, the component and the parameter."""
    path = Path(path)
    if not path.is_file():
        raise DL4FileNotFoundError(f"{path}: file not found")
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ModelError(f"{path.name}: not valid YAML: {err}") from err
    if data is not None and not isinstance(data, dict):
        raise ModelError(f"{path.name}: expected a mapping with a 'components' list")
    data = dict(data or {})
    data.pop("metadata", None)
    data.pop("checksum", None)
    try:
        return Models.from_dict(data, base_path=path.parent)
    except ModelError as err:
        raise ModelError(f"{path.name}: {err}") from err


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
