"""Plots of DL4 datasets, one call each, on every kind they apply to.

matplotlib (the optional ``plot`` extra) is imported only when a plot is drawn; sky images
use astropy's WCSAxes in the dataset's frame with longitude increasing to the left. Every
function takes an optional ``ax`` (one panel) or ``fig`` (several panels) and returns what
it drew. The same functions are bound to a dataset as ``ds.dl4.plot.<name>(...)``.

Which plot applies to which kind, and what ``peek`` draws per kind, is registered by each
kind's module with the kind (:func:`xdl4.kinds.register`; :data:`KIND_PLOTS` shows it); a
plot that does not apply raises :class:`xdl4.KindError`.

>>> import xdl4
>>> sorted(xdl4.plot.KIND_PLOTS["flux_points"]["plots"])
['fit', 'peek', 'residuals', 'sed']
>>> xdl4.plot.psf(xdl4.examples.flux_points())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
xdl4.errors.KindError: plot.psf is not defined for flux_points datasets (it applies to ...)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import xarray as xr

from xdl4.errors import KindError
from xdl4.validation import dataset_name


class _KindPlots(Mapping):
    """Per kind, the plots that apply and the panels ``peek`` draws, as each kind's module
    registered them (:func:`xdl4.kinds.register`): a read-only view of the registry."""

    def __getitem__(self, kind: str) -> dict[str, tuple[str, ...]]:
        from xdl4 import kinds

        return kinds.get(kind).plots

    def __iter__(self) -> Iterator[str]:
        from xdl4 import kinds

        return iter(kinds.registered())

    def __len__(self) -> int:
        return len(list(iter(self)))


#: per kind: ``{"plots": names of the plot functions that apply, "peek": the panels of
#: :data:`xdl4.plot.panels.PANELS` peek draws}``, from the kind registry
KIND_PLOTS = _KindPlots()


def _check(ds: xr.Dataset, name: str):
    """The kind record of ``ds``; KindError unless plot ``name`` applies to it."""
    from xdl4.validation import kind_record

    record = kind_record(ds)
    if name not in KIND_PLOTS[record.name]["plots"]:
        where = ", ".join(k for k, v in KIND_PLOTS.items() if name in v["plots"])
        raise KindError(f"plot.{name} is not defined for {record.name} datasets (it applies "
                        f"to {where})")
    return record


def _is_map(ds: xr.Dataset) -> bool:
    return "lat" in ds.dims


# -- the plot functions --------------------------------------------------------------------

def image(ds: xr.Dataset, what="counts", smooth: Any = None, energy=None, ax=None,
          models=None, **kwargs):
    """Sky image of a variable, ``"excess"``, ``"sqrt_ts"``, ``"npred"`` or a DataArray
    (see :func:`xdl4.plot.sky.image`; ``smooth``: an angle, deg or e.g. ``"0.1 deg"``);
    returns the WCSAxes."""
    _check(ds, "image")
    from .sky import image as _image

    return _image(ds, what, smooth, energy, ax, models, **kwargs)


def peek(ds: xr.Dataset, fig=None):
    """Overview of a dataset: the panels of ``KIND_PLOTS[kind]["peek"]`` (maps: counts,
    background, excess and exposure images, PSF containment, EDISP matrix; spectra:
    counts / background / excess steps, exposure and effective area, EDISP matrix; flux
    points: the SED). Returns the Figure."""
    record = _check(ds, "peek")
    from .panels import peek as _peek

    return _peek(ds, KIND_PLOTS[record.name]["peek"], fig)


def residuals(ds: xr.Dataset, models, method: str | None = None, smooth: Any = 0.1,
              region=None, fig=None, ax=None):
    """Fit residuals. Map kinds: the spatial residual map (counts and npred in the fit
    mask summed over energy, Gaussian-smoothed by ``smooth``: deg, or an angle such as
    ``"0.1 deg"``) beside the spectral
    residuals in ``region`` (default: the whole map), a Figure. Spectrum kinds: spectral
    residuals, an Axes. Flux points: (data - model) / model, an Axes. ``method``:
    diff, diff/model or diff/sqrt(model) (the default; flux points: diff/model)."""
    if _check(ds, "residuals").geometry == "points":
        from .flux import residuals as _fp

        return _fp(ds, models, method or "diff/model", ax)
    from .spectra import spectral_residuals

    method = method or "diff/sqrt(model)"
    ds = _one(ds, "residuals")
    if not _is_map(ds):
        ax = spectral_residuals(ds, models, method, ax)
        ax.set_title(f"{dataset_name(ds) or ''}: spectral residuals".lstrip(": "),
                     fontsize="medium")
        return ax
    from ._style import get_fig, sky_axes
    from .sky import spatial_residuals

    fig = get_fig(fig, (12, 4.6))
    from ._data import grid

    a1 = sky_axes(grid(ds), fig=fig, subplot=(1, 2, 1))
    spatial_residuals(ds, models, method, smooth, a1, region)
    a2 = fig.add_subplot(1, 2, 2)
    spectral_residuals(ds, models, method, a2, region)
    a2.set_title("Spectral residuals" + (" in region" if region is not None else
                                         " (whole map)"), fontsize="medium")
    return fig


def fit(ds: xr.Dataset, models, result=None, covariance=None, method: str | None = None,
        sed_type=None, fig=None, region=None):
    """Data vs model with a residual panel below; returns the Figure. Spectrum kinds:
    excess counts vs predicted signal (steps on the bin edges); flux points: the SED with
    the models and their error bands (``result`` / ``covariance``)."""
    if _check(ds, "fit").geometry == "points":
        from .flux import fit_figure

        return fit_figure(ds, models, result, covariance, sed_type, method or "diff/model",
                          fig)
    from .spectra import fit_figure

    return fit_figure(_one(ds, "fit"), models, method or "diff/sqrt(model)", fig, region)


def masks(ds: xr.Dataset, ax=None):
    """Safe and fit masks: maps, the lowest safe energy per pixel with the fit mask
    outlined (WCSAxes); spectra, the counts with the masked bins shaded (Axes)."""
    _check(ds, "masks")
    ds = _one(ds, "masks")
    if _is_map(ds):
        from .sky import mask_image

        return mask_image(ds, ax)
    from .spectra import masks as _masks

    return _masks(ds, ax)


def psf(ds: xr.Dataset, position=None, fractions=(0.68, 0.95), fig=None):
    """PSF containment radii vs energy and profiles at ``position`` ((lon, lat) deg in the
    data frame or a SkyCoord; default the centre); returns the Figure."""
    _check(ds, "psf")
    from .irf import psf as _psf

    return _psf(_one(ds, "psf"), position, fractions, fig)


def edisp(ds: xr.Dataset, position=None, fig=None):
    """Energy-dispersion matrix and bias / resolution at ``position``; returns the
    Figure."""
    _check(ds, "edisp")
    from .irf import edisp as _edisp

    return _edisp(_one(ds, "edisp"), position, fig)


def exposure(ds: xr.Dataset, position=None, ax=None):
    """Exposure (and effective area) vs true energy at ``position`` (maps) or of the
    region; returns the Axes. For an exposure map use ``image(ds, "exposure")``."""
    _check(ds, "exposure")
    from .spectra import exposure as _exposure

    return _exposure(_one(ds, "exposure"), position, ax)


def sed(fp: xr.Dataset, models=None, result=None, covariance=None, sed_type=None, ax=None,
        profiles: bool = True, **kwargs):
    """Flux points (or a light curve) with the models and their error bands; see
    :func:`xdl4.plot.flux.sed`. Returns the Axes."""
    _check(fp, "sed")
    from .flux import sed as _sed

    return _sed(fp, models, result, covariance, sed_type, ax, profiles, **kwargs)


def spectrum(model, energy_bounds=(0.1, 100.0), result=None, covariance=None,
             sed_type: str = "e2dnde", ax=None, **kwargs):
    """A spectral model (or SkyModel) with its error band from ``result`` (a FitResult),
    ``covariance`` or its parameter errors; see :func:`xdl4.plot.flux.spectrum`. Returns
    the Axes."""
    from .flux import spectrum as _spectrum

    return _spectrum(model, energy_bounds, result, covariance, sed_type, ax, **kwargs)


def stacking(runs: xr.Dataset, models, fig=None):
    """The runs' EDISP kernels and their stack's; predicted counts per energy of each
    run, their sum and the stacked dataset's. ``runs`` has an ``obs`` dimension. Returns
    the Figure."""
    _check(runs, "stacking")
    from .runs import stacking as _stacking

    return _stacking(runs, models, fig)


def _one(ds: xr.Dataset, name: str) -> xr.Dataset:
    from ._data import one_run

    return one_run(ds, name)


class DatasetPlots:
    """The plot functions bound to one dataset: ``ds.dl4.plot.<name>(...)``."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def __repr__(self) -> str:
        from xdl4.validation import kind_record

        kind = kind_record(self._ds).name
        return f"<plots of a {kind} dataset: {', '.join(KIND_PLOTS[kind]['plots'])}>"

    def image(self, what="counts", smooth=None, energy=None, ax=None, models=None, **kwargs):
        return image(self._ds, what, smooth, energy, ax, models, **kwargs)

    def peek(self, fig=None):
        return peek(self._ds, fig)

    def residuals(self, models, method=None, smooth=0.1, region=None, fig=None, ax=None):
        return residuals(self._ds, models, method, smooth, region, fig, ax)

    def fit(self, models, result=None, covariance=None, method=None, sed_type=None,
            fig=None, region=None):
        return fit(self._ds, models, result, covariance, method, sed_type, fig, region)

    def masks(self, ax=None):
        return masks(self._ds, ax)

    def psf(self, position=None, fractions=(0.68, 0.95), fig=None):
        return psf(self._ds, position, fractions, fig)

    def edisp(self, position=None, fig=None):
        return edisp(self._ds, position, fig)

    def exposure(self, position=None, ax=None):
        return exposure(self._ds, position, ax)

    def sed(self, models=None, result=None, covariance=None, sed_type=None, ax=None,
            profiles=True, **kwargs):
        return sed(self._ds, models, result, covariance, sed_type, ax, profiles, **kwargs)

    def stacking(self, models, fig=None):
        return stacking(self._ds, models, fig)

    for _f in (image, peek, residuals, fit, masks, psf, edisp, exposure, sed, stacking):
        locals()[_f.__name__].__doc__ = _f.__doc__
    del _f


__all__ = ["KIND_PLOTS", "DatasetPlots", "edisp", "exposure", "fit", "image", "masks",
           "peek", "psf", "residuals", "sed", "spectrum", "stacking"]
