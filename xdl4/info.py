"""Summary numbers of a dataset: gammapy's ``info_dict`` fields."""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdl4 import masks
from xdl4.schema import ONOFF_KINDS, STAT_TYPES, kind_of, parse_unit
from xdl4.stats import cash_ts, sqrt_ts, wstat_ts


def _sum(da: xr.DataArray, mask: xr.DataArray) -> float:
    return float(da.where(mask, 0).sum())


def livetime(ds: xr.Dataset) -> float:
    """Livetime in s; without a ``livetime`` variable a non-empty GTI sum, else NaN."""
    if "livetime" not in ds:
        total = ontime(ds)
        return total if total > 0 else np.nan
    unit = parse_unit(ds["livetime"].attrs.get("units", "s"), "livetime")
    return float(ds["livetime"].sum()) * unit.to("s")


def ontime(ds: xr.Dataset) -> float:
    """Sum of the good-time intervals in s (NaN without a GTI table)."""
    if "gti_start" not in ds:
        return np.nan
    unit = parse_unit(ds["gti_start"].attrs.get("units", "s"), "gti")
    return float((ds["gti_stop"] - ds["gti_start"]).sum()) * unit.to("s")


def info(ds: xr.Dataset, models=None) -> dict:
    """gammapy's ``info_dict`` (sums over mask_safe; exposure in the dataset's exposure
    unit, times in s).

    >>> import xdl4
    >>> info = xdl4.examples.map_dataset().dl4.info()
    >>> info["stat_type"], info["n_bins"] > 0
    ('cash', True)
    """
    kind = kind_of(ds)
    if kind == "flux_points":
        return _flux_points_info(ds, models)
    mask = masks.safe(ds)
    out: dict = {"name": ds.attrs.get("name", ""), "counts": _sum(ds["counts"], mask)}
    if kind in ONOFF_KINDS:
        n_off = _sum(ds["counts_off"], mask)
        alpha_map = (ds["acceptance"] / ds["acceptance_off"]).fillna(0)
        alpha_map = alpha_map.where(np.isfinite(alpha_map), 0)
        bkg = _sum(alpha_map * ds["counts_off"], mask)
        alpha = bkg / n_off if n_off > 0 else np.nan
        out["background"] = bkg
        excess = out["counts"] - bkg
        ts = float(wstat_ts(out["counts"], n_off, alpha)) if n_off > 0 else np.nan
        npred_background = bkg
    else:
        out["background"] = _sum(ds["background"], mask) if "background" in ds else np.nan
        npred_background = out["background"]
        excess = np.nan
        ts = np.nan
    if models is not None:
        from xdl4.forward import npred_background as _npb
        from xdl4.forward import npred_signal as _nps

        npb = _npb(ds, models)
        nps = _nps(ds, models)
        npred_background = _sum(npb, mask)
        out["npred"] = float((nps + npb).where(mask, 0).sum())
        out["npred_background"] = npred_background
        out["npred_signal"] = _sum(nps, mask)
    if kind not in ONOFF_KINDS and np.isfinite(npred_background):
        excess = out["counts"] - npred_background
        ts = float(cash_ts(out["counts"], npred_background))
    out["excess"] = excess
    out["sqrt_ts"] = float(sqrt_ts(ts, excess))
    exposure = ds["exposure"]  # reported in its own unit, as gammapy does
    good = (exposure > 0) & masks.image(mask)
    if not bool(good.any()):
        good = xr.ones_like(exposure, dtype=bool)
    out["exposure_min"] = float(exposure.where(good).min())
    out["exposure_max"] = float(exposure.where(good).max())
    out["livetime"] = livetime(ds)
    out["ontime"] = ontime(ds)
    with np.errstate(divide="ignore", invalid="ignore"):
        for key in ("counts", "background", "excess"):
            out[f"{key}_rate"] = np.float64(out[key]) / out["livetime"]
    out["n_bins"] = int(ds["counts"].size)
    out["n_fit_bins"] = int(masks.fit(ds).sum())
    out["stat_type"] = STAT_TYPES[kind]
    if kind in ONOFF_KINDS:
        out["counts_off"] = n_off
        out["acceptance"] = _sum(ds["acceptance"], mask)
        out["alpha"] = alpha
        out["acceptance_off"] = out["acceptance"] / alpha if alpha else np.nan
    if models is not None:
        from xdl4.forward import stat_sum

        out["stat_sum"] = float(stat_sum(ds, models))
    return out


def _flux_points_info(ds: xr.Dataset, models=None) -> dict:
    """Flux points: their number (energy x time bins for a light curve), upper limits, SED
    type, fit bins (and stat_sum)."""
    from xdl4.kinds.flux_points import point_dims

    n_points = int(np.prod([ds.sizes[d] for d in point_dims(ds)]))
    out = {"name": ds.attrs.get("name", ""), "sed_type": ds.attrs.get("sed_type"),
           "n_points": n_points,
           "n_ul": int(np.asarray(ds["is_ul"].values, bool).sum()) if "is_ul" in ds else 0,
           "stat_type": ds.attrs.get("stat_type", STAT_TYPES["flux_points"])}
    if "time" in ds.dims:
        out["n_time_bins"] = int(ds.sizes["time"])
    if models is not None:
        from xdl4.kinds.flux_points import stat_array

        stat = stat_array(ds, models)
        out["n_fit_bins"] = int(np.isfinite(stat.values).sum())
        out["stat_sum"] = float(np.nansum(stat.values))
    return out
