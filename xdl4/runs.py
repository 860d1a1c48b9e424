"""Many runs: run tables (gammapy's ``Datasets.info_table``), per-run energy ranges,
time selection, stacking runs by group, and combining runs along ``obs``.

A collection of runs is one dataset with an ``obs`` dimension (its coordinate holds the
run names, per-run metadata are coordinates along ``obs``), a list of datasets, or a
DataTree of datasets; the functions here take any of them.

>>> import xarray as xr, xdl4
>>> runs = xr.concat([xdl4.examples.spectrum_dataset(i).dl4.renamed(f"run{i}")
...                  for i in range(3)], "obs")
>>> table = info_table(runs)
>>> table.obs.values.tolist(), float(table.livetime.sum())
(['run0', 'run1', 'run2'], 10800.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from xdl4.errors import ArgumentError, DL4ValidationError, StackError
from xdl4.gammapy_float32 import EXPOSURE_UNIT, cumulative_fields, working_dtype
from xdl4.kinds.counts import rates
from xdl4.models.routing import ModelsLike
from xdl4.schema import OBS
from xdl4.validation import concat_runs, dataset_name, datasets_in

#: gammapy's info_table columns and their units (on/off kinds add the last four)
INFO_UNITS = {
    "counts": "", "excess": "", "sqrt_ts": "", "background": "", "npred": "",
    "npred_background": "", "npred_signal": "", "exposure_min": None, "exposure_max": None,
    "livetime": "s", "ontime": "s", "counts_rate": "s-1", "background_rate": "s-1",
    "excess_rate": "s-1", "n_bins": "", "n_fit_bins": "", "stat_type": None,
    "stat_sum": "", "counts_off": "", "acceptance": "", "acceptance_off": "", "alpha": "",
}


def datasets_of(data: Any) -> list[xr.Dataset]:
    """The single datasets of ``data``: the runs of a dataset with ``obs`` (named after
    their labels), a list, or the DL4 nodes of a DataTree (named after their nodes)."""
    return datasets_in(data, split_runs=True)


def info_table(data: Any, cumulative: bool = False, models: ModelsLike = None,
               dtype: str = "float64") -> xr.Dataset:
    """gammapy's ``Datasets.info_table``: one row of ``info_dict`` fields per dataset (or
    run), as an ``xarray.Dataset`` over ``obs`` with units; ``.to_dataframe()`` gives the
    table. ``cumulative``: each row is the info of the runs up to it stacked (in order, as
    gammapy: the first run masked, then each run stacked on). ``models``: npred,
    npred_signal and stat_sum with the models (each run's FoV background model applies).

    ``dtype="float32"``: gammapy's float32 steps replayed, which gives its table to the
    last digit, float32 rounding included (:mod:`xdl4.gammapy_float32`). Cumulative:
    the runs stacked and summed in float32 working maps (exposure in m2 s as gammapy's
    stacked exposure); with models (per run): the models folded as gammapy folds them
    (float32 PSF kernels and FFT convolution on its cutouts).
    """
    datasets = datasets_of(data)
    if not datasets:
        raise ArgumentError("info_table needs at least one dataset")
    float32 = working_dtype(dtype, "info_table") == np.float32
    if float32 and cumulative and models is not None:
        raise ArgumentError("dtype='float32' replays gammapy's tables: its cumulative table "
                            "has no model information (use models=None), its table with "
                            "models is per run (use cumulative=False)")
    rows, names = [], []
    stacked = None
    for ds in datasets:
        if cumulative:
            stacked = ds.dl4.to_masked(name="stacked") if stacked is None else \
                stacked.dl4.stack(ds, name="stacked")
            rows.append(stacked.dl4.info(models))
        else:  # float32: the models folded as gammapy folds them (counts kinds)
            rows.append(ds.dl4.info(models, dtype=dtype if models is not None else
                                    "float64"))
        names.append(dataset_name(ds))
    units = exposure_units(datasets[0])
    if float32 and cumulative:
        for row, fields in zip(rows, cumulative_fields(datasets), strict=True):
            row.update(fields)
            row.update(rates(row))
        units = dict.fromkeys(units, EXPOSURE_UNIT)
    keys = list(dict.fromkeys(k for row in rows for k in row if k != "name"))
    table = {}
    for key in keys:
        values = [row.get(key, np.nan) for row in rows]
        unit = units.get(key, INFO_UNITS.get(key, ""))
        table[key] = xr.Variable(OBS, np.asarray(values), {} if unit is None else
                                 {"units": unit})
    out = xr.Dataset(table, coords={OBS: names})
    return out.assign_attrs(cumulative=int(cumulative), dtype="float32" if float32 else "float64")


def exposure_units(ds: xr.Dataset) -> dict:
    """The units of the info fields ``exposure_min`` / ``exposure_max``: the exposure's."""
    unit = ds["exposure"].attrs.get("units", "") if "exposure" in ds else ""
    return {"exposure_min": unit, "exposure_max": unit}


def energy_range(ds: xr.Dataset, mask: str | None = None) -> xr.Dataset:
    """The reco-energy range of ``ds`` (``energy_min``, ``energy_max`` in the energy unit),
    over all bins (``mask=None``), the safe bins (``"safe"``) or the fit bins (``"fit"``),
    per run for a dataset with ``obs`` (NaN where no bin is in the mask), as gammapy's
    ``energy_range``, ``energy_range_safe`` and ``energy_range_fit``."""
    from xdl4 import masks

    edges = ds.dl4.energy_edges
    def every_bin(d):  # one pixel is enough: only the energy (and obs) dims are kept
        one = d["counts"].isel({dim: 0 for dim in ("lat", "lon") if dim in d["counts"].dims},
                               drop=True)
        return xr.ones_like(one, dtype=bool)

    choices = {None: every_bin, "safe": masks.safe, "fit": masks.fit}
    if mask not in choices:
        raise ArgumentError(f"mask must be None, 'safe' or 'fit', not {mask!r}")
    which = choices[mask](ds)  # one row per run along obs, the same coordinates for all
    selected = masks.spectral(which, keep=("energy", OBS))
    lo = xr.DataArray(edges.value[:-1], dims="energy")
    hi = xr.DataArray(edges.value[1:], dims="energy")
    attrs = {"units": edges.unit.to_string("fits")}
    return xr.Dataset({"energy_min": lo.where(selected).min("energy").assign_attrs(attrs),
                       "energy_max": hi.where(selected).max("energy").assign_attrs(attrs)})


def select_time(ds: xr.Dataset, time_min=None, time_max=None) -> xr.Dataset:
    """The runs of ``ds`` whose good-time intervals overlap [time_min, time_max) (astropy
    Times, ISO strings in UTC, or MJD numbers in the GTI's time scale), as gammapy's
    ``select_time`` keeps the datasets in a time range. A dataset without ``obs`` is kept
    or refused as one run."""
    from xdl4.gti import as_time, good_times

    gti = good_times(ds)
    if gti is None:
        raise DL4ValidationError(["select_time needs good-time intervals (gti_start, "
                                  "gti_stop)"], dataset_name(ds))
    scale = gti.start.scale
    lo = -np.inf if time_min is None else float(getattr(as_time(time_min, scale), scale).mjd)
    hi = np.inf if time_max is None else float(getattr(as_time(time_max, scale), scale).mjd)
    start, stop = gti.start.mjd, gti.stop.mjd
    overlap = (start < hi) & (stop > lo)
    if gti.run is None:
        if not overlap.any():
            raise ArgumentError(f"dataset {dataset_name(ds)!r} has no GTI in the time range")
        return ds
    keep = np.zeros(gti.n_runs, bool)
    keep[gti.run[overlap]] = True
    return ds.isel({OBS: keep})


def stack_groups(runs: xr.Dataset, groupby: str | xr.DataArray, models: ModelsLike = None,
                 name: str = "{label}") -> xr.Dataset:
    """Stack the runs of each group (``groupby``: a coordinate or variable along ``obs``,
    or a DataArray of labels along ``obs``): one stacked dataset per group, along ``obs``,
    labelled by the group (``name`` formats the label from ``{label}``), ready for a joint
    fit (``xdl4.fit(stacks, models)``: each stack is one run of the joint likelihood).
    ``models``: each run's FoV background model baked in first, as gammapy stacks."""
    labels = runs[groupby] if isinstance(groupby, str) else groupby
    if OBS not in labels.dims:
        raise StackError(f"groupby {getattr(labels, 'name', groupby)!r} must lie along "
                         "'obs' (one label per run)")
    values = np.asarray(labels.values)
    stacks = []
    for value in list(dict.fromkeys(values.tolist())):
        group = runs.isel({OBS: np.flatnonzero(values == value)})
        label = name.format(label=value)
        stacks.append(group.dl4.stack(models=models, name=label).dl4.renamed(label))
    out = concat_runs(stacks)
    return out.assign_coords({str(getattr(labels, "name", "group")): (
        OBS, list(dict.fromkeys(values.tolist())))}).assign_attrs(
        name=str(runs.attrs.get("name", "stacks")))


__all__ = ["concat_runs", "datasets_of", "energy_range", "exposure_units", "info_table",
           "select_time", "stack_groups"]
