"""Which model applies to which dataset or run, decided in one place.

A source model (``SkyModel``) applies to every dataset unless its ``datasets_names``
restricts it; a ``FoVBackgroundModel`` applies to the dataset (or run) it names only.
A dataset is known by its labels: its name, and for a run of a dataset with an ``obs``
dimension also the run's label.

>>> from xdl4.models import FoVBackgroundModel, Models, PowerLaw, SkyModel
>>> models = Models([SkyModel(PowerLaw(), name="a", datasets_names=["run1"]),
...                  SkyModel(PowerLaw(), name="b"), FoVBackgroundModel("run1")])
>>> [m.name for m in sources_for(models, {"run2"})], background_for(models, "run1").name
(['b'], 'run1-bkg')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeAlias

from xdl4.models.sky import FoVBackgroundModel, _SkyBase

if TYPE_CHECKING:
    from xdl4.models.container import Models

#: what every ``models`` parameter of xdl4 accepts: a ``Models``, a list of models, one
#: model, or None (no model: background only)
ModelsLike: TypeAlias = "Models | Iterable[Any] | Any | None"


def as_models(models: ModelsLike) -> list:
    """A list of models from a ``Models``, a list, one model, or None."""
    if models is None:
        return []
    if isinstance(models, _SkyBase):
        return [models]
    return list(models)


def is_background(model: Any) -> bool:
    """Whether ``model`` is a FoV background model (it scales one dataset's background)."""
    return isinstance(model, FoVBackgroundModel)


def sources_for(models: ModelsLike, labels: Iterable[str], names=None) -> list:
    """The source models that apply to a dataset known by ``labels`` (its name, and its
    run's label), of ``names`` only if given."""
    labels = set(labels)
    return [m for m in as_models(models) if not is_background(m)
            and (m.datasets_names is None or labels & set(m.datasets_names))
            and (names is None or m.name in names)]


def background_for(models: ModelsLike, *labels: str):
    """The FoV background model of the first of ``labels`` that has one, else None."""
    by_name = {m.dataset_name: m for m in as_models(models) if is_background(m)}
    return next((by_name[label] for label in labels if label in by_name), None)


class Routed:
    """Mixin of evaluators: the models that apply to one dataset (or run) known by
    ``name`` and ``label``, found per call or fixed once by :meth:`bind` (a fit's
    routing, done once)."""

    name: str = ""
    label: str = ""
    _bound: tuple[list, Any] | None = None

    def bind(self, label: str, sources: list, background: Any = None) -> None:
        """Fix the models that apply: ``sources`` and the FoV ``background`` model; later
        calls ignore the ``models`` they are passed."""
        self.label, self._bound = label, (list(sources), background)

    def sources(self, models: ModelsLike, names=None) -> list:
        """The source models that apply (of ``names`` only, if given)."""
        if self._bound is not None:
            return [m for m in self._bound[0] if names is None or m.name in names]
        return sources_for(models, {self.name}, names)

    def background_model(self, models: ModelsLike):
        """The FoV background model that applies, or None."""
        return self._bound[1] if self._bound is not None else background_for(models, self.name)

    def bound_models(self) -> list:
        """The models fixed by :meth:`bind`: the sources, then the background model."""
        sources, background = self._bound or ([], None)
        return sources + ([background] if background is not None else [])


__all__ = ["ModelsLike", "Routed", "as_models", "background_for", "is_background",
           "sources_for"]
