"""Summaries for notebooks and terminals: the ``ds.dl4`` repr (text and HTML) and
:func:`summary`, a small table of many datasets.

A repr is cheap and never raises: it reads coordinates, attributes, in-memory arrays and
small lazily loaded ones (never dask arrays, nor large files: those fields say so), calls
``ds.dl4.info()`` only on a single dataset (for runs along ``obs``: totals and the ``obs``
coordinates, no per-run info), and falls back to what it can still show for a dataset of
an unknown or invalid kind.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr

#: runs listed by name in a repr; more are counted
MAX_RUNS = 10
#: a repr reads lazily loaded (not dask) data up to this size
MAX_READ_BYTES = 32_000_000
#: a repr sums the counts of runs along ``obs`` up to this number of bins
MAX_SUM_SIZE = 5_000_000
#: info fields of a repr (those a kind's info() gives), in order
INFO_FIELDS = ("counts", "background", "excess", "sqrt_ts", "counts_off", "alpha",
               "livetime", "exposure_min", "exposure_max", "n_bins", "n_fit_bins",
               "sed_type", "n_points", "n_ul", "n_time_bins")
#: the fields of :func:`summary` (numbers; NaN where a kind has none)
SUMMARY_FIELDS = ("counts", "background", "excess", "sqrt_ts", "livetime", "n_fit_bins")
_UNITS = {"livetime": "s"}


def _readable(var: xr.DataArray | xr.Variable) -> bool:
    """Whether a repr may read ``var``: never dask; lazily loaded (on disk) arrays only
    when small (up to :data:`MAX_READ_BYTES`)."""
    variable = var.variable if isinstance(var, xr.DataArray) else var
    if variable.chunks is not None:
        return False
    return getattr(variable, "_in_memory", True) or variable.nbytes <= MAX_READ_BYTES


def _lazy(ds: xr.Dataset) -> bool:
    """Whether a repr must not read ``ds``'s data (dask, or large and on disk)."""
    if any(v.chunks is not None for v in ds.variables.values()):
        return True
    on_disk = [v for v in ds.variables.values() if not getattr(v, "_in_memory", True)]
    return sum(v.nbytes for v in on_disk) > MAX_READ_BYTES


def _num(v: Any) -> str:
    if isinstance(v, str | bool | np.bool_) or v is None:
        return str(v)
    v = float(v)
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v)}"
    return f"{v:.6g}"


def _range(q, digits: int = 4) -> str:
    return f"{q[0].value:.{digits}g} – {q[-1].value:.{digits}g} {q.unit.to_string()}"


# -- the rows of a dataset's summary -----------------------------------------------------------

def _energy_rows(ds: xr.Dataset) -> list[tuple[str, str]]:
    from xdl4 import masks
    from xdl4.axes import edges

    rows = []
    for dim, label in (("energy", "energy"), ("energy_true", "energy_true")):
        if dim in ds.dims:
            bounds = ds[dim].attrs.get("bounds", f"{dim}_bounds")
            if bounds in ds.variables and _readable(ds[bounds]):
                rows.append((label, f"{_range(edges(ds, dim))} ({ds.sizes[dim]} bins)"))
            else:  # no bounds at hand: the centres' span
                c = ds[dim]
                rows.append((label, f"centres {float(c[0]):.4g} – {float(c[-1]):.4g} "
                                    f"{c.attrs.get('units', '')} ({ds.sizes[dim]} bins)"))
    bounds = ds["energy"].attrs.get("bounds", "energy_bounds") if "energy" in ds.dims else ""
    for mask, label, selected in (("mask_safe", "energy safe", masks.safe),
                                  ("mask_fit", "energy fit", masks.fit)):
        if mask in ds and "energy" in ds[mask].dims and bounds in ds.variables:
            if not _readable(ds[mask]) or not _readable(ds[bounds]):
                rows.append((label, "lazy: not computed"))
                continue
            sel = selected(ds)  # the fit bins: safe and fit, as everywhere
            m = masks.spectral(sel).values
            if not m.any():
                rows.append((label, "empty"))
                continue
            e = edges(ds, "energy")
            i = np.flatnonzero(m)
            rows.append((label, _range(e[[i[0], i[-1] + 1]])))
    return rows


def _sky_rows(ds: xr.Dataset) -> list[tuple[str, str]]:
    if "lat" in ds.dims and "lon" in ds.dims:
        from xdl4.schema import GRID_MAPPING
        from xdl4.sky import WcsGrid

        offsets = all(_readable(ds[c]) for c in ("lon_pixel", "lat_pixel") if c in ds.coords)
        g = ds.dl4.grid if offsets else WcsGrid(  # lazy pixel coordinates: no cut-out offset
            ds[GRID_MAPPING].attrs["wcs_header"], (ds.sizes["lat"], ds.sizes["lon"]))
        ny, nx = g.shape
        bx, by = g.binsz
        size = f"{bx:.4g} deg" if abs(bx - by) < 1e-9 * max(abs(bx), 1) else \
            f"{bx:.4g} x {by:.4g} deg"
        centre = f", centre ({g.center[0]:.4f}, {g.center[1]:.4f})" if offsets else ""
        rows = [("grid", f"{ny} x {nx} pixels of {size}, {g.frame} {g.projection}{centre}")]
        if "irf_lat" in ds.dims:
            rows.append(("irf grid", f"{ds.sizes['irf_lat']} x {ds.sizes['irf_lon']} pixels"))
        return rows
    region = ds.dl4.region
    return [("region", region.display())] if region is not None else []


def _time_rows(ds: xr.Dataset) -> list[tuple[str, str]]:
    if "time" not in ds.dims:
        return []
    if "time_bounds" not in ds.variables or not _readable(ds["time_bounds"]):
        return [("time", f"{ds.sizes['time']} bins")]
    try:
        from xdl4.axes import time_edges

        start, stop = time_edges(ds)
        return [("time", f"MJD {start[0].mjd:.5f} – {stop[-1].mjd:.5f} {start.scale} "
                         f"({ds.sizes['time']} bins)")]
    except Exception:  # noqa: BLE001
        return [("time", f"{ds.sizes['time']} bins")]


def _info_rows(ds: xr.Dataset) -> list[tuple[str, str]]:
    from xdl4 import masks
    from xdl4.gti import livetime

    if "obs" in ds.dims:  # totals only: no per-run info in a repr
        rows = []
        counts, safe = ds.get("counts"), masks.safe(ds) if "counts" in ds else None
        if counts is not None and counts.size <= MAX_SUM_SIZE and _readable(counts) and \
                _readable(safe):
            c, m = xr.broadcast(counts, safe)
            total = np.sum(c.values, where=m.transpose(*c.dims).values)
            rows.append(("counts", f"{_num(total)} (all runs, safe mask)"))
        if "livetime" in ds and _readable(ds["livetime"]):
            rows.append(("livetime", f"{_num(livetime(ds))} s (all runs)"))
        return rows
    if _lazy(ds):
        return [("info", "lazy (dask, or large on disk): not computed, see ds.dl4.info()")]
    info = ds.dl4.info()
    from xdl4.runs import exposure_units

    units = {**_UNITS, **{k: v for k, v in exposure_units(ds).items() if v}}
    return [(k, _num(info[k]) + (f" {units[k]}" if k in units else ""))
            for k in INFO_FIELDS if k in info and info[k] is not None]


def _run_table(ds: xr.Dataset) -> tuple[list[str], list[list[str]], int]:
    """(columns, rows, number of runs) of the coordinates along ``obs`` (first runs)."""
    n = ds.sizes["obs"]
    coords = [k for k, c in ds.coords.items() if c.dims == ("obs",) and _readable(c)]
    if "obs" in coords:
        coords.remove("obs")
        coords.insert(0, "obs")
    rows = [[v.item() if isinstance(v, np.number | np.bool_) else str(v)
             for v in (ds[k].values[i] for k in coords)] for i in range(min(n, MAX_RUNS))]
    return coords, rows, n


def describe(ds: xr.Dataset) -> tuple[str, list[tuple[str, str]]]:
    """(title, [(field, text)]) of a dataset: never raises, a failing part says why."""
    from xdl4.validation import dataset_name

    name = dataset_name(ds)
    try:
        kind, stat = ds.dl4.kind, ds.dl4.stat_type
    except Exception as exc:  # noqa: BLE001  (unknown or invalid kind)
        sizes = ", ".join(f"{d}: {s}" for d, s in ds.sizes.items())
        return (f"dataset {name!r} of unknown kind" if name else "dataset of unknown kind",
                [("problem", f"{type(exc).__name__}: {exc}"), ("dims", sizes or "none"),
                 ("variables", ", ".join(map(str, ds.data_vars)) or "none")])
    label = f" {name!r}" if name else ""  # a stack or runs along obs may have no name
    runs = f", {ds.sizes['obs']} runs" if "obs" in ds.dims else ""
    title = f"{kind} dataset{label} ({stat}{runs})"
    rows: list[tuple[str, str]] = []
    for part in (_energy_rows, _sky_rows, _time_rows, _info_rows):
        try:
            rows += part(ds)
        except Exception as exc:  # noqa: BLE001
            rows.append((part.__name__.strip("_").replace("_rows", ""),
                         f"not available ({type(exc).__name__}: {exc})"))
    if "obs" in ds.dims:
        n = ds.sizes["obs"]
        names = [str(v) for v in ds["obs"].values[:MAX_RUNS]] if "obs" in ds.coords else []
        more = f", ... ({n - MAX_RUNS} more)" if n > MAX_RUNS and names else ""
        rows.append(("runs", f"{n}" + (f": {', '.join(names)}{more}" if names else
                                       " (no obs coordinate)")))
    return title, rows


def to_text(ds: xr.Dataset) -> str:
    """The text summary of ``ds.dl4`` (its ``repr``)."""
    try:
        from xdl4.models.parameter import text_table

        title, rows = describe(ds)
        width = max((len(k) for k, _ in rows), default=0)
        lines = [f"<xdl4 {title}>"] + [f"  {k:<{width}}  {v}" for k, v in rows]
        if "obs" in ds.dims:
            cols, runs, n = _run_table(ds)
            if len(cols) > 1:
                lines += ["  run coordinates:", text_table(cols, runs, indent="    ")]
                if n > len(runs):
                    lines.append(f"    ... ({n - len(runs)} more runs)")
        return "\n".join(lines)
    except Exception as exc:  # noqa: BLE001  (a repr never raises)
        return f"<xdl4 accessor: no summary ({type(exc).__name__}: {exc})>"


def to_html(ds: xr.Dataset) -> str:
    """The HTML summary of ``ds.dl4`` (its ``_repr_html_``)."""
    try:
        from xdl4.models.parameter import html_table

        title, rows = describe(ds)
        out = [f"<div><b>{html.escape(title)}</b>", html_table(["", ""], rows)]
        if "obs" in ds.dims:
            cols, runs, n = _run_table(ds)
            if len(cols) > 1:
                more = f", first {len(runs)} shown" if n > len(runs) else ""
                out.append(html_table(cols, runs, caption=f"runs ({n}{more})"))
        return "".join(out) + "</div>"
    except Exception as exc:  # noqa: BLE001
        return f"<pre>{html.escape(to_text(ds))}</pre><!-- {html.escape(repr(exc))} -->"


# -- many datasets ------------------------------------------------------------------------------

def _datasets(data: Any) -> tuple[str, list[tuple[str, xr.Dataset]]]:
    """(dimension, [(label, dataset)]) of a DataTree, a list, or a dataset with ``obs``."""
    from xdl4.validation import dataset_name, run_labels

    if isinstance(data, xr.Dataset):
        if "obs" not in data.dims:
            return "dataset", [(dataset_name(data), data)]
        return "obs", [(lab, data.isel(obs=i)) for i, lab in enumerate(run_labels(data))]
    if isinstance(data, xr.DataTree):
        return "dataset", [(node.path.lstrip("/") or node.name or "", node.to_dataset())
                           for node in data.subtree
                           if node.has_data and "dl4_kind" in node.attrs]
    if isinstance(data, Iterable) and not isinstance(data, str | bytes):
        items = list(data)
        if all(isinstance(d, xr.Dataset) and "obs" not in d.dims for d in items):
            return "dataset", [(dataset_name(d), d) for d in items]
    raise TypeError("summary takes a DataTree, a list of datasets (without obs) or a "
                    f"dataset, not {type(data).__name__}")


def summary(data: xr.DataTree | Iterable[xr.Dataset] | xr.Dataset) -> xr.Dataset:
    """A few info fields of many datasets as one ``xarray.Dataset`` (printed and shown in
    notebooks by xarray's own reprs): ``kind``, ``stat_type`` and
    ``counts``, ``background``, ``excess``, ``sqrt_ts``, ``livetime`` (s), ``n_fit_bins``
    (NaN where a kind has none), from each dataset's ``ds.dl4.info()``; one row per dataset
    of a DataTree (labelled by node path) or a list (by name), or per run of a dataset with
    ``obs`` (labelled by its ``obs`` coordinate). For gammapy's full info table, see the
    run tables of ``ds.dl4``.

    >>> import xdl4
    >>> kinds = xdl4.examples.all_kinds()
    >>> table = xdl4.summary([kinds["spectrum"], kinds["flux_points"]])
    >>> table["kind"].values.tolist(), int(table["counts"][0])
    (['spectrum', 'flux_points'], 1160)
    """
    dim, items = _datasets(data)
    rows = [(label, ds.dl4.info()) for label, ds in items]
    labels = [label for label, _ in rows]
    variables = {
        "name": (dim, np.array([str(info.get("name", "")) for _, info in rows], dtype=str)),
        "kind": (dim, np.array([ds.dl4.kind for _, ds in items], dtype=str)),
        "stat_type": (dim, np.array([str(info.get("stat_type", "")) for _, info in rows],
                                    dtype=str)),
    }
    for key in SUMMARY_FIELDS:
        values = np.array([float(info.get(key, np.nan)) for _, info in rows])
        attrs = {"units": _UNITS[key]} if key in _UNITS else {}
        variables[key] = xr.Variable(dim, values, attrs)
    return xr.Dataset(variables, coords={dim: np.array(labels, dtype=str)},
                      attrs={"description": "xdl4.summary: info() fields per dataset"})
