"""Overview figures, one per family of kinds; the panels each kind shows are declared in
:data:`xdl4.plot.KIND_PLOTS`."""

from __future__ import annotations

import xarray as xr

from . import _data, _style, flux, irf, sky, spectra

#: panel name -> (drawing function (ds, ax) -> ax, needs sky axes)
PANELS = {
    "counts_image": (lambda ds, ax: sky.image(ds, "counts", ax=ax), True),
    "background_image": (lambda ds, ax: sky.image(ds, "background", ax=ax), True),
    "excess_image": (lambda ds, ax: sky.image(ds, "excess", ax=ax), True),
    "exposure_image": (lambda ds, ax: sky.image(ds, "exposure", ax=ax), True),
    "psf_containment": (lambda ds, ax: irf.containment(ds, ax=ax), False),
    "edisp_matrix": (lambda ds, ax: irf.matrix(ds, ax=ax), False),
    "counts_spectrum": (lambda ds, ax: spectra.counts(ds, ax), False),
    "exposure_spectrum": (lambda ds, ax: spectra.exposure(ds, ax=ax), False),
    "sed": (lambda ds, ax: flux.sed(ds, ax=ax), False),
}


def peek(ds: xr.Dataset, panels: tuple[str, ...], fig=None, ncols: int | None = None):
    """Draw ``panels`` (names of :data:`PANELS`) on a grid; returns the Figure."""
    ds = _data.one_run(ds, "peek")
    n = len(panels)
    ncols = ncols or min(n, 3)
    nrows = -(-n // ncols)
    fig = _style.get_fig(fig, (5.2 * ncols, 4.4 * nrows))
    g = _data.grid(ds) if "lat" in ds.dims else None
    for k, name in enumerate(panels):
        draw, on_sky = PANELS[name]
        if on_sky:
            ax = _style.sky_axes(g, fig=fig, subplot=(nrows, ncols, k + 1))
        else:
            ax = fig.add_subplot(nrows, ncols, k + 1)
        if on_sky or "psf" not in name or "psf" in ds:
            draw(ds, ax)
        else:
            ax.text(0.5, 0.5, "no PSF in this dataset", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
    name = _data.dataset_name(ds)
    kind = _data.kind_of(ds)
    fig.suptitle(f"{name} ({kind})" if name else kind)
    return fig
