"""Excess and significance maps (gammapy's ``ExcessMapEstimator``), all pixels at once.

Counts, background and exposure are summed over the energy groups (safe mask applied),
then correlated with a top-hat disk of ``correlation_radius`` (gammapy's
``Tophat2DKernel``): the correlated counts, background and signal of every pixel give
its excess, TS and signed significance, with Cash (known background: the dataset's
predicted counts with ``models``) or WStat / Li & Ma (on/off: the OFF counts correlated
too, alpha = correlated background / correlated OFF counts) statistics, symmetric and
asymmetric errors and upper limits, and a flux map (the excess over the predicted
counts of ``spectral_model``: a power law of index 2 by default).

The correlation is an exact sum over the disk (one cumulative sum per disk row), not a
float32 FFT as in gammapy; the Cash errors are the closed forms (Lambert W) gammapy uses;
the WStat errors are vectorised root searches over all pixels.

>>> import xdl4
>>> ds = xdl4.examples.map_dataset()
>>> m = ds.dl4.excess_map("0.2 deg")
>>> sorted(k for k in ("sqrt_ts", "npred_excess", "norm", "flux") if k in m)
['flux', 'norm', 'npred_excess', 'sqrt_ts']
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdl4.errors import KindError
from xdl4.gammapy_float32 import working_dtype
from xdl4.schema import canonical
from xdl4.skymath import degrees

from ._core import cash_ts, evaluator, is_onoff, masks, wstat
from ._core import sqrt_ts as signed_sqrt
from ._maps import (
    correlate,
    group_any,
    group_sum,
    groups_of,
    map_output,
    model_json,
    reco_exposure,
    tophat,
)
from .flux_points import parse_selection, reference_fluxes
from .profile import bracketed_root

OPTIONAL = ("errn-errp", "ul", "alpha", "acceptance_on", "acceptance_off")


def _cash_errors(n_on, n_sigma):
    """(errn, errp) of the excess for known background: where cash rises by n_sigma^2
    (closed form via the two branches of Lambert W; gammapy's convention at n_on = 0)."""
    from scipy.special import lambertw

    c = n_sigma ** 2 / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        arg = -np.exp(-c / n_on - 1)
        errn = np.where(n_on > 0, n_on * (lambertw(arg, 0).real + 1), 0.0)
        errp = np.where(n_on > 0, -n_on * (lambertw(arg, -1).real + 1), c)
    return errn, errp


def _wstat_errors(n_on, n_off, alpha, mu_sig, n_sig, stat_max, error, n_sigma, n_sigma_ul,
                  selection):
    """gammapy's WStat excess errors and upper limit: roots of the WStat profile in the
    signal within its search ranges (errn falls back to n_on, the others to NaN)."""
    flat = [np.ravel(np.broadcast_to(v, np.shape(n_on))) for v in (n_on, n_off, alpha, mu_sig)]

    def excess(target):
        t = np.ravel(np.broadcast_to(target, np.shape(n_on)))

        def f(mu, idx):
            on, off, a, sig = (v[idx] for v in flat)
            return wstat(on, off, a, mu + sig) - t[idx]
        return f

    out = {}
    if "errn-errp" in selection:
        span = 2 * n_sigma * (error + 1)
        f = excess(stat_max + n_sigma ** 2)
        down = bracketed_root(f, n_sig - span, n_sig)
        up = bracketed_root(f, n_sig, n_sig + span)
        out["errn"] = np.where(np.isnan(down), n_on, n_sig - down)
        out["errp"] = up - n_sig
    if "ul" in selection:
        span = 2 * n_sigma_ul * (error + 1)
        f = excess(wstat(n_on, n_off, alpha, n_sig + mu_sig) + n_sigma_ul ** 2)
        out["ul"] = bracketed_root(f, n_sig, n_sig + span)
    return out


def excess_map(ds: xr.Dataset, correlation_radius="0.1 deg", models=None, *,
               n_sigma: float = 1.0, n_sigma_ul: float = 2.0, selection_optional="all",
               energy_edges=None, correlate_off: bool = True, spectral_model=None,
               dtype: str = "float64") -> xr.Dataset:
    """Correlated counts, background, excess, significance, errors and flux of a map
    dataset (gammapy's ``ExcessMapEstimator`` quantities).

    ``correlation_radius``: angle (string, Quantity, or deg). ``models``: predicted counts
    taken as background (cash kinds: everything the models predict, FoV background
    included; on/off: the models' signal is subtracted from the excess).
    ``energy_edges``: energy groups (default one group over all bins, as gammapy).
    ``selection_optional``: "all" (default), None, or among ``errn-errp``, ``ul``,
    ``alpha``, ``acceptance_on``, ``acceptance_off`` (the last three: on/off only).
    ``dtype``: of the correlated maps and the results. ``"float32"`` evaluates the
    statistics on float32 correlated maps as gammapy does (its numbers to float32
    rounding: the Cash ``norm_errn``/``norm_errp`` move by up to 1e-4 near the Lambert W
    branch point); the default float64 is the more precise.

    Returns a Dataset on (energy group, lat, lon): ``npred`` = ``counts`` (correlated
    counts), ``background``, ``npred_excess``, ``ts``, ``sqrt_ts`` (Cash, or WStat / Li &
    Ma), ``norm``, ``norm_err`` (x ``n_sigma``), ``norm_errn``, ``norm_errp``,
    ``norm_ul`` (excess / predicted counts of ``spectral_model``) and ``flux``,
    ``flux_err``, ... (norm x the model's flux in the group). NaN outside the mask.
    """

    from xdl4.models import PowerLawSpectralModel, SkyModel

    if "lat" not in ds.dims:
        raise KindError(f"excess_map is not defined for {ds.dl4.kind} datasets (excess maps "
                        "need a map dataset: lat/lon pixels)")
    selection = parse_selection(selection_optional, OPTIONAL)
    dtype = working_dtype(dtype, "excess_map")
    radius = degrees(correlation_radius)
    spectral = PowerLawSpectralModel(index=2) if spectral_model is None else spectral_model
    onoff = is_onoff(ds)
    grid = ds.dl4.grid
    kernel = tophat(radius, float(np.mean(grid.binsz)))
    group, e_min, e_max = groups_of(ds, energy_edges)
    ng = e_min.size
    ev = evaluator(ds)
    safe = np.broadcast_to(np.asarray(canonical(masks.safe(ds)).values, bool),
                           ev.counts.shape)  # the evaluator's arrays are in canonical order
    fit_mask = np.broadcast_to(np.asarray(canonical(
        ds["mask_fit"] if "mask_fit" in ds else xr.ones_like(ds["counts"], bool)).values, bool),
        ev.counts.shape)
    mask = group_any(safe, group, ng) & group_any(fit_mask, group, ng)
    counts = group_sum(ev.counts, group, ng, safe)
    def correlated(images):  # every map the statistics read, in the working dtype
        return correlate(images, kernel, dtype)

    n_on = correlated(counts * mask)
    variables: dict = {}
    if onoff:
        sig = ev.npred_signal(models)
        n_off_g = group_sum(ev.counts_off, group, ng, safe)
        acc = group_sum(np.asarray(canonical(ds["acceptance"]).values, float)
                        * np.ones(ev.counts.shape), group, ng, safe)
        with np.errstate(divide="ignore", invalid="ignore"):
            bkg = group_sum(np.where(np.isfinite(ev.alpha), ev.alpha, 0.0) * ev.counts_off,
                            group, ng, safe)
            acc_off = acc * n_off_g / bkg
        mu_sig = correlated(group_sum(sig, group, ng, safe) * mask)
        if correlate_off:
            b = np.where(acc_off == 0, 0.0, bkg) * mask
            b = np.where(np.isfinite(b), b, 0.0)
            n_off = correlated(n_off_g * mask)
            with np.errstate(divide="ignore", invalid="ignore"):
                alpha = correlated(b) / n_off
        else:
            n_off = (n_off_g * mask).astype(dtype)
            with np.errstate(divide="ignore", invalid="ignore"):
                alpha = correlated(acc * mask) / (acc_off * mask).astype(dtype)
        n_bkg = alpha * n_off
        n_sig = n_on - n_bkg - mu_sig
        with np.errstate(invalid="ignore", divide="ignore"):
            stat_null = wstat(n_on, n_off, alpha, mu_sig)
            stat_max = wstat(n_on, n_off, alpha, n_sig + mu_sig)
        ts = np.clip(stat_null - stat_max, 0, None)
        error = np.sqrt(n_on + alpha ** 2 * n_off)
        with np.errstate(invalid="ignore", divide="ignore"):
            errs = _wstat_errors(n_on, n_off, alpha, mu_sig, n_sig, stat_max, error,
                                 n_sigma, n_sigma_ul, selection)
        for key, values in (("alpha", alpha), ("acceptance_on", acc * mask),
                            ("acceptance_off", acc_off * mask)):
            if key in selection:
                variables[key] = (values, "")
    else:
        npred = ev.npred(models)
        n_bkg = correlated(group_sum(npred, group, ng, safe) * mask)
        n_sig = n_on - n_bkg
        ts = cash_ts(n_on, n_bkg)
        error = np.sqrt(n_on)
        errs = {}
        if "errn-errp" in selection:
            errs["errn"], errs["errp"] = _cash_errors(n_on, n_sigma)
        if "ul" in selection:
            errs["ul"] = _cash_errors(n_on, n_sigma_ul)[1] + np.where(n_on > 0, n_sig, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sqrt_ts = signed_sqrt(ts, n_sig)
        exposure = group_sum(reco_exposure(ev, spectral), group, ng, safe)
        expo = correlate(exposure, kernel) / correlate(mask.astype(float), kernel)
        norms = {"norm": n_sig / expo, "norm_err": error * n_sigma / expo}
        for key in ("errn", "errp", "ul"):
            if key in errs:
                norms[f"norm_{key}"] = errs[key] / expo
    ref = reference_fluxes(spectral, e_min, e_max)["ref_flux"][:, None, None]
    out = {"npred": (n_on, ""), "npred_excess": (n_sig, ""), "counts": (n_on, ""),
           "background": (n_bkg, ""), "ts": (ts, ""), "sqrt_ts": (sqrt_ts, "")}
    out.update({k: (v, "") for k, v in norms.items()})
    out.update({k.replace("norm", "flux"): (v * ref, "cm-2 s-1") for k, v in norms.items()})
    out.update(variables)
    out = {k: (np.where(mask, v, np.nan).astype(dtype), u) for k, (v, u) in out.items()}
    attrs = {"estimator": "excess_map", "name": ds.attrs.get("name", ""),
             "correlation_radius_deg": radius, "n_sigma": float(n_sigma),
             "n_sigma_ul": float(n_sigma_ul), "stat_type": "wstat" if onoff else "cash",
             "sed_type": "likelihood",
             "reference_model": model_json(SkyModel(spectral, name="excess_map"))}
    return map_output(ds, out, e_min, e_max, attrs)
