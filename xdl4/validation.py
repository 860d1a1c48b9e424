"""A dataset's identity (its kind, its name) and checking it against the DL4 contract
declared in :mod:`xdl4.schema`.

A dataset's name is ``attrs["name"]``; a run also carries it as its scalar ``obs``
coordinate, so that ``xr.concat(runs, "obs")`` labels the runs and ``runs.sel(obs=name)``
gives back a dataset named after that run (:func:`dataset_name`, :func:`with_name`).

:func:`xdl4.validate` (``ds.dl4.validate()``) runs the checks of the dataset's kind: for
the kinds that hold :data:`~xdl4.schema.VARIABLES` the generic :func:`variable_problems`
below, plus whatever the kind's module adds (flux points check their SED columns).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr
from astropy import units as u

from xdl4.axes import bound_values
from xdl4.errors import ArgumentError, DL4ValidationError, StackError
from xdl4.schema import (
    BOUND,
    BOUNDED_DIMS,
    ENERGY_DIMS,
    GTI,
    KINDS,
    META_ROW,
    OBS,
    VARIABLES,
    Kind,
    allowed_dims,
    canonical_dims,
    parse_unit,
)
from xdl4.sky import check_sky


def kind_record(ds: xr.Dataset) -> Kind:
    """The :class:`~xdl4.schema.Kind` named by ``attrs["dl4_kind"]``; a
    :class:`~xdl4.errors.DL4ValidationError` if it names no registered kind.

    >>> import xdl4
    >>> kind_record(xdl4.examples.map_dataset()).statistic
    'cash'
    """
    kind = ds.attrs.get("dl4_kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise DL4ValidationError(
            [f"attrs['dl4_kind'] is {kind!r}; expected one of {', '.join(KINDS)}"],
            ds.attrs.get("name"),
        )
    return KINDS[kind]


def dataset_name(ds: xr.Dataset) -> str:
    """The name of ``ds``: ``attrs["name"]`` when set, else its scalar ``obs`` coordinate
    (a run: runs keep their name there, so that ``xr.concat(runs, "obs")`` labels them
    and ``runs.sel(obs=...)`` is named after its run), else "".

    >>> import xdl4
    >>> runs = xr.concat([xdl4.examples.spectrum_dataset(i).dl4.renamed(f"run{i}")
    ...                   for i in range(2)], "obs")
    >>> dataset_name(runs.sel(obs="run1")), runs.obs.values.tolist()
    ('run1', ['run0', 'run1'])
    """
    name = ds.attrs.get("name")
    if name:
        return str(name)
    label = ds.coords.get(OBS)
    return str(label.values) if label is not None and label.ndim == 0 else ""


def with_name(ds: xr.Dataset, name: str | None) -> xr.Dataset:
    """``ds`` named ``name``: a run (scalar ``obs`` coordinate) by its label, anything
    else by ``attrs["name"]``; unchanged for ``name=None``."""
    if name is None:
        return ds
    label = ds.coords.get(OBS)
    if label is not None and label.ndim == 0:
        out = ds.assign_coords({OBS: label.copy(data=str(name))})
        return _set_attrs(out, {k: v for k, v in out.attrs.items() if k != "name"})
    return ds.assign_attrs(name=str(name))


def _set_attrs(ds: xr.Dataset, attrs: dict) -> xr.Dataset:
    out = ds.copy(deep=False)
    out.attrs = attrs
    return out


def datasets_in(data, split_runs: bool = False) -> list[xr.Dataset]:
    """The DL4 datasets of ``data``: a dataset, a list (nested lists too), or the DL4
    nodes of a DataTree (named after their node when unnamed; other nodes skipped).
    ``split_runs``: the runs of a dataset with ``obs`` as datasets of their own, named
    after their labels."""
    if isinstance(data, xr.Dataset):
        if not split_runs or OBS not in data.dims:
            return [data]
        return [with_name(data.isel({OBS: i}), label)
                for i, label in enumerate(run_labels(data))]
    if isinstance(data, xr.DataTree):
        out = []
        for node in data.subtree:
            if not node.has_data:
                continue
            ds = node.to_dataset()
            try:
                kind_record(ds)
            except DL4ValidationError:
                continue  # not a DL4 node (e.g. metadata)
            ds = ds if dataset_name(ds) else with_name(ds, node.name)
            out += datasets_in(ds, split_runs)
        return out
    if isinstance(data, Iterable) and not isinstance(data, str | bytes):
        return [ds for item in data for ds in datasets_in(item, split_runs)]
    raise TypeError(f"expected an xarray Dataset, a list of them or a DataTree, got "
                    f"{type(data).__name__}")


def run_labels(ds: xr.Dataset) -> list[str]:
    """The labels of the runs along ``obs``: the ``obs`` coordinate when it holds unique
    names, else ``label[i]`` (its values, or the dataset's name, numbered)."""
    n = ds.sizes[OBS]
    name = str(ds.attrs.get("name", "") or "run")
    labels = [str(v) for v in ds[OBS].values] if OBS in ds.coords else [name] * n
    if len(set(labels)) == n:
        return labels
    return [f"{label}[{i}]" for i, label in enumerate(labels)]


def as_run(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` labelled as a run: its name moved to the scalar ``obs`` coordinate (what
    ``xr.concat(runs, "obs")`` turns into the run labels; ``attrs["name"]`` is left unset,
    so that a selected run is not named after the first one); unchanged with ``obs``
    dims and for kinds without counts (flux points are no run)."""
    if OBS in ds.dims or "counts" not in kind_record(ds).variables:
        return ds
    name = dataset_name(ds)
    out = ds.assign_coords({OBS: xr.Variable((), name)})
    return _set_attrs(out, {k: v for k, v in out.attrs.items() if k != "name"})


def concat_runs(runs) -> xr.Dataset:
    """Runs on one grid as one dataset along ``obs``: the ``obs`` coordinate holds the run
    names, per-run metadata coordinates (``meta_*``) become coordinates along ``obs``.
    (``xr.concat(runs, "obs")`` does the same with xarray's present defaults; this keeps
    doing it when they change.) The result is named after the first run."""
    runs = [as_run(r) for r in runs]
    if not runs:
        raise ArgumentError("no runs given to put along obs")
    _check_same_grids(runs)
    return xr.concat(runs, OBS, coords="different", compat="equals", join="outer",
                     combine_attrs="override", data_vars="all")


def _check_same_grids(runs: list[xr.Dataset]) -> None:
    """Runs along ``obs`` share their kind, axes and pixel grids (an outer join would pad
    the others with NaN); their GTI tables and meta rows may differ in length."""
    first = runs[0]
    for run in runs[1:]:
        problem = _grid_problem(first, run)
        if problem:
            raise StackError(f"run {dataset_name(run)!r} {problem} (first run "
                             f"{dataset_name(first)!r}): runs along obs share their kind, "
                             "axes and sky grid; stack or fit them as separate datasets")


def _grid_problem(first: xr.Dataset, run: xr.Dataset) -> str | None:
    """What keeps ``run`` from lying along ``obs`` beside ``first``, or None."""
    free = {GTI, META_ROW, OBS}  # per-run tables: their lengths may differ
    kinds = first.attrs.get("dl4_kind"), run.attrs.get("dl4_kind")
    if kinds[0] != kinds[1]:
        return f"is a {kinds[1]} dataset, not {kinds[0]}"
    for dim, index in first.indexes.items():
        if dim not in free and not index.equals(run.indexes.get(dim)):
            return f"has another {dim!r} axis"
    extra = sorted(set(run.indexes) - set(first.indexes) - free)
    return f"has axes {extra} the first run lacks" if extra else None


#: long names of the binned axes (plots label their axes with them)
AXIS_LONG_NAMES = {"energy": "Reconstructed energy", "energy_true": "True energy",
                   "irf_energy_true": "True energy", "rad": "Offset from the source",
                   "migra": "Energy migration"}


def labelled(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with the labels plain xarray plots use, from the registry: each declared
    variable's ``long_name``, the axes' long names, and no empty ``units`` attribute on
    dimensionless variables (xarray would print "counts []"; a missing unit is
    dimensionless to xdl4). Values and other attributes are unchanged; constructors and
    the FITS readers apply it.

    >>> import xdl4
    >>> ds = labelled(xdl4.examples.map_dataset())
    >>> ds.counts.attrs["long_name"], "units" in ds.counts.attrs
    ('Counts', False)
    """
    changes = {}
    for name in ds.variables:
        var = ds.variables[name]
        long_name = VARIABLES[name].long_name if name in VARIABLES else \
            AXIS_LONG_NAMES.get(str(name))
        attrs = dict(var.attrs)
        if long_name and "long_name" not in attrs:
            attrs["long_name"] = long_name
        if name in VARIABLES and str(attrs.get("units", "x")).strip() in ("", "1"):
            del attrs["units"]
        if attrs != var.attrs:
            changes[name] = var.copy(deep=False)
            changes[name].attrs = attrs
    if not changes:
        return ds
    out = ds.copy(deep=False)
    for name, var in changes.items():
        out[name].attrs = var.attrs
    return out


def check_bounds(ds: xr.Dataset, dim: str, problems: list[str],
                  contiguous: bool = True) -> None:
    if dim not in ds.coords:
        problems.append(f"dimension {dim!r} has no coordinate")
        return
    bname = ds[dim].attrs.get("bounds", f"{dim}_bounds")
    if bname not in ds.variables:
        if dim in ENERGY_DIMS and dim != "irf_energy_true":
            problems.append(f"energy axis {dim!r} has no bounds variable {bname!r}")
        return
    b = ds[bname]
    if set(b.dims) not in ({dim, BOUND}, {OBS, dim, BOUND}):
        problems.append(f"bounds {bname!r} has dims {b.dims}; expected ({dim!r}, 'bound')")
        return
    lo, hi = np.moveaxis(bound_values(ds, dim), -1, 0)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        problems.append(f"{dim} bounds contain NaN or infinity")
    elif np.any(hi <= lo) or np.any(lo[..., 1:] < lo[..., :-1]):
        problems.append(f"{dim} bounds are not increasing (each bin needs lo < hi, "
                        "bins in increasing order)")
    elif contiguous and lo.shape[-1] > 1 and not np.allclose(lo[..., 1:], hi[..., :-1],
                                                             rtol=1e-6, atol=0):
        problems.append(f"{dim} bins are not contiguous")
    if dim in ENERGY_DIMS:
        try:
            unit = parse_unit(b.attrs.get("units", ds[dim].attrs.get("units")), f"{dim} bounds")
            if not unit.is_equivalent(u.TeV):
                problems.append(f"{dim} bounds unit {unit} is not an energy")
        except ValueError as err:
            problems.append(str(err))


#: negative values down to this fraction of a variable's largest magnitude are round-off
#: (real instrument files carry e.g. -8e-18 in a background of order 1): accepted by
#: validation, hence by every reader and writer alike
ROUNDOFF = 1e-10


def roundoff(values: np.ndarray) -> float:
    """The magnitude below which negative ``values`` count as round-off."""
    finite = np.abs(values[np.isfinite(values)]) if values.size else values
    return ROUNDOFF * float(finite.max()) if finite.size else 0.0


def _edisp_problems(ds: xr.Dataset, edisp: xr.DataArray) -> list[str]:
    """An EDISP sends each true-energy bin to the reco bins with total probability <= 1
    (a migration density integrates to <= 1)."""
    if "energy" in edisp.dims:
        total, tol = edisp.sum("energy"), 1e-5
    elif "migra" in edisp.dims and "migra_bounds" in ds.coords:
        width = xr.DataArray(np.diff(bound_values(ds, "migra"), axis=-1)[..., 0],
                             dims="migra")
        total, tol = (edisp * width).sum("migra"), 1e-3
    else:
        return []
    worst = float(total.max())
    if worst > 1 + tol:
        return [f"edisp sends a true-energy bin to the reco bins with total probability "
                f"{worst:.6g} > 1 (columns must sum to at most 1)"]
    return []


def variable_problems(ds: xr.Dataset, kind: Kind) -> list[str]:
    """Every problem of ``ds`` with the variables, axes and sky grid of ``kind``: required
    variables, bounds of binned axes, sky grids, and for each declared variable its dims,
    dtype, unit and values (NaN, negatives; lazy arrays are not computed)."""
    problems: list[str] = []
    for req in kind.required:
        if req not in ds.data_vars:
            problems.append(f"missing required variable {req!r} for kind {kind.name!r}")
    for dim in BOUNDED_DIMS:
        if dim in ds.dims:
            check_bounds(ds, dim, problems)
    problems += check_sky(ds, kind.geometry)
    for vname, var in VARIABLES.items():
        if vname not in ds.data_vars:
            continue
        da = ds[vname]
        if vname not in kind.variables:
            problems.append(f"variable {vname!r} does not belong to kind {kind.name!r}")
            continue
        allowed = allowed_dims(var, ds.dims)
        if canonical_dims(da.dims) not in allowed:  # any order: computations read by name
            problems.append(f"{vname} has dims {da.dims}; expected one of "
                            f"{', '.join(map(str, allowed[::2]))}")
            continue
        if var.dtype == "bool":
            if da.dtype != bool:
                problems.append(f"{vname} must be boolean, got dtype {da.dtype}")
            continue
        if not (np.issubdtype(da.dtype, np.floating) or
                (var.dtype == "number" and np.issubdtype(da.dtype, np.integer))):
            problems.append(f"{vname} must be {'float' if var.dtype == 'float' else 'numeric'}, "
                            f"got dtype {da.dtype}")
            continue
        if var.unit is not None:
            try:
                unit = parse_unit(da.attrs.get("units"), vname)
                if not unit.is_equivalent(parse_unit(var.unit, vname)):
                    problems.append(f"{vname} has unit {da.attrs.get('units')!r}, "
                                    f"not convertible to {var.unit or 'dimensionless'!r}")
            except ValueError as err:
                problems.append(str(err))
        if da.chunks is not None:  # never compute lazily loaded data during validation
            continue
        values = np.asarray(da.values)
        floating = np.issubdtype(values.dtype, np.floating)
        if var.finite and floating and not np.isfinite(values).all():
            what = "NaN" if np.isnan(values).any() else "infinite values"
            problems.append(f"{vname} contains {what}")
        elif var.nonnegative and (values < -roundoff(values)).any():
            problems.append(f"{vname} has negative values (min {values.min():g})")
        elif vname == "edisp":
            problems += _edisp_problems(ds, da)
    if ("gti_start" in ds) != ("gti_stop" in ds):
        problems.append("gti_start and gti_stop must both be present")
    return problems
