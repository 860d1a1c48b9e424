"""The four counts kinds: ``map``, ``map_onoff``, ``spectrum`` and ``spectrum_onoff``.

They share the forward folding of :class:`xdl4.forward.Evaluator` and differ by their
statistic, whose strategy is an evaluator class here:

* cash (:class:`CashEvaluator`): the background is the ``background`` variable, scaled by
  the dataset's FoV background model;
* wstat (:class:`WStatEvaluator`): the background is profiled from ``counts_off`` and the
  exposure ratio alpha (:func:`xdl4.stats.alpha` with ``no_off="inf"``).

This module registers the four kinds with their operations: evaluation, summaries, and
the reshaping each geometry allows (map kinds: all; region kinds: no pixel operations).

>>> import xdl4
>>> ds = xdl4.examples.all_kinds(seed=0)["spectrum_onoff"]
>>> type(evaluator(ds)).__name__, round(ds.dl4.stat_sum(None), 6) == round(
...     evaluator(ds).stat_sum(None), 6)
('WStatEvaluator', True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from xdl4 import masks, stats
from xdl4.errors import ArgumentError
from xdl4.forward import Evaluator, values_in, vectorises_runs
from xdl4.gammapy_float32 import working_dtype
from xdl4.gti import livetime, ontime
from xdl4.kinds.base import register, validate
from xdl4.models.routing import ModelsLike, background_for, sources_for
from xdl4.region import to_region
from xdl4.resample import resample_energy, to_image
from xdl4.schema import KINDS, canonical_dims
from xdl4.spatial import cutout, downsample, pad
from xdl4.stack import stack as stack_datasets
from xdl4.stack import to_masked
from xdl4.stats import (
    PreparedCash,
    PreparedWStat,
    alpha,
    cash,
    cash_ts,
    sqrt_ts,
    wstat,
    wstat_background,
    wstat_ts,
)
from xdl4.validation import concat_runs, dataset_name, datasets_in, kind_record, run_labels

# -- the statistic strategies ---------------------------------------------------------------


class CashEvaluator(Evaluator):
    """Cash kinds: npred = signal + the background variable scaled by the FoV model."""

    def __init__(self, ds: xr.Dataset, irf_interpolation: str | None = None,
                 dtype: Any = "float64"):
        super().__init__(ds, irf_interpolation, dtype)
        self.background = (values_in(self._order(self.ds["background"]), "", "background")
                           if "background" in self.ds else None)
        self._cash: PreparedCash | None = None
        self._bkg: tuple | None = None  # (FoV model values, masked background)

    def npred_background(self, models: ModelsLike,
                         npred_signal: np.ndarray | None = None) -> np.ndarray:
        """The background scaled by this dataset's FoV background model (0 without one)."""
        if self.background is None:
            return np.zeros(self.counts.shape)
        bkg_model = self.background_model(models)
        if bkg_model is None:
            return np.broadcast_to(self.background, self.counts.shape)
        norm = bkg_model.evaluate_bins(self.e_reco_center)
        if self.is_map:
            norm = norm.reshape((-1,) + (1,) * (self.background.ndim - 1))
        out = self.background * norm
        if self.is_map and getattr(bkg_model, "spatial", None) is not None:
            out = out * bkg_model.evaluate_spatial(self.grid.wcs, self.grid.shape)
        return np.broadcast_to(out, self.counts.shape)

    def stat_array(self, models: ModelsLike) -> np.ndarray:
        return cash(self.counts, self.npred(models))

    def stat_sum(self, models: ModelsLike = None) -> float:
        """Cash summed over mask_safe & mask_fit (the hot path of fits)."""
        m = self.mask
        if self._cash is None:
            self._cash = PreparedCash(self.counts[m])
        bkg_model = self.background_model(models)
        key = None if bkg_model is None else bkg_model.values_tuple()
        if self._bkg is None or self._bkg[0] != key:
            self._bkg = (key, self.npred_background(models)[m])
        return self._cash(self.npred_signal(models)[m] + self._bkg[1])


class WStatEvaluator(Evaluator):
    """On/off kinds: the background is profiled (WStat) from the OFF counts."""

    def __init__(self, ds: xr.Dataset, irf_interpolation: str | None = None,
                 dtype: Any = "float64"):
        super().__init__(ds, irf_interpolation, dtype)
        ds, shape = self.ds, self.counts.shape
        self.counts_off = np.broadcast_to(
            np.asarray(self._order(ds["counts_off"]).values, dtype=float), shape)
        ratio = alpha(ds["acceptance"], ds["acceptance_off"], no_off="inf")
        self.alpha = np.broadcast_to(np.asarray(self._order(ratio).values, float), shape)
        m = self.mask
        self._wstat = PreparedWStat(self.counts[m], self.counts_off[m], self.alpha[m])

    def npred_background(self, models: ModelsLike,
                         npred_signal: np.ndarray | None = None) -> np.ndarray:
        """The profile-likelihood ON background alpha x mu_b."""
        sig = self.npred_signal(models) if npred_signal is None else npred_signal
        return wstat_background(self.counts, self.counts_off, self.alpha, sig)

    def stat_array(self, models: ModelsLike) -> np.ndarray:
        return wstat(self.counts, self.counts_off, self.alpha, self.npred_signal(models))

    def stat_sum(self, models: ModelsLike = None) -> float:
        """WStat summed over mask_safe & mask_fit: the closed form with its constants
        prepared (alpha > 0), else the general formula."""
        m = self.mask
        sig = self.npred_signal(models)[m]
        fast = self._wstat(sig)
        if fast is not None:
            return fast
        return float(wstat(self.counts[m], self.counts_off[m], self.alpha[m], sig).sum())


#: the evaluator (statistic strategy) of each counts statistic
EVALUATORS = {"cash": CashEvaluator, "wstat": WStatEvaluator}


def evaluator(ds: xr.Dataset, irf_interpolation: str | None = None,
              dtype: Any = "float64") -> Evaluator:
    """The evaluator of a counts dataset (one run, or region runs at once);
    ``irf_interpolation`` and ``dtype``: see :class:`xdl4.forward.Evaluator`.

    >>> import xdl4
    >>> type(evaluator(xdl4.examples.map_dataset())).__name__
    'CashEvaluator'
    """
    return EVALUATORS[kind_record(ds).statistic](ds, irf_interpolation, dtype)


# -- dataset-level operations ----------------------------------------------------------------


def _runs(ds: xr.Dataset) -> list[xr.Dataset]:
    if "obs" in ds.dims and not vectorises_runs(ds):
        return [ds.isel(obs=i) for i in range(ds.sizes["obs"])]
    return [ds]


def _like(ds: xr.Dataset, arrays: list[np.ndarray], name: str) -> xr.DataArray:
    """Arrays in the canonical order of ``counts`` (one per run) as a DataArray in the
    dims order of ``ds.counts``."""
    counts = ds["counts"]
    dims = canonical_dims(d for d in counts.dims if d != "obs")
    if "obs" in ds.dims:
        data = np.stack(arrays) if len(arrays) > 1 else arrays[0]
        data, dims = np.broadcast_to(data, (ds.sizes["obs"],) + data.shape[-len(dims):]), \
            ("obs",) + dims
    else:
        data = arrays[0]
    coords = {k: v for k, v in counts.coords.items() if set(v.dims) <= set(dims)}
    return xr.DataArray(data, dims=dims, coords=coords, name=name).transpose(*counts.dims)


def evaluators(ds: xr.Dataset, irf_interpolation: str | None = None,
               cache: dict | None = None, dtype: Any = "float64") -> list[Evaluator]:
    """The evaluators of ``ds`` (one per run, or one for region runs at once), taken from
    ``cache`` when given (the accessor keeps one per Dataset object: repeated calls reuse
    the prepared arrays and each source's cached folding; a changed model set or new
    parameter values rebuild what they touch, by the evaluators' own cache keys).
    ``irf_interpolation`` and ``dtype``: see :class:`xdl4.forward.Evaluator`."""
    if cache is None:
        return [evaluator(r, irf_interpolation, dtype) for r in _runs(ds)]
    # variables replaced in place (ds["counts"] = ...) make a new key; an element edited
    # in place is not seen: copy the dataset first (documented in docs/likelihood.md)
    key = ("evaluators", irf_interpolation, working_dtype(dtype, "dtype").name,
           tuple((n, id(v._data)) for n, v in ds.variables.items()))
    if key not in cache:
        for old in [k for k in cache if k[:3] == key[:3]]:
            del cache[old]
        cache[key] = [evaluator(r, irf_interpolation, dtype) for r in _runs(ds)]
    return cache[key]


def npred(ds: xr.Dataset, models: ModelsLike, irf_interpolation: str | None = None,
          cache: dict | None = None, dtype: Any = "float64") -> xr.DataArray:
    """Predicted counts (signal + background) on the data grid (``irf_interpolation``,
    ``dtype``: see :class:`xdl4.forward.Evaluator`; ``cache``: see :func:`evaluators`, as
    for every function here)."""
    return _like(ds, [ev.npred(models)
                      for ev in evaluators(ds, irf_interpolation, cache, dtype)], "npred")


def npred_signal(ds: xr.Dataset, models: ModelsLike, model_names=None,
                 irf_interpolation: str | None = None, cache: dict | None = None,
                 dtype: Any = "float64") -> xr.DataArray:
    """Predicted source counts (of ``model_names`` only, if given)."""
    return _like(ds, [ev.npred_signal(models, model_names)
                      for ev in evaluators(ds, irf_interpolation, cache, dtype)],
                 "npred_signal")


def npred_background(ds: xr.Dataset, models: ModelsLike = None,
                     irf_interpolation: str | None = None, cache: dict | None = None,
                     dtype: Any = "float64") -> xr.DataArray:
    """Background counts: FoV-model scaled (cash), or profiled (wstat)."""
    return _like(ds, [ev.npred_background(models)
                      for ev in evaluators(ds, irf_interpolation, cache, dtype)],
                 "npred_background")


def stat_array(ds: xr.Dataset, models: ModelsLike, irf_interpolation: str | None = None,
               cache: dict | None = None, dtype: Any = "float64") -> xr.DataArray:
    """The statistic per bin, masks not applied."""
    return _like(ds, [ev.stat_array(models)
                      for ev in evaluators(ds, irf_interpolation, cache, dtype)], "stat")


def stat_sum(ds: xr.Dataset, models: ModelsLike, irf_interpolation: str | None = None,
             cache: dict | None = None, dtype: Any = "float64") -> float:
    """The statistic summed over mask_safe & mask_fit (and over runs)."""
    return float(sum(ev.stat_sum(models)
                     for ev in evaluators(ds, irf_interpolation, cache, dtype)))


def fake(ds: xr.Dataset, models: ModelsLike, seed=None, size: int | None = None,
         npred_background: xr.DataArray | None = None,
         irf_interpolation: str | None = None) -> xr.Dataset:
    """Poisson realisations of the dataset under ``models``: counts (and for on/off kinds
    counts_off) redrawn, everything else kept. ``size`` draws that many realisations
    along a new ``obs`` dimension in one vectorised call. On/off kinds draw
    counts = Poisson(npred_signal) + Poisson(b) and counts_off = Poisson(b / alpha), with
    b the expected ON background (default: the profile background of the current data).

    >>> import xdl4
    >>> ds = xdl4.examples.spectrum_dataset()
    >>> fakes = ds.dl4.fake(None, seed=1, size=3)
    >>> fakes.sizes["obs"]
    3
    """
    if "obs" in ds.dims:
        raise ArgumentError("fake takes one run; select one with ds.isel(obs=i)")
    rng = np.random.default_rng(seed)
    ev = evaluator(ds, irf_interpolation)
    shape = ev.counts.shape if size is None else (size,) + ev.counts.shape
    sig = ev.npred_signal(models)
    dims = canonical_dims(ds["counts"].dims)
    dims = dims if size is None else ("obs",) + dims
    out = ds.copy()  # only counts (and counts_off) get the ``obs`` dimension
    if size is not None and "obs" in out.coords:  # the run label: realisations are runs
        out = out.drop_vars("obs").assign_attrs(name=dataset_name(ds))
    if isinstance(ev, WStatEvaluator):
        bkg = ev.npred_background(models, sig) if npred_background is None else \
            np.asarray(npred_background.transpose(*canonical_dims(npred_background.dims))
                       .values, float)
        counts = rng.poisson(np.clip(sig, 0, None), shape) + rng.poisson(bkg, shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            off_mean = np.where(ev.alpha > 0, bkg / ev.alpha, 0.0)
        out["counts_off"] = (dims, rng.poisson(off_mean, shape).astype(float),
                             ds["counts_off"].attrs)
    else:
        counts = rng.poisson(np.clip(sig + ev.npred_background(models), 0, None), shape)
    out["counts"] = (dims, counts.astype(float), ds["counts"].attrs)
    return out


def residuals(ds: xr.Dataset, models: ModelsLike, method: str = "diff",
              irf_interpolation: str | None = None, cache: dict | None = None
              ) -> xr.DataArray:
    """counts - npred (``diff``), divided by npred (``diff/model``) or by sqrt(npred)
    (``diff/sqrt(model)``); NaN outside the fit mask."""
    diff = stats.residuals(ds["counts"], npred(ds, models, irf_interpolation, cache), method)
    return diff.where(masks.fit(ds)).rename("residuals")


def likelihood_terms(ds: xr.Dataset, name: str, models: ModelsLike,
                     irf_interpolation: str | None = None) -> list[Evaluator]:
    """One bound evaluator per run (all runs at once for region runs without a PSF and
    without FoV background models of their own)."""
    runs = [(ds, name)] if "obs" not in ds.dims else [
        (ds.isel(obs=i), label) for i, label in enumerate(run_labels(ds))]
    if len(runs) > 1 and vectorises_runs(ds) and not any(
            background_for(models, label) for _, label in runs):
        runs = [(ds, name)]
    terms = []
    for run, label in runs:
        term = evaluator(run, irf_interpolation)
        term.bind(label, sources_for(models, {name, label}),
                  background_for(models, label, name))
        terms.append(term)
    return terms


def _sum(da: xr.DataArray, mask: xr.DataArray) -> float:
    return float(da.where(mask, 0).sum())


def rates(info: dict) -> dict:
    """gammapy's ``counts_rate``, ``background_rate`` and ``excess_rate``: those fields of
    an info dict per second of its livetime (NaN without a livetime)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {f"{key}_rate": float(np.float64(info[key]) / info["livetime"])
                for key in ("counts", "background", "excess")}


def info(ds: xr.Dataset, models: ModelsLike = None,
         irf_interpolation: str | None = None, cache: dict | None = None,
         dtype: Any = "float64") -> dict:
    """gammapy's ``info_dict``, every field in its order (sums over mask_safe; exposure in
    the dataset's exposure unit, times in s). Without models, npred is the background
    (cash: the background variable; wstat: the profiled background of no signal),
    npred_signal is NaN, and stat_sum is NaN for cash kinds (wstat: the statistic of no
    signal), as gammapy. ``dtype="float32"``: the models folded with gammapy's float32
    steps (:class:`xdl4.forward.Evaluator`).

    >>> import xdl4
    >>> info = xdl4.examples.map_dataset().dl4.info()
    >>> info["stat_type"], info["n_bins"] > 0, info["npred"] == info["background"]
    ('cash', True, True)
    """
    record = kind_record(ds)
    mask = masks.safe(ds)
    counts = _sum(ds["counts"], mask)
    out: dict = {"name": dataset_name(ds), "counts": counts}
    if record.onoff:
        n_off = _sum(ds["counts_off"], mask)
        background = _sum(alpha(ds["acceptance"], ds["acceptance_off"]) * ds["counts_off"],
                          mask)
        ratio = background / n_off if n_off > 0 else np.nan
        excess = counts - background
        ts = float(wstat_ts(counts, n_off, ratio)) if n_off > 0 else np.nan
    else:
        background = _sum(ds["background"], mask) if "background" in ds else np.nan
    npb = npred_background(ds, models, irf_interpolation, cache, dtype)
    nps = npred_signal(ds, models, None, irf_interpolation, cache, dtype) \
        if models is not None else None
    # without a background (cash) there is no excess: NaN as gammapy, not counts - 0
    npred_bkg = _sum(npb, mask) if record.onoff or "background" in ds else np.nan
    if not record.onoff:
        excess = counts - npred_bkg if np.isfinite(npred_bkg) else np.nan
        ts = float(cash_ts(counts, npred_bkg)) if np.isfinite(npred_bkg) else np.nan
    out.update(excess=excess, sqrt_ts=float(sqrt_ts(ts, excess)), background=background)
    out["npred"] = npred_bkg if nps is None else float((nps + npb).where(mask, 0).sum())
    out["npred_background"] = npred_bkg
    out["npred_signal"] = np.nan if nps is None else _sum(nps, mask)
    exposure = ds["exposure"]  # reported in its own unit, as gammapy does
    good = (exposure > 0) & masks.image(mask)
    if not bool(good.any()):
        good = xr.ones_like(exposure, dtype=bool)
    out["exposure_min"] = float(exposure.where(good).min())
    out["exposure_max"] = float(exposure.where(good).max())
    out["livetime"] = livetime(ds)
    out["ontime"] = ontime(ds)
    out.update(rates(out))
    out["n_bins"] = int(ds["counts"].size)
    out["n_fit_bins"] = int(masks.fit(ds).sum())
    out["stat_type"] = record.statistic
    out["stat_sum"] = stat_sum(ds, models, irf_interpolation, cache, dtype) \
        if models is not None or record.onoff else np.nan
    if record.onoff:
        out["counts_off"] = n_off
        out["acceptance"] = _sum(ds["acceptance"], mask)
        out["acceptance_off"] = out["acceptance"] / ratio if ratio else np.nan
        out["alpha"] = ratio
    return out


# -- reshaping: the reduction engine, with what is kind-specific ------------------------------


def with_background_model(ds: xr.Dataset, models: ModelsLike) -> xr.Dataset:
    """``ds`` with ``background`` replaced by ``npred_background(models)`` (its FoV
    background model applied: what gammapy stacks); unchanged without ``models`` or a
    cash background.

    >>> import xdl4
    >>> from xdl4.models import FoVBackgroundModel, Models, PowerLawNormSpectralModel
    >>> ds = xdl4.examples.map_dataset()
    >>> bkg = Models([FoVBackgroundModel(ds.dl4.name, PowerLawNormSpectralModel(norm=1.1))])
    >>> out = with_background_model(ds, bkg)
    >>> round(float(out.background.sum() / ds.background.sum()), 6)
    1.1
    """
    if models is None or "background" not in ds or kind_record(ds).onoff:
        return ds
    background = npred_background(ds, models)
    return ds.assign(background=background.assign_attrs(ds["background"].attrs))


def stack(ds: xr.Dataset, other: xr.Dataset | None = None, *, dim: str = "obs",
          name: str | None = None, models: ModelsLike = None) -> xr.Dataset:
    """Stack two datasets, or reduce the runs of ``ds`` along ``dim`` (lazily on dask);
    with ``models`` each dataset's FoV background model is baked into its ``background``
    first, as gammapy stacks ``npred_background()`` (see :func:`xdl4.stack.stack`)."""
    ds = with_background_model(ds, models)
    other = None if other is None else with_background_model(other, models)
    return stack_datasets(ds, other, dim=dim, name=name)


def _to_region(ds: xr.Dataset, region, containment_correction: bool = False,
               name: str | None = None) -> xr.Dataset:
    """:func:`xdl4.region.to_region`, of each run for runs along ``obs`` (gammapy's
    ``to_spectrum_datasets``)."""
    if "obs" in ds.dims:
        return validate(concat_runs([
            to_region(run, region, containment_correction)
            for run in datasets_in(ds, split_runs=True)]).assign_attrs(
            name=ds.attrs.get("name", "") if name is None else name))
    return validate(to_region(ds, region, containment_correction, name))


_OPERATIONS = {
    "info": info, "npred": npred, "npred_signal": npred_signal,
    "npred_background": npred_background, "stat_array": stat_array, "stat_sum": stat_sum,
    "residuals": residuals, "fake": fake, "likelihood_terms": likelihood_terms,
    "stack": stack, "to_masked": to_masked, "resample_energy": resample_energy,
    "to_image": to_image,
}
_PIXELS = {"downsample": downsample, "cutout": cutout}

#: the plots of xdl4.plot that apply to each geometry, and the panels peek draws
_MAP_PLOTS = {"plots": ("image", "peek", "residuals", "masks", "psf", "edisp", "exposure",
                        "stacking"),
              "peek": ("counts_image", "background_image", "excess_image", "exposure_image",
                       "psf_containment", "edisp_matrix")}
_SPECTRUM_PLOTS = {"plots": ("peek", "residuals", "fit", "masks", "psf", "edisp", "exposure",
                             "stacking"),
                   "peek": ("counts_spectrum", "exposure_spectrum", "edisp_matrix")}

register(KINDS["map"], {**_OPERATIONS, **_PIXELS, "pad": pad, "to_region": _to_region},
         plots=_MAP_PLOTS)
register(KINDS["map_onoff"], {**_OPERATIONS, **_PIXELS, "to_region": _to_region},
         plots=_MAP_PLOTS)
register(KINDS["spectrum"], _OPERATIONS, plots=_SPECTRUM_PLOTS)
register(KINDS["spectrum_onoff"], _OPERATIONS, plots={
    **_SPECTRUM_PLOTS, "plots": tuple(p for p in _SPECTRUM_PLOTS["plots"] if p != "psf")})

__all__ = ["CashEvaluator", "EVALUATORS", "WStatEvaluator", "evaluator", "fake", "info",
           "likelihood_terms", "npred", "npred_background", "npred_signal", "residuals",
           "stack", "stat_array", "stat_sum", "with_background_model"]
