"""Stacking as a map-reduce: the rule of every DL4 variable written once.

Each stacking rule declared in :data:`xdl4.schema.VARIABLES` (``Variable.stack``) is an
:class:`Aggregation` in the style of flox: a *chunk* step turning one run (or every run
along ``obs`` at once) into additive partial terms, a *combine* step reducing terms over
runs (``sum``, ``any`` or ``concat``) and a *finalize* step turning combined terms into the
stacked variable. All three entry points use the same steps:

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
from dataclasses import dataclass

import numpy as np
import xarray as xr

from xdl4 import masks
from xdl4.errors import StackError
from xdl4.schema import (
    BOUNDED_DIMS,
    GRID_MAPPING,
    GRID_PREFIXES,
    GTI,
    META_PREFIX,
    META_ROW,
    OBS,
    VARIABLES,
    kind_of,
    parse_unit,
)
from xdl4.sky import Region, WcsGrid

COMBINE = "xdl4_combine"  # attribute naming a term's combine step
OPTIONAL = "xdl4_optional"  # attribute: 1 if a run may lack the term
_COMBINE_OPS: dict[str, Callable[[xr.DataArray, str], xr.DataArray]] = {
    "sum": lambda x, dim: x.sum(dim, skipna=False, keep_attrs=True),
    "any": lambda x, dim: x.any(dim, keep_attrs=True),
}

#: the same combine steps on two operands (the fold of ``stack_files``, pairwise stacking)
_PAIR_OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "sum": np.add,
    "any": np.logical_or,
}

Terms = xr.Dataset  # partial terms: additive arrays, each tagged with its combine step


# --------------------------------------------------------------------------------------
# masks projected onto a variable's own grid (the one mask helper does the work)


#: how the data-grid mask is sampled at IRF pixel centres (gammapy: nearest pixel for the
#: PSF, bilinear interpolation > 0 for the EDISP, i.e. any touching pixel)
_IRF_SAMPLING = {"edisp": "linear", "edisp_exposure": "linear"}


class _Weights:
    """``mask_safe`` of ``ds`` projected onto the dims of each variable, cached per grid:
    OR-ed over reco energy when the variable has no ``energy``, sampled on the IRF grid for
    IRF variables, OR-ed over everything for scalars (a run counts if any bin is safe)."""

    def __init__(self, ds: xr.Dataset, dim: str = OBS):
        self.ds, self.dim, self._cache = ds, dim, {}
        self.safe = masks.safe(ds).reset_coords(drop=True)

    def __call__(self, name: str) -> xr.DataArray:
        dims = self.ds.variables[name].dims
        grid = next((p for p in GRID_PREFIXES[1:] if f"{p}lat" in dims), None)  # an IRF grid
        irf = _IRF_SAMPLING.get(name, "nearest") if grid else None
        key = ("energy" in dims, irf, grid, "lat" in dims)
        if key not in self._cache:
            mask = self.safe if key[0] else masks.image(self.safe)
            if irf in ("linear", "nearest"):
                mask = masks.on_irf_grid(mask, self.ds, irf, grid)
            extra = [d for d in mask.dims if d not in dims and d != self.dim]
            self._cache[key] = mask.any(extra) if extra else mask
        return self._cache[key]


def _masked(x: xr.DataArray | xr.Variable, weight: xr.DataArray) -> xr.Variable:
    """``x`` where the weight is True and ``x`` finite, else 0 (gammapy's nan_to_num), in
    the dim order and memory layout of ``x``."""
    xv = getattr(x, "variable", x)  # on bare arrays: no coordinates, no index alignment
    keep = weight.variable.set_dims(xv.sizes).transpose(*xv.dims).data  # a broadcast view
    if xv.dtype.kind == "f":
        keep = keep & np.isfinite(xv.data)
    return xv.copy(data=np.where(keep, xv.data, 0).astype(xv.dtype, copy=False))


def alpha(ds: xr.Dataset) -> xr.DataArray:
    """On/off exposure ratio ``acceptance / acceptance_off``, 0 where not finite."""
    return ratio(ds["acceptance"], ds["acceptance_off"])


def ratio(num: xr.DataArray, den: xr.DataArray) -> xr.DataArray:
    """``num / den``, 0 where ``den`` is 0 or the result is not finite."""
    out = num / den.where(den != 0)
    return out.where(np.isfinite(out), 0)


def acceptance_off(acceptance: xr.DataArray, counts_off: xr.DataArray,
                   off_background: xr.DataArray) -> xr.DataArray:
    """The ``acceptance_off`` of merged on/off bins or runs: the one whose alpha turns the
    merged OFF counts into the merged off-background ``sum(alpha x counts_off)`` (0 where
    there is none: gammapy's rule when merging bins; stacking runs has a fallback)."""
    return ratio(acceptance * counts_off, off_background)


# --------------------------------------------------------------------------------------
# the rules: chunk / combine / finalize


@dataclass(frozen=True)
class Aggregation:
    """One stacking rule as map-reduce steps (flox's Aggregation, for datasets).

    ``chunk(ds, name, weights)`` returns the partial terms of variable ``name`` (a dict of
    arrays, elementwise over runs; ``weights(name)`` is the safe mask on its grid);
    ``combine`` reduces every term over runs; ``finalize(terms, name)`` builds the stacked
    variable (``None``: dropped).
    """

    chunk: Callable[[xr.Dataset, str, _Weights], dict[str, xr.DataArray]]
    combine: str
    finalize: Callable[[Terms, str], xr.DataArray | None]
    optional: bool = False  # a run without the variable contributes nothing (e.g. no GTI)


def _identity(terms: Terms, name: str) -> xr.DataArray:
    return terms[name]


def _chunk_masked(ds: xr.Dataset, name: str, weights: _Weights) -> dict[str, xr.DataArray]:
    return {name: _masked(ds[name], weights(name))}


def _weight_of(ds: xr.Dataset, name: str) -> str:
    """The exposure weighting IRF ``name``: ``{name}_exposure``, or for a region dataset
    without it (OGIP) the exposure itself, as gammapy does."""
    for weight in (f"{name}_exposure", "exposure"):
        if weight in ds and set(ds[weight].dims) <= set(ds[name].dims):
            return weight
    raise StackError(f"{name!r} cannot be stacked without its weight {name}_exposure")


def _chunk_weighted(ds: xr.Dataset, name: str, weights: _Weights) -> dict[str, xr.DataArray]:
    """Numerator and denominator of an exposure-weighted mean, each masked on its own grid
    (the numerator per reco energy for an EDISP kernel, so that stacked npred = sum of the
    masked npreds; the weight OR-ed over reco energy)."""
    weight = _weight_of(ds, name)
    irf, exposure = ds.variables[name], ds.variables[weight]
    units = parse_unit(irf.attrs.get("units"), name) * parse_unit(
        exposure.attrs.get("units"), weight)
    num = irf.copy(data=irf.data * exposure.set_dims(irf.sizes).transpose(*irf.dims).data)
    num.attrs = {**irf.attrs, "units": units.to_string("fits")}
    return {f"{name}.num": _masked(num, weights(name)),
            f"{name}.den": _masked(exposure, weights(weight))}


def _finalize_weighted(terms: Terms, name: str) -> xr.DataArray:
    num, den = terms[f"{name}.num"], terms[f"{name}.den"]
    unit = parse_unit(num.attrs.get("units"), name) / parse_unit(den.attrs.get("units"), name)
    return ratio(num, den).transpose(*num.dims).assign_attrs(
        {**num.attrs, "units": unit.to_string("fits")})


def _chunk_onoff(ds: xr.Dataset, name: str, weights: _Weights) -> dict[str, xr.DataArray]:
    """``acceptance`` -> sum of masked acceptance; ``acceptance_off`` -> sum of the masked
    off background alpha x counts_off (the stacked alpha reproduces it)."""
    value = ds[name] if name == "acceptance" else (alpha(ds) * ds["counts_off"]).assign_attrs(
        ds[name].attrs)
    return {name: _masked(value.transpose(*ds[name].dims), weights(name))}


def _finalize_onoff(terms: Terms, name: str) -> xr.DataArray:
    acc = terms["acceptance"]
    if name == "acceptance":
        return acc
    off, off_bkg = terms["counts_off"], terms["acceptance_off"]
    mean_alpha = off_bkg.sum() / off.sum()  # where OFF is 0: the OFF-weighted mean alpha
    acc_off = xr.where(off == 0, ratio(acc, mean_alpha), acceptance_off(acc, off, off_bkg))
    return acc_off.transpose(*acc.dims).assign_attrs(off_bkg.attrs)


def _chunk_plain(ds: xr.Dataset, name: str, weights: _Weights) -> dict[str, xr.DataArray]:
    return {name: ds[name]}


def _finalize_gti(terms: Terms, name: str) -> xr.DataArray:
    start, stop = xr.apply_ufunc(
        _gti_union, terms["gti_start"], terms["gti_stop"],
        input_core_dims=[[GTI], [GTI]], output_core_dims=[[GTI], [GTI]],
        dask="parallelized", output_dtypes=[float, float],
        dask_gufunc_kwargs={"allow_rechunk": True})
    return (start if name == "gti_start" else stop).assign_attrs(terms[name].attrs)


def _gti_union(start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of intervals, sorted; overlapping or touching ones merged. Same length as
    the input, padded with NaN (rows of NaN in the input are ignored)."""
    ok = np.isfinite(start) & np.isfinite(stop)
    order = np.argsort(start[ok], kind="stable")
    s, e = start[ok][order], stop[ok][order]
    out = np.full((2, start.size), np.nan)
    if s.size:
        new = np.ones(s.size, bool)
        new[1:] = s[1:] > np.maximum.accumulate(e)[:-1]
        first = np.flatnonzero(new)
        out[0, : first.size] = s[first]
        out[1, : first.size] = np.maximum.reduceat(np.maximum.accumulate(e), first)
    return out[0], out[1]


AGGREGATIONS: dict[str, Aggregation] = {
    "sum_masked": Aggregation(_chunk_masked, "sum", _identity),
    "sum_exposure": Aggregation(_chunk_masked, "sum", _identity),
    "mean_psf": Aggregation(_chunk_weighted, "sum", _finalize_weighted),
    "mean_edisp": Aggregation(_chunk_weighted, "sum", _finalize_weighted),
    "or": Aggregation(lambda ds, name, weights: {name: weights(name)}, "any", _identity),
    "drop": Aggregation(lambda ds, name, weights: {}, "any", lambda terms, name: None),
    "onoff": Aggregation(_chunk_onoff, "sum", _finalize_onoff),
    "sum": Aggregation(_chunk_masked, "sum", _identity, optional=True),
    "concat": Aggregation(_chunk_plain, "concat", _finalize_gti, optional=True),
}
#: meta_table columns (``meta_*`` on ``meta_row``): rows concatenated, kept as they are
META_TABLE = Aggregation(_chunk_plain, "concat", _identity, optional=True)


def _rule(name: str, ds: xr.Dataset | None) -> Aggregation | None:
    if name in VARIABLES:
        return AGGREGATIONS[VARIABLES[name].stack]
    if name.startswith(META_PREFIX) and ds is not None and META_ROW in ds.variables[name].dims:
        return META_TABLE
    return None  # not a DL4 variable: not stacked


# --------------------------------------------------------------------------------------
# the three steps on whole datasets


def chunk(ds: xr.Dataset, dim: str = OBS) -> Terms:
    """Partial terms of every stackable variable of ``ds`` (one run, or runs along ``dim``).

    >>> import xdl4
    >>> sorted(chunk(xdl4.examples.spectrum_dataset()).data_vars)[:4]
    ['background', 'counts', 'edisp.den', 'edisp.num']
    """
    kind_of(ds)
    if "mask_safe" not in ds:
        ds = ds.assign(mask_safe=masks.safe(ds))
    terms: dict[str, xr.DataArray] = {}
    weights = _Weights(ds, dim)
    # the rules work on bare variables: no coordinates to carry or align (much faster)
    bare = xr.Dataset({n: v.variable for n, v in ds.data_vars.items()}, attrs=ds.attrs)
    for name in ds.data_vars:
        rule = _rule(str(name), ds)
        if rule is None:
            continue
        for tname, term in rule.chunk(bare, str(name), weights).items():
            term = getattr(term, "variable", term).copy(deep=False)  # bare: coords of ds below
            term.attrs.update({COMBINE: rule.combine, OPTIONAL: int(rule.optional)})
            terms[tname] = term
    return xr.Dataset(terms, coords=_grid_coords(ds, dim), attrs=ds.attrs)


def _grid_coords(ds: xr.Dataset, dim: str = OBS) -> xr.Coordinates:
    """Coordinates of ``ds`` shared by the stacked result (none along runs or rows), with
    their indexes (reused as they are, not rebuilt)."""
    drop = [n for n, v in ds.variables.items()
            if n in ds.data_vars or {dim, GTI, META_ROW} & set(v.dims)]
    return ds.drop_vars(drop).coords


def combine(terms: Terms, dim: str = OBS) -> Terms:
    """Reduce partial terms over the runs along ``dim`` (sum, any, or row concatenation)."""
    out = {}
    for name, term in terms.data_vars.items():
        how = term.attrs[COMBINE]
        if dim not in term.dims:
            out[name] = term
        elif how == "concat":
            out[name] = _flatten_rows(term, dim)
        else:
            out[name] = _COMBINE_OPS[how](term, dim)
    return xr.Dataset(out, coords=_grid_coords(terms, dim), attrs=terms.attrs)


def _flatten_rows(term: xr.DataArray, dim: str) -> xr.DataArray:
    (row,) = [d for d in term.dims if d != dim]
    term = term.drop_vars([c for c in term.coords if row in term[c].dims or dim in term[c].dims])
    return term.stack(_row=(dim, row), create_index=False).rename(_row=row)


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
    return xr.Dataset(out, coords=_grid_coords(a), attrs=a.attrs)


def finalize(terms: Terms, template: xr.Dataset | None = None) -> xr.Dataset:
    """The stacked dataset from combined terms (variables in the order of ``template``)."""
    from_terms = [str(n).split(".")[0] for n in terms.data_vars]
    names = [str(n) for n in template.data_vars] if template is not None else []
    names = list(dict.fromkeys(names + from_terms))  # template order, then the rest
    out: dict[str, xr.DataArray] = {}
    for name in names:
        if name not in from_terms:
            continue
        rule = _rule(name, terms if name in terms else template)
        if rule is None:
            continue
        value = rule.finalize(terms, name)
        if value is not None:
            attrs = (template[name] if template is not None and name in template else value).attrs
            attrs = {k: v for k, v in attrs.items() if k not in (COMBINE, OPTIONAL)}
            out[name] = value.drop_vars([c for c in value.coords if c not in terms.coords])
            out[name].attrs = attrs
    ds = xr.Dataset(out, attrs=dict(terms.attrs))
    ds = ds.assign_coords({c: v for c, v in _grid_coords(terms).items() if c not in ds.coords})
    return _compact(ds)


def _compact(ds: xr.Dataset) -> xr.Dataset:
    """Drop the NaN padding of GTI rows (and empty meta rows) when data are in memory;
    lazy results keep a static size (padding rows are NaN)."""
    if "gti_start" in ds:
        if ds["gti_start"].chunks is None:
            ds = ds.isel({GTI: np.isfinite(ds["gti_start"].values)})
        ds = ds.assign_coords({GTI: np.arange(ds.sizes[GTI])})
    return ds


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
        va, vb = (np.asarray(x.variables[name].values, float) for x in (a, b))
        ua, ub = (x.variables[name].attrs.get("units", x.variables[dim].attrs.get("units"))
                  for x in (a, b))
        if va.shape != vb.shape:
            raise StackError(f"cannot stack: {dim} axes differ ({va.shape[0]} vs "
                             f"{vb.shape[0]} bins)")
        vb = vb * parse_unit(ub, dim).to(parse_unit(ua, dim)) if ua != ub else vb
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
        factor = parse_unit(ub, str(name)).to(parse_unit(ua, str(name)))
        changes[name] = var.copy(data=var.data * factor)
        changes[name].attrs["units"] = ua
    return b.assign(changes) if changes else b


# --------------------------------------------------------------------------------------
# public entry points


def stack(ds: xr.Dataset, other: xr.Dataset | None = None, *, dim: str = OBS,
          name: str | None = None, models=None) -> xr.Dataset:
    """Stack two datasets, or reduce the runs of ``ds`` along ``dim`` (lazily on dask).

    Both operands are masked with their own ``mask_safe``; the result lies on the larger
    sky grid when one dataset is a cut-out of the other. ``mask_fit`` is dropped. With
    ``models``, each dataset's FoV background model is baked into its ``background``
    first, as gammapy stacks ``npred_background()`` (:func:`with_background_model`).

    >>> import xarray as xr, xdl4
    >>> runs = xr.concat([xdl4.examples.map_dataset(s, width=0.5, binsz=0.1)
    ...                   for s in range(3)], "obs")
    >>> out = stack(runs, dim="obs", name="stacked")
    >>> float(out.livetime), out.attrs["name"], "obs" in out.dims
    (10800.0, 'stacked', False)
    """
    ds = with_background_model(_load_coords(ds), models)
    if other is not None:
        other = with_background_model(_load_coords(other), models)
        if dim in ds.dims or dim in other.dims:
            raise StackError(f"pairwise stacking takes single runs; reduce {dim!r} first")
        out = finalize(merge(chunk(ds, dim), chunk(other, dim)), ds)
    else:
        if dim not in ds.dims:
            raise StackError(f"dataset has no {dim!r} dimension to stack over")
        out = finalize(combine(chunk(ds, dim), dim), ds)
    return out.assign_attrs(name=name) if name is not None else out


def with_background_model(ds: xr.Dataset, models) -> xr.Dataset:
    """``ds`` with ``background`` replaced by ``npred_background(models)`` (its FoV
    background model applied: what gammapy stacks); unchanged without ``models`` or a
    cash background.

    >>> import xdl4
    >>> from xdl4.models import FoVBackgroundModel, Models, PowerLawNormSpectralModel
    >>> ds = xdl4.examples.map_dataset()
    >>> bkg = Models([FoVBackgroundModel(ds.attrs["name"], PowerLawNormSpectralModel(norm=1.1))])
    >>> out = with_background_model(ds, bkg)
    >>> round(float(out.background.sum() / ds.background.sum()), 6)
    1.1
    """
    if models is None or "background" not in ds or kind_of(ds) in ("map_onoff",
                                                                   "spectrum_onoff"):
        return ds
    background = ds.dl4.npred_background(models)
    return ds.assign(background=background.assign_attrs(ds["background"].attrs))


def _load_coords(ds: xr.Dataset) -> xr.Dataset:
    """Grid coordinates in memory (``open_mfdataset`` makes them dask arrays): they are
    small metadata, loaded in one go; data variables stay lazy."""
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
    out = finalize(chunk(ds), ds)
    return out.assign_attrs(name=name) if name is not None else out


def empty_like(ds: xr.Dataset, name: str = "stacked") -> xr.Dataset:
    """A dataset on the grid of ``ds`` with every variable 0, ``mask_safe`` all False and
    no GTI or meta table: the identity of stacking.

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset(width=0.5, binsz=0.1)
    >>> bool(stack(empty_like(ds), ds).counts.equals(to_masked(ds).counts))
    True
    """
    drop = [v for v in ds.variables if GTI in ds[v].dims or META_ROW in ds[v].dims]
    out = xr.zeros_like(ds.drop_vars(drop))
    out = out.assign_coords({c: ds[c] for c in out.coords})
    if "mask_safe" not in out:
        out["mask_safe"] = xr.zeros_like(ds["counts"], dtype=bool)
    return out.assign_attrs(name=name)
