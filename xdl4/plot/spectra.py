"""Counts spectra as steps on the reco-energy bin edges, spectral residuals, fit figures."""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import _data, _style


def counts(ds: xr.Dataset, ax=None, models=None, region=None):
    """Counts, background and excess per reco-energy bin as steps on the bin edges (a map
    dataset: summed over ``region``'s pixels), bins outside the masks shaded. Returns the
    Axes (its ``patches`` hold the StepPatches, counts first)."""
    s = _data.counts_spectrum(ds, models, region)
    ax = _style.get_ax(ax)
    e = s["edges"]
    line = {"baseline": None, "lw": 1.2}
    ax.stairs(s["counts"], e, color="k", **{**line, "lw": 1.5}, label="Counts")
    if _data.is_onoff(ds):
        ax.stairs(s["background"], e, color="tab:blue", **line, label="α × OFF counts")
    elif "background" in ds or models is not None:
        ax.stairs(s["background"], e, color="tab:blue", **line, label="Background")
    ax.stairs(s["excess"], e, color="tab:red", ls="--", **line, label="Excess")
    _style.shade_masks(ax, e, s["mask_safe"], s["mask_fit"] if "mask_fit" in ds else None)
    _style.energy_axis(ax)
    pos = np.concatenate([s["counts"], s["background"]])
    pos = pos[pos > 0]
    if pos.size:
        ax.set_yscale("log")
        ax.set_ylim(0.5 * pos.min(), 2 * pos.max())
    ax.set_ylabel("Counts per bin")
    ax.set_xlim(e[0], e[-1])
    ax.legend(fontsize="small")
    ax.set_title("Counts" + (" in region" if region is not None else ""), fontsize="medium")
    return ax


def spectral_residuals(ds: xr.Dataset, models, method: str = "diff/sqrt(model)", ax=None,
                       region=None, **kwargs):
    """Residuals per reco-energy bin (maps: summed over ``region``) with the excess error
    scaled as the residual (gammapy's ``plot_residuals_spectral``); bins outside the fit
    mask are not drawn. Returns the Axes (the points are ``ax.containers[0]``)."""
    s = _data.counts_spectrum(ds, models, region)
    fit = s["mask_fit"]
    counts_fit = np.where(fit, s["counts"], np.nan)
    npred = np.where(fit, s["npred"], np.nan)
    res = _data.stats.residuals(counts_fit, npred, method)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = {"diff": s["excess_err"], "diff/model": s["excess_err"] / npred,
               "diff/sqrt(model)": s["excess_err"] / np.sqrt(npred)}[method]
    err = np.where(fit, err, np.nan)
    e = s["edges"]
    centre = np.sqrt(e[:-1] * e[1:])
    ax = _style.get_ax(ax)
    kwargs.setdefault("color", "k")
    kwargs.setdefault("fmt", "o")
    kwargs.setdefault("ms", 4)
    ax.errorbar(centre, res, yerr=err, xerr=[centre - e[:-1], e[1:] - centre], **kwargs)
    ax.axhline(0, color="0.4", lw=0.8)
    _style.shade_masks(ax, e, s["mask_safe"], fit)
    _style.energy_axis(ax)
    ax.set_xlim(e[0], e[-1])
    ax.set_ylabel(f"Residuals\n{_style.RESIDUAL_LABELS[method]}")
    finite = np.isfinite(res) & np.isfinite(err)
    if finite.any():
        lo, hi = np.min((res - err)[finite]), np.max((res + err)[finite])
        pad = 0.1 * (hi - lo or 1.0)
        ax.set_ylim(min(lo - pad, -pad), max(hi + pad, pad))
    return ax


def excess_vs_signal(ds: xr.Dataset, models, ax=None, region=None):
    """Excess counts with errors at the bin centres (x error bars: the bins) and the
    predicted signal as steps on the bin edges (gammapy's ``plot_excess``)."""
    s = _data.counts_spectrum(ds, models, region)
    e = s["edges"]
    centre = np.sqrt(e[:-1] * e[1:])
    ax = _style.get_ax(ax)
    safe = s["mask_safe"]
    ax.errorbar(centre[safe], s["excess"][safe], yerr=s["excess_err"][safe],
                xerr=[(centre - e[:-1])[safe], (e[1:] - centre)[safe]], fmt="o", ms=4,
                color="k", label="Excess counts")
    ax.stairs(s["npred_signal"], e, color="tab:red", baseline=None, lw=1.5,
              label="Predicted signal counts")
    _style.shade_masks(ax, e, safe, s["mask_fit"] if "mask_fit" in ds else None)
    ax.set_xscale("log")
    ax.set_xlim(e[0], e[-1])
    top = np.nanmax(np.concatenate([(s["excess"] + s["excess_err"])[safe],
                                    s["npred_signal"][safe]])) if safe.any() else 1.0
    positive = s["excess"][safe][s["excess"][safe] > 0]
    if positive.size and top > 0:
        ax.set_yscale("log")
        ax.set_ylim(0.3 * max(positive.min(), top * 1e-4), 2 * top)
    ax.set_ylabel("Counts per bin")
    ax.legend(fontsize="small")
    return ax


def fit_figure(ds: xr.Dataset, models, method: str = "diff/sqrt(model)", fig=None,
               region=None):
    """Excess vs predicted signal above, residuals below (shared energy axis); returns
    the Figure (axes: spectrum, residuals)."""
    fig = _style.get_fig(fig, (7, 6))
    gs = fig.add_gridspec(2, 1, height_ratios=(2.6, 1), hspace=0.05)
    ax_spec = fig.add_subplot(gs[0])
    ax_res = fig.add_subplot(gs[1], sharex=ax_spec)
    excess_vs_signal(ds, models, ax_spec, region)
    spectral_residuals(ds, models, method, ax_res, region)
    ax_spec.tick_params(labelbottom=False)
    ax_spec.set_xlabel("")
    ax_spec.set_title(f"{_data.dataset_name(ds)}: fit", fontsize="medium")
    return fig


def masks(ds: xr.Dataset, ax=None):
    """Counts steps with the bins outside the safe mask shaded and those outside the fit
    mask hatched; returns the Axes."""
    ax = counts(ds, ax)
    ax.set_title("Masks: safe (unshaded) and fit (unhatched) energy range",
                 fontsize="medium")
    return ax


def exposure(ds: xr.Dataset, position=None, ax=None):
    """Exposure per true-energy bin (at the pixel nearest ``position`` for maps, default
    the centre) at the bin centres; with a livetime, the effective area on the right
    axis. Returns the Axes."""
    x = _data.exposure_at(ds, position)
    e = x["edges"]
    centre = np.sqrt(e[:-1] * e[1:])
    ax = _style.get_ax(ax)
    ax.plot(centre, x["values"], "o-", ms=3, color="tab:green")
    _style.energy_axis(ax, true=True)
    ax.set_yscale("log")
    positive = x["values"][x["values"] > 0]
    if positive.size:
        ax.set_ylim(positive.min() / 2, positive.max() * 2)
    ax.set_ylabel(_style.label("exposure", x["unit"]))
    ax.set_xlim(e[0], e[-1])
    if x["livetime"]:
        from astropy import units as u

        livetime = x["livetime"]
        to_area = (u.Unit(x["unit"] or "") / u.s).to("m2") / livetime
        sec = ax.secondary_yaxis("right", functions=(lambda v: v * to_area,
                                                     lambda a: a / to_area))
        sec.set_ylabel("Effective area [m$^{2}$]" + f" (livetime {livetime:.4g} s)")
    where = " (region)" if x["position"][0] is None else \
        f" at ({x['position'][0]:.2f}°, {x['position'][1]:.2f}°)"
    ax.set_title(f"Exposure{where}", fontsize="medium")
    return ax
