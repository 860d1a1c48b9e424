"""Flux points: one row per energy bin, SED quantities as variables on ``energy``.

Layout: coordinate ``energy`` = the reference energy ``e_ref`` (TeV) with optional CF bounds
``energy_bounds`` (e_min, e_max); attrs ``dl4_kind="flux_points"``, ``sed_type`` (dnde,
e2dnde, flux, eflux, likelihood) and optionally ``ul_conf``; variables named as gammapy's
columns (``dnde``, ``dnde_err``, ``dnde_errn``, ``dnde_errp``, ``dnde_ul``, ``is_ul``, ``ts``,
``sqrt_ts``, ``norm``..., ``ref_dnde``, ``ref_flux``, ``ref_eflux``); likelihood scans as
``norm_scan(energy, scan)`` and ``stat_scan(energy, scan)``.

Light curves add a ``time`` dimension: variables on ``(time, energy, ...)``, coordinate
``time`` (bin midpoints) with CF bounds ``time_bounds``, in ``units`` since MJD
``mjdrefi + mjdreff`` in the scale ``timesys`` (attrs, see :func:`xdl4.axes.time_coords`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdl4 import stats
from xdl4.axes import as_quantity, axis_coords, bounds, time_coords
from xdl4.errors import ArgumentError
from xdl4.kinds.base import register, validate
from xdl4.models.routing import ModelsLike, Routed, sources_for
from xdl4.schema import KINDS, SED_TYPES, parse_unit, unit_factor
from xdl4.validation import check_bounds, dataset_name

REQUIRED = {
    "dnde": ("dnde",),
    "e2dnde": ("e2dnde",),
    "flux": ("flux",),
    "eflux": ("eflux",),
    "likelihood": ("norm", "ref_dnde"),
}
NEEDS_BOUNDS = ("flux", "eflux", "likelihood")
QUANTITY_UNITS = {**SED_TYPES, "norm": "", "ref_dnde": SED_TYPES["dnde"],
                  "ref_flux": SED_TYPES["flux"], "ref_eflux": SED_TYPES["eflux"]}
SUFFIXES = ("", "_err", "_errn", "_errp", "_ul", "_sensitivity")
TIME = "time"


def point_dims(ds: xr.Dataset) -> tuple[str, ...]:
    """The dims of one flux point: ``("energy",)``, or ``("time", "energy")`` for a light
    curve (the order of gammapy's table rows and arrays)."""
    return (TIME, "energy") if TIME in ds.dims else ("energy",)


def _array(ds: xr.Dataset, name: str, dtype=float) -> np.ndarray:
    """Values of ``name`` with the point dims first, in `point_dims` order."""
    return np.asarray(ds[name].transpose(*point_dims(ds), ...).values, dtype)


#: the statistics of flux points (``attrs["stat_type"]``; gammapy's names)
STAT_TYPES = ("chi2", "distrib", "profile")


def validate_flux_points(ds: xr.Dataset) -> list[str]:
    problems = []
    if "energy" not in ds.dims or "energy" not in ds.coords:
        return ["flux points need an 'energy' dimension with reference energies"]
    sed = ds.attrs.get("sed_type")
    if sed not in REQUIRED:
        return [f"attrs['sed_type'] is {sed!r}; expected one of {list(REQUIRED)}"]
    if ds.attrs.get("stat_type", "chi2") not in STAT_TYPES:
        problems.append(f"attrs['stat_type'] is {ds.attrs['stat_type']!r}; expected one of "
                        f"{list(STAT_TYPES)}")
    for col in REQUIRED[sed]:
        if col not in ds.data_vars:
            problems.append(f"flux points of sed_type {sed!r} need variable {col!r}")
    if sed in NEEDS_BOUNDS and "energy_bounds" not in ds.coords:
        problems.append(f"flux points of sed_type {sed!r} need energy bounds (e_min, e_max)")
    e = np.asarray(ds["energy"].values)
    if e.size > 1 and np.any(np.diff(e) <= 0):
        problems.append("flux point energies are not increasing")
    for q, unit in QUANTITY_UNITS.items():
        for suffix in SUFFIXES:
            name = q + suffix
            if name not in ds.data_vars:
                continue
            try:
                got = parse_unit(ds[name].attrs.get("units"), name)
                if not got.is_equivalent(parse_unit(unit, name)):
                    problems.append(f"{name} has unit {got}, not convertible to "
                                    f"{unit or 'dimensionless'}")
            except ValueError as err:
                problems.append(str(err))
            if suffix in ("_err", "_errn", "_errp") and ds[name].chunks is None and \
                    np.any(ds[name].values < 0):
                problems.append(f"{name} has negative errors")
    for name in ("is_ul", "mask_safe", "mask_fit"):
        if name in ds and ds[name].dtype != bool:
            problems.append(f"{name} must be boolean, got dtype {ds[name].dtype}")
    for name, da in ds.data_vars.items():
        if not name.startswith("gti_") and not set(point_dims(ds)) <= set(da.dims):
            problems.append(f"{name} has dims {da.dims}; flux-point variables need "
                            f"{point_dims(ds)}")
    if TIME in ds.dims:
        problems += _time_problems(ds)
    return problems


def _time_problems(ds: xr.Dataset) -> list[str]:
    """Problems of a light curve's time axis: bounds, unit and reference."""
    from astropy import units as u
    from astropy.time import Time

    if "time_bounds" not in ds.variables:
        return ["light-curve time axis has no bounds variable 'time_bounds'"]
    problems: list[str] = []
    check_bounds(ds, TIME, problems, contiguous=False)
    attrs = {**ds[TIME].attrs, **ds["time_bounds"].attrs}
    try:
        if not parse_unit(attrs.get("units", "d"), "time bounds").is_equivalent(u.s):
            problems.append(f"time bounds unit {attrs.get('units')!r} is not a time")
    except ValueError as err:
        problems.append(str(err))
    if str(attrs.get("timesys", "tt")).lower() not in Time.SCALES:
        problems.append(f"time scale (timesys) {attrs.get('timesys')!r} is not one of "
                        f"{', '.join(Time.SCALES)}")
    for key in ("mjdrefi", "mjdreff"):
        try:
            float(attrs.get(key, 0))
        except (TypeError, ValueError):
            problems.append(f"time reference {key} {attrs.get(key)!r} is not a number")
    return problems


def create_flux_points(energy_edges=None, *, energy_ref=None, sed_type: str = "dnde",
                       name: str = "flux_points", units: dict | None = None,
                       time_bounds: tuple | None = None, timesys: str = "tt",
                       **columns) -> xr.Dataset:
    """Flux points from arrays. ``energy_edges`` (n+1 values: TeV numbers, Quantities or
    strings such as ``"1 TeV"``) or ``energy_ref``;
    columns by gammapy's names in gammapy's default units unless ``units`` says otherwise.
    A light curve: ``time_bounds=(time_min, time_max)`` (Times, or MJD in ``timesys``) and
    columns of shape (time, energy).

    >>> fp = create_flux_points([1, 2, 4], dnde=[1e-11, 2e-12], dnde_err=[1e-12, 3e-13])
    >>> fp.dl4.kind, fp.sizes["energy"]
    ('flux_points', 2)
    >>> lc = create_flux_points([1, 10], time_bounds=([55197, 55198], [55198, 55199]),
    ...                         dnde=[[1e-12], [2e-12]], dnde_err=[[1e-13], [1e-13]])
    >>> dict(lc.dnde.sizes)
    {'time': 2, 'energy': 1}
    """
    coords: dict = {}
    if energy_edges is not None:
        coords = axis_coords(as_quantity(energy_edges).value, "energy", "TeV")
        if energy_ref is not None:
            coords["energy"] = xr.Variable("energy", as_quantity(energy_ref).value,
                                           coords["energy"].attrs)
    elif energy_ref is not None:
        coords = {"energy": xr.Variable("energy", as_quantity(energy_ref).value,
                                        {"units": "TeV"})}
    else:
        raise ArgumentError("give energy_edges or energy_ref")
    if time_bounds is not None:
        coords.update(time_coords(*time_bounds, timesys=timesys))
    lead = ("energy",) if time_bounds is None else (TIME, "energy")
    units = units or {}
    data = {}
    for col, values in columns.items():
        values = np.asarray(values)
        base = next((q for q in QUANTITY_UNITS if col in (q + s for s in SUFFIXES)), None)
        attrs = {}
        if base is not None:
            attrs["units"] = units.get(col, QUANTITY_UNITS[base])
        dims = lead + (f"{col}_dim",) * (values.ndim - len(lead))
        data[col] = xr.Variable(dims, values, attrs)
    ds = xr.Dataset(data, coords=coords, attrs={"dl4_kind": "flux_points", "name": name,
                                                "sed_type": sed_type})
    return validate(ds)


# -- statistics -----------------------------------------------------------------------------

DNDE_UNIT = "cm-2 s-1 TeV-1"


def _values(ds: xr.Dataset, name: str, unit: str) -> np.ndarray:
    return _array(ds, name) * unit_factor(ds[name].attrs.get("units"), unit, name)


#: the units of the SED quantities (quantity = dnde x :func:`sed_factor`)
SED_UNITS = {"dnde": DNDE_UNIT, "e2dnde": "TeV cm-2 s-1", "flux": "cm-2 s-1",
             "eflux": "TeV cm-2 s-1"}


def sed_factor(sed_type: str, e_ref, lo, hi) -> np.ndarray:
    """SED quantity / dnde at reference energies ``e_ref`` of bins [lo, hi] (TeV), gammapy's
    conversion: exact at e_ref for e2dnde; a power law of index 2 within each bin for flux
    and eflux.

    >>> sed_factor("flux", np.array([2.0]), np.array([1.0]), np.array([4.0])).tolist()
    [3.0]
    """
    if sed_type == "dnde":
        return np.ones_like(e_ref)
    if sed_type == "e2dnde":
        return e_ref**2
    if lo is None:
        raise ArgumentError(f"sed_type {sed_type!r} needs the flux points' energy bounds")
    if sed_type == "flux":
        return e_ref**2 * (1 / lo - 1 / hi)
    if sed_type == "eflux":
        return e_ref**2 * np.log(hi / lo)
    raise ArgumentError(f"sed_type must be one of {list(SED_UNITS)}, not {sed_type!r}")


def energy_bins(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(e_ref, e_min, e_max) of flux points in TeV (bounds None when absent)."""
    e_ref = _e_ref(ds)
    if "energy_bounds" not in ds.coords:
        return e_ref, None, None
    lo, hi = bounds(ds, "energy").to_value("TeV").T
    return e_ref, lo, hi


def _to_dnde_factor(ds: xr.Dataset) -> tuple[str, np.ndarray]:
    """(quantity, factor) such that dnde = quantity x factor."""
    sed = ds.attrs["sed_type"]
    if sed == "likelihood":
        return "norm", _values(ds, "ref_dnde", DNDE_UNIT)
    return sed, 1.0 / sed_factor(sed, *energy_bins(ds))


def sed_dnde(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """dnde and its errors / upper limits in cm-2 s-1 TeV-1 (NaN where absent)."""
    q, factor = _to_dnde_factor(ds)
    unit = {**SED_UNITS, "norm": ""}[q]
    out = {}
    for suffix in SUFFIXES[:5]:
        name = q + suffix
        out["dnde" + suffix] = (_values(ds, name, unit) * factor if name in ds
                                else np.full(out["dnde"].shape, np.nan))
    return out


def sed_reference(ds: xr.Dataset, sed_type: str) -> np.ndarray:
    """The reference model's ``sed_type`` at each point of a likelihood SED (norm x this
    is the SED): the file's ``ref_flux`` / ``ref_eflux`` column when it has one (the
    reference model integrated over the bin, as gammapy converts), else ``ref_dnde``
    converted by :func:`sed_factor`."""
    if f"ref_{sed_type}" in ds and sed_type in ("flux", "eflux"):
        return _values(ds, f"ref_{sed_type}", SED_UNITS[sed_type])
    return _values(ds, "ref_dnde", DNDE_UNIT) * sed_factor(sed_type, *energy_bins(ds))


def sed_values(ds: xr.Dataset, sed_type: str) -> dict[str, np.ndarray]:
    """``sed_type`` and its ``_err``, ``_errn``, ``_errp``, ``_ul`` at each point, in
    ``SED_UNITS[sed_type]`` (NaN where absent), converted as gammapy's
    ``FluxPoints.to_table(sed_type=...)``: likelihood SEDs as norm x
    :func:`sed_reference`, the others through dnde and :func:`sed_factor`."""
    if ds.attrs.get("sed_type") == "likelihood":
        ref = sed_reference(ds, sed_type)  # raises for an unknown sed_type (sed_factor)
        return {sed_type + s: (_values(ds, "norm" + s, "") * ref if "norm" + s in ds
                               else np.full(ref.shape, np.nan)) for s in SUFFIXES[:5]}
    factor = sed_factor(sed_type, *energy_bins(ds))
    return {sed_type + k[4:]: v * factor for k, v in sed_dnde(ds).items()}


def sed(ds: xr.Dataset, sed_type: str = "dnde") -> xr.Dataset:
    """The flux points as ``sed_type`` (dnde, e2dnde, flux or eflux): the value, its
    errors and upper limit in that type's unit (:func:`sed_values`, gammapy's
    ``FluxPoints.to_table(sed_type=...)``). Absent quantities are NaN, ``is_ul`` is kept.

    >>> import xdl4
    >>> fp = xdl4.examples.all_kinds(seed=0)["flux_points"]
    >>> out = fp.dl4.sed("e2dnde")
    >>> list(out.data_vars)[:3], out["e2dnde"].attrs["units"]
    (['e2dnde', 'e2dnde_err', 'e2dnde_errn'], 'TeV cm-2 s-1')
    """
    out = xr.Dataset({name: _point_array(ds, values, name).assign_attrs(
        units=SED_UNITS[sed_type]) for name, values in sed_values(ds, sed_type).items()})
    if "is_ul" in ds:
        out["is_ul"] = ds["is_ul"].transpose(*point_dims(ds), ...)
    return out.assign_attrs(sed_type=sed_type)


def _e_ref(ds: xr.Dataset) -> np.ndarray:
    return np.asarray(ds["energy"].values, float) * unit_factor(
        ds["energy"].attrs.get("units", "TeV"), "TeV", "energy")


def model_dnde(ds: xr.Dataset, models: ModelsLike) -> np.ndarray:
    """Sum of the models' dN/dE at each point's reference energy (cm-2 s-1 TeV-1); a
    source's temporal model scales it by its mean over the dataset's GTIs, if any (as
    gammapy; without GTIs temporal models are ignored). For a light curve, shape (time,
    energy) and the mean is taken per time bin: over the bin, or over the GTIs in it."""
    return _model_dnde(_e_ref(ds), sources_for(models, {dataset_name(ds)}), _Times(ds))


class _Times:
    """The intervals temporal models are averaged over, built on first use (only temporal
    models need them): the dataset's GTIs, or per time bin for a light curve."""

    def __init__(self, ds: xr.Dataset):
        self.ds, self._gti = ds, None
        self.shape = tuple(ds.sizes[d] for d in point_dims(ds))

    def gti(self):
        if self._gti is None:
            from xdl4.gti import good_times, time_bin_intervals

            gti = good_times(self.ds)
            if TIME in self.ds.dims:
                from xdl4.axes import time_edges

                gti = time_bin_intervals(*time_edges(self.ds), gti)
            self._gti = (gti,)
        return self._gti[0]

    def norm(self, model, name: str) -> float | np.ndarray:
        """The temporal model's mean (per time bin: a column), 1 without GTIs."""
        from xdl4.models.temporal import temporal_norm

        gti = self.gti()
        if gti is None:
            return 1.0
        if len(self.shape) == 1:
            return temporal_norm(model, gti, name)
        return np.reshape(temporal_norm(model, gti, name, "time bin"), (-1, 1))


def _model_dnde(e_ref: np.ndarray, sources: list, times: _Times) -> np.ndarray:
    """The summed dN/dE of ``sources`` at ``e_ref``, scaled by their temporal models."""
    total = np.zeros(times.shape)
    for m in sources:
        dnde = m.spectral.evaluate_numpy(e_ref)
        if getattr(m, "temporal", None) is not None:
            dnde = dnde * times.norm(m.temporal, m.name)
        total += dnde
    return total


class FluxPointsEvaluator(Routed):
    """The statistic of a flux-points dataset, with everything that does not depend on
    the models (SED in dnde, masks, likelihood-scan interpolants) prepared once: the hot
    path of flux-point fits. ``stat_type``: ``chi2`` (default), ``distrib`` (asymmetric
    errors and upper limits) or ``profile`` (interpolated likelihood scans)."""

    def __init__(self, ds: xr.Dataset, stat_type: str | None = None):
        if stat_type is not None and stat_type not in STAT_TYPES:  # the dataset's: validated
            raise ArgumentError(f"unknown flux-points stat_type {stat_type!r}; use one of "
                                f"{list(STAT_TYPES)}")
        self.stat_type = stat_type or ds.attrs.get("stat_type", "chi2")
        self.name = self.label = dataset_name(ds)
        self.e_ref = _e_ref(ds)
        self.times = _Times(ds)
        self.sed = sed = sed_dnde(ds)
        n = self.times.shape
        self.is_ul = _array(ds, "is_ul", bool) if "is_ul" in ds else np.zeros(n, bool)
        sym = sed["dnde_err"]
        self.sigma = np.where(np.isfinite(sym), sym,
                              0.5 * (sed["dnde_errn"] + sed["dnde_errp"]))
        self.errp = np.where(np.isfinite(sed["dnde_errp"]), sed["dnde_errp"], sym)
        self.errn = np.where(np.isfinite(sed["dnde_errn"]), sed["dnde_errn"], sym)
        if self.stat_type == "chi2":
            mask = ~self.is_ul & np.isfinite(sed["dnde"])
        elif self.stat_type == "distrib":
            mask = (self.is_ul & np.isfinite(sed["dnde_ul"])) | np.isfinite(sed["dnde"])
        else:
            mask = np.ones(n, bool)
            self._profiles = _profile_interpolants(ds)
        for name in ("mask_safe", "mask_fit"):
            if name in ds:
                mask &= _array(ds, name, bool).reshape(mask.shape)
        self.mask = mask

    def stat_values(self, models: ModelsLike) -> np.ndarray:
        """Per-point statistic, NaN where masked."""
        from scipy.special import erfc

        m = _model_dnde(self.e_ref, self.sources(models), self.times)
        d = self.sed["dnde"]
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.stat_type == "chi2":
                stat = ((d - m) / self.sigma) ** 2
            elif self.stat_type == "distrib":
                stat = ((m - d) / np.where(m >= d, self.errp, self.errn)) ** 2
                ul = self.sed["dnde_ul"]
                ul_stat = 2 * np.log(erfc((ul - m) / ul) / erfc(1))
                stat = np.where(self.is_ul, ul_stat, stat)
                stat = np.where(np.isnan(stat), 0.0, stat)
            else:
                ref, interps = self._profiles
                stat = np.array([np.nan if f is None else float(f(mi / r)) for f, mi, r in
                                 zip(interps, m.ravel(), ref.ravel(), strict=True)])
                stat = stat.reshape(m.shape)
        return np.where(self.mask, stat, np.nan)

    def stat_sum(self, models: ModelsLike = None) -> float:
        return float(np.nansum(self.stat_values(models)))


def _profile_interpolants(ds: xr.Dataset) -> tuple[np.ndarray, list]:
    """Per point: quadratic interpolant of |stat_scan - stat| in norm (gammapy's "sqrt"
    scale is really this), None where the scan has non-finite values."""
    from scipy.interpolate import interp1d

    if "stat_scan" not in ds or "norm_scan" not in ds:
        raise ArgumentError("profile statistic needs stat_scan and norm_scan (likelihood SED)")
    ref = _values(ds, "ref_dnde", DNDE_UNIT)
    scan = _array(ds, "stat_scan")
    stat0 = (_array(ds, "stat") if "stat" in ds else np.nanmin(scan, axis=-1)).ravel()
    norms = np.broadcast_to(_array(ds, "norm_scan"), scan.shape).reshape(stat0.size, -1)
    scan = scan.reshape(stat0.size, -1)
    interps = []
    for i in range(scan.shape[0]):
        y = np.abs(scan[i] - stat0[i])
        ok = np.all(np.isfinite(y)) and np.all(np.isfinite(norms[i]))
        interps.append(interp1d(norms[i], y, kind="quadratic", fill_value="extrapolate")
                       if ok else None)
    return ref, interps


def _point_array(ds: xr.Dataset, values: np.ndarray, name: str) -> xr.DataArray:
    dims = point_dims(ds)
    return xr.DataArray(values, dims=dims, coords={d: ds[d] for d in dims}, name=name)


def stat_array(ds: xr.Dataset, models: ModelsLike, stat_type: str | None = None,
               **options) -> xr.DataArray:
    """Per-point statistic (see :class:`FluxPointsEvaluator`); masked points are NaN."""
    return _point_array(ds, FluxPointsEvaluator(ds, stat_type).stat_values(models), "stat")


def stat_sum(ds: xr.Dataset, models: ModelsLike, stat_type: str | None = None,
             cache: dict | None = None, **options) -> float:
    """The statistic summed over the points the masks keep; ``cache`` (the accessor's)
    keeps the prepared evaluator; other ``options`` of the counts kinds do not apply."""
    if cache is None:
        return FluxPointsEvaluator(ds, stat_type).stat_sum(models)
    key = ("flux_points", stat_type)
    if key not in cache:
        cache[key] = FluxPointsEvaluator(ds, stat_type)
    return cache[key].stat_sum(models)


#: residuals of flux points: their errors are not Poisson (no diff/sqrt(model))
RESIDUAL_METHODS = ("diff", "diff/model")


def residuals(ds: xr.Dataset, models: ModelsLike, method: str = "diff",
              **options) -> xr.DataArray:
    """dnde - model (``diff``) or (dnde - model) / model (``diff/model``); NaN at ULs."""
    m = model_dnde(ds, models)
    res = stats.residuals(sed_dnde(ds)["dnde"], m, method, RESIDUAL_METHODS)
    is_ul = _array(ds, "is_ul", bool) if "is_ul" in ds else np.zeros(m.shape, bool)
    return _point_array(ds, np.where(is_ul, np.nan, res), "residuals")


def likelihood_terms(ds: xr.Dataset, name: str, models: ModelsLike, **options) -> list:
    """The flux points' statistic, prepared once and bound to the sources that apply
    (``options`` of the counts kinds, e.g. ``irf_interpolation``, do not apply)."""
    term = FluxPointsEvaluator(ds)
    term.bind(name, sources_for(models, {name}))
    return [term]


def info(ds: xr.Dataset, models: ModelsLike = None, **options) -> dict:
    """Flux points: their number (energy x time bins for a light curve), upper limits, SED
    type, fit bins (and stat_sum).

    >>> info(create_flux_points([1, 2, 4], dnde=[1e-11, 2e-12]))["n_points"]
    2
    """
    out = {"name": dataset_name(ds), "sed_type": ds.attrs.get("sed_type"),
           "n_points": int(np.prod([ds.sizes[d] for d in point_dims(ds)])),
           "n_ul": int(np.asarray(ds["is_ul"].values, bool).sum()) if "is_ul" in ds else 0,
           "stat_type": ds.attrs.get("stat_type", KINDS["flux_points"].statistic)}
    if TIME in ds.dims:
        out["n_time_bins"] = int(ds.sizes[TIME])
    if models is not None:
        stat = stat_array(ds, models)
        out["n_fit_bins"] = int(np.isfinite(stat.values).sum())
        out["stat_sum"] = float(np.nansum(stat.values))
    return out


register(KINDS["flux_points"], {
    "problems": validate_flux_points, "info": info, "stat_array": stat_array,
    "stat_sum": stat_sum, "residuals": residuals, "likelihood_terms": likelihood_terms,
    "sed": sed,
}, plots={"plots": ("peek", "residuals", "fit", "sed"), "peek": ("sed",)})
