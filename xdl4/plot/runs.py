"""The stacking figure: the runs' energy-dispersion kernels beside their stack's, and
predicted counts per energy of each run, their sum and the stacked dataset's."""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdl4.errors import ArgumentError

from . import _data, _style


def stacking_numbers(runs: xr.Dataset, models) -> dict:
    """Per run and for the stack: EDISP kernels at the centre and predicted counts per
    reco-energy bin (summed over pixels, in each dataset's safe mask). Cash kinds: npred
    (each run's FoV background model baked into the stack as gammapy does); on/off kinds:
    npred_signal (the background is profiled per dataset, so only the signal adds up)."""
    if "obs" not in runs.dims:
        raise ArgumentError("plot.stacking needs runs along an 'obs' dimension "
                         "(xr.concat(runs, 'obs'))")
    onoff = _data.is_onoff(runs)
    stacked = runs.dl4.stack(models=models)
    sources = _data.source_models(models)
    kernels, npreds, labels = [], [], []
    for i in range(runs.sizes["obs"]):
        run = runs.isel(obs=i)
        kernels.append(_data.edisp_at(run)["matrix"])
        npreds.append(_npred(run, models, onoff))
        labels.append(_run_label(runs, i))
    stacked_kernel = _data.edisp_at(stacked)["matrix"]
    return {"kernels": kernels, "stacked_kernel": stacked_kernel,
            "npred": np.array(npreds), "npred_sum": np.sum(npreds, axis=0),
            "npred_stacked": _npred(stacked, sources, onoff), "labels": labels,
            "true_edges": _data.tev_edges(runs, "energy_true"),
            "reco_edges": _data.tev_edges(runs), "onoff": onoff}


def _npred(ds: xr.Dataset, models, onoff: bool) -> np.ndarray:
    pred = ds.dl4.npred_signal(models) if onoff else ds.dl4.npred(models)
    pred = pred.where(_data.masks.safe(ds), 0)
    sky = [d for d in pred.dims if d != "energy"]
    return np.asarray(pred.sum(sky).transpose("energy").values, float)


def _run_label(runs: xr.Dataset, i: int) -> str:
    for name in ("obs_id", "meta_obs_id"):
        if name in runs.variables and "obs" in runs[name].dims:
            v = np.ravel(runs[name].isel(obs=i).values)
            if v.size:
                return f"obs {v[0]}"
    if "obs" in runs.coords:
        return f"obs {runs['obs'].values[i]}"
    return f"run {i}"


def stacking(runs: xr.Dataset, models, fig=None):
    """Top row: the EDISP kernel of each run and of the stack (at the centre, one colour
    scale); bottom: predicted counts per reco energy of each run (in its safe mask),
    their sum and the stacked dataset's — equal when stacking conserves npred — with
    their ratio below. Returns the Figure."""
    s = stacking_numbers(runs, models)
    n = len(s["kernels"])
    fig = _style.get_fig(fig, (3.3 * (n + 1) + 1.0, 8.5))
    gs = fig.add_gridspec(3, n + 1, height_ratios=(1.3, 1.2, 0.45))
    et, er = s["true_edges"], s["reco_edges"]
    vmax = max(float(np.max(k)) for k in s["kernels"] + [s["stacked_kernel"]])
    mesh = None
    for j, (kernel, title) in enumerate(zip(s["kernels"] + [s["stacked_kernel"]],
                                            s["labels"] + ["stacked"], strict=True)):
        ax = fig.add_subplot(gs[0, j])
        mesh = ax.pcolormesh(et, er, np.ma.masked_where(kernel <= 0, kernel).T,
                             cmap="viridis", vmin=0, vmax=vmax, shading="flat")
        _style.energy_axis(ax, true=True)
        ax.set_yscale("log")
        ax.set_ylabel("" if j else "Reconstructed energy [TeV]")
        ax.set_title(f"EDISP, {title}", fontsize="medium")
    fig.colorbar(mesh, ax=fig.axes[:n + 1], label="Probability per reco bin", shrink=0.9)
    ax = fig.add_subplot(gs[1, :])
    what = "Predicted signal counts" if s["onoff"] else "Predicted counts"
    for label, values in zip(s["labels"], s["npred"], strict=True):
        ax.stairs(values, er, baseline=None, lw=1, ls="--", label=label)
    ax.stairs(s["npred_sum"], er, color="k", baseline=None, lw=2, label="sum of runs")
    centre = np.sqrt(er[:-1] * er[1:])
    ax.plot(centre, s["npred_stacked"], "o", color="tab:red", ms=5, label="stacked dataset")
    ax.set_xscale("log")
    positive = s["npred_sum"][s["npred_sum"] > 0]
    if positive.size:
        ax.set_yscale("log")
        ax.set_ylim(positive.min() / 3, positive.max() * 2)
    ax.set_xlim(er[0], er[-1])
    ax.set_ylabel(f"{what}\nper bin (safe)")
    ax.legend(fontsize="small", ncol=2)
    ax.tick_params(labelbottom=False)
    ax.set_title(f"{what} per energy: runs, their sum and the stack", fontsize="medium")
    rax = fig.add_subplot(gs[2, :], sharex=ax)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(s["npred_sum"] > 0, s["npred_stacked"] / s["npred_sum"] - 1, np.nan)
    rax.plot(centre, ratio, "o", color="tab:red", ms=4)
    rax.axhline(0, color="k", lw=0.8)
    finite = ratio[np.isfinite(ratio)]
    lim = max(1e-6, 1.5 * float(np.max(np.abs(finite)))) if finite.size else 1.0
    rax.set_ylim(-lim, lim)
    rax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    _style.energy_axis(rax)
    rax.set_ylabel("stacked / sum − 1")
    return fig
