"""The ``.dl4`` accessor: one entry point, thin methods over plain functions."""

from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING

import xarray as xr

if TYPE_CHECKING:  # imported lazily at run time: `import xdl4` stays fast
    from astropy import units as u

    from xdl4.sky import Region, WcsGrid


class _LazyModule:
    """An ``xdl4`` submodule imported on first attribute access."""

    def __init__(self, name: str):
        self._name = f"xdl4.{name}"

    def __getattr__(self, attr: str):
        return getattr(import_module(self._name), attr)


schema, axes, info, resample, sky, netcdf, forward = (
    _LazyModule(n) for n in ("schema", "axes", "info", "resample", "sky", "io.netcdf",
                             "forward"))


@xr.register_dataset_accessor("dl4")
class DL4Accessor:
    """DL4 behaviour of an ``xarray.Dataset`` (dispatching on ``attrs["dl4_kind"]``).

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset()
    >>> ds.dl4.kind, ds.dl4.stat_type
    ('map', 'cash')
    """

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    # -- description ---------------------------------------------------------------
    @property
    def kind(self) -> str:
        return schema.kind_of(self._ds)

    @property
    def stat_type(self) -> str:
        return schema.STAT_TYPES[self.kind]

    @property
    def name(self) -> str:
        return self._ds.attrs.get("name", "")

    def validate(self) -> xr.Dataset:
        """Raise :class:`xdl4.DL4ValidationError` listing every problem, else return ds."""
        return schema.validate(self._ds)

    def info(self, models=None) -> dict:
        """gammapy's info_dict fields (with ``models``: npred, stat_sum too)."""
        return info.info(self._ds, models)

    @property
    def energy_edges(self) -> u.Quantity:
        return axes.edges(self._ds, "energy")

    @property
    def energy_true_edges(self) -> u.Quantity:
        return axes.edges(self._ds, "energy_true")

    def energy_mask(self, energy_min=None, energy_max=None) -> xr.DataArray:
        """True for reco-energy bins fully inside [energy_min, energy_max]
        (Quantities or strings such as ``"0.5 TeV"``)."""
        return axes.energy_mask(self._ds, energy_min, energy_max)

    @property
    def grid(self) -> WcsGrid:
        """The WCS grid of the data (cut-outs included)."""
        return sky.WcsGrid.from_dataset(self._ds)

    @property
    def irf_grid(self) -> WcsGrid:
        prefix = "irf_" if "irf_lat" in self._ds.dims else ""
        return sky.WcsGrid.from_dataset(self._ds, prefix)

    @property
    def region(self) -> Region | None:
        return sky.Region.from_dataset(self._ds)

    def sky_coords(self) -> xr.Dataset:
        """2D pixel-centre sky coordinates (``lon``, ``lat`` in deg) for any projection."""
        if "lat" not in self._ds.dims:
            raise ValueError(f"sky_coords needs a pixel grid; this {self.kind} dataset has "
                             "no lat/lon dims (see ds.dl4.region)")
        lon, lat = self.grid.sky_coords()
        dims = ("lat", "lon")
        return xr.Dataset({"sky_lon": (dims, lon, {"units": "deg"}),
                           "sky_lat": (dims, lat, {"units": "deg"})},
                          coords={d: self._ds[d] for d in dims}).rename(
            {"sky_lon": "lon_2d", "sky_lat": "lat_2d"})

    # -- predicted counts and likelihood -------------------------------------------------
    def npred(self, models) -> xr.DataArray:
        """Predicted counts (signal + background), never negative."""
        return forward.npred(self._ds, models)

    def npred_signal(self, models, model_names=None) -> xr.DataArray:
        """Predicted source counts (of ``model_names`` only, if given)."""
        return forward.npred_signal(self._ds, models, model_names)

    def npred_background(self, models=None) -> xr.DataArray:
        """Background counts: FoV-model scaled, or profiled for on/off kinds."""
        return forward.npred_background(self._ds, models)

    def stat_array(self, models) -> xr.DataArray:
        """The statistic per bin (cash, wstat or chi2 by kind), masks not applied."""
        return forward.stat_array(self._ds, models)

    def stat_sum(self, models) -> float:
        """The statistic summed over mask_safe & mask_fit (and runs)."""
        return forward.stat_sum(self._ds, models)

    def fake(self, models, seed=None, size: int | None = None, **kwargs) -> xr.Dataset:
        """Poisson realisation(s) of the data under ``models`` (``size``: along ``obs``)."""
        return forward.fake(self._ds, models, seed, size, **kwargs)

    def residuals(self, models, method: str = "diff") -> xr.DataArray:
        """``diff``, ``diff/model`` or ``diff/sqrt(model)`` residuals, NaN outside masks."""
        return forward.residuals(self._ds, models, method)

    # -- stacking ------------------------------------------------------------------------
    def stack(self, other: xr.Dataset | None = None, dim: str = "obs",
              name: str | None = None, models=None) -> xr.Dataset:
        """Stack ``other`` onto this dataset (gammapy's rules, both masked), or without
        ``other`` reduce the runs along ``dim`` (lazy on dask arrays); ``models``: FoV
        background models baked into the backgrounds first, as gammapy does."""
        from xdl4 import stack as _stack

        return _stack.stack(self._ds, other, dim=dim, name=name, models=models)

    def to_masked(self, name: str | None = None) -> xr.Dataset:
        """This dataset with its safe mask applied (gammapy's ``to_masked``: stacked onto
        an empty dataset; ``mask_fit`` dropped)."""
        from xdl4 import stack as _stack

        return _stack.to_masked(self._ds, name=name)

    # -- reductions ----------------------------------------------------------------
    def resample_energy(self, energy_edges) -> xr.Dataset:
        return resample.resample_energy(self._ds, energy_edges)

    def to_image(self) -> xr.Dataset:
        return resample.to_image(self._ds)

    # -- spatial operations (gammapy's MapDataset.downsample / cutout / pad) ---------
    def downsample(self, factor: int, axis_name: str | None = None,
                   name: str | None = None) -> xr.Dataset:
        """Merge ``factor x factor`` pixels (or reco-energy bins with ``axis_name``)."""
        return import_module("xdl4.spatial").downsample(self._ds, factor, axis_name, name)

    def cutout(self, position, width, mode: str = "trim", name: str | None = None) -> xr.Dataset:
        """The part around ``position`` ((lon, lat) deg or SkyCoord), ``width`` deg wide."""
        return import_module("xdl4.spatial").cutout(self._ds, position, width, mode, name)

    def pad(self, pad_width, mode: str = "constant", cval: float = 0,
            name: str | None = None) -> xr.Dataset:
        """Add ``pad_width`` pixels around the data grid (masks False)."""
        return import_module("xdl4.spatial").pad(self._ds, pad_width, mode, cval, name)

    def to_region(self, region: Region | str, containment_correction: bool = False,
                  name: str | None = None) -> xr.Dataset:
        """This map dataset reduced to a spectrum dataset in ``region`` (gammapy's
        ``to_spectrum_dataset`` rules, see :func:`xdl4.region.to_region`)."""
        from xdl4.region import to_region

        return to_region(self._ds, region, containment_correction, name)

    # -- I/O -----------------------------------------------------------------------
    def to_netcdf(self, path: str | os.PathLike, overwrite: bool = False, **kwargs) -> None:
        """Write NetCDF atomically; refuses to replace a file unless ``overwrite``."""
        netcdf.to_netcdf(self._ds, path, overwrite=overwrite, **kwargs)

    def to_gadf(self, path: str | os.PathLike, overwrite: bool = False):
        """Write a GADF FITS file as gammapy 2.1 writes it (flux points: a FITS table)."""
        from xdl4.io.gadf import to_gadf

        return to_gadf(self._ds, path, overwrite)

    def to_ogip(self, path: str | os.PathLike, overwrite: bool = False):
        """Write OGIP PHA + ARF (+ BKG, RMF) files, companions named as gammapy names them."""
        from xdl4.io.ogip import to_ogip

        return to_ogip(self._ds, path, overwrite)

    # -- estimators (xdl4.estimators) ------------------------------------------------
    def excess_map(self, correlation_radius="0.1 deg", models=None, **kwargs) -> xr.Dataset:
        """Correlated counts, background, excess, significance and flux maps (gammapy's
        ``ExcessMapEstimator``; see :func:`xdl4.estimators.excess_map`)."""
        return import_module("xdl4.estimators").excess_map(self._ds, correlation_radius,
                                                           models, **kwargs)

    def ts_map(self, kernel_model=None, models=None, **kwargs) -> xr.Dataset:
        """TS, sqrt(TS), norm and error maps of a test source at every pixel (gammapy's
        ``TSMapEstimator``; see :func:`xdl4.estimators.ts_map`)."""
        return import_module("xdl4.estimators").ts_map(self._ds, kernel_model, models,
                                                       **kwargs)
