"""The joint statistic -2 ln L of datasets for models, built once and evaluated many times."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xdl4 import kinds
from xdl4.errors import ArgumentError, FitError
from xdl4.irf import FIT_IRF_INTERPOLATION, check_irf_interpolation
from xdl4.models.routing import ModelsLike, as_models
from xdl4.validation import dataset_name, datasets_in


class NaNStatistic(FitError):
    """The statistic is NaN at the current parameter values."""


def _nan_npred(term) -> bool:
    """NaN predicted counts (xdl4.stats.wstat reports them as an infinite statistic)."""
    return hasattr(term, "npred_signal") and bool(np.isnan(term.npred_signal(None)).any())


class Likelihood:
    """Joint -2 ln L of datasets for models: built once, evaluated many times.

    ``data``: a dataset, a list of datasets, a DataTree of datasets, or a dataset with an
    ``obs`` dimension (its runs are fitted jointly; a ``FoVBackgroundModel`` named after a
    run's ``obs`` label applies to that run, one named after the dataset to all its runs).
    ``irf_interpolation``: ``"bilinear"`` (default: PSF and EDISP mixed from the IRF pixels
    around a source, a likelihood continuous in the source position) or ``"nearest"``
    (gammapy's lookup and numbers); see :mod:`xdl4.irf`.

    >>> import xdl4
    >>> from xdl4.models import Models, SkyModel, PowerLaw
    >>> lik = Likelihood(xdl4.examples.all_kinds(seed=0)["spectrum_onoff"],
    ...                  Models([SkyModel(PowerLaw(), name="src")]))
    >>> round(lik.stat() - lik.stat(), 12), lik.nfev
    (0.0, 2)
    """

    def __init__(self, data: Any, models: ModelsLike,
                 irf_interpolation: str | None = None) -> None:
        from xdl4.models import Models, TemplateNPredModel

        self.irf_interpolation = check_irf_interpolation(irf_interpolation,
                                                         FIT_IRF_INTERPOLATION)
        self.models = models if isinstance(models, Models) else Models(as_models(models))
        self.datasets = datasets = datasets_in(data)
        if not datasets:
            raise FitError("no dataset to fit")
        names = [dataset_name(ds) for ds in datasets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise FitError(f"dataset names must be unique for a joint fit; repeated: {dup}")
        for m in self.models:
            if isinstance(m, TemplateNPredModel):
                raise NotImplementedError(f"model {m.name!r}: TemplateNPredModel is not fitted")
        self.terms: list = []
        for ds, name in zip(datasets, names, strict=True):
            behaviour = kinds.of(ds)
            terms = behaviour.get("likelihood_terms")
            self.terms += terms(behaviour.validate(ds), name, self.models,
                                irf_interpolation=self.irf_interpolation)
        used = {m.name for term in self.terms for m in term.bound_models()}
        unused = [m.name for m in self.models if m.name not in used]
        if unused:
            raise FitError(f"model(s) {unused} apply to no dataset (datasets: {names}); "
                           "check datasets_names / the FoV background dataset name")
        self.nfev = 0
        #: parameters with a prior: each adds weight x (-2 ln pdf) to the total (gammapy's
        #: Datasets.stat_sum; a dataset's own stat_sum has no priors)
        self.priors = [p for _, p in self.models.parameters.unique() if p.prior is not None]

    def stat(self) -> float:
        """The total statistic at the models' current values (raises FitError on NaN)."""
        self.nfev += 1
        total = 0.0
        for term in self.terms:
            s = term.stat_sum(self.models)
            if not math.isfinite(s) and (s != s or _nan_npred(term)):
                free = ", ".join(f"{lab}={p.value:.6g}"
                                 for lab, p in self.models.parameters.free())
                raise NaNStatistic(f"statistic is NaN for dataset {term.label!r} at {free}")
            total += s
        return total + self.prior_stat()

    def prior_stat(self) -> float:
        """The priors' share of :meth:`stat` (0 without priors)."""
        if not self.priors:  # the usual case: nothing on the hot path
            return 0.0
        from xdl4.models.prior import prior_stat

        return sum((prior_stat(p.prior, p.value) for p in self.priors), 0.0)

    def stat_per_dataset(self) -> dict[str, float]:
        """Statistic of each dataset (runs of an ``obs`` dataset by their labels)."""
        return {t.label: float(t.stat_sum(self.models)) for t in self.terms}


def _likelihood(data: Any, models: ModelsLike,
                irf_interpolation: str | None = None) -> Likelihood:
    """A new Likelihood, or ``data`` itself when it is one (built for the same models)."""
    if not isinstance(data, Likelihood):
        return Likelihood(data, models, irf_interpolation)
    if models is not None and models is not data.models and \
            [id(m) for m in as_models(models)] != [id(m) for m in data.models]:
        raise ArgumentError("a Likelihood was passed with other models: pass models=None or "
                         "the Likelihood's own models")
    if irf_interpolation is not None and irf_interpolation != data.irf_interpolation:
        raise ArgumentError(f"a Likelihood built with irf_interpolation="
                         f"{data.irf_interpolation!r} was passed with {irf_interpolation!r}")
    return data
