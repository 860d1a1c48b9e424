"""Spectral models with their error band, flux points (SEDs, likelihood profiles, upper
limits) and light curves."""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdl4.errors import ArgumentError

from . import _data, _style

DELTA_STAT_MAX = 25.0  # colour range of likelihood profiles (5 sigma for one parameter)


def _energy_bounds(energy_bounds) -> tuple[float, float]:
    from xdl4.axes import as_quantity

    lo, hi = (float(as_quantity(x).to_value("TeV")) for x in energy_bounds)
    if not 0 < lo < hi:
        raise ArgumentError(f"energy_bounds must be 0 < min < max, got {energy_bounds!r}")
    return lo, hi


def sed_label(sed_type: str, unit: str) -> str:
    return f"{_style.SED_LABELS[sed_type]}{_style.unit_label(unit)}"


def spectrum(model, energy_bounds=(0.1, 100.0), result=None, covariance=None,
             sed_type: str = "e2dnde", ax=None, n_points: int = 100, n_sigma: float = 1.0,
             band: bool = True, **kwargs):
    """A spectral model (or SkyModel) as ``sed_type`` between ``energy_bounds`` with its
    error band: the first-order propagation of ``result``'s (or ``covariance``'s, or the
    parameter errors') covariance, ``n_sigma`` wide (:mod:`xdl4.models.propagation`).
    ``dnde`` / ``e2dnde`` at the energies; ``flux`` / ``eflux`` integrated from each
    energy up to the upper bound (F(>E)). Returns the Axes: the model is
    ``ax.lines[-1]``, the band ``ax.collections[-1]`` (absent without errors)."""
    from xdl4.models.propagation import propagate

    lo, hi = _energy_bounds(energy_bounds)
    energies = np.geomspace(lo, hi, int(n_points))
    if sed_type in ("flux", "eflux"):
        energies = energies[:-1]
        data = propagate(model, (energies, np.full_like(energies, hi)), sed_type, result,
                         covariance, n_sigma)
    else:
        data = propagate(model, energies, sed_type, result, covariance, n_sigma)
    unit = data["value"].attrs["units"]
    ax = _style.get_ax(ax)
    ax.set_xscale("log")
    ax.set_yscale("log")
    kwargs.setdefault("label", getattr(model, "name", None) or type(model).__name__)
    (line,) = ax.plot(energies, data["value"].values, **kwargs)
    if band and np.any(data["error"].values > 0):
        ax.fill_between(energies, data["lower"].values, data["upper"].values,
                        color=line.get_color(), alpha=0.25, lw=0)
        line.set_label(f"{line.get_label()} ({n_sigma:g}σ band)")
    ax.set_xlabel("Energy [TeV]" if sed_type in ("dnde", "e2dnde") else
                  "Lower energy E [TeV]")
    text = sed_label(sed_type, unit)
    if sed_type in ("flux", "eflux"):
        text = text.replace(_style.SED_LABELS[sed_type], f"{_style.SED_LABELS[sed_type]} (>E)")
    ax.set_ylabel(text)
    return ax


def _model_bins(model, lo, hi, sed_type, result, covariance, ax, n_sigma=1.0, **kwargs):
    """A model's integral (energy) flux in the flux points' bins: a segment per bin and
    its band."""
    from xdl4.models.propagation import propagate

    data = propagate(model, (lo, hi), sed_type, result, covariance, n_sigma)
    color = kwargs.pop("color", None)
    lines = ax.hlines(data["value"].values, lo, hi, color=color, label=kwargs.pop(
        "label", getattr(model, "name", None)), **kwargs)
    color = lines.get_color()[0]
    if np.any(data["error"].values > 0):
        for a, b, low, up in zip(lo, hi, data["lower"].values, data["upper"].values,
                                 strict=True):
            ax.fill_between([a, b], [low, low], [up, up], color=color, alpha=0.25, lw=0)
    return ax


def _points(ax, x, xerr, p, where, label, color=None, **kwargs):
    """Data points with asymmetric errors and upper limits (downward arrows)."""
    value, errn, errp, ul, is_ul = (p[k][where] for k in ("value", "errn", "errp", "ul",
                                                           "is_ul"))
    x, xlo, xhi = x[where], xerr[0][where], xerr[1][where]
    det = ~is_ul & np.isfinite(value)
    kwargs.setdefault("fmt", "o")
    kwargs.setdefault("ms", 5)
    cont = ax.errorbar(x[det], value[det],
                       yerr=[np.nan_to_num(errn[det]), np.nan_to_num(errp[det])],
                       xerr=[xlo[det], xhi[det]], label=label, color=color, **kwargs)
    color = cont.lines[0].get_color()
    lim = is_ul & np.isfinite(ul)
    if lim.any():
        ax.errorbar(x[lim], ul[lim], yerr=0.4 * ul[lim], xerr=[xlo[lim], xhi[lim]],
                    uplims=True, fmt="none", color=color,
                    label="upper limits" if label is None else f"{label} (UL)")
    return cont


def sed(fp: xr.Dataset, models=None, result=None, covariance=None, sed_type=None, ax=None,
        profiles: bool = True, n_sigma: float = 1.0, **kwargs):
    """Flux points as ``sed_type`` (default e2dnde): asymmetric errors, bins as x error
    bars, upper limits as arrows, likelihood profiles as a colour map when the data have
    ``stat_scan``/``norm_scan``, and each source of ``models`` with its error band
    (``result`` / ``covariance``, see :func:`spectrum`; flux / eflux: the model in the
    points' bins). A light curve (``time`` dim) is drawn against time. Returns the Axes:
    the points are ``ax.containers[0]``."""
    if "time" in fp.dims:
        return lightcurve(fp, sed_type, ax, **kwargs)
    sed_type = sed_type or "e2dnde"
    p = _data.flux_points(fp, sed_type)
    own = ax is None  # a figure of its own: black points and a title; on a shared Axes
    ax = _style.get_ax(ax)  # (several instruments) each set takes the next colour
    if profiles:
        prof = _data.likelihood_profiles(fp, sed_type)
        if prof is not None:
            _profiles(ax, prof)
    e = p["e_ref"]
    has_bounds = np.all(np.isfinite(p["e_lo"]))
    xerr = (e - p["e_lo"], p["e_hi"] - e) if has_bounds else (np.zeros_like(e),) * 2
    kwargs.setdefault("label", _data.dataset_name(fp) or "flux points")
    if own:
        kwargs.setdefault("color", "k")
    _points(ax, e, xerr, p, np.ones(e.shape, bool), **kwargs)
    sources = _data.sources_for(models, {_data.dataset_name(fp)})
    for m in sources:
        if sed_type in ("flux", "eflux"):
            _model_bins(m, p["e_lo"], p["e_hi"], sed_type, result, covariance, ax, n_sigma)
        else:
            lo = np.nanmin(p["e_lo"]) if has_bounds else e.min()
            hi = np.nanmax(p["e_hi"]) if has_bounds else e.max()
            spectrum(m, (lo, hi), result, covariance, sed_type, ax, n_sigma=n_sigma)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel(sed_label(sed_type, p["unit"]))
    ax.legend(fontsize="small")
    if own:
        ax.set_title(_data.dataset_name(fp), fontsize="medium")
    return ax


def _profiles(ax, prof: dict):
    """Delta-stat of each energy bin's likelihood scan, resampled on a common log grid of
    the SED quantity, as one QuadMesh (blank where a bin was not scanned)."""
    values, delta = prof["values"], prof["delta"]
    ok = np.isfinite(values) & (values > 0) & np.isfinite(delta)
    if not ok.any():
        return None
    y = np.geomspace(values[ok].min(), values[ok].max(), 201)
    yc = np.sqrt(y[:-1] * y[1:])
    edges_x = np.unique(np.concatenate([prof["e_lo"], prof["e_hi"]]))
    z = np.full((yc.size, edges_x.size - 1), np.nan)
    for j in range(values.shape[0]):
        good = ok[j]
        if good.sum() < 2:
            continue
        order = np.argsort(values[j][good])
        lv, d = np.log(values[j][good][order]), delta[j][good][order]
        col = np.interp(np.log(yc), lv, d, left=np.nan, right=np.nan)
        k = int(np.searchsorted(edges_x, prof["e_lo"][j]))
        z[:, k] = col
    from matplotlib import colors

    z = np.where(z <= DELTA_STAT_MAX, z, np.nan)  # colour only the likely region
    mesh = ax.pcolormesh(edges_x, y, np.ma.masked_invalid(z), cmap="Blues_r",
                         norm=colors.Normalize(0, DELTA_STAT_MAX), shading="flat", zorder=0)
    ax.figure.colorbar(mesh, ax=ax, label="Likelihood profile: Δ stat (−2 Δ ln L)")
    return mesh


def lightcurve(fp: xr.Dataset, sed_type=None, ax=None, **kwargs):
    """A light curve: each energy bin's ``sed_type`` (default: the file's own, dnde for
    likelihood light curves) against time (MJD), time bins as x error bars, upper limits
    as arrows. Returns the Axes."""
    sed_type = sed_type or (fp.attrs.get("sed_type") if fp.attrs.get("sed_type") in
                            _data.SED_UNITS else "dnde")
    p = _data.flux_points(fp, sed_type)
    start, stop = _data.time_edges(fp)
    t0, t1 = start.mjd, stop.mjd
    mid = 0.5 * (t0 + t1)
    ax = _style.get_ax(ax, (8, 4.5))
    n_e = p["value"].shape[1]
    for j in range(n_e):
        if np.isfinite(p["e_lo"][j]):
            text = f"{p['e_lo'][j]:.3g}–{p['e_hi'][j]:.3g} TeV"
        else:
            text = f"{p['e_ref'][j]:.3g} TeV"
        sub = {k: (v[:, j] if isinstance(v, np.ndarray) and v.ndim == 2 else v)
               for k, v in p.items()}
        _points(ax, mid, (mid - t0, t1 - mid), sub, np.ones(mid.shape, bool), label=text,
                **kwargs)
    scale = str(fp["time"].attrs.get("timesys", start.scale)).upper()
    ax.set_xlabel(f"Time [MJD, {scale}]")
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.set_ylabel(sed_label(sed_type, p["unit"]))
    if np.nanmin(np.where(p["is_ul"], p["ul"], p["value"])) > 0:
        ax.set_yscale("log")
    ax.legend(fontsize="small", title="energy")
    ax.set_title(f"{fp.attrs.get('name', '')}: light curve", fontsize="medium")
    return ax


def residuals(fp: xr.Dataset, models, method: str = "diff/model", ax=None, **kwargs):
    """Flux-point residuals (dnde - model, or / model) at the reference energies with
    the points' errors scaled alike; upper limits left out. Returns the Axes."""
    if "time" in fp.dims:
        raise ArgumentError("plot.residuals of a light curve is not defined (one model "
                         "value per time bin)")
    p = _data.flux_points(fp, "dnde")
    m = _data.model_dnde(fp, models)
    res = _data.stats.residuals(p["value"], m, method, _data.FLUX_RESIDUAL_METHODS)
    res = np.where(p["is_ul"], np.nan, res)
    scale = 1 / m if method == "diff/model" else np.ones_like(m)
    e = p["e_ref"]
    has_bounds = np.all(np.isfinite(p["e_lo"]))
    xerr = [e - p["e_lo"], p["e_hi"] - e] if has_bounds else None
    ax = _style.get_ax(ax)
    kwargs.setdefault("fmt", "o")
    kwargs.setdefault("color", "k")
    kwargs.setdefault("ms", 4)
    ax.errorbar(e, res, yerr=[np.nan_to_num(p["errn"] * scale),
                              np.nan_to_num(p["errp"] * scale)], xerr=xerr, **kwargs)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel("Residuals\n" + ("(data − model) / model" if method == "diff/model" else
                                   f"data − model{_style.unit_label(p['unit'])}"))
    return ax


def fit_figure(fp: xr.Dataset, models, result=None, covariance=None, sed_type=None,
               method: str = "diff/model", fig=None):
    """SED with the models above, residuals below (shared energy axis); returns the
    Figure (axes: SED, residuals)."""
    fig = _style.get_fig(fig, (7, 6))
    gs = fig.add_gridspec(2, 1, height_ratios=(2.6, 1), hspace=0.05)
    ax_sed = fig.add_subplot(gs[0])
    ax_res = fig.add_subplot(gs[1], sharex=ax_sed)
    sed(fp, models, result, covariance, sed_type, ax_sed, profiles=False)
    residuals(fp, models, method, ax_res)
    ax_sed.tick_params(labelbottom=False)
    ax_sed.set_xlabel("")
    return fig
