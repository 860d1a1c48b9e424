"""Stacking: the reduction over runs of :mod:`xdl4.reduce`, with the geometry checks.

Each variable's stacking rule is its ``obs`` reduction declared in
:data:`xdl4.schema.VARIABLES`, an :class:`xdl4.reduce.Aggregation` (chunk / combine /
finalize). All three entry points use the same steps:

* ``stack(ds, other)``: pairwise; ``finalize(combine(chunk(ds) ++ chunk(other)))``;
* ``stack(runs, dim="obs")``: a reduction over runs, lazy on dask arrays;
* :func:`xdl4.streaming.stack_files`: a tree fold of per-run terms, in bounded memory.

Both operands are masked with their own ``mask_safe`` (gammapy masks only ``other``), so
stacking is commutative and associative, and stacking onto an empty dataset gives
gammapy's ``to_masked()`` / ``Datasets.stack_reduce()`` result. See ``docs/stacking.md``.

>>> import xdl4
>>> from xdl4.stack import stack
>>> a, b = xdl4.examples.spectrum_dataset(0), xdl4.examples.spectrum_dataset(1)
>>> out = stack(a, b)
>>> float(out.livetime), bool(out.counts.sum() == (a.counts * a.mask_safe).sum()
...                                             + (b.counts * b.mask_safe).sum())
(7200.0, True)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from xdl4.axes import bound_values
from xdl4.errors import StackError
from xdl4.reduce import COMBINE, OPTIONAL, Terms, chunk, combine, finalize, grid_coords
from xdl4.schema import (
    BOUNDED_DIMS,
    GRID_MAPPING,
    GRID_PREFIXES,
    GTI,
    META_ROW,
    OBS,
    unit_factor,
)
from xdl4.sky import Region, WcsGrid
from xdl4.validation import dataset_name

#: the same combine steps on two operands (the fold of ``stack_files``, pairwise stacking)
_PAIR_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "sum": np.add,
    "any": np.logical_or,
}


def merge(a: Terms, b: Terms, inplace: bool = False) -> Terms:
    """Combine the terms of two runs (or two partial stacks): the reduction over a
    two-element ``obs``. Grids are aligned first (one may be a cut-out of the other).
    ``inplace`` lets in-memory terms of ``a`` be updated in place (a private accumulator,
    as in :func:`xdl4.streaming.stack_files`)."""
    a, b = align(a, b)
    va, vb = a.variables, b.variables  # on Variables: no coordinates to carry (fast)
    only = {n: (va if n in a else vb)[n] for n in set(a.data_vars) ^ set(b.data_vars)}
    bad = sorted(n for n, t in only.items() if not t.attrs[OPTIONAL])
    if bad:
        raise StackError(f"cannot stack: variables {bad} exist in only one dataset")
    out = dict(only)  # optional terms of one side only: the other contributes nothing
    for name in a.data_vars:
        if name in only:
            continue
        term, other = va[name], vb[name]
        how = term.attrs[COMBINE]
        if how == "concat":
            out[name] = xr.Variable.concat([term, other], dim=term.dims[0])
            continue
        x, y = term.data, other.transpose(*term.dims).data
        if inplace and isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and \
                x.flags.writeable and x.shape == y.shape and \
                np.can_cast(np.result_type(x, y), x.dtype):
            _PAIR_OPS[how](x, y, out=x)
            out[name] = term
        else:
            out[name] = term.copy(data=_PAIR_OPS[how](x, y))
    # the terms share a's coordinates: no merge or alignment needed
    return xr.Dataset(out, coords=grid_coords(a), attrs=a.attrs)


# --------------------------------------------------------------------------------------
# geometry and units


def _axes_match(a: xr.Dataset, b: xr.Dataset) -> None:
    kinds = a.attrs.get("dl4_kind"), b.attrs.get("dl4_kind")
    if kinds[0] != kinds[1]:
        raise StackError(f"cannot stack a {kinds[1]!r} dataset onto a {kinds[0]!r} dataset")
    for dim in BOUNDED_DIMS:
        if (dim in a.dims) != (dim in b.dims):
            raise StackError(f"cannot stack: axis {dim!r} exists in only one dataset")
        if dim not in a.dims:
            continue
        name = f"{dim}_bounds" if f"{dim}_bounds" in a.coords else dim
        va, vb = (bound_values(x, dim) if name != dim else np.asarray(x[dim].values, float)
                  for x in (a, b))
        ua, ub = (x.variables[name].attrs.get("units", x.variables[dim].attrs.get("units"))
                  for x in (a, b))
        if va.shape != vb.shape:
            raise StackError(f"cannot stack: {dim} axes differ ({va.shape[0]} vs "
                             f"{vb.shape[0]} bins)")
        vb = vb * unit_factor(ub, ua, dim) if ua != ub else vb
        if not np.allclose(va, vb, rtol=1e-6, atol=0):
            raise StackError(f"cannot stack: {dim} axes differ (bins {va.ravel()[:4]}... vs "
                             f"{vb.ravel()[:4]}...)")
    ra, rb = Region.from_dataset(a), Region.from_dataset(b)
    if ra is not None and rb is not None and not _same_region(ra, rb):
        raise StackError(f"cannot stack: regions differ ({ra} vs {rb})")


def _same_region(a: Region, b: Region) -> bool:
    return a.frame == b.frame and len(a.shapes) == len(b.shapes) and all(
        sa == sb and np.allclose(xa, xb, rtol=0, atol=1e-6)
        for (sa, xa), (sb, xb) in zip(a.shapes, b.shapes, strict=True))


def _pad(ds: xr.Dataset, parent: xr.Dataset, prefix: str, offset: tuple[int, int]) -> xr.Dataset:
    """``ds`` (a cut-out) padded with zeros / False onto the grid of ``parent``."""
    x0, y0 = offset
    lat, lon = f"{prefix}lat", f"{prefix}lon"
    widths = {lat: (y0, parent.sizes[lat] - y0 - ds.sizes[lat]),
              lon: (x0, parent.sizes[lon] - x0 - ds.sizes[lon])}
    ref = f"{prefix}{GRID_MAPPING}"
    sky = [c for c in ds.coords if set(ds[c].dims) & set(widths)] + [ref]
    out = ds.drop_vars(sky).pad(widths, mode="constant", constant_values=0)
    out = out.assign_coords({c: parent[c] for c in sky})
    for name, var in ds.data_vars.items():  # pad() drops attrs of some variables
        out[name].attrs = var.attrs
    return out


def align(a: xr.Dataset, b: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    """``a`` and ``b`` on one sky grid (the larger one; the other must be a pixel-aligned
    cut-out of it) with ``b`` converted to the units of ``a``; raise :class:`StackError`
    for different kinds, axes, regions or grids."""
    _axes_match(a, b)
    for prefix in GRID_PREFIXES:
        if f"{prefix}lat" not in a.dims and f"{prefix}lat" not in b.dims:
            continue
        if _same_pixels(a, b, prefix):  # the usual case: nothing to align
            continue
        try:
            ga, gb = WcsGrid.from_dataset(a, prefix), WcsGrid.from_dataset(b, prefix)
        except (ValueError, KeyError) as err:
            raise StackError(f"cannot stack: {prefix or 'data '}sky grid missing ({err})") from err
        if (off := gb.pixel_offset_in(ga)) is not None:
            b = _pad(b, a, prefix, off) if gb.shape != ga.shape else b.assign_coords(
                {c: a[c] for c in a.coords if set(a[c].dims) & {f"{prefix}lat", f"{prefix}lon"}})
        elif (off := ga.pixel_offset_in(gb)) is not None:
            a = _pad(a, b, prefix, off)
        else:
            raise StackError(f"cannot stack: the {prefix or 'data '}sky grids are neither "
                             "equal nor a pixel-aligned cut-out of one another")
    return a, _to_units(b, a)


def _same_pixels(a: xr.Dataset, b: xr.Dataset, prefix: str) -> bool:
    """Cheap test that ``a`` and ``b`` hold the very same pixel grid."""
    ref = f"{prefix}{GRID_MAPPING}"
    names = [f"{prefix}{n}" for n in ("lon_pixel", "lat_pixel")]
    if ref not in a.coords or ref not in b.coords or not all(
            n in a.coords and n in b.coords for n in names):
        return False
    va, vb = a.variables, b.variables
    return va[ref].attrs.get("wcs_header") == vb[ref].attrs.get("wcs_header") and all(
        np.array_equal(va[n].values, vb[n].values) for n in names)


def _to_units(b: xr.Dataset, like: xr.Dataset) -> xr.Dataset:
    changes = {}
    for name in b.data_vars:
        var = b.variables[name]
        ub = var.attrs.get("units")
        ua = like.variables[name].attrs.get("units") if name in like else None
        if ub is None or ua is None or ub == ua or var.dtype == bool:
            continue
        factor = unit_factor(ub, ua, str(name))
        changes[name] = var.copy(data=var.data * factor)
        changes[name].attrs["units"] = ua
    return b.assign(changes) if changes else b


# --------------------------------------------------------------------------------------
# public entry points


def stack(ds: xr.Dataset, other: xr.Dataset | None = None, *, dim: str = OBS,
          name: str | None = None) -> xr.Dataset:
    """Stack two datasets, or reduce the runs of ``ds`` along ``dim`` (lazily on dask).
    The result is named ``name``, else after the first dataset (pairwise) or the runs'
    dataset (``attrs["name"]``), else ``"stacked"`` as :func:`xdl4.stack_files` names it.

    Both operands are masked with their own ``mask_safe``; the result lies on the larger
    sky grid when one dataset is a cut-out of the other. ``mask_fit`` is dropped. (The
    accessor's ``ds.dl4.stack(..., models=)`` bakes FoV background models in first:
    :func:`xdl4.kinds.counts.with_background_model`.)

    >>> import xarray as xr, xdl4
    >>> runs = xr.concat([xdl4.examples.map_dataset(s, width=0.5, binsz=0.1)
    ...                   for s in range(3)], "obs")
    >>> out = stack(runs, dim="obs", name="stacked")
    >>> float(out.livetime), out.attrs["name"], "obs" in out.dims
    (10800.0, 'stacked', False)
    """
    ds = load_coords(ds)
    if other is not None:
        other = load_coords(other)
        if dim in ds.dims or dim in other.dims:
            raise StackError(f"pairwise stacking takes single runs; reduce {dim!r} first")
        out = finalize(merge(chunk(ds, dim), chunk(other, dim)), ds)
        name = dataset_name(ds) if name is None else name
    else:
        if dim not in ds.dims:
            raise StackError(f"dataset has no {dim!r} dimension to stack over")
        out = finalize(combine(chunk(ds, dim), dim), ds)
        name = (ds.attrs.get("name") or "stacked") if name is None else name  # stack_files'
    return out.assign_attrs(name=name)


def load_coords(ds: xr.Dataset) -> xr.Dataset:
    """Coordinates in memory (readers of chunked files and ``open_mfdataset`` make them
    dask arrays): they are small metadata (grids, bounds, run tables), loaded in one go so
    that validation and planning never compute dask; data variables stay lazy."""
    lazy = [c for c in ds.coords if ds[c].chunks is not None]
    if not lazy:
        return ds
    import dask

    values = dask.compute(*[ds[c].data for c in lazy])
    return ds.assign_coords({c: ds[c].copy(data=v) for c, v in zip(lazy, values, strict=True)})


def to_masked(ds: xr.Dataset, name: str | None = None) -> xr.Dataset:
    """``ds`` with its safe mask applied, as stacked onto an empty dataset (gammapy's
    ``to_masked``, in float64).

    >>> import xdl4
    >>> ds = xdl4.examples.spectrum_dataset()
    >>> bool((to_masked(ds).counts == ds.counts.where(ds.mask_safe, 0)).all())
    True
    """
    return finalize(chunk(ds), ds).assign_attrs(name=dataset_name(ds) if name is None else name)


def empty_like(ds: xr.Dataset, name: str = "stacked") -> xr.Dataset:
    """A dataset on the grid of ``ds`` with every variable 0, ``mask_safe`` all False and
    no GTI or meta table: the identity of stacking.

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset(width=0.5, binsz=0.1)
    >>> bool(stack(empty_like(ds), ds).counts.equals(to_masked(ds).counts))
    True
    """
    drop = [v for v in ds.variables if GTI in ds[v].dims or META_ROW in ds[v].dims
            or v == OBS]
    out = xr.zeros_like(ds.drop_vars(drop))
    out = out.assign_coords({c: ds[c] for c in out.coords})
    if "mask_safe" not in out:
        out["mask_safe"] = xr.zeros_like(ds["counts"], dtype=bool)
    return out.assign_attrs(name=name)
