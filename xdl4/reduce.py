"""The reduction engine: one implementation of how DL4 variables reduce, read from their
declarations in :data:`xdl4.schema.VARIABLES` (``Variable.reduce``).

Each reduction rule (:data:`xdl4.schema.RULES`) is an :class:`Aggregation` in the style
of flox: a *chunk* step turning a dataset into partial terms (masked values, weighted
numerators and weights...), a *combine* step reducing each term (``sum``, ``any`` or
``concat``) and a *finalize* step turning combined terms into the reduced variable. What
is reduced over is a :class:`Reducer`, one per family of :data:`xdl4.schema.REDUCTIONS`:

* :class:`OverRuns` (``obs``): stacking runs (:mod:`xdl4.stack`, also pairwise and in the
  bounded-memory fold of :func:`xdl4.stack_files`);
* :class:`EnergyGroups` (``energy``): merging reco-energy bins (:mod:`xdl4.resample`);
* :class:`PixelBlocks` (``pixels``): merging blocks of pixels (:func:`xdl4.spatial.downsample`);
* :class:`RegionPixels` (``region``): the pixels of an on-region (:mod:`xdl4.region`).

A variable without the reducer's dimensions is kept as it is; an undeclared variable that
has them reduces by :data:`UNDECLARED` (bools: ``any``).

>>> import xdl4
>>> terms = chunk(xdl4.examples.spectrum_dataset(), "obs")
>>> sorted(terms.data_vars)[:4]
['background', 'counts', 'edisp.den', 'edisp.num']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from xdl4 import masks
from xdl4.errors import ArgumentError, DL4ValidationError
from xdl4.schema import GRID_PREFIXES, GTI, META_PREFIX, META_ROW, OBS, VARIABLES, parse_unit
from xdl4.sky import grid_of, tag_grids
from xdl4.stats import alpha, merged_acceptance_off
from xdl4.validation import kind_record

RULE = "xdl4_rule"  # attribute naming a term's reduction rule
COMBINE = "xdl4_combine"  # attribute naming a term's combine step
OPTIONAL = "xdl4_optional"  # attribute: 1 if a run may lack the term
_TERM_ATTRS = (RULE, COMBINE, OPTIONAL)

#: the rule of a variable not declared in the registry that has the reduced dims
UNDECLARED = {"obs": "drop", "energy": "mean", "pixels": "mean", "region": "drop"}

Terms = xr.Dataset  # partial terms: each tagged with its rule and combine step


# --------------------------------------------------------------------------------------
# masks projected onto a variable's own grid (the one mask helper does the work)


class Weights:
    """``mask_safe`` of ``ds`` projected onto the dims of each variable, cached per grid:
    OR-ed over reco energy when the variable has no ``energy``, sampled on the IRF grid for
    IRF variables, OR-ed over everything for scalars (a run counts if any bin is safe)."""

    def __init__(self, ds: xr.Dataset, dim: str = OBS):
        self.ds, self.dim, self._cache = ds, dim, {}
        self.safe = masks.safe(ds).reset_coords(drop=True)

    def __call__(self, name: str) -> xr.DataArray:
        var = self.ds.variables[name]
        dims = var.dims
        grid = grid_of(var) or None  # an IRF grid ("" the data grid: None)
        declared = VARIABLES.get(name)  # how the mask is sampled on its IRF grid
        irf = (declared.irf_mask if declared else "nearest") if grid else None
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


def _finite(x: xr.Variable) -> xr.Variable:
    return x.copy(data=np.where(np.isfinite(x.data), x.data, 0)) if x.dtype.kind == "f" else x


def ratio(num, den):
    """``num / den``, 0 where ``den`` is 0 or the result is not finite."""
    out = num / den.where(den != 0)
    return out.where(np.isfinite(out), 0)


# --------------------------------------------------------------------------------------
# reducers: what a reduction is over


class Reducer:
    """What is reduced over: the dims it touches and how a term is combined."""

    family: str = ""
    dims: tuple[str, ...] = ()

    def touches(self, dims) -> bool:
        return bool(set(self.dims) & set(dims))

    def combine(self, term: xr.DataArray, how: str) -> xr.DataArray:
        raise NotImplementedError


class OverRuns(Reducer):
    """The runs along ``dim``: sums, logical ORs, or row concatenation (GTIs)."""

    family = "obs"

    def __init__(self, dim: str = OBS):
        self.dim, self.dims = dim, (dim,)

    def combine(self, term: xr.DataArray, how: str) -> xr.DataArray:
        if how == "concat":
            (row,) = [d for d in term.dims if d != self.dim]
            term = term.drop_vars([c for c in term.coords
                                   if row in term[c].dims or self.dim in term[c].dims])
            return term.stack(_row=(self.dim, row), create_index=False).rename(_row=row)
        if how == "any":
            return term.any(self.dim, keep_attrs=True)
        return term.sum(self.dim, skipna=False, keep_attrs=True)


class EnergyGroups(Reducer):
    """Groups of reco-energy bins: ``group[i]`` is the new bin of old bin ``i`` (-1:
    dropped); ``n`` new bins."""

    family, dims = "energy", ("energy",)

    def __init__(self, group: np.ndarray, n: int):
        self.group, self.n = np.asarray(group), int(n)

    def combine(self, term: xr.DataArray, how: str) -> xr.DataArray:
        keep = self.group >= 0
        term = term.isel(energy=keep)
        labels = xr.DataArray(self.group[keep], dims="energy", name="_group")
        term = term.drop_vars([c for c in term.coords if "energy" in term[c].dims])
        out = getattr(term.groupby(labels), how)("energy", keep_attrs=True)
        out = out.rename({"_group": "energy"}).drop_vars("energy")
        if out.sizes["energy"] != self.n:
            raise ArgumentError("resampling left a new energy bin empty")
        return out


class PixelBlocks(Reducer):
    """Blocks of ``factor x factor`` data pixels."""

    family, dims = "pixels", ("lat", "lon")

    def __init__(self, factor: int):
        self.factor = int(factor)

    def combine(self, term: xr.DataArray, how: str) -> xr.DataArray:
        blocks = term.coarsen(lat=self.factor, lon=self.factor)
        return blocks.any(keep_attrs=True) if how == "any" else blocks.sum(keep_attrs=True)


class RegionPixels(Reducer):
    """The data pixels of an on-region (``inside``, a (lat, lon) mask); IRF-grid variables
    are taken at the pixel nearest the region centre ``(lon, lat)`` (data frame)."""

    family = "region"
    dims = tuple(f"{p}{a}" for p in GRID_PREFIXES for a in ("lat", "lon")) + (
        "rad", "irf_energy_true")

    def __init__(self, inside: xr.DataArray, centre: tuple[float, float]):
        self.inside, self.centre = inside, centre

    def combine(self, term: xr.DataArray, how: str) -> xr.DataArray:
        sky = ("lat", "lon")
        if not set(sky) <= set(term.dims):
            return term
        if how == "any":
            return (term & self.inside).any(sky, keep_attrs=True)
        return term.where(self.inside, 0).sum(sky, keep_attrs=True)


# --------------------------------------------------------------------------------------
# the rules: chunk / combine / finalize


@dataclass(frozen=True)
class Aggregation:
    """One reduction rule as map-reduce steps (flox's Aggregation, for datasets).

    ``chunk(ds, name, ctx)`` returns the partial terms of variable ``name`` (a dict of
    arrays; ``ctx.weights(name)`` is the safe mask on its grid, ``ctx.reducer`` what is
    reduced over); ``combine`` reduces every term; ``finalize(terms, name, done)`` builds
    the reduced variable from the combined terms (``done``: variables finalized before,
    those of ``depends``; ``None``: dropped).
    """

    chunk: Callable
    combine: str
    finalize: Callable
    optional: bool = False  # a run without the variable contributes nothing (e.g. no GTI)
    depends: tuple[str, ...] = ()


@dataclass
class Context:
    """What a chunk step may use: the safe-mask weights and the reducer."""

    weights: Weights
    reducer: Reducer


def _identity(terms: Terms, name: str, done: dict) -> xr.DataArray:
    return terms[name]


def _chunk_masked(ds: xr.Dataset, name: str, ctx: Context) -> dict:
    return {name: _masked(ds[name], ctx.weights(name))}


def _chunk_mean(ds: xr.Dataset, name: str, ctx: Context) -> dict:
    """Numerator and count of a plain mean (non-finite values skipped)."""
    x = ds.variables[name]
    n = x.copy(data=np.isfinite(x.data).astype(float)) if x.dtype.kind == "f" else \
        x.copy(data=np.ones(x.shape))
    return {name: _finite(x), f"{name}.n": n}


def _chunk_mean_masked(ds: xr.Dataset, name: str, ctx: Context) -> dict:
    """Numerator and count of a mean over the safe data range."""
    w = ctx.weights(name)
    x = _masked(ds[name], w)
    return {name: x, f"{name}.n": x.copy(data=w.variable.set_dims(x.sizes).transpose(
        *x.dims).data.astype(float))}


def _finalize_mean(terms: Terms, name: str, done: dict) -> xr.DataArray:
    num, n = terms[name], terms[f"{name}.n"]
    return (num / n.where(n > 0)).fillna(0).assign_attrs(num.attrs)


def _weight_of(ds: xr.Dataset, name: str) -> str:
    """The exposure weighting IRF ``name``: ``{name}_exposure``, or for a region dataset
    without it (OGIP) the exposure itself, as gammapy does."""
    from xdl4.errors import StackError

    for weight in (f"{name}_exposure", "exposure"):
        if weight in ds and set(ds[weight].dims) <= set(ds[name].dims):
            return weight
    raise StackError(f"{name!r} cannot be stacked without its weight {name}_exposure")


def _chunk_weighted(ds: xr.Dataset, name: str, ctx: Context) -> dict:
    """Numerator and denominator of an exposure-weighted mean, each masked on its own grid
    (the numerator per reco energy for an EDISP kernel, so that stacked npred = sum of the
    masked npreds; the weight OR-ed over reco energy)."""
    weight = _weight_of(ds, name)
    irf, exposure = ds.variables[name], ds.variables[weight]
    units = parse_unit(irf.attrs.get("units"), name) * parse_unit(
        exposure.attrs.get("units"), weight)
    num = irf.copy(data=irf.data * exposure.set_dims(irf.sizes).transpose(*irf.dims).data)
    num.attrs = {**irf.attrs, "units": units.to_string("fits")}
    return {f"{name}.num": _masked(num, ctx.weights(name)),
            f"{name}.den": _masked(exposure, ctx.weights(weight))}


def _finalize_weighted(terms: Terms, name: str, done: dict) -> xr.DataArray:
    num, den = terms[f"{name}.num"], terms[f"{name}.den"]
    unit = parse_unit(num.attrs.get("units"), name) / parse_unit(den.attrs.get("units"), name)
    return ratio(num, den).transpose(*num.dims).assign_attrs(
        {**num.attrs, "units": unit.to_string("fits")})


def _chunk_off_background(ds: xr.Dataset, name: str, ctx: Context) -> dict:
    """The masked OFF background alpha x counts_off (alpha 0 without OFF acceptance):
    the stacked or merged alpha must reproduce its sum."""
    value = (alpha(ds["acceptance"], ds["acceptance_off"]) * ds["counts_off"]).assign_attrs(
        ds[name].attrs)
    return {name: _masked(value.transpose(*ds[name].dims), ctx.weights(name))}


def _finalize_off_merged(terms: Terms, name: str, done: dict) -> xr.DataArray:
    acc = done["acceptance"]
    return merged_acceptance_off(acc, done["counts_off"], terms[name]).transpose(
        *acc.dims).assign_attrs(terms[name].attrs)


def _finalize_off_stacked(terms: Terms, name: str, done: dict) -> xr.DataArray:
    acc, off, off_bkg = done["acceptance"], done["counts_off"], terms[name]
    mean_alpha = off_bkg.sum() / off.sum()  # where OFF is 0: the OFF-weighted mean alpha
    acc_off = xr.where(off == 0, ratio(acc, mean_alpha),
                       merged_acceptance_off(acc, off, off_bkg))
    return acc_off.transpose(*acc.dims).assign_attrs(off_bkg.attrs)


def _chunk_plain(ds: xr.Dataset, name: str, ctx: Context) -> dict:
    return {name: ds.variables[name]}


def _chunk_nearest(ds: xr.Dataset, name: str, ctx: Context) -> dict:
    """The IRF pixel nearest the region centre (outside the grid: the nearest edge)."""
    from xdl4.sky import WcsGrid, nearest_index

    da = ds.variables[name]
    prefix = grid_of(da)
    if prefix is None:
        return {name: da}
    grid = WcsGrid.from_dataset(ctx.weights.ds, prefix)
    x, y = grid.world_to_pixel(*ctx.reducer.centre)
    ny, nx = grid.shape
    return {name: da.isel({f"{prefix}lat": nearest_index(float(y), ny),
                           f"{prefix}lon": nearest_index(float(x), nx)})}


def _finalize_gti(terms: Terms, name: str, done: dict) -> xr.DataArray:
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


_OFF = ("acceptance", "counts_off")

AGGREGATIONS: dict[str, Aggregation] = {
    "sum_masked": Aggregation(_chunk_masked, "sum", _identity),
    "sum_if_present": Aggregation(_chunk_masked, "sum", _identity, optional=True),
    "mean": Aggregation(_chunk_mean, "sum", _finalize_mean),
    "mean_masked": Aggregation(_chunk_mean_masked, "sum", _finalize_mean),
    "mean_weighted": Aggregation(_chunk_weighted, "sum", _finalize_weighted),
    "any": Aggregation(_chunk_plain, "any", _identity),
    "drop": Aggregation(lambda ds, name, ctx: {}, "any", lambda terms, name, done: None),
    "nearest": Aggregation(_chunk_nearest, "sum", _identity),
    "acceptance_off_merged": Aggregation(_chunk_off_background, "sum", _finalize_off_merged,
                                         depends=_OFF),
    "acceptance_off_stacked": Aggregation(_chunk_off_background, "sum", _finalize_off_stacked,
                                          depends=_OFF),
    "concat": Aggregation(_chunk_plain, "concat", _finalize_gti, optional=True),
}
#: meta_table columns (``meta_*`` on ``meta_row``): rows concatenated, kept as they are
AGGREGATIONS["meta_table"] = Aggregation(_chunk_plain, "concat", _identity, optional=True)


def rule_name(name: str, dims, dtype, reducer: Reducer) -> str | None:
    """The rule reducing variable ``name`` (with ``dims``) over ``reducer``; None: kept
    as it is (it lacks the reducer's dims)."""
    if reducer.family == "obs":
        if name in VARIABLES:
            return VARIABLES[name].reduce.get("obs", "drop")
        return "meta_table" if name.startswith(META_PREFIX) and META_ROW in dims else "drop"
    if not reducer.touches(dims):
        return None
    if name in VARIABLES:
        try:
            return VARIABLES[name].reduce[reducer.family]
        except KeyError:
            raise DL4ValidationError(f"variable {name!r} on dims {tuple(dims)} declares no "
                                     f"reduction over {reducer.family}") from None
    return "any" if np.dtype(dtype) == bool else UNDECLARED[reducer.family]


# --------------------------------------------------------------------------------------
# the three steps on whole datasets


def chunk(ds: xr.Dataset, reducer: Reducer | str = "obs") -> Terms:
    """Partial terms of every variable of ``ds`` that ``reducer`` reduces (``"obs"``:
    the runs along ``obs``); variables it keeps are not in the terms."""
    kind_record(ds)
    reducer = OverRuns(reducer) if isinstance(reducer, str) else reducer
    if "mask_safe" not in ds:
        ds = ds.assign(mask_safe=masks.safe(ds))
    terms: dict[str, xr.Variable] = {}
    ctx = Context(Weights(ds, getattr(reducer, "dim", OBS)), reducer)
    # the rules work on bare variables: no coordinates to carry or align (much faster)
    bare = xr.Dataset({n: v.variable for n, v in ds.data_vars.items()}, attrs=ds.attrs)
    for name, var in bare.data_vars.items():
        rule = rule_name(str(name), var.dims, var.dtype, reducer)
        if rule is None:
            continue
        agg = AGGREGATIONS[rule]
        for tname, term in agg.chunk(bare, str(name), ctx).items():
            term = getattr(term, "variable", term).copy(deep=False)  # bare: coords of ds below
            term.attrs.update({RULE: rule, COMBINE: agg.combine, OPTIONAL: int(agg.optional)})
            terms[tname] = term
    if reducer.family == "obs":
        terms.update(_run_metadata_rows(ds, reducer.dim))
    return xr.Dataset(terms, coords=grid_coords(ds, reducer), attrs=ds.attrs)


def _run_metadata_rows(ds: xr.Dataset, dim: str) -> dict[str, xr.Variable]:
    """The per-run metadata coordinates (``meta_*``, scalar for a run or along ``dim``)
    as rows of the stacked dataset's meta table (``meta_*`` on ``meta_row``)."""
    agg = AGGREGATIONS["meta_table"]
    attrs = {RULE: "meta_table", COMBINE: agg.combine, OPTIONAL: int(agg.optional)}
    return {str(name): xr.Variable(META_ROW, np.atleast_1d(coord.values),
                                   {**coord.attrs, **attrs})
            for name, coord in ds.coords.items()
            if str(name).startswith(META_PREFIX) and set(coord.dims) <= {dim}}


def grid_coords(ds: xr.Dataset, reducer: Reducer | str = "obs") -> xr.Coordinates:
    """Coordinates of ``ds`` that survive the reduction (none along what is reduced, GTI
    or meta rows), with their indexes (reused as they are, not rebuilt)."""
    reducer = OverRuns(reducer) if isinstance(reducer, str) else reducer
    reduced = set(reducer.dims)
    drop = [n for n, v in ds.variables.items()
            if n in ds.data_vars or (reduced | {GTI, META_ROW}) & set(v.dims)]
    if reducer.family == "obs":  # a stack is no run: no run label, no run metadata
        drop += [n for n, v in ds.coords.items() if v.ndim == 0 and (
            n == reducer.dim or str(n).startswith(META_PREFIX))]
    return ds.drop_vars(drop).coords


def combine(terms: Terms, reducer: Reducer | str = "obs") -> Terms:
    """Reduce partial terms over ``reducer`` (``"obs"``: the runs along ``obs``)."""
    reducer = OverRuns(reducer) if isinstance(reducer, str) else reducer
    out = {name: reducer.combine(term, term.attrs[COMBINE]) if reducer.touches(term.dims)
           else term for name, term in terms.data_vars.items()}
    coords = grid_coords(terms, reducer)
    return xr.Dataset({n: t.drop_vars([c for c in t.coords if c not in coords])
                       for n, t in out.items()}, coords=coords, attrs=terms.attrs)


def finalize(terms: Terms, template: xr.Dataset | None = None) -> xr.Dataset:
    """The reduced variables from combined terms (in the order of ``template``)."""
    rules = {}
    for tname, term in terms.data_vars.items():
        rules.setdefault(str(tname).split(".")[0], term.attrs[RULE])
    names = [str(n) for n in template.data_vars] if template is not None else []
    names = [n for n in dict.fromkeys(names + list(rules)) if n in rules]
    deferred = [n for n in names if AGGREGATIONS[rules[n]].depends]
    done: dict[str, xr.DataArray] = {}
    for name in [n for n in names if n not in deferred] + deferred:
        value = AGGREGATIONS[rules[name]].finalize(terms, name, done)
        if value is None:
            continue
        attrs = (template[name] if template is not None and name in template else value).attrs
        value = value.drop_vars([c for c in value.coords if c not in terms.coords])
        value.attrs = {k: v for k, v in attrs.items() if k not in _TERM_ATTRS}
        done[name] = value
    ds = xr.Dataset({n: done[n] for n in names if n in done}, attrs=dict(terms.attrs))
    ds = ds.assign_coords({c: v for c, v in grid_coords(terms).items() if c not in ds.coords})
    return _compact(ds)


def _compact(ds: xr.Dataset) -> xr.Dataset:
    """Drop the NaN padding of GTI rows when data are in memory (lazy results keep a
    static size: padding rows are NaN); GTI and meta-table rows numbered (an index, so
    that stacks of different numbers of runs align: ``groupby(...).map(stack)``)."""
    if "gti_start" in ds:
        if ds["gti_start"].chunks is None:
            ds = ds.isel({GTI: np.isfinite(ds["gti_start"].values)})
        ds = ds.assign_coords({GTI: np.arange(ds.sizes[GTI])})
    if META_ROW in ds.dims:
        ds = ds.assign_coords({META_ROW: np.arange(ds.sizes[META_ROW])})
    return ds


def reduce(ds: xr.Dataset, reducer: Reducer) -> xr.Dataset:
    """``ds`` with every variable ``reducer`` touches reduced by its declared rule and the
    rest kept, in the original order (coordinates on the reduced dims dropped: the caller
    assigns the new ones)."""
    out = finalize(combine(chunk(ds, reducer), reducer), ds)
    reduced = set(out.data_vars)
    kept = {n: v for n, v in ds.data_vars.items() if n not in reduced and
            rule_name(str(n), v.dims, v.dtype, reducer) is None}
    data = {n: (_like_dtype(out[n], ds[n]) if n in out else kept[n]) for n in ds.data_vars
            if n in out or n in kept}
    coords = {n: c for n, c in ds.coords.items() if not reducer.touches(c.dims)}
    return tag_grids(xr.Dataset(data, attrs=ds.attrs).assign_coords(coords))


def _like_dtype(value: xr.DataArray, original: xr.DataArray) -> xr.DataArray:
    """``value`` in the float or bool dtype of ``original`` (a float32 map stays float32)."""
    return value.astype(original.dtype) if original.dtype.kind in "fb" else value
