"""matplotlib helpers: lazy import, axes and figures, labels with units, colour maps,
sky axes with longitude increasing to the left."""

from __future__ import annotations

import numpy as np

#: colour map per quantity (diverging ones are drawn with limits symmetric about 0)
CMAPS = {
    "counts": "afmhot",
    "npred": "afmhot",
    "npred_signal": "afmhot",
    "counts_off": "afmhot",
    "background": "viridis",
    "exposure": "cividis",
    "acceptance": "cividis",
    "acceptance_off": "cividis",
    "excess": "RdBu_r",
    "sqrt_ts": "RdBu_r",
    "residuals": "RdBu_r",
    "mask": "Greys",
    "threshold": "plasma",
}
DIVERGING = ("excess", "sqrt_ts", "residuals")

#: display names of quantities (used when a variable has no ``long_name``)
NAMES = {
    "counts": "Counts",
    "counts_off": "OFF counts",
    "background": "Background counts",
    "excess": "Excess counts",
    "sqrt_ts": "Significance √TS",
    "npred": "Predicted counts",
    "npred_signal": "Predicted signal counts",
    "npred_background": "Predicted background counts",
    "exposure": "Exposure",
    "acceptance": "ON acceptance",
    "acceptance_off": "OFF acceptance",
    "edisp": "Energy dispersion",
    "psf": "PSF",
    "residuals": "Residuals",
    "mask_safe": "Safe mask",
    "mask_fit": "Fit mask",
}

RESIDUAL_LABELS = {"diff": "data − model", "diff/model": "(data − model) / model",
                   "diff/sqrt(model)": "(data − model) / √model"}

SED_LABELS = {"dnde": "dN/dE", "e2dnde": "E² dN/dE", "flux": "Flux", "eflux": "Energy flux"}

FRAME_NAMES = {"icrs": ("Right ascension", "Declination"),
               "galactic": ("Galactic longitude", "Galactic latitude")}


def plt():
    """matplotlib.pyplot, imported on first use (matplotlib is the optional ``plot`` extra)."""
    try:
        import matplotlib.pyplot as pyplot
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("xdl4's plots need matplotlib: pip install 'xdl4[plot]'") from err
    return pyplot


def unit_label(unit: str | None) -> str:
    """`` [unit]`` in matplotlib mathtext, or '' for dimensionless."""
    if unit is None or str(unit).strip() in ("", "1"):
        return ""
    from astropy import units as u

    try:
        parsed = u.Unit(unit)
    except ValueError:
        return f" [{unit}]"
    if parsed == u.dimensionless_unscaled:
        return ""
    return f" [{parsed.to_string('latex_inline')}]"


def label(name: str, unit: str | None = None, long_name: str | None = None) -> str:
    return f"{long_name or NAMES.get(name, name)}{unit_label(unit)}"


def new_figure(figsize):
    """A figure with constrained layout (colour bars and WCS labels kept inside)."""
    return plt().figure(figsize=figsize, layout="constrained")


def get_ax(ax=None, figsize=(6, 4.5)):
    if ax is not None:
        return ax
    return new_figure(figsize).add_subplot()


def get_fig(fig=None, figsize=(10, 4.5)):
    return fig if fig is not None else new_figure(figsize)


def energy_axis(ax, true: bool = False, which: str = "x") -> None:
    text = "True energy [TeV]" if true else "Energy [TeV]"
    if which == "x":
        ax.set_xscale("log")
        ax.set_xlabel(text)
    else:
        ax.set_yscale("log")
        ax.set_ylabel(text)


def shade_masks(ax, edges: np.ndarray, safe: np.ndarray, fit: np.ndarray | None = None
                ) -> None:
    """Grey spans over reco-energy bins outside the safe mask, hatched outside the fit
    mask (where safe)."""
    def spans(mask):
        out, start = [], None
        for i, m in enumerate(mask):
            if not m and start is None:
                start = i
            if m and start is not None:
                out.append((edges[start], edges[i]))
                start = None
        if start is not None:
            out.append((edges[start], edges[-1]))
        return out

    for k, (lo, hi) in enumerate(spans(np.asarray(safe, bool))):
        ax.axvspan(lo, hi, color="0.85", zorder=0, lw=0,
                   label="outside safe mask" if k == 0 else None)
    if fit is not None:
        fit_only = np.asarray(fit, bool) | ~np.asarray(safe, bool)
        for k, (lo, hi) in enumerate(spans(fit_only)):
            ax.axvspan(lo, hi, facecolor="none", edgecolor="0.6", hatch="//", zorder=0, lw=0,
                       label="outside fit mask" if k == 0 else None)


def sky_axes(g, ax=None, fig=None, subplot=(1, 1, 1)):
    """WCSAxes of grid ``g``: ``ax`` if it is one, else a new one (replacing a plain
    ``ax`` at its place), longitude increasing to the left, axes labelled in degrees."""
    from astropy.visualization.wcsaxes import WCSAxes

    if isinstance(ax, WCSAxes):
        out = ax
    elif ax is not None:
        fig = ax.figure
        spec = ax.get_subplotspec()
        ax.remove()
        out = fig.add_subplot(spec, projection=g.wcs)
    else:
        fig = fig or new_figure((6.4, 5.2))
        out = fig.add_subplot(*subplot, projection=g.wcs)
    lon_name, lat_name = FRAME_NAMES.get(g.frame, ("Longitude", "Latitude"))
    frame = " (ICRS)" if g.frame == "icrs" else ""
    out.coords[0].set_axislabel(f"{lon_name}{frame} [deg]")
    out.coords[1].set_axislabel(f"{lat_name} [deg]")
    for c in out.coords:
        c.set_major_formatter("d.d")
    ny, nx = g.shape
    out.set_xlim(-0.5, nx - 0.5)
    out.set_ylim(-0.5, ny - 0.5)
    if lon_increases_right(g):
        out.invert_xaxis()
    return out


def lon_increases_right(g) -> bool:
    """Whether longitude grows with the pixel x index along the central row."""
    ny, nx = g.shape
    y = (ny - 1) / 2
    lon, _ = g.pixel_to_world(np.array([nx / 2 - 0.5, nx / 2 + 0.5]), np.array([y, y]))
    return ((lon[1] - lon[0] + 180) % 360 - 180) > 0


#: counts-like quantities drawn with a square-root stretch (a bright source beside
#: faint structure)
SQRT_STRETCH = ("counts", "npred", "npred_signal", "counts_off")
#: linear width (in the quantity's unit) of the asinh stretch of signed quantities
ASINH_WIDTH = {"sqrt_ts": 3.0}


def default_norm(image: np.ndarray, quantity: str):
    """The colour normalisation a quantity gets by default: sqrt stretch for counts,
    asinh stretch symmetric about 0 for excess and significance (linear near 0, so
    fluctuations and a bright source both show), log for quantities spanning more than
    two decades, else linear."""
    from matplotlib import colors

    finite = np.asarray(image, float)[np.isfinite(image)]
    if not finite.size:
        return None
    if quantity in DIVERGING:
        lim = float(np.max(np.abs(finite))) or 1.0
        width = ASINH_WIDTH.get(quantity)
        if width is None:  # excess: three robust standard deviations of the map
            mad = float(np.median(np.abs(finite - np.median(finite))))
            width = max(3 * 1.4826 * mad, 1e-3 * lim)
        if lim <= 3 * width:
            return colors.Normalize(-lim, lim)
        return colors.AsinhNorm(linear_width=width, vmin=-lim, vmax=lim)
    if quantity in SQRT_STRETCH and finite.min() >= 0 and finite.max() > 0:
        return colors.PowerNorm(0.5, vmin=0, vmax=finite.max())
    pos = finite[finite > 0]
    if pos.size and finite.min() > 0 and pos.max() > 100 * pos.min():
        return colors.LogNorm(pos.min(), pos.max())
    return None


def colormap(name: str):
    """A named colour map whose NaN ("no data", masked) pixels are light grey."""
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad="0.85")


def sky_image(ax, image: np.ndarray, quantity: str, cbar_label: str, norm=None, cmap=None,
              **kwargs):
    """imshow of a (lat, lon) image with the quantity's colour map and stretch
    (:func:`default_norm`), NaN pixels grey, and a labelled colour bar; returns the
    AxesImage."""
    cmap = colormap(cmap or CMAPS.get(quantity, "viridis")) if not hasattr(cmap, "N") \
        else cmap
    if norm is None and "vmin" not in kwargs and "vmax" not in kwargs:
        norm = default_norm(image, quantity)
    kwargs.setdefault("interpolation", "nearest")
    im = ax.imshow(image, origin="lower", cmap=cmap, norm=norm, **kwargs)
    cbar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cbar.set_label(cbar_label)
    if type(norm).__name__ == "AsinhNorm":
        ticks = asinh_ticks(norm.vmax, norm.linear_width)
        cbar.set_ticks(ticks)
        cbar.set_ticklabels([f"{t:g}" for t in ticks])
        cbar.minorticks_off()
    return im


def asinh_ticks(lim: float, width: float) -> list[float]:
    """0 and +-1, 2, 5 x 10^k between 2 x ``width`` and ``lim``: readable ticks of a
    symmetric asinh colour bar."""
    out = [0.0]
    for k in range(int(np.floor(np.log10(max(2 * width, 1e-30)))), int(np.log10(lim)) + 1):
        for m in (1, 2, 5):
            v = m * 10.0**k
            if 2 * width <= v <= lim:
                out += [v, -v]
    if len(out) > 9:  # keep it sparse: the decades only
        out = [0.0] + [v for v in out[1:] if np.isclose(np.log10(abs(v)) % 1, 0)]
    return sorted(out)


def contour_mask(ax, mask: np.ndarray, **kwargs):
    """Outline of a boolean (lat, lon) mask on a sky image."""
    m = np.asarray(mask, float)
    if m.min() == m.max():
        return None
    kwargs.setdefault("colors", "white")
    kwargs.setdefault("linewidths", 1.0)
    return ax.contour(m, levels=[0.5], origin="lower", **kwargs)
