"""Flux points: one row per energy bin, SED quantities as variables on ``energy``.

Layout: coordinate ``energy`` = the reference energy ``e_ref`` (TeV) with optional CF bounds
``energy_bounds`` (e_min, e_max); attrs ``dl4_kind="flux_points"``, ``sed_type`` (dnde,
e2dnde, flux, eflux, likelihood) and optionally ``ul_conf``; variables named as gammapy's
columns (``dnde``, ``dnde_err``, ``dnde_errn``, ``dnde_errp``, ``dnde_ul``, ``is_ul``, ``ts``,
``sqrt_ts``, ``norm``..., ``ref_dnde``, ``ref_flux``, ``ref_eflux``); likelihood scans as
``norm_scan(energy, scan)`` and ``stat_scan(energy, scan)``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdl4.axes import axis_coords
from xdl4.schema import SED_TYPES, parse_unit

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


def validate_flux_points(ds: xr.Dataset) -> list[str]:
    problems = []
    if "energy" not in ds.dims or "energy" not in ds.coords:
        return ["flux points need an 'energy' dimension with reference energies"]
    sed = ds.attrs.get("sed_type")
    if sed not in REQUIRED:
        return [f"attrs['sed_type'] is {sed!r}; expected one of {list(REQUIRED)}"]
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
    return problems


def create_flux_points(energy_edges=None, *, energy_ref=None, sed_type: str = "dnde",
                       name: str = "flux_points", units: dict | None = None,
                       **columns) -> xr.Dataset:
    """Flux points from arrays. ``energy_edges`` (TeV, n+1 values) or ``energy_ref``;
    columns by gammapy's names in gammapy's default units unless ``units`` says otherwise.

    >>> fp = create_flux_points([1, 2, 4], dnde=[1e-11, 2e-12], dnde_err=[1e-12, 3e-13])
    >>> fp.dl4.kind, fp.sizes["energy"]
    ('flux_points', 2)
    """
    from xdl4.schema import validate

    coords: dict = {}
    if energy_edges is not None:
        coords = axis_coords(np.asarray(energy_edges, float), "energy", "TeV")
        if energy_ref is not None:
            coords["energy"] = xr.Variable("energy", np.asarray(energy_ref, float),
                                           coords["energy"].attrs)
    elif energy_ref is not None:
        coords = {"energy": xr.Variable("energy", np.asarray(energy_ref, float),
                                        {"units": "TeV"})}
    else:
        raise ValueError("give energy_edges or energy_ref")
    units = units or {}
    data = {}
    for col, values in columns.items():
        values = np.asarray(values)
        base = next((q for q in QUANTITY_UNITS if col in (q + s for s in SUFFIXES)), None)
        attrs = {}
        if base is not None:
            attrs["units"] = units.get(col, QUANTITY_UNITS[base])
        dims = ("energy",) if values.ndim == 1 else ("energy", f"{col}_dim")
        data[col] = xr.Variable(dims, values, attrs)
    ds = xr.Dataset(data, coords=coords, attrs={"dl4_kind": "flux_points", "name": name,
                                                "sed_type": sed_type})
    return validate(ds)


# -- statistics -----------------------------------------------------------------------------

DNDE_UNIT = "cm-2 s-1 TeV-1"


def _values(ds: xr.Dataset, name: str, unit: str) -> np.ndarray:
    from astropy import units as u

    factor = parse_unit(ds[name].attrs.get("units"), name).to(u.Unit(unit) if unit else "")
    return np.asarray(ds[name].values, dtype=float) * factor


def _to_dnde_factor(ds: xr.Dataset) -> tuple[str, np.ndarray]:
    """(quantity, factor) such that dnde = quantity x factor, gammapy's conversion: exact at
    e_ref for e2dnde; a power law of index 2 within each bin for flux and eflux."""
    sed = ds.attrs["sed_type"]
    e_ref = np.asarray(ds["energy"].values, float) * parse_unit(
        ds["energy"].attrs.get("units", "TeV"), "energy").to("TeV")
    if sed == "dnde":
        return "dnde", np.ones_like(e_ref)
    if sed == "likelihood":
        return "norm", _values(ds, "ref_dnde", DNDE_UNIT)
    b = np.asarray(ds["energy_bounds"].values, float) * parse_unit(
        ds["energy_bounds"].attrs.get("units", "TeV"), "energy").to("TeV")
    lo, hi = b[:, 0], b[:, 1]
    if sed == "e2dnde":
        return "e2dnde", 1.0 / e_ref**2
    if sed == "flux":
        return "flux", 1.0 / (e_ref**2 * (1 / lo - 1 / hi))
    return "eflux", 1.0 / (e_ref**2 * np.log(hi / lo))


def sed_dnde(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """dnde and its errors / upper limits in cm-2 s-1 TeV-1 (NaN where absent)."""
    q, factor = _to_dnde_factor(ds)
    unit = {"dnde": DNDE_UNIT, "e2dnde": "TeV cm-2 s-1", "flux": "cm-2 s-1",
            "eflux": "TeV cm-2 s-1", "norm": ""}[q]
    out = {}
    for suffix in SUFFIXES[:5]:
        name = q + suffix
        out["dnde" + suffix] = (_values(ds, name, unit) * factor if name in ds
                                else np.full(ds.sizes["energy"], np.nan))
    return out


def _e_ref(ds: xr.Dataset) -> np.ndarray:
    return np.asarray(ds["energy"].values, float) * parse_unit(
        ds["energy"].attrs.get("units", "TeV"), "energy").to("TeV")


def model_dnde(ds: xr.Dataset, models) -> np.ndarray:
    """Sum of the models' dN/dE at each point's reference energy (cm-2 s-1 TeV-1); a
    source's temporal model scales it by its mean over the dataset's GTIs, if any (as
    gammapy; without GTIs temporal models are ignored)."""
    return _model_dnde(_e_ref(ds), ds.attrs.get("name"), models, _LazyGoodTimes(ds))


class _LazyGoodTimes:
    """The GTIs of a dataset, built on first use (only temporal models need them)."""

    def __init__(self, ds: xr.Dataset):
        self.ds, self._gti = ds, None

    def gti(self):
        if self._gti is None:
            from xdl4.models.temporal import good_times

            self._gti = (good_times(self.ds),)
        return self._gti[0]


def _model_dnde(e_ref: np.ndarray, name: str | None, models, times: _LazyGoodTimes) -> np.ndarray:
    from xdl4.forward import as_models

    total = np.zeros_like(e_ref)
    for m in as_models(models):
        if not hasattr(m, "spectral_key") or hasattr(m, "dataset_name"):
            continue
        if m.datasets_names is not None and name not in m.datasets_names:
            continue
        dnde = m.spectral.evaluate_numpy(e_ref)
        if getattr(m, "temporal", None) is not None and times.gti() is not None:
            from xdl4.models.temporal import temporal_norm

            dnde = dnde * temporal_norm(m.temporal, times.gti(), m.name)
        total += dnde
    return total


class FluxPointsEvaluator:
    """The statistic of a flux-points dataset, with everything that does not depend on
    the models (SED in dnde, masks, likelihood-scan interpolants) prepared once: the hot
    path of flux-point fits. ``stat_type``: ``chi2`` (default), ``distrib`` (asymmetric
    errors and upper limits) or ``profile`` (interpolated likelihood scans)."""

    def __init__(self, ds: xr.Dataset, stat_type: str | None = None):
        self.stat_type = stat_type or ds.attrs.get("stat_type", "chi2")
        if self.stat_type not in ("chi2", "distrib", "profile"):
            raise ValueError(f"unknown flux-points stat_type {self.stat_type!r}; "
                             "use chi2, distrib or profile")
        self.name = ds.attrs.get("name")
        self.e_ref = _e_ref(ds)
        self.times = _LazyGoodTimes(ds)
        self.sed = sed = sed_dnde(ds)
        n = ds.sizes["energy"]
        self.is_ul = ds["is_ul"].values.astype(bool) if "is_ul" in ds else np.zeros(n, bool)
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
                mask &= np.asarray(ds[name].values, bool).reshape(mask.shape)
        self.mask = mask

    def stat_values(self, models) -> np.ndarray:
        """Per-point statistic, NaN where masked."""
        from scipy.special import erfc

        m = _model_dnde(self.e_ref, self.name, models, self.times)
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
                stat = np.array([np.nan if f is None else float(f(mi / r))
                                 for f, mi, r in zip(interps, m, ref, strict=True)])
        return np.where(self.mask, stat, np.nan)

    def stat_sum(self, models) -> float:
        return float(np.nansum(self.stat_values(models)))


def _profile_interpolants(ds: xr.Dataset) -> tuple[np.ndarray, list]:
    """Per point: quadratic interpolant of |stat_scan - stat| in norm (gammapy's "sqrt"
    scale is really this), None where the scan has non-finite values."""
    from scipy.interpolate import interp1d

    if "stat_scan" not in ds or "norm_scan" not in ds:
        raise ValueError("profile statistic needs stat_scan and norm_scan (likelihood SED)")
    ref = _values(ds, "ref_dnde", DNDE_UNIT)
    scan = np.asarray(ds["stat_scan"].values, float)
    norms = np.asarray(ds["norm_scan"].values, float)
    stat0 = np.asarray(ds["stat"].values, float) if "stat" in ds else np.nanmin(scan, axis=1)
    interps = []
    for i in range(scan.shape[0]):
        y = np.abs(scan[i] - stat0[i])
        ok = np.all(np.isfinite(y)) and np.all(np.isfinite(norms[i]))
        interps.append(interp1d(norms[i], y, kind="quadratic", fill_value="extrapolate")
                       if ok else None)
    return ref, interps


def stat_array(ds: xr.Dataset, models, stat_type: str | None = None) -> xr.DataArray:
    """Per-point statistic (see :class:`FluxPointsEvaluator`); masked points are NaN."""
    values = FluxPointsEvaluator(ds, stat_type).stat_values(models)
    return xr.DataArray(values, dims="energy", coords={"energy": ds["energy"]}, name="stat")


def stat_sum(ds: xr.Dataset, models, stat_type: str | None = None) -> float:
    return FluxPointsEvaluator(ds, stat_type).stat_sum(models)


def residuals(ds: xr.Dataset, models, method: str = "diff") -> xr.DataArray:
    """dnde - model (``diff``) or (dnde - model) / model (``diff/model``); NaN at ULs."""
    sed = sed_dnde(ds)
    m = model_dnde(ds, models)
    res = sed["dnde"] - m
    if method == "diff/model":
        res = res / m
    elif method != "diff":
        raise ValueError(f"flux-point residuals method must be diff or diff/model, not {method}")
    is_ul = ds["is_ul"].values.astype(bool) if "is_ul" in ds else np.zeros(m.shape, bool)
    return xr.DataArray(np.where(is_ul, np.nan, res), dims="energy",
                        coords={"energy": ds["energy"]}, name="residuals")
