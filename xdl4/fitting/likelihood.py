"""The joint statistic -2 ln L of datasets for models, built once and evaluated many times."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr

from xdl4.errors import FitError
from xdl4.forward import Evaluator, as_models, vectorised_runs
from xdl4.irf import FIT_IRF_INTERPOLATION, check_irf_interpolation
from xdl4.schema import ONOFF_KINDS, kind_of


def _flatten(data: Any) -> list[xr.Dataset]:
    if isinstance(data, xr.Dataset):
        return [data]
    if isinstance(data, xr.DataTree):
        out = []
        for node in data.subtree:
            if not node.has_data:
                continue
            ds = node.to_dataset()
            try:
                kind_of(ds)
            except (ValueError, KeyError):
                continue  # not a DL4 node (e.g. metadata)
            out.append(ds if ds.attrs.get("name") else ds.assign_attrs(name=node.name))
        return out
    if isinstance(data, Iterable) and not isinstance(data, str | bytes):
        return [ds for item in data for ds in _flatten(item)]
    raise TypeError(f"expected an xarray Dataset, a list of them or a DataTree, got "
                    f"{type(data).__name__}")


class NaNStatistic(FitError):
    """The statistic is NaN at the current parameter values."""


class _Run(Evaluator):
    """An Evaluator whose sources and background model are bound once (no per-call
    filtering by name); on/off kinds get a WStat sum with the constant terms precomputed."""

    def bind(self, label: str, sources: list, background: Any) -> None:
        self.label, self._sources, self._background = label, sources, background
        if self.kind in ONOFF_KINDS:
            m = np.flatnonzero(self.mask.ravel())
            a, n_on, n_off = (x.ravel()[m] for x in (self.alpha, self.counts, self.counts_off))
            on, off = np.flatnonzero(n_on > 0), np.flatnonzero(n_off > 0)
            xlx = (n_on[on] * np.log(n_on[on])).sum() + (n_off[off] * np.log(n_off[off])).sum()
            with np.errstate(invalid="ignore", over="ignore"):  # inf alpha: no fast path
                self._w = (m, a, 1 + a, a * (n_on + n_off), 4 * a * (1 + a) * n_off,
                           0.5 / (a * (1 + a)), on, n_on[on], off, n_off[off],
                           float(2 * (xlx - n_on.sum() - n_off.sum())))
            self._fast_ok = bool(np.all((a > 0) & np.isfinite(a)))

    def sources(self, models, names=None) -> list:
        return [m for m in self._sources if names is None or m.name in names]

    def background_model(self, models):
        return self._background

    def stat_sum(self, models=None) -> float:
        if self.kind not in ONOFF_KINDS or not self._fast_ok:
            return super().stat_sum(models)
        # WStat for alpha > 0: the closed form of xdl4.stats.wstat, constants precomputed
        m, a, a1, c0, d0, inv, on, n_on, off, n_off, const = self._w
        sig = self.npred_signal(models).ravel()[m]
        c = c0 - a1 * sig
        mu_b = (c + np.sqrt(c * c + d0 * sig)) * inv
        mu_on = sig + a * mu_b
        mu_on_pos, mu_b_pos = mu_on[on], mu_b[off]
        if not (mu_on_pos.min(initial=1.0) > 0 and mu_b_pos.min(initial=1.0) > 0):
            return super().stat_sum(models)  # edge cases: the general formula decides
        return float(2 * (sig.sum() + a1 @ mu_b - n_on @ np.log(mu_on_pos)
                          - n_off @ np.log(mu_b_pos)) + const)


class _FluxPoints:
    """A flux-points dataset: its statistic prepared once (the SED does not change)."""

    def __init__(self, ds: xr.Dataset, label: str, sources: list) -> None:
        from xdl4.kinds.flux_points import FluxPointsEvaluator

        self.label, self.name, self._sources = label, label, sources
        self._evaluator = FluxPointsEvaluator(ds)

    def stat_sum(self, models=None) -> float:
        return self._evaluator.stat_sum(self._sources)


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

    def __init__(self, data: Any, models: Any, irf_interpolation: str | None = None) -> None:
        from xdl4.models import Models, TemplateNPredModel

        self.irf_interpolation = check_irf_interpolation(irf_interpolation,
                                                         FIT_IRF_INTERPOLATION)
        self.models = models if isinstance(models, Models) else Models(as_models(models))
        datasets = _flatten(data)
        if not datasets:
            raise FitError("no dataset to fit")
        names = [str(ds.attrs.get("name", "")) for ds in datasets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise FitError(f"dataset names must be unique for a joint fit; repeated: {dup}")
        bkg = {m.dataset_name: m for m in self.models if hasattr(m, "dataset_name")}
        srcs = [m for m in self.models if not hasattr(m, "dataset_name")]
        for m in srcs:
            if isinstance(m, TemplateNPredModel):
                raise NotImplementedError(f"model {m.name!r}: TemplateNPredModel is not fitted")
        used: set[str] = set()
        self.terms: list = []
        for ds, name in zip(datasets, names, strict=True):
            if kind_of(ds) == "flux_points":
                mine = [m for m in srcs if m.datasets_names is None or name in m.datasets_names]
                self.terms.append(_FluxPoints(ds, name, mine))
                used.update(m.name for m in mine)
                continue
            runs = [(ds, name)] if "obs" not in ds.dims else [
                (ds.isel(obs=i), str(ds["obs"].values[i]) if "obs" in ds.coords
                 else f"{name}[{i}]") for i in range(ds.sizes["obs"])]
            if len(runs) > 1 and vectorised_runs(ds) and not any(
                    label in bkg for _, label in runs):
                runs = [(ds, name)]  # all runs in one vectorised evaluation
            for run, label in runs:
                labels = {name, label}
                mine = [m for m in srcs if m.datasets_names is None
                        or labels & set(m.datasets_names)]
                back = bkg.get(label, bkg.get(name))
                term = _Run(run, self.irf_interpolation)
                term.bind(label, mine, back)
                self.terms.append(term)
                used.update(m.name for m in mine)
                if back is not None:
                    used.add(back.name)
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
                free = ", ".join(f"{lab}={p.value:.6g}" for lab, p in
                                 self.models.parameters.unique() if not p.frozen)
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


def _likelihood(data: Any, models: Any, irf_interpolation: str | None = None) -> Likelihood:
    """A new Likelihood, or ``data`` itself when it is one (built for the same models)."""
    if not isinstance(data, Likelihood):
        return Likelihood(data, models, irf_interpolation)
    if models is not None and models is not data.models and \
            [id(m) for m in as_models(models)] != [id(m) for m in data.models]:
        raise ValueError("a Likelihood was passed with other models: pass models=None or "
                         "the Likelihood's own models")
    if irf_interpolation is not None and irf_interpolation != data.irf_interpolation:
        raise ValueError(f"a Likelihood built with irf_interpolation="
                         f"{data.irf_interpolation!r} was passed with {irf_interpolation!r}")
    return data
