"""Sky images on WCS axes: any variable, excess, significance, residual maps, masks."""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdl4.errors import ArgumentError
from xdl4.schema import canonical
from xdl4.skymath import degrees

from . import _data, _style

#: quantities summed (not averaged) in a top-hat: counts-like
ADDITIVE = ("counts", "counts_off", "background", "npred", "npred_signal",
            "npred_background", "excess")


def image(ds: xr.Dataset, what="counts", smooth: float | None = None, energy=None,
          ax=None, models=None, **kwargs):
    """A sky image of ``ds`` on WCS axes in the dataset's frame, longitude increasing to
    the left; returns the WCSAxes (the image is ``ax.images[0]``).

    ``what``: a variable name (reco-energy ones summed over the selected safe bins,
    true-energy ones taken in one bin), ``"excess"`` (counts - background, or - alpha x
    OFF), ``"sqrt_ts"`` (cash significance of the counts over the background, Li & Ma
    for on/off kinds), ``"npred"`` (needs ``models``), or any DataArray on the grid.
    ``smooth``: radius (deg, or e.g. ``"0.1 deg"``) of a top-hat: counts-like quantities
    are summed in it (correlated maps; the significance of the summed counts), others
    averaged.
    ``energy``: None (all safe reco bins; the middle bin for true-energy variables), one
    energy (its bin) or (min, max). ``models``: the background model (cash kinds) for
    excess / sqrt_ts, the prediction for npred. ``kwargs`` go to ``imshow``.
    """
    ds = _data.one_run(ds, "image")
    smooth = None if smooth is None else degrees(smooth)
    data, name, unit, long_name, title, g = _image_data(ds, what, smooth, energy, models)
    ax = _style.sky_axes(g, ax)
    if name == "sqrt_ts":
        cbar = "Significance √TS [σ]"
    else:
        cbar = _style.label(name, unit, long_name)
    _style.sky_image(ax, data, name, cbar, **kwargs)
    ax.set_title(title, fontsize="medium")
    return ax


def _image_data(ds, what, smooth, energy, models):
    """(image, quantity name, unit, long name, title, grid)."""
    g = _data.grid(ds)
    if isinstance(what, xr.DataArray):
        da, name = what, what.name or "value"
        if "energy" in da.dims and da.sizes["energy"] != ds.sizes.get("energy"):
            # on its own energy binning (e.g. an estimator's map): summed as it is
            da = da.sum("energy", keep_attrs=True) if da.sizes["energy"] > 1 else \
                da.isel(energy=0, drop=True)
    elif what in ("excess", "sqrt_ts"):
        sel, erange = _data.energy_selection(ds, energy)
        erange += " (safe bins)" if "mask_safe" in ds else ""
        excess, sig = _data.excess_and_ts(ds, sel, smooth, models)
        data = np.where(_data.any_safe(ds, sel).values, excess if what == "excess" else sig,
                        np.nan)
        return (data, what, "", None, _title(_style.NAMES[what], erange, smooth), g)
    elif what == "npred":
        if models is None:
            raise ArgumentError("image(what='npred') needs models=")
        da, name = ds.dl4.npred(models), "npred"
    elif what == "background":
        da, name = _data.background(ds, models), "background"
    elif isinstance(what, str) and what in ds:
        da, name = ds[what], what
    else:
        raise ArgumentError(f"what must be a variable of the dataset, 'excess', 'sqrt_ts', "
                         f"'npred' or a DataArray, not {what!r}")
    long_name = da.attrs.get("long_name")
    unit = _data.unit_of(da)
    if "irf_lat" in da.dims:
        g = _data.WcsGrid.from_dataset(ds, "irf_")
        da = da.rename({"irf_lat": "lat", "irf_lon": "lon"})
    if "energy" in da.dims:
        sel, erange = _data.energy_selection(ds, energy)
        da = _data.summed(da, ds, sel, safe=True).where(_data.any_safe(ds, sel))
        erange += " (safe bins)" if "mask_safe" in ds else ""
    elif "energy_true" in da.dims:
        n = da.sizes["energy_true"]
        if energy is None:
            sel, erange = np.arange(n) == n // 2, None
            e = _data.tev_edges(ds, "energy_true")
            erange = f"{_data.fmt_energy(e[n // 2])}–{_data.fmt_energy(e[n // 2 + 1])} TeV"
        else:
            sel, erange = _data.energy_selection(ds, energy, "energy_true")
            if isinstance(energy, tuple | list):
                raise ArgumentError(f"{name} is per true-energy bin: give one energy, "
                                 "not a range")
        da = da.isel(energy_true=int(np.flatnonzero(sel)[0]))
        erange = f"E_true {erange}"
    else:
        erange = None
    extra = [d for d in da.dims if d not in ("lat", "lon")]
    if extra:
        raise ArgumentError(f"{name} has dims {da.dims}: reduce {extra} first")
    values = np.asarray(da.transpose("lat", "lon").values, float)
    if smooth:
        values = (_data.top_hat_sum if name in ADDITIVE else _data.top_hat_mean)(
            values, smooth, g)
    return values, name, unit, long_name, _title(long_name or _style.NAMES.get(name, name),
                                                 erange, smooth), g


def _title(name: str, erange: str | None, smooth: float | None) -> str:
    parts = [name]
    if erange:
        parts.append(erange)
    if smooth:
        parts.append(f"top-hat r = {smooth:g}°")
    return ", ".join(parts)


def spatial_residuals(ds: xr.Dataset, models, method: str = "diff/sqrt(model)",
                      smooth: float | None = 0.1, ax=None, region=None, **kwargs):
    """Spatial residuals: counts and npred in the fit mask, summed over energy,
    Gaussian-smoothed (sigma ``smooth`` deg), compared by ``method`` (diff/sqrt(model):
    the significance of the smoothed difference, see
    :func:`xdl4.plot._data.smoothed_residuals`); NaN where no bin is fitted. The region
    (if any) is outlined. Returns the WCSAxes."""
    smooth = None if smooth is None else degrees(smooth)
    g = _data.grid(ds)
    fit = _data.masks.fit(ds)
    counts = ds["counts"].where(fit, 0).sum("energy").transpose("lat", "lon").values
    npred = ds.dl4.npred(models).where(fit, 0).sum("energy").transpose("lat", "lon").values
    res = _data.smoothed_residuals(counts, npred, smooth, g, method)
    any_fit = _data.masks.image(fit).transpose("lat", "lon").values if "lat" in fit.dims \
        else np.ones(g.shape, bool)
    res = np.where(any_fit, res, np.nan)
    ax = _style.sky_axes(g, ax)
    if method == "diff/sqrt(model)":
        kwargs.setdefault("vmin", -5)
        kwargs.setdefault("vmax", 5)
    else:
        finite = res[np.isfinite(res)]
        lim = float(np.max(np.abs(finite))) if finite.size else 1.0
        kwargs.setdefault("vmin", -lim)
        kwargs.setdefault("vmax", lim)
    _style.sky_image(ax, res, "residuals", f"Residuals, {_style.RESIDUAL_LABELS[method]}",
                     **kwargs)
    if region is not None:
        _style.contour_mask(ax, _data.region_pixels(ds, region), colors="k")
    smooth_text = f", Gaussian σ = {smooth:g}°" if smooth else ""
    ax.set_title(f"Spatial residuals{smooth_text}", fontsize="medium")
    return ax


def mask_image(ds: xr.Dataset, ax=None, **kwargs):
    """The lowest safe reco energy of each pixel (TeV, log colours; blank where no bin is
    safe), with the fit mask outlined. Returns the WCSAxes."""
    g = _data.grid(ds)
    safe = canonical(_data.masks.safe(ds))  # (energy, lat, lon)
    safe = np.broadcast_to(np.asarray(safe.values, bool), (ds.sizes["energy"],) + g.shape)
    e = _data.tev_edges(ds)
    first = np.argmax(safe, axis=0)
    threshold = np.where(safe.any(axis=0), e[first], np.nan)
    ax = _style.sky_axes(g, ax)
    from matplotlib import colors

    used = np.unique(first[safe.any(axis=0)])
    if used.size:  # one colour per energy bin edge that is a threshold somewhere
        bounds = e[used.min():used.max() + 2]
        cmap = _style.colormap(_style.CMAPS["threshold"]).resampled(max(bounds.size - 1, 1))
        norm = colors.BoundaryNorm(bounds, cmap.N)
    else:
        cmap, norm = None, None
    im = _style.sky_image(ax, threshold, "threshold", "Lowest safe energy [TeV]", norm=norm,
                          cmap=cmap, **kwargs)
    if used.size:
        cbar = im.colorbar
        cbar.set_ticks(bounds[:-1])
        cbar.set_ticklabels([f"{b:.3g}" for b in bounds[:-1]])
        cbar.minorticks_off()
    if "mask_fit" in ds:
        fit = _data.masks.image(_data.masks.fit(ds)).transpose("lat", "lon").values
        _style.contour_mask(ax, fit, colors="cyan")
        title = "Safe energy threshold; fit mask outlined"
    else:
        title = "Safe energy threshold (no fit mask)"
    ax.set_title(title, fontsize="medium")
    return ax
