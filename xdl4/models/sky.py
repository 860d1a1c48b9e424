"""Sky models (spectral x spatial [x temporal]), FoV background and template-npred models."""

from __future__ import annotations

import copy
import uuid
from typing import Any, ClassVar

import numpy as np
from astropy.wcs import WCS

from xdl4.errors import ModelError
from xdl4.skymath import pixel_grid

from .core import Model, get_model_class
from .parameter import Parameter, Parameters
from .spatial import SpatialModel, resolve_path, spatial_from_dict
from .spectral import PowerLawNormSpectralModel, SpectralModel, spectral_from_dict
from .temporal import TemporalModel

__all__ = ["SkyModel", "FoVBackgroundModel", "TemplateNPredModel", "OpaqueTemporalModel",
           "OpaqueSpectralModel", "OpaqueSpatialModel", "APPLY_IRF_DEFAULT"]

APPLY_IRF_DEFAULT = {"exposure": True, "psf": True, "edisp": True}


class _Opaque:
    """Mixin: a model kept as its YAML dict (parameters parsed, linkable, written back)."""

    def _init_opaque(self, data: dict, where: str) -> None:
        params = []
        for entry in data.get("parameters") or []:
            if "name" not in entry:
                raise ModelError(f"{where}: parameter entry without 'name'")
            p = Parameter(entry["name"], entry.get("value", np.nan))
            p.update(entry, where=f"{where}.{entry['name']}")
            params.append(p)
        object.__setattr__(self, "_raw", copy.deepcopy(data))
        object.__setattr__(self, "_parameters", Parameters(params))
        object.__setattr__(self, "type_name", str(data["type"]))

    def to_dict(self, full_output: bool = False) -> dict:
        d = copy.deepcopy(self._raw)
        if "parameters" in d:
            out = []
            for p, entry in zip(self.parameters, d["parameters"], strict=True):
                pd = p.to_dict()
                keep = set(entry) | {"name", "value"} | ({"link"} if p.link_label else set())
                if "link" not in keep or p.link_label is None:
                    keep.discard("link")
                out.append({k: v for k, v in pd.items() if k in keep or full_output})
            d["parameters"] = out
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "", **_: Any):
        obj = cls.__new__(cls)
        obj._init_opaque(data, where or str(data.get("type")))
        return obj

    def _not_supported(self, *_: Any, **__: Any):
        raise NotImplementedError(f"{self.type_name}: read/write only, evaluation not supported")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.type_name})"


class OpaqueTemporalModel(_Opaque, TemporalModel):
    """TemplatePhaseCurve: read and written back unchanged (parameters linkable); evaluating
    it raises NotImplementedError (gammapy 2.1's own npred fails on it: its ``integral``
    cannot take the GTI table's arrays)."""

    tag = ("TemplatePhaseCurveTemporalModel", "template-phase")
    __call__ = evaluate = integral = _integrals = _Opaque._not_supported

    @property
    def scale(self) -> str:
        return str(self._raw.get("scale", "utc"))


class OpaqueSpectralModel(_Opaque, SpectralModel):
    """Spectral types that are read and written back but not evaluated."""

    tag = ("EBLAbsorptionNormSpectralModel", "ebl-norm", "TemplateNDSpectralModel",
           "templateND", "NaimaSpectralModel", "naima")
    evaluate_numpy = _Opaque._not_supported


class OpaqueSpatialModel(_Opaque, SpatialModel):
    """Spatial types that are read and written back but not evaluated."""

    tag = ("TemplateNDSpatialModel", "templateND", "PiecewiseNormSpatialModel",
           "piecewise-norm", "ConstantFluxSpatialModel", "const-flux")
    _eval_xyz = _Opaque._not_supported
    integrate_pixels = _Opaque._not_supported


def _component_parameters(model: Any) -> list[tuple[str, Parameter]]:
    """(path, parameter) of a spectral/spatial/temporal component; compounds get modelN."""
    from .spectral import CompoundSpectralModel

    if isinstance(model, CompoundSpectralModel):
        return ([(f"model1.{n}", p) for n, p in _component_parameters(model.model1)]
                + [(f"model2.{n}", p) for n, p in _component_parameters(model.model2)])
    return [(p.name, p) for p in model.parameters]


class _SkyBase(Model):
    kind: ClassVar[str] = "sky"
    name: str
    spectral: SpectralModel
    spatial: SpatialModel | None
    temporal: TemporalModel | None

    @property
    def spectral_model(self) -> SpectralModel:
        return self.spectral

    @property
    def spatial_model(self) -> SpatialModel | None:
        return self.spatial

    @property
    def components(self) -> list[tuple[str, Any]]:
        out = [("spectral", self.spectral)]
        for key in ("spatial", "temporal"):
            if getattr(self, key, None) is not None:
                out.append((key, getattr(self, key)))
        return out

    @property
    def parameters(self) -> Parameters:
        return Parameters([p for _, m in self.components for _, p in _component_parameters(m)])

    def labelled_parameters(self) -> list[tuple[str, str, Parameter]]:
        """(short label, long label, parameter) entries for the flat mapping."""
        rows = [(kind, path, p) for kind, m in self.components
                for path, p in _component_parameters(m)]
        counts: dict[str, int] = {}
        for _, path, _p in rows:
            counts[path] = counts.get(path, 0) + 1
        out = []
        for kind, path, p in rows:
            long = f"{self.name}.{kind}.{path}"
            out.append((f"{self.name}.{path}" if counts[path] == 1 else long, long, p))
        return out

    def spectral_key(self) -> tuple[float, ...]:
        """Cache key of the spectral part (current values)."""
        return self.spectral.parameters.values_tuple()

    def spatial_key(self) -> tuple[float, ...]:
        """Cache key of the spatial part (current values; () without spatial model)."""
        return () if self.spatial is None else self.spatial.parameters.values_tuple()

    def temporal_key(self) -> tuple:
        """Cache key of the temporal part (class, scale, values; () without temporal model)."""
        t = self.temporal
        return () if t is None else (type(t), t.scale, t.parameters.values_tuple())

    def values_tuple(self) -> tuple[float, ...]:
        return self.parameters.values_tuple()

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")


class SkyModel(_SkyBase):
    """Source model: spectral x optional spatial x optional temporal model."""

    tag = ("SkyModel", "sky-model")

    def __init__(self, spectral: SpectralModel, spatial: SpatialModel | None = None,
                 name: str | None = None, datasets_names: list[str] | None = None,
                 temporal: TemporalModel | None = None, apply_irf: dict | None = None) -> None:
        if not isinstance(spectral, SpectralModel):
            raise TypeError(f"SkyModel: spectral must be a SpectralModel, got {type(spectral)}")
        if spatial is not None and not isinstance(spatial, SpatialModel):
            raise TypeError(f"SkyModel: spatial must be a SpatialModel, got {type(spatial)}")
        if temporal is not None and not isinstance(temporal, TemporalModel):
            raise TypeError(f"SkyModel: temporal must be a TemporalModel, got {type(temporal)}")
        object.__setattr__(self, "spectral", spectral)
        object.__setattr__(self, "spatial", spatial)
        object.__setattr__(self, "temporal", temporal)
        object.__setattr__(self, "name", name or uuid.uuid4().hex[:8])
        object.__setattr__(self, "datasets_names",
                           None if datasets_names is None else list(datasets_names))
        irf = dict(APPLY_IRF_DEFAULT)
        irf.update(apply_irf or {})
        object.__setattr__(self, "apply_irf", irf)

    def to_dict(self, full_output: bool = False) -> dict:
        d: dict[str, Any] = {"name": self.name, "type": self.tag[0]}
        if self.apply_irf != APPLY_IRF_DEFAULT:
            d["apply_irf"] = dict(self.apply_irf)
        if self.datasets_names is not None:
            d["datasets_names"] = list(self.datasets_names)
        for kind, m in self.components:
            d[kind] = m.to_dict(full_output)
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "", base_path: Any = None) -> SkyModel:
        name = data.get("name")
        where = where or f"SkyModel {name!r}"
        _check_keys(data, {"name", "type", "spectral", "spatial", "temporal", "apply_irf",
                           "datasets_names"}, where)
        if "spectral" not in data:
            raise ModelError(f"{where}: missing 'spectral'")
        spectral = spectral_from_dict(data["spectral"], f"{where}.spectral")
        spatial = (spatial_from_dict(data["spatial"], f"{where}.spatial", base_path)
                   if data.get("spatial") is not None else None)
        temporal = None
        if data.get("temporal") is not None:
            t = data["temporal"]
            tcls = get_model_class("temporal", t.get("type"), f"{where}.temporal: ")
            temporal = tcls.from_dict(t, where=f"{where}.temporal", base_path=base_path)
        return cls(spectral, spatial, name=name, datasets_names=data.get("datasets_names"),
                   temporal=temporal, apply_irf=data.get("apply_irf"))

    def __repr__(self) -> str:
        temporal = "" if self.temporal is None else f", temporal={self.temporal!r}"
        return (f"SkyModel(name={self.name!r}, spectral={self.spectral!r}, "
                f"spatial={self.spatial!r}{temporal})")


class FoVBackgroundModel(_SkyBase):
    """Field-of-view background norm for one dataset, named ``<dataset>-bkg``."""

    tag = ("FoVBackgroundModel", "fov-bkg")

    def __init__(self, dataset_name: str, spectral: SpectralModel | None = None,
                 spatial: SpatialModel | None = None) -> None:
        object.__setattr__(self, "dataset_name", str(dataset_name))
        object.__setattr__(self, "name", f"{dataset_name}-bkg")
        object.__setattr__(self, "spectral", spectral or PowerLawNormSpectralModel())
        object.__setattr__(self, "spatial", spatial)
        object.__setattr__(self, "temporal", None)

    @property
    def datasets_names(self) -> list[str]:
        return [self.dataset_name]

    def evaluate_bins(self, energy_centers_tev: np.ndarray) -> np.ndarray:
        """Norm per reco-energy bin: the spectral norm at the (log) bin centres (no averaging)."""
        return self.spectral.evaluate_numpy(np.asarray(energy_centers_tev, dtype=float))

    def evaluate_spatial(self, wcs: WCS, shape: tuple[int, int]) -> np.ndarray:
        """Spatial factor at pixel centres (unit dropped); ones without spatial model."""
        if self.spatial is None:
            return np.ones(tuple(shape))
        grid = pixel_grid(wcs, shape)
        return self.spatial._eval_xyz(grid.xyz(self.spatial.frame))

    def to_dict(self, full_output: bool = False) -> dict:
        d: dict[str, Any] = {"type": self.tag[0], "datasets_names": [self.dataset_name]}
        for kind, m in self.components:
            d[kind] = m.to_dict(full_output)
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "", base_path: Any = None) -> FoVBackgroundModel:
        where = where or "FoVBackgroundModel"
        _check_keys(data, {"type", "name", "datasets_names", "spectral", "spatial",
                           "parameters"}, where)
        names = data.get("datasets_names")
        if isinstance(names, str):
            names = [names]
        if not names or len(names) != 1:
            raise ModelError(f"{where}: datasets_names must hold exactly one dataset name")
        where = f"FoVBackgroundModel {names[0]}-bkg"
        if data.get("spectral") is not None:
            spectral = spectral_from_dict(data["spectral"], f"{where}.spectral")
        else:  # legacy layout: PowerLawNorm parameters at top level
            spectral = PowerLawNormSpectralModel.from_dict(
                {"parameters": data.get("parameters") or []}, f"{where}.parameters")
        spatial = (spatial_from_dict(data["spatial"], f"{where}.spatial", base_path)
                   if data.get("spatial") is not None else None)
        return cls(names[0], spectral, spatial)

    def __repr__(self) -> str:
        return f"FoVBackgroundModel({self.dataset_name!r}, spectral={self.spectral!r})"


class TemplateNPredModel(_SkyBase):
    """Pre-computed npred map (file reference kept; the map is not loaded here)."""

    tag = ("TemplateNPredModel", "template-npred")

    def __init__(self, filename: str | None, spectral: SpectralModel | None = None,
                 spatial: SpatialModel | None = None, name: str | None = None,
                 datasets_names: list[str] | None = None) -> None:
        object.__setattr__(self, "filename", filename)
        object.__setattr__(self, "spectral", spectral or PowerLawNormSpectralModel())
        object.__setattr__(self, "spatial", spatial)
        object.__setattr__(self, "temporal", None)
        object.__setattr__(self, "name", name or uuid.uuid4().hex[:8])
        object.__setattr__(self, "datasets_names",
                           None if datasets_names is None else list(datasets_names))

    def evaluate_bins(self, energy_centers_tev: np.ndarray) -> np.ndarray:
        """Spectral norm at reco-energy bin centres."""
        return self.spectral.evaluate_numpy(np.asarray(energy_centers_tev, dtype=float))

    def to_dict(self, full_output: bool = False) -> dict:
        d: dict[str, Any] = {"name": self.name, "type": self.tag[0]}
        if self.spatial is not None:
            d["spatial"] = self.spatial.to_dict(full_output)
        d["spectral"] = self.spectral.to_dict(full_output)
        if self.filename is not None:
            d["filename"] = self.filename
        if self.datasets_names is not None:
            d["datasets_names"] = list(self.datasets_names)
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "", base_path: Any = None) -> TemplateNPredModel:
        where = where or f"TemplateNPredModel {data.get('name')!r}"
        _check_keys(data, {"name", "type", "spectral", "spatial", "filename",
                           "datasets_names"}, where)
        spectral = (spectral_from_dict(data["spectral"], f"{where}.spectral")
                    if data.get("spectral") is not None else None)
        spatial = (spatial_from_dict(data["spatial"], f"{where}.spatial", base_path)
                   if data.get("spatial") is not None else None)
        fn = data.get("filename")
        obj = cls(fn, spectral, spatial, name=data.get("name"),
                  datasets_names=data.get("datasets_names"))
        object.__setattr__(obj, "path", None if fn is None else resolve_path(fn, base_path))
        return obj


def _check_keys(data: dict, allowed: set[str], where: str) -> None:
    extra = set(data) - allowed
    if extra:
        raise ModelError(f"{where}: unknown key(s) {sorted(extra)}")
