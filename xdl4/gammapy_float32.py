"""gammapy's float32 numbers, replayed: its cumulative run table
(``info_table(cumulative=True, dtype="float32")``) and its forward folding of map datasets
(``evaluator(ds, "nearest", "float32")``, ``info_table(models=..., dtype="float32")``:
:func:`folded_morphology`).

xdl4 stacks in float64 (``docs/stacking.md``). gammapy stacks runs into float32 working
maps (``to_masked`` starts from ``from_geoms``, whose maps are float32) and sums some
``info_dict`` fields in float32, so its cumulative run table carries float32 rounding
(< 3e-7): its first cumulative row differs from its per-run row of the same run by up to
1e-8. To compare with gammapy's table to the last digit, this module replays gammapy's
operations on the runs' arrays:

* stacking (``MapDataset.stack``, ``MapDatasetOnOff.stack``): each run's counts,
  background, exposure (in m2 s), OFF counts and acceptance cast to float32, non-finite
  values set to 0, masked and added to the float32 maps in run order; the on/off
  ``acceptance_off`` renormalised at every step (``A * OFF / (alpha OFF)``, or ``A`` over
  the float32 mean alpha where OFF is 0);
* sums over the safe bins as numpy sums of ``data[mask]`` in (energy, lat, lon) order:
  counts, background, OFF counts, alpha OFF and acceptance in float32 (and the excess, the
  summed alpha and ``acceptance_off`` as float32 arithmetic on them); npred, the on/off
  profiled background and the statistics in float64 from those float32 values, as
  gammapy's statistics functions promote them.

Everything else (livetime, ontime, bins, counts) is exact in both and comes from xdl4's
own stack. The tests hold the replay to gammapy's table to 1e-12.

gammapy folds models with float32 PSF kernels and float32 FFT convolutions on a cutout
around each source (:func:`folded_morphology`); with those steps replayed, npred and
stat_sum equal gammapy's to ~1e-15 on its map files (docs/likelihood.md).

>>> import xarray as xr, xdl4
>>> from xdl4.runs import datasets_of
>>> runs = xr.concat([xdl4.examples.spectrum_dataset(i).dl4.renamed(f"run{i}")
...                  for i in range(2)], "obs")
>>> rows = list(cumulative_fields(datasets_of(runs)))
>>> len(rows), type(rows[0]["background"]).__name__
(2, 'float')
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xdl4 import stats
from xdl4.errors import ArgumentError
from xdl4.schema import canonical, unit_factor
from xdl4.validation import kind_record

F32 = np.float32
#: gammapy's exposure unit in ``from_geoms`` (the stacked exposure's unit)
EXPOSURE_UNIT = "m2 s"


def working_dtype(dtype: Any, what: str) -> np.dtype:
    """``dtype`` as a numpy dtype, float64 (xdl4's) or float32 (gammapy's working maps);
    an :class:`~xdl4.errors.ArgumentError` naming ``what`` otherwise.

    >>> working_dtype("float32", "excess_map"), working_dtype(float, "info_table")
    (dtype('float32'), dtype('float64'))
    """
    try:
        out = np.dtype(dtype) if dtype is not None else None  # np.dtype(None) is float64
    except TypeError:
        out = None
    if out is None or out.name not in ("float64", "float32"):
        raise ArgumentError(f"{what} dtype must be 'float64' or 'float32', not {dtype!r}")
    return out


def _values(ds: xr.Dataset, name: str, unit: str | None = None) -> np.ndarray:
    """A variable's values in canonical (energy, lat, lon) order, in ``unit``."""
    da = canonical(ds[name])
    values = np.asarray(da.values)
    if unit is not None and da.attrs.get("units") != unit:
        values = values * unit_factor(da.attrs.get("units"), unit, name)
    return values


def _added(total: np.ndarray, values, weights=True) -> np.ndarray:
    """gammapy's ``Map.stack(other, weights, nan_to_num=True)`` onto a float32 map."""
    data = np.asarray(values).astype(F32)
    data[~np.isfinite(data)] = 0
    return total + data * weights


def _alpha(acceptance, acceptance_off) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(acceptance / acceptance_off)


def stacked_maps(datasets: Sequence[xr.Dataset]) -> Iterator[dict[str, np.ndarray]]:
    """The float32 working maps after each run is stacked (the first run masked, then each
    run stacked on, as ``Datasets.info_table(cumulative=True)``)."""
    onoff = kind_record(datasets[0]).onoff
    shape = canonical(datasets[0]["counts"]).shape
    maps = {"counts": np.zeros(shape, F32), "mask_safe": np.zeros(shape, bool),
            "exposure": np.zeros(canonical(datasets[0]["exposure"]).shape, F32)}
    for name in ("counts_off", "acceptance", "acceptance_off") if onoff else ("background",):
        maps[name] = np.zeros(shape, F32)
    for ds in datasets:
        safe = _values(ds, "mask_safe").astype(bool) if "mask_safe" in ds else \
            np.ones(shape, bool)
        if onoff:
            maps.update(_onoff_step(maps, ds, safe))
        elif "background" in ds:  # the stacked background starts as zeros in any case
            maps["background"] = _added(maps["background"], _values(ds, "background"), safe)
        maps["counts"] = _added(maps["counts"], _values(ds, "counts"), safe)
        maps["exposure"] = _added(maps["exposure"], _values(ds, "exposure", EXPOSURE_UNIT),
                                  safe.any(0))  # the run's safe image
        maps["mask_safe"] = maps["mask_safe"] | safe
        yield dict(maps)


def _onoff_step(maps: dict, ds: xr.Dataset, safe: np.ndarray) -> dict[str, np.ndarray]:
    """``MapDatasetOnOff.stack``: total acceptance, OFF counts and alpha x OFF, in float32
    (the run's own int counts and acceptances, a float64 alpha, cast when added)."""
    zeros = np.zeros(safe.shape, F32)
    acceptance, off = _values(ds, "acceptance"), _values(ds, "counts_off")
    total_acceptance = _added(_added(zeros, maps["acceptance"]), acceptance, safe)
    total_off = _added(_added(zeros, maps["counts_off"]), off, safe)
    total_alpha = _added(zeros, _alpha(maps["acceptance"], maps["acceptance_off"])
                         * maps["counts_off"])
    total_alpha = _added(total_alpha, _alpha(acceptance, _values(ds, "acceptance_off")) * off,
                         safe)
    with np.errstate(invalid="ignore", divide="ignore"):
        acceptance_off = total_acceptance * total_off / total_alpha
        mean_alpha = total_alpha.sum() / total_off.sum()
    no_off = total_off == 0
    acceptance_off[no_off] = total_acceptance[no_off] / mean_alpha
    return {"acceptance": total_acceptance, "acceptance_off": acceptance_off,
            "counts_off": total_off}


def info_fields(maps: dict[str, np.ndarray], onoff: bool) -> dict:
    """The ``info_dict`` fields that float32 working maps change, as gammapy computes
    them (exposure in m2 s; the rates are divided by the livetime by the caller)."""
    mask = maps["mask_safe"]
    n_on = maps["counts"][mask].sum()  # float32, as every sum below unless said
    out: dict = {}
    if onoff:
        alpha = _alpha(maps["acceptance"], maps["acceptance_off"])
        n_off = maps["counts_off"][mask].sum()
        background = (alpha * maps["counts_off"])[mask].sum()
        summed_alpha = background / n_off
        excess = n_on - summed_alpha * n_off
        ts = stats.wstat(n_on, n_off, summed_alpha, 0.0) - stats.wstat(
            n_on, n_off, summed_alpha, excess)
        # float64: the profiled background of float32 alpha and counts
        npred = float(stats.wstat_background(maps["counts"], maps["counts_off"], alpha,
                                              0.0)[mask].sum())
        acceptance = maps["acceptance"][mask].sum()
        out.update(counts_off=int(n_off), acceptance=float(acceptance),
                   acceptance_off=float(acceptance / summed_alpha), alpha=float(summed_alpha))
        out["stat_sum"] = float(stats.wstat(maps["counts"], maps["counts_off"], alpha,
                                            0.0)[mask].sum())  # no mask_fit once stacked
        npred_background = npred
    else:
        background = maps["background"][mask].sum()
        excess = n_on - background
        ts = stats.cash_ts(n_on, background)  # in float64, as gammapy's cash promotes
        npred = float(maps["background"].astype(float)[mask].sum())  # npred() is float64
        npred_background = float(background)
    out.update(excess=float(excess), background=float(background), npred=npred,
               npred_background=npred_background,
               sqrt_ts=float(stats.sqrt_ts(np.clip(ts, 0, None), excess)))  # WStat: clip
    exposure = maps["exposure"]
    good = (exposure > 0) & mask.any(0)
    if not good.any():
        good = np.ones(exposure.shape, bool)
    out["exposure_min"] = float(exposure[np.broadcast_to(good, exposure.shape)].min())
    out["exposure_max"] = float(exposure[np.broadcast_to(good, exposure.shape)].max())
    return out


def folded_morphology(ev: Any, model: Any, exposure: np.ndarray,
                      position: tuple[float, float], margin: float
                      ) -> tuple[np.ndarray, tuple[slice, slice]]:
    """gammapy's ``MapEvaluator`` for one source of a map dataset, its float32 steps
    included: ``exposure x (PSF * S)`` (n_true, h, w) on gammapy's cutout around the
    source and the cutout's slices of the data grid (``ev``: a float32
    :class:`xdl4.forward.Evaluator`).

    * nothing when no pixel of the fit mask (safe and fit) lies within the source's
      evaluation diameter, ``margin`` and the PSF width (gammapy's ``contributes``);
    * the cutout around ``position`` (lon, lat in the grid's frame): the PSF kernel's
      width plus the source's evaluation diameter plus twice ``margin`` (deg; gammapy's
      0.1), in an odd number of pixels, trimmed at the grid's edges (the whole grid
      for a source without an evaluation radius);
    * the morphology integrated on the cutout's pixels, oversampled sums held in float32
      (:meth:`~xdl4.models.spatial.SpatialModel.integrate_pixels`);
    * the PSF kernels in float32 (:meth:`xdl4.psf.KernelBuilder.kernels`) and each energy
      plane convolved by scipy's FFT convolution in float32, as ``WcsNDMap.convolve``.

    The rest (spectrum, exposure, EDISP, sums) is float64 in gammapy and in xdl4.
    """
    from astropy.nddata.utils import NoOverlapError, overlap_slices
    from scipy.signal import convolve

    from xdl4.psf import round_up_to_odd

    grid = ev.grid
    lon, lat = position
    # gammapy takes the kernel (its width sets the cutout) even where the model skips it
    kern = ev.psf_kernels(lon, lat) if ev.psf_axis == "energy_true" else None
    radius = model.spatial.evaluation_radius
    box = (slice(0, grid.shape[0]), slice(0, grid.shape[1]))
    if radius is not None:  # gammapy's "local" evaluation
        binsz = grid.binsz  # (lon, lat)
        x, y = grid.world_to_pixel(lon, lat)
        centre = (float(y), float(x))
        psf_width = 0.0 if kern is None else kern.shape[-1] * max(binsz)
        # gammapy skips a source with no fit pixel within its radius and the PSF width
        reach = [int(np.round(max((2 * radius + margin + psf_width) / b, 1.0)))
                 for b in binsz]
        try:
            near = overlap_slices(grid.shape, reach[::-1], centre, mode="trim")[0]
        except (NoOverlapError, ValueError):  # off the map, or not projected on it
            return ev.nothing_folded()
        if not ev.mask[(slice(None),) + near].any():
            return ev.nothing_folded()
        width = psf_width + 2 * (radius + margin)
        npix = [round_up_to_odd(max(width / b, 1.0)) for b in binsz]
        box = overlap_slices(grid.shape, npix[::-1], centre, mode="trim")[0]
    shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
    s = model.spatial.integrate_pixels(grid.wcs[box], shape, ev.morphology_energies(model),
                                       dtype=F32)
    if kern is None or not model.apply_irf["psf"]:
        conv = np.broadcast_to(s, (exposure.shape[0],) + shape)
    else:  # an image is cast to float32 once; planes of a cube are convolved as they are
        image = s.astype(F32) if s.ndim == 2 else None
        conv = np.empty((kern.shape[0],) + shape, F32)
        for j, plane in enumerate(kern):
            conv[j] = convolve(s[j] if image is None else image, plane, method="fft",
                               mode="same")
    return exposure[:, box[0], box[1]] * conv, box


def cumulative_fields(datasets: Sequence[xr.Dataset]) -> Iterator[dict]:
    """For each run in order, the float32 fields of gammapy's cumulative table row."""
    onoff = kind_record(datasets[0]).onoff
    for maps in stacked_maps(datasets):
        yield info_fields(maps, onoff)


__all__ = ["EXPOSURE_UNIT", "cumulative_fields", "folded_morphology", "info_fields",
           "stacked_maps", "working_dtype"]
