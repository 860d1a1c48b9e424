"""The numbers the plots draw (numpy, no matplotlib), and the ONE place where the plot
package imports xdl4's internals: when the evaluator, the flux-point helpers or the mask
helper move, only the imports below change."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from xdl4 import gti, masks, stats
from xdl4.axes import as_quantity, edges, time_edges
from xdl4.errors import ArgumentError, KindError
from xdl4.estimators._maps import correlate, tophat
from xdl4.forward import Evaluator
from xdl4.kinds.flux_points import RESIDUAL_METHODS as FLUX_RESIDUAL_METHODS
from xdl4.kinds.flux_points import (
    SED_UNITS,
    energy_bins,
    model_dnde,
    point_dims,
    sed_reference,
    sed_values,
)
from xdl4.models.routing import as_models, is_background, sources_for
from xdl4.psf import containment_radius
from xdl4.region import region_pixels as pixels_of_region
from xdl4.schema import canonical, parse_unit
from xdl4.sky import Region, WcsGrid, nearest_index
from xdl4.validation import dataset_name, kind_record

__all__ = ["FLUX_RESIDUAL_METHODS", "Evaluator", "KindError", "Region", "WcsGrid", "as_models",
           "dataset_name", "edges", "is_onoff", "kind_of", "masks", "model_dnde", "parse_unit",
           "sources_for", "stats", "time_edges"]


def kind_of(ds: xr.Dataset) -> str:
    """The name of the kind of ``ds``."""
    return kind_record(ds).name


def is_onoff(ds: xr.Dataset) -> bool:
    """Whether the background of ``ds`` is measured in an OFF region (its kind's record)."""
    return kind_record(ds).onoff


# -- axes and positions --------------------------------------------------------------------

def tev_edges(ds: xr.Dataset, dim: str = "energy") -> np.ndarray:
    return edges(ds, dim).to_value("TeV")


def tev(da: xr.DataArray) -> np.ndarray:
    """Values of an energy coordinate in TeV."""
    unit = parse_unit(da.attrs.get("units", "TeV"), da.name or "energy")
    return np.asarray(da.values, float) * unit.to("TeV")


def unit_of(da: xr.DataArray, default: str = "") -> str:
    return str(da.attrs.get("units", default) or "")


def grid(ds: xr.Dataset) -> WcsGrid:
    if "lat" not in ds.dims:
        raise KindError(f"this {kind_of(ds)} dataset has no pixel grid (lat/lon)")
    return WcsGrid.from_dataset(ds)


def position(ds: xr.Dataset, pos=None) -> tuple[float, float] | tuple[None, None]:
    """(lon, lat) deg in the data frame: ``pos`` ((lon, lat) in that frame, or a SkyCoord),
    by default the map centre or the region centre; (None, None) for a region-less set."""
    if pos is None:
        if "lat" in ds.dims:
            return grid(ds).center
        region = Region.from_dataset(ds)
        return region.center if region is not None else (None, None)
    if hasattr(pos, "frame") and hasattr(pos, "transform_to"):
        frame = grid(ds).frame if "lat" in ds.dims else Region.from_dataset(ds).frame
        c = pos.transform_to(frame)
        sph = c.represent_as("unitspherical")
        return float(sph.lon.deg), float(sph.lat.deg)
    lon, lat = pos
    return float(lon), float(lat)


def one_run(ds: xr.Dataset, what: str) -> xr.Dataset:
    if "obs" in ds.dims:
        raise ArgumentError(f"plot.{what} draws one dataset; this one has {ds.sizes['obs']} runs "
                         "along 'obs': select one (ds.isel(obs=i)), stack them "
                         "(ds.dl4.stack()) or draw plot.stacking")
    return ds


# -- reco-energy reductions ---------------------------------------------------------------

def energy_selection(ds: xr.Dataset, energy=None, dim: str = "energy"
                     ) -> tuple[np.ndarray, str]:
    """(boolean bins of ``dim``, a label). ``energy``: None (all), one energy (the bin
    holding it) or (min, max) (bins overlapping the range), TeV numbers, Quantities or
    strings."""
    e = tev_edges(ds, dim)
    n = e.size - 1
    if energy is None:
        sel = np.ones(n, bool)
    elif isinstance(energy, tuple | list) and len(energy) == 2:
        lo, hi = (float(as_quantity(x).to_value("TeV")) for x in energy)
        sel = (e[1:] > lo) & (e[:-1] < hi)
    else:
        x = float(as_quantity(energy).to_value("TeV"))
        i = int(np.searchsorted(e, x, side="right")) - 1
        if not 0 <= i < n:
            raise ArgumentError(f"energy {x:g} TeV is outside the {dim} axis "
                                f"({e[0]:g}–{e[-1]:g} TeV)")
        sel = np.arange(n) == i
    if not sel.any():
        raise ArgumentError(f"no {dim} bin in {energy!r}")
    shown = sel  # the label: the selected bins that are safe somewhere (what is summed)
    if dim == "energy" and "mask_safe" in ds:
        safe = masks.spectral(masks.safe(ds)).values
        shown = sel & safe if (sel & safe).any() else sel
    idx = np.flatnonzero(shown)
    return sel, f"{fmt_energy(e[idx[0]])}–{fmt_energy(e[idx[-1] + 1])} TeV"


def fmt_energy(x: float) -> str:
    return f"{x:.3g}"


def summed(da: xr.DataArray, ds: xr.Dataset, sel: np.ndarray, safe: bool = True
           ) -> xr.DataArray:
    """``da`` summed over the selected reco-energy bins (safe bins only)."""
    if "energy" not in da.dims:
        return da
    w = xr.DataArray(sel, dims="energy")
    if safe:
        w = w & masks.safe(ds)
    return canonical(da.where(w, 0).sum("energy"))  # images read by position: (lat, lon)


def any_safe(ds: xr.Dataset, sel: np.ndarray) -> xr.DataArray:
    """(lat, lon) True where a selected reco-energy bin is safe."""
    safe = masks.safe(ds) & xr.DataArray(sel, dims="energy")
    return safe.any("energy").transpose("lat", "lon") if "energy" in safe.dims else safe


def background(ds: xr.Dataset, models=None) -> xr.DataArray:
    """Background counts: ``npred_background(models)`` (cash kinds with models), else the
    dataset's own (``ds.dl4.background``: alpha x counts_off for on/off kinds)."""
    if models is not None and not is_onoff(ds):
        return ds.dl4.npred_background(models).rename("background")
    return ds.dl4.background


# -- sky images ----------------------------------------------------------------------------

def top_hat_sum(image: np.ndarray, radius_deg: float | None, g: WcsGrid) -> np.ndarray:
    """Sum of ``image`` within ``radius_deg`` of each pixel (0 outside the map), with the
    excess maps' (gammapy's) top-hat kernel."""
    if not radius_deg:
        return np.asarray(image, float)
    return correlate(image, tophat(radius_deg, float(np.mean(g.binsz))))


def top_hat_mean(image: np.ndarray, radius_deg: float | None, g: WcsGrid) -> np.ndarray:
    if not radius_deg:
        return np.asarray(image, float)
    ones = np.ones_like(image, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return top_hat_sum(image, radius_deg, g) / top_hat_sum(ones, radius_deg, g)


def gauss_kernel(sigma_deg: float, g: WcsGrid) -> np.ndarray:
    """Gaussian kernel of ``sigma_deg`` on the pixel grid (to 4 sigma), sum 1."""
    sx, sy = (sigma_deg / b for b in g.binsz)
    nx, ny = int(np.ceil(4 * sx)), int(np.ceil(4 * sy))
    y, x = np.mgrid[-ny:ny + 1, -nx:nx + 1]
    k = np.exp(-0.5 * ((x / sx) ** 2 + (y / sy) ** 2))
    return k / k.sum()


def smoothed_residuals(counts: np.ndarray, npred: np.ndarray, sigma_deg: float | None,
                       g: WcsGrid, method: str) -> np.ndarray:
    """Residuals of Gaussian-smoothed (``sigma_deg``) counts and npred images. diff and
    diff/model compare the smoothed images; diff/sqrt(model) is the significance of the
    smoothed difference, sum w (n - mu) / sqrt(sum w^2 mu) (Poisson variance mu per
    pixel), so it is of unit variance whatever the smoothing (gammapy divides by the
    square root of the smoothed model instead, which shrinks with the kernel)."""
    if not sigma_deg:
        return stats.residuals(counts, npred, method)
    from scipy.ndimage import convolve

    k = gauss_kernel(sigma_deg, g)
    c = convolve(np.asarray(counts, float), k, mode="constant")
    m = convolve(np.asarray(npred, float), k, mode="constant")
    if method != "diff/sqrt(model)":
        return stats.residuals(c, m, method)
    var = convolve(np.asarray(npred, float), k**2, mode="constant")
    with np.errstate(divide="ignore", invalid="ignore"):
        return (c - m) / np.sqrt(var)


def excess_and_ts(ds: xr.Dataset, sel: np.ndarray, radius: float | None, models=None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(excess, sqrt_ts) images in a top-hat of ``radius`` deg over the selected safe
    bins: cash TS of the counts over the background (model) for cash kinds, Li & Ma (the
    wstat TS) of ON over alpha x OFF for on/off kinds, alpha the OFF-weighted mean."""
    g = grid(ds)
    n = top_hat_sum(summed(ds["counts"], ds, sel).values, radius, g)
    b = top_hat_sum(summed(background(ds, models), ds, sel).values, radius, g)
    excess = n - b
    if is_onoff(ds):
        n_off = top_hat_sum(summed(ds["counts_off"], ds, sel).values, radius, g)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(n_off > 0, b / n_off, 0.0)
        ts = stats.wstat_ts(n, n_off, a)
    else:
        ts = np.where(b > 0, stats.cash_ts(n, b), 0.0)
    return excess, stats.sqrt_ts(ts, excess)


def region_pixels(ds: xr.Dataset, region) -> np.ndarray:
    """Boolean (lat, lon) image of the pixels of ``region`` (None: all), as
    ``ds.dl4.to_region`` selects them."""
    if region is None:
        return np.ones(grid(ds).shape, bool)
    region = Region.parse(region) if isinstance(region, str) else region
    return np.asarray(pixels_of_region(grid(ds), region).values, bool)


# -- spectra -------------------------------------------------------------------------------

def counts_spectrum(ds: xr.Dataset, models=None, region=None) -> dict[str, np.ndarray]:
    """Per reco-energy bin (summed over ``region``'s pixels for maps): counts,
    background, excess and its error (cash: sqrt(n); on/off: sqrt(n + alpha^2 n_off)),
    and, with ``models``, npred and npred_signal."""
    def reduce(da):
        da = da.transpose("energy", ...)
        if "lat" in da.dims:
            return np.asarray(da.where(xr.DataArray(inside, dims=("lat", "lon")), 0)
                              .sum(("lat", "lon")).values, float)
        return np.asarray(da.values, float)

    inside = region_pixels(ds, region) if "lat" in ds.dims else None
    out = {"counts": reduce(ds["counts"]), "background": reduce(background(ds, models))}
    out["excess"] = out["counts"] - out["background"]
    if is_onoff(ds):
        n_off = reduce(ds["counts_off"])
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(n_off > 0, out["background"] / n_off, 0.0)
        out["counts_off"] = n_off
        out["excess_err"] = np.sqrt(out["counts"] + a**2 * n_off)
    else:
        out["excess_err"] = np.sqrt(out["counts"])
    if models is not None:
        out["npred"] = reduce(ds.dl4.npred(models))
        out["npred_signal"] = reduce(ds.dl4.npred_signal(models))
    out["mask_safe"] = _any_sky(masks.safe(ds), inside)
    out["mask_fit"] = _any_sky(masks.fit(ds), inside)
    out["edges"] = tev_edges(ds)
    return out


def _any_sky(mask: xr.DataArray, inside) -> np.ndarray:
    mask = mask.transpose("energy", ...) if "energy" in mask.dims else mask
    if "lat" in mask.dims:
        mask = mask.where(xr.DataArray(inside, dims=("lat", "lon")), False).any(("lat", "lon"))
    return np.broadcast_to(np.asarray(mask.values, bool), (mask.sizes.get("energy", 1),))


# -- IRFs ----------------------------------------------------------------------------------

def psf_at(ds: xr.Dataset, pos=None) -> dict[str, np.ndarray]:
    """PSF profiles at a position on the PSF's own energy nodes: ``energy`` (TeV),
    ``axis`` (energy_true or energy), ``rad`` (deg), ``profiles`` (sr-1)."""
    if "psf" not in ds:
        raise ArgumentError(f"this {kind_of(ds)} dataset has no psf variable")
    ev = Evaluator(ds)
    lon, lat = position(ds, pos)
    prof = ev.psf_profiles(lon if lon is not None else 0.0, lat if lat is not None else 0.0,
                           at_nodes=True)
    axis = ds["psf"].dims[0]
    return {"energy": tev(ds[axis]), "axis": axis, "rad": ev.rad_nodes,
            "rad_edges": ev.rad_edges, "profiles": prof, "position": (lon, lat)}


def containment_radii(psf: dict, fractions) -> np.ndarray:
    """(n_fraction, n_energy) radii in deg."""
    return np.stack([containment_radius(psf["profiles"], psf["rad"], f, psf["rad_edges"])
                     for f in fractions])


def edisp_at(ds: xr.Dataset, pos=None) -> dict[str, np.ndarray]:
    """The EDISP kernel (n_true, n_reco) at the nearest IRF pixel of a position, with the
    true and reco edges (TeV); the overlap kernel when the dataset has no edisp."""
    lon, lat = position(ds, pos) if "lat" in ds.dims else (None, None)
    ev = Evaluator(ds)
    matrix = ev.edisp_matrix(lon, lat)
    return {"matrix": matrix, "true_edges": ev.e_true, "reco_edges": ev.e_reco,
            "position": (lon, lat)}


#: kernel rows holding less than this share of their true bin's events in the reco axis
#: get no bias or resolution (the distribution is cut by the axis)
EDISP_MIN_CONTAINED = 0.9


def bias_resolution(edisp: dict) -> dict[str, np.ndarray]:
    """Moments of ln(E_reco / E_true) of each kernel row, the reco bins at their log
    centres (as gammapy's kernel bias and resolution): ``bias`` = exp(mean) - 1,
    ``resolution`` = standard deviation (relative), ``binning`` = half the log width of
    the reco bins (moments smaller than it are not resolved by the reco binning). NaN
    for rows with less than 90 % of their events inside the reco axis."""
    m, et, er = edisp["matrix"], edisp["true_edges"], edisp["reco_edges"]
    ln_true = np.log(np.sqrt(et[:-1] * et[1:]))
    ln_reco = np.log(np.sqrt(er[:-1] * er[1:]))
    norm = m.sum(axis=1)
    ok = norm >= EDISP_MIN_CONTAINED
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (m * ln_reco).sum(axis=1) / norm
        var = (m * (ln_reco[None] - mean[:, None]) ** 2).sum(axis=1) / norm
    return {"bias": np.where(ok, np.expm1(mean - ln_true), np.nan),
            "resolution": np.where(ok, np.sqrt(np.clip(var, 0, None)), np.nan),
            "binning": 0.5 * float(np.mean(np.diff(np.log(er))))}


def exposure_at(ds: xr.Dataset, pos=None) -> dict:
    """Exposure per true-energy bin at the pixel nearest a position (maps) or of the
    region: values in the variable's unit, ``edges`` (TeV), ``livetime`` (s) or None."""
    exposure = ds["exposure"].transpose("energy_true", ...)
    lon, lat = position(ds, pos) if "lat" in exposure.dims else (None, None)
    if "lat" in exposure.dims:
        x, y = grid(ds).world_to_pixel(lon, lat)
        ny, nx = grid(ds).shape
        ix, iy = nearest_index(float(x), nx), nearest_index(float(y), ny)
        exposure = exposure.isel(lat=iy, lon=ix)
    livetime = gti.livetime(ds) if "livetime" in ds else None
    return {"values": np.asarray(exposure.values, float), "unit": unit_of(ds["exposure"]),
            "edges": tev_edges(ds, "energy_true"), "livetime": livetime,
            "position": (lon, lat)}


# -- flux points ---------------------------------------------------------------------------

def flux_points(fp: xr.Dataset, sed_type: str) -> dict:
    """Flux points as ``sed_type`` (in :data:`SED_UNITS`): value, errn, errp, ul, is_ul on
    (time, energy) or (energy,), with e_ref, e_lo, e_hi (TeV; NaN bounds if absent)."""
    sed = {k[len(sed_type):]: v for k, v in sed_values(fp, sed_type).items()}  # by suffix
    e_ref, lo, hi = energy_bins(fp)
    err = sed["_err"]
    errn = np.where(np.isfinite(sed["_errn"]), sed["_errn"], err)
    errp = np.where(np.isfinite(sed["_errp"]), sed["_errp"], err)
    is_ul = (np.asarray(fp["is_ul"].transpose(*point_dims(fp)).values, bool)
             if "is_ul" in fp else np.zeros(sed[""].shape, bool))
    return {"value": sed[""], "errn": errn, "errp": errp, "ul": sed["_ul"], "is_ul": is_ul,
            "e_ref": e_ref, "e_lo": lo if lo is not None else np.full_like(e_ref, np.nan),
            "e_hi": hi if hi is not None else np.full_like(e_ref, np.nan),
            "unit": SED_UNITS[sed_type]}


def likelihood_profiles(fp: xr.Dataset, sed_type: str) -> dict | None:
    """Per energy bin the scanned ``sed_type`` values and delta-stat (n_energy, n_scan),
    or None without ``stat_scan``/``norm_scan`` (or for light curves)."""
    if "stat_scan" not in fp or "norm_scan" not in fp or "time" in fp.dims:
        return None
    scan = np.asarray(fp["stat_scan"].transpose("energy", ...).values, float)
    norms = np.broadcast_to(np.asarray(fp["norm_scan"].transpose("energy", ...).values,
                                       float), scan.shape)
    e_ref, lo, hi = energy_bins(fp)  # the bins only, not the whole SED again
    if "ref_dnde" not in fp:
        raise ArgumentError("likelihood profiles need ref_dnde")
    ref_q = sed_reference(fp, sed_type)  # norm x the reference is the SED
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN scans stay NaN
        delta = scan - np.nanmin(scan, axis=1, keepdims=True)
    nan = np.full_like(e_ref, np.nan)
    return {"values": norms * ref_q[:, None], "delta": delta,
            "e_lo": lo if lo is not None else nan, "e_hi": hi if hi is not None else nan}


def source_models(models) -> list:
    """The sky models (no background models) of ``models``."""
    return [m for m in as_models(models) if not is_background(m)]
