"""Reduced IRFs: PSF containment and profiles, energy-dispersion matrix, bias and
resolution."""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import _data, _style

FRACTIONS = (0.68, 0.95)


def _where(pos) -> str:
    """' at (lon, lat)' for a map position, '' for a region (or no position)."""
    lon, lat = pos
    return "" if lon is None else f" at ({lon:.2f}°, {lat:.2f}°)"


def containment(ds: xr.Dataset, position=None, fractions=FRACTIONS, ax=None):
    """PSF containment radii vs energy at ``position`` (default: the centre), on the
    PSF's own energy nodes; returns the Axes (one line per fraction)."""
    psf = _data.psf_at(ds, position)
    radii = _data.containment_radii(psf, fractions)
    ax = _style.get_ax(ax)
    for f, r in zip(fractions, radii, strict=True):
        ax.plot(psf["energy"], r, "o-", ms=3, label=f"{f:.0%} containment")
    _style.energy_axis(ax, true=psf["axis"] != "energy")
    ax.set_yscale("log")
    ax.set_ylabel("Containment radius [deg]")
    ax.legend(fontsize="small")
    ax.set_title(f"PSF{_where(psf['position'])}", fontsize="medium")
    return ax


def profiles(ds: xr.Dataset, position=None, energies=None, ax=None):
    """PSF profiles (sr-1) vs offset at ``position`` for a few energies (default: three
    nodes spread over the axis); returns the Axes."""
    psf = _data.psf_at(ds, position)
    nodes = psf["energy"]
    if energies is None:
        idx = np.unique(np.linspace(0, nodes.size - 1, 3).round().astype(int))
    else:
        from xdl4.axes import as_quantity

        want = np.atleast_1d(as_quantity(energies).to_value("TeV"))
        idx = [int(np.argmin(np.abs(np.log(nodes / w)))) for w in want]
    ax = _style.get_ax(ax)
    r999 = _data.containment_radii(psf, [0.999])[0]
    peak = 0.0
    for i in idx:
        prof = psf["profiles"][i]
        ok = prof > 0
        ax.plot(psf["rad"][ok], prof[ok], label=f"{nodes[i]:.3g} TeV")
        peak = max(peak, float(prof.max()))
    ax.set_yscale("log")
    if peak > 0:
        ax.set_ylim(peak * 1e-5, peak * 2)
    ax.set_xlim(0, min(psf["rad"][-1], 1.1 * float(np.max(r999[idx]))))
    ax.set_xlabel("Offset [deg]")
    ax.set_ylabel("PSF density [sr$^{-1}$]")
    ax.legend(fontsize="small", title="true energy" if psf["axis"] != "energy" else "energy")
    ax.set_title(f"PSF profiles{_where(psf['position'])}", fontsize="medium")
    return ax


def psf(ds: xr.Dataset, position=None, fractions=FRACTIONS, fig=None):
    """Containment radii vs energy and the profiles; returns the Figure."""
    fig = _style.get_fig(fig, (11, 4.2))
    a1, a2 = fig.subplots(1, 2)
    containment(ds, position, fractions, a1)
    profiles(ds, position, ax=a2)
    return fig


def matrix(ds: xr.Dataset, position=None, ax=None, colorbar: bool = True):
    """The energy-dispersion matrix P(reco bin | true energy) at ``position`` (default:
    the centre): true energy on x, reco energy on y, cells on the bin edges. Returns the
    Axes (the QuadMesh is ``ax.collections[0]``, its array the matrix transposed)."""
    ed = _data.edisp_at(ds, position)
    ax = _style.get_ax(ax)
    m = np.ma.masked_where(ed["matrix"] <= 0, ed["matrix"])
    mesh = ax.pcolormesh(ed["true_edges"], ed["reco_edges"], m.T, cmap="viridis",
                         vmin=0, shading="flat")
    _style.energy_axis(ax, true=True)
    ax.set_yscale("log")
    ax.set_ylabel("Reconstructed energy [TeV]")
    lo = max(ed["true_edges"][0], ed["reco_edges"][0])
    hi = min(ed["true_edges"][-1], ed["reco_edges"][-1])
    ax.plot([lo, hi], [lo, hi], color="w", lw=0.6, ls=":")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label="Probability per reco bin")
    title = "Energy dispersion" if "edisp" in ds else "Energy dispersion (none: bin overlap)"
    ax.set_title(title + _where(ed["position"]), fontsize="medium")
    return ax


def migration(ds: xr.Dataset, position=None, energies=None, ax=None):
    """P(reco bin | E_true) as steps on the reco-energy edges for a few true energies
    (default: three spread over the reco axis), each true energy marked; returns the
    Axes."""
    ed = _data.edisp_at(ds, position)
    et, er, m = ed["true_edges"], ed["reco_edges"], ed["matrix"]
    centre = np.sqrt(et[:-1] * et[1:])
    if energies is None:
        inside = np.flatnonzero((centre > er[0]) & (centre < er[-1]))
        pick = inside[np.linspace(0, inside.size - 1, 3).round().astype(int)] \
            if inside.size else np.arange(min(3, centre.size))
    else:
        from xdl4.axes import as_quantity

        want = np.atleast_1d(as_quantity(energies).to_value("TeV"))
        pick = [int(np.searchsorted(et, w, side="right") - 1) for w in want]
    ax = _style.get_ax(ax)
    for t in np.unique(pick):
        step = ax.stairs(m[t], er, lw=1.5, label=f"E_true {centre[t]:.3g} TeV")
        ax.axvline(centre[t], color=step.get_edgecolor(), ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("Reconstructed energy [TeV]")
    ax.set_ylabel("Probability per reco bin")
    ax.set_xlim(er[0], er[-1])
    ax.legend(fontsize="small")
    ax.set_title(f"Migration{_where(ed['position'])}", fontsize="medium")
    return ax


def bias_resolution(ds: xr.Dataset, position=None, ax=None):
    """Energy bias and resolution vs true energy: moments of each kernel row (see
    :func:`xdl4.plot._data.bias_resolution`), with the band the reco binning cannot
    resolve shaded. Returns the Axes."""
    ed = _data.edisp_at(ds, position)
    br = _data.bias_resolution(ed)
    e = ed["true_edges"]
    centre = np.sqrt(e[:-1] * e[1:])
    ax = _style.get_ax(ax)
    half = br["binning"]
    ax.axhspan(-half, half, color="0.9", lw=0, zorder=0,
               label=f"± half a reco bin ({half:.2f} in ln E)")
    ax.plot(centre, br["bias"], "o-", ms=3, label="bias: exp⟨ln E_reco/E_true⟩ − 1")
    ax.plot(centre, br["resolution"], "s-", ms=3, label="resolution: σ(ln E_reco)")
    ax.axhline(0, color="0.5", lw=0.8)
    _style.energy_axis(ax, true=True)
    ax.set_ylabel("Relative value")
    ax.legend(fontsize="small")
    ax.set_title(f"Bias and resolution{_where(ed['position'])}", fontsize="medium")
    return ax


def edisp(ds: xr.Dataset, position=None, fig=None):
    """The EDISP matrix, the migration at three true energies, and bias / resolution;
    returns the Figure."""
    fig = _style.get_fig(fig, (16, 4.3))
    a1, a2, a3 = fig.subplots(1, 3)
    matrix(ds, position, a1)
    migration(ds, position, ax=a2)
    bias_resolution(ds, position, a3)
    return fig
