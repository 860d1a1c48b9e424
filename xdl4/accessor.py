"""The ``.dl4`` accessor: one entry point, thin methods dispatching through the kind
registry (:mod:`xdl4.kinds`). An operation the dataset's kind does not define raises
:class:`xdl4.errors.KindError` ("npred is not defined for flux_points datasets").

Modules are imported inside the methods (``import xdl4`` stays as cheap as ``import
xarray``).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

import xarray as xr

if TYPE_CHECKING:
    from astropy import units as u

    from xdl4.kinds import KindBehaviour
    from xdl4.models.routing import ModelsLike
    from xdl4.sky import Region, WcsGrid


@xr.register_dataset_accessor("dl4")
class DL4Accessor:
    """DL4 behaviour of an ``xarray.Dataset`` (dispatching on ``attrs["dl4_kind"]``).

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset()
    >>> ds.dl4.kind, ds.dl4.stat_type
    ('map', 'cash')
    """

    def __init__(self, ds: xr.Dataset):
        from xdl4.masks import restore_masks
        from xdl4.sky import restore_grids

        # what plain xarray code erases: grid attributes (xr.where), mask dtypes (where)
        self._ds = restore_masks(restore_grids(ds))
        self._user_ds = ds  # the user's object, which in-place edits (a rename) change
        self._checked = False  # validated before the first operation
        #: prepared evaluators of this Dataset object, reused by repeated calls (xarray
        #: keeps the accessor per Dataset object; a changed Dataset is a new object)
        self._cache: dict = {}

    @property
    def behaviour(self) -> KindBehaviour:
        """The registered behaviour of this dataset's kind.

        >>> import xdl4
        >>> b = xdl4.examples.spectrum_dataset(onoff=True).dl4.behaviour
        >>> b.name, b.record.statistic, b.record.onoff
        ('spectrum_onoff', 'wstat', True)
        """
        from xdl4 import kinds

        return kinds.of(self._ds)

    def _call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """Dispatch ``operation`` to the kind; the dataset is validated on the first
        operation (once per Dataset object: xarray keeps its accessor)."""
        behaviour = self.behaviour
        function = behaviour.get(operation)  # KindError first: undefined beats invalid
        if not self._checked:
            behaviour.validate(self._ds)
            self._checked = True
        if "cache" in kwargs and not _accepts(function, "cache"):
            del kwargs["cache"]  # an operation (e.g. of a kind of one's own) without one
        return function(self._ds, *args, **kwargs)

    def _counts(self, what: str) -> None:
        """KindError unless this kind holds counts (what ``what`` is computed from)."""
        if "counts" not in self.behaviour.record.variables:
            from xdl4.errors import KindError

            raise KindError(f"{what} is not defined for {self.kind} datasets")

    # -- summaries (terminal and notebook), see xdl4.summaries ---------------------------
    def __repr__(self) -> str:
        from xdl4.summaries import to_text

        return to_text(self._ds)

    def _repr_html_(self) -> str:
        from xdl4.summaries import to_html

        return to_html(self._ds)

    # -- description ---------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The dataset's kind (``attrs["dl4_kind"]``, one of :data:`xdl4.KINDS`).

        >>> import xdl4
        >>> xdl4.examples.spectrum_dataset(onoff=True).dl4.kind
        'spectrum_onoff'
        """
        return self.behaviour.name

    @property
    def stat_type(self) -> str:
        """The fit statistic of the kind (built-in kinds: cash, wstat or chi2).

        >>> import xdl4
        >>> [ds.dl4.stat_type for ds in xdl4.examples.all_kinds(seed=0).values()]
        ['cash', 'wstat', 'cash', 'wstat', 'chi2']
        """
        return self.behaviour.record.statistic

    @property
    def name(self) -> str:
        """The dataset's name (a run's: its ``obs`` label, see
        :func:`xdl4.validation.dataset_name`); settable (renames in place).

        >>> import xdl4
        >>> ds = xdl4.examples.map_dataset(width=1.0, binsz=0.1)
        >>> old = ds.dl4.name
        >>> ds.dl4.name = "run7"
        >>> old, ds.dl4.name
        ('example', 'run7')
        """
        from xdl4.validation import dataset_name

        return dataset_name(self._ds)

    @name.setter
    def name(self, name: str) -> None:
        """Rename in place: ``attrs["name"]`` and the run label (scalar ``obs``)."""
        from xdl4.validation import with_name

        renamed = with_name(self._ds, name)
        targets = [self._user_ds] if self._ds is self._user_ds else [self._user_ds, self._ds]
        for ds in targets:  # the user's dataset, and the accessor's repaired copy if any
            ds.attrs.clear()
            ds.attrs.update(renamed.attrs)
            if "obs" in renamed.coords and "obs" not in ds.dims:
                ds.coords["obs"] = renamed.coords["obs"]
        self._cache.clear()  # cached evaluators carry the old name (model routing)

    def validate(self) -> xr.Dataset:
        """Raise :class:`xdl4.DL4ValidationError` listing every problem, else return ds.

        >>> import xdl4
        >>> ds = xdl4.examples.spectrum_dataset()
        >>> ds.dl4.validate() is ds
        True
        >>> ds.drop_vars("exposure").dl4.validate()
        Traceback (most recent call last):
        xdl4.errors.DL4ValidationError: dataset 'example-spectrum' is not valid DL4:
          - missing required variable 'exposure' for kind 'spectrum'
        """
        return self.behaviour.validate(self._ds)

    def info(self, models: ModelsLike = None, dtype: str = "float64") -> dict | xr.Dataset:
        """gammapy's info_dict fields; for runs along ``obs`` one row per run (the
        :meth:`info_table`). ``dtype="float32"``: the model fields folded with gammapy's
        float32 steps (as :meth:`npred`).

        >>> import xdl4
        >>> info = xdl4.examples.spectrum_dataset(onoff=True).dl4.info()
        >>> info["counts"], info["alpha"], info["stat_type"]
        (1160.0, 0.25, 'wstat')
        """
        if "obs" in self._ds.dims:
            return self.info_table(models=models, dtype=dtype)
        return self._call("info", models, cache=self._cache, **_irf(None, dtype))

    def info_table(self, cumulative: bool = False, models: ModelsLike = None,
                   dtype: str = "float64") -> xr.Dataset:
        """gammapy's ``info_table``: info fields per run (``cumulative``: of the runs
        stacked up to each one) as a Dataset over ``obs``; ``.to_dataframe()`` for a
        table (see :func:`xdl4.runs.info_table`; ``dtype="float32"`` replays gammapy's
        float32 cumulative table to the last digit).

        >>> import xarray as xr, xdl4
        >>> runs = xr.concat([xdl4.examples.spectrum_dataset(i).dl4.renamed(f"run{i}")
        ...                   for i in range(2)], "obs")
        >>> runs.dl4.info_table(cumulative=True)["livetime"].values.tolist()
        [3600.0, 7200.0]
        """
        from xdl4.runs import info_table

        self._counts("info_table")
        return info_table(self._ds, cumulative, models, dtype)

    def renamed(self, name: str) -> xr.Dataset:
        """This dataset named ``name``, labelled as a run: the scalar ``obs`` coordinate
        that ``xr.concat(runs, "obs")`` turns into run labels holds the name (and no
        ``attrs["name"]`` overrides it; runs along ``obs`` keep their labels).

        >>> import xdl4
        >>> run = xdl4.examples.spectrum_dataset().dl4.renamed("run1")
        >>> run.dl4.name, run.obs.item()
        ('run1', 'run1')
        """
        from xdl4.validation import as_run, with_name

        return with_name(as_run(self._ds) if "obs" not in self._ds.dims else self._ds, name)

    def energy_range(self, mask: str | None = None) -> xr.Dataset:
        """Reco-energy range (``energy_min``, ``energy_max``) of all bins, or of the
        ``"safe"`` / ``"fit"`` bins; per run along ``obs``.

        >>> import xdl4
        >>> ds = xdl4.examples.spectrum_dataset()
        >>> [round(float(ds.dl4.energy_range(m).energy_min), 3) for m in (None, "safe")]
        [0.1, 0.316]
        """
        from xdl4.runs import energy_range

        self._counts("energy_range")
        return energy_range(self._ds, mask)

    @property
    def energy_range_safe(self) -> xr.Dataset:
        """Reco-energy range of the safe bins (per run along ``obs``).

        >>> import xdl4
        >>> r = xdl4.examples.spectrum_dataset().dl4.energy_range_safe
        >>> round(float(r.energy_min), 3), float(r.energy_max)
        (0.316, 100.0)
        """
        return self.energy_range("safe")

    @property
    def energy_range_fit(self) -> xr.Dataset:
        """Reco-energy range of the fit bins, mask_safe & mask_fit (per run).

        >>> import xdl4
        >>> ds = xdl4.examples.spectrum_dataset()
        >>> ds["mask_fit"] = ds.dl4.energy_mask("1 TeV", "10 TeV")
        >>> r = ds.dl4.energy_range_fit
        >>> float(r.energy_min), float(r.energy_max)
        (1.0, 10.0)
        """
        return self.energy_range("fit")

    def select_time(self, time_min=None, time_max=None) -> xr.Dataset:
        """The runs whose GTIs overlap [time_min, time_max) (Times, ISO strings or MJD).

        >>> import xdl4
        >>> ds = xdl4.examples.spectrum_dataset()  # GTI: the first hour of 2000-01-01
        >>> ds.dl4.select_time("2000-01-01", "2000-01-02") is ds
        True
        """
        from xdl4.runs import select_time

        self._counts("select_time")
        return select_time(self._ds, time_min, time_max)

    @property
    def excess(self) -> xr.DataArray:
        """counts - background (cash: the background variable; on/off: alpha x counts_off),
        per bin, as gammapy's ``excess``.

        >>> import xdl4
        >>> ds = xdl4.examples.spectrum_dataset(onoff=True)  # alpha 0.25
        >>> bool((ds.dl4.excess == ds.counts - 0.25 * ds.counts_off).all())
        True
        """
        self._counts("excess")
        return (self._ds["counts"] - self.background).rename("excess")

    @property
    def background(self) -> xr.DataArray:
        """The background per bin without models (on/off: alpha x counts_off).

        >>> import xdl4
        >>> ds = xdl4.examples.spectrum_dataset(onoff=True)  # alpha 0.25
        >>> float(ds.dl4.background.sum()), float(ds.counts_off.sum())
        (275.5, 1102.0)
        """
        self._counts("background")
        if self.behaviour.record.onoff:
            return (self.alpha * self._ds["counts_off"]).rename("background")
        if "background" not in self._ds:
            return xr.zeros_like(self._ds["counts"]).rename("background")
        return self._ds["background"]

    @property
    def alpha(self) -> xr.DataArray:
        """The on/off exposure ratio acceptance / acceptance_off (0 without OFF
        acceptance; on/off kinds only).

        >>> import xdl4
        >>> alpha = xdl4.examples.spectrum_dataset(onoff=True).dl4.alpha
        >>> alpha.dims, float(alpha[0])
        (('energy',), 0.25)
        """
        from xdl4.errors import KindError
        from xdl4.stats import alpha

        if not self.behaviour.record.onoff:
            raise KindError(f"alpha is not defined for {self.kind} datasets")
        return alpha(self._ds["acceptance"], self._ds["acceptance_off"]).rename("alpha")

    @property
    def energy_edges(self) -> u.Quantity:
        """Reco-energy bin edges (a Quantity).

        >>> import xdl4
        >>> edges = xdl4.examples.spectrum_dataset().dl4.energy_edges
        >>> len(edges), str(edges[0]), str(edges[-1])
        (13, '0.1 TeV', '100.0 TeV')
        """
        from xdl4.axes import edges

        return edges(self._ds, "energy")

    @property
    def energy_true_edges(self) -> u.Quantity:
        """True-energy bin edges (a Quantity).

        >>> import xdl4
        >>> edges = xdl4.examples.spectrum_dataset().dl4.energy_true_edges
        >>> len(edges), str(edges[0]), str(edges[-1])
        (25, '0.05 TeV', '200.0 TeV')
        """
        from xdl4.axes import edges

        return edges(self._ds, "energy_true")

    def energy_mask(self, energy_min=None, energy_max=None) -> xr.DataArray:
        """True for reco-energy bins fully inside [energy_min, energy_max]
        (Quantities or strings such as ``"0.5 TeV"``).

        >>> import xdl4
        >>> ds = xdl4.examples.spectrum_dataset()
        >>> ds.dl4.energy_mask("1 TeV", "10 TeV").values.astype(int).tolist()
        [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]
        """
        from xdl4.axes import energy_mask

        return energy_mask(self._ds, energy_min, energy_max)

    @property
    def grid(self) -> WcsGrid:
        """The WCS grid of the data (cut-outs included).

        >>> import xdl4
        >>> grid = xdl4.examples.map_dataset(width=1.0, binsz=0.1).dl4.grid
        >>> grid.shape, grid.frame
        ((10, 10), 'icrs')
        """
        from xdl4.sky import WcsGrid

        return WcsGrid.from_dataset(self._ds)

    @property
    def irf_grid(self) -> WcsGrid:
        """The WCS grid of the IRF maps (``irf_lat`` / ``irf_lon``; else the data grid).

        >>> import xdl4
        >>> ds = xdl4.examples.map_dataset(width=1.0, binsz=0.1)
        >>> ds.dl4.grid.shape, ds.dl4.irf_grid.shape
        ((10, 10), (5, 5))
        """
        from xdl4.sky import WcsGrid

        return WcsGrid.from_dataset(self._ds, "irf_" if "irf_lat" in self._ds.dims else "")

    @property
    def region(self) -> Region | None:
        """The sky region of a region kind (spectrum); None for the other kinds.

        >>> import xdl4
        >>> xdl4.examples.spectrum_dataset().dl4.region
        Region(frame='icrs', shapes=(('circle', (83.63, 22.01, 0.2)),))
        >>> xdl4.examples.map_dataset(width=1.0, binsz=0.1).dl4.region is None
        True
        """
        from xdl4.sky import Region

        return Region.from_dataset(self._ds)

    def sky_coords(self) -> xr.Dataset:
        """2D pixel-centre sky coordinates (``lon_2d``, ``lat_2d`` in deg), any projection.

        >>> import xdl4
        >>> c = xdl4.examples.map_dataset(width=1.0, binsz=0.1).dl4.sky_coords()
        >>> c["lon_2d"].dims, round(float(c["lat_2d"].mean()), 2)
        (('lat', 'lon'), 22.01)
        """
        from xdl4.errors import GridError

        if "lat" not in self._ds.dims:
            raise GridError(f"sky_coords needs a pixel grid; this {self.kind} dataset has "
                            "no lat/lon dims (see ds.dl4.region)")
        lon, lat = self.grid.sky_coords()
        dims = ("lat", "lon")
        return xr.Dataset({"lon_2d": (dims, lon, {"units": "deg"}),
                           "lat_2d": (dims, lat, {"units": "deg"})},
                          coords={d: self._ds[d] for d in dims})

    # -- predicted counts and likelihood -------------------------------------------------
    def npred(self, models: ModelsLike, irf_interpolation: str | None = None,
              dtype: str = "float64") -> xr.DataArray:
        """Predicted counts (signal + background), never negative. ``irf_interpolation``
        (counts kinds): ``"nearest"`` (default: gammapy's IRF lookup and numbers) or
        ``"bilinear"`` (the default of fits; see :mod:`xdl4.irf`). ``dtype="float32"``
        (map kinds, nearest IRFs): folded with gammapy's float32 steps, its numbers to the
        last digits (see :class:`xdl4.forward.Evaluator`; float64 is the more exact).

        >>> import xdl4
        >>> from xdl4.models import Models, SkyModel, PowerLaw
        >>> models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
        >>> npred = xdl4.examples.spectrum_dataset().dl4.npred(models)
        >>> npred.dims, round(float(npred.sum()))
        (('energy',), 3250)
        """
        return self._call("npred", models, cache=self._cache, **_irf(irf_interpolation, dtype))

    def npred_signal(self, models: ModelsLike, model_names=None,
                     irf_interpolation: str | None = None,
                     dtype: str = "float64") -> xr.DataArray:
        """Predicted source counts (of ``model_names`` only, if given; options as
        :meth:`npred`).

        >>> import xdl4
        >>> from xdl4.models import Models, SkyModel, PowerLaw
        >>> models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
        >>> ds = xdl4.examples.spectrum_dataset()
        >>> round(float(ds.dl4.npred_signal(models, ["src"]).sum()))
        2974
        """
        return self._call("npred_signal", models, model_names, cache=self._cache,
                          **_irf(irf_interpolation, dtype))

    def npred_background(self, models: ModelsLike = None) -> xr.DataArray:
        """Background counts: FoV-model scaled, or profiled for on/off kinds.

        >>> import xdl4
        >>> ds = xdl4.examples.spectrum_dataset()  # without a FoV model: the background
        >>> bool((ds.dl4.npred_background() == ds.background).all())
        True
        """
        return self._call("npred_background", models, cache=self._cache)

    def sed(self, sed_type: str = "dnde") -> xr.Dataset:
        """Flux points as ``sed_type`` (dnde, e2dnde, flux, eflux) with errors and upper
        limits, in that type's unit (gammapy's ``FluxPoints.to_table(sed_type=...)``).

        >>> import xdl4
        >>> fp = xdl4.examples.all_kinds(seed=0)["flux_points"]
        >>> fp.dl4.sed("flux")["flux"].attrs["units"]
        'cm-2 s-1'
        """
        return self._call("sed", sed_type)

    def stat_array(self, models: ModelsLike, irf_interpolation: str | None = None,
                   dtype: str = "float64") -> xr.DataArray:
        """The statistic per bin (cash, wstat or chi2 by kind), masks not applied (options
        as :meth:`npred`).

        >>> import xdl4
        >>> from xdl4.models import Models, SkyModel, PowerLaw
        >>> models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
        >>> ds = xdl4.examples.spectrum_dataset(onoff=True)
        >>> ds.dl4.stat_array(models).dims
        ('energy',)
        """
        return self._call("stat_array", models, cache=self._cache,
                          **_irf(irf_interpolation, dtype))

    def stat_sum(self, models: ModelsLike, irf_interpolation: str | None = None,
                 dtype: str = "float64") -> float:
        """The statistic summed over mask_safe & mask_fit (and runs); options as
        :meth:`npred`. A fit's ``total_stat`` is this with the fit's
        ``irf_interpolation`` (``"bilinear"`` by default) and the priors.

        >>> import xdl4
        >>> from xdl4.models import Models, SkyModel, PowerLaw
        >>> models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
        >>> ds = xdl4.examples.spectrum_dataset(onoff=True)
        >>> round(ds.dl4.stat_sum(models), 3)
        12.517
        """
        return self._call("stat_sum", models, cache=self._cache,
                          **_irf(irf_interpolation, dtype))

    def fake(self, models: ModelsLike, seed=None, size: int | None = None,
             **kwargs) -> xr.Dataset:
        """Poisson realisation(s) of the data under ``models`` (``size``: along ``obs``).

        >>> import xdl4
        >>> from xdl4.models import Models, SkyModel, PowerLaw
        >>> models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
        >>> fakes = xdl4.examples.spectrum_dataset().dl4.fake(models, seed=0, size=3)
        >>> fakes.sizes["obs"], fakes.dl4.kind
        (3, 'spectrum')
        """
        return self._call("fake", models, seed, size, **kwargs)

    def residuals(self, models: ModelsLike, method: str = "diff",
                  irf_interpolation: str | None = None) -> xr.DataArray:
        """``diff``, ``diff/model`` or ``diff/sqrt(model)`` residuals, NaN outside masks.

        >>> import xdl4
        >>> from xdl4.models import Models, SkyModel, PowerLaw
        >>> models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
        >>> res = xdl4.examples.spectrum_dataset().dl4.residuals(models, "diff/sqrt(model)")
        >>> res.dims, int(res.isnull().sum())  # the 2 bins below the safe threshold
        (('energy',), 2)
        """
        return self._call("residuals", models, method, cache=self._cache,
                          **_irf(irf_interpolation))

    # -- stacking and reshaping ------------------------------------------------------------
    def stack(self, other: xr.Dataset | None = None, dim: str = "obs",
              name: str | None = None, models: ModelsLike = None,
              groupby: str | xr.DataArray | None = None) -> xr.Dataset:
        """Stack ``other`` onto this dataset (gammapy's rules, both masked), or without
        ``other`` reduce the runs along ``dim`` (lazy on dask arrays); ``models``: FoV
        background models baked into the backgrounds first, as gammapy does.
        ``groupby`` (a coordinate along ``obs`` or labels): one stack per group along
        ``obs``, ready for a joint fit (:func:`xdl4.runs.stack_groups`).

        >>> import xdl4
        >>> a, b = xdl4.examples.spectrum_dataset(0), xdl4.examples.spectrum_dataset(1)
        >>> float(a.dl4.stack(b).livetime)
        7200.0
        """
        if groupby is not None:
            from xdl4.runs import stack_groups

            self.behaviour.get("stack")  # KindError for kinds that do not stack
            return stack_groups(self._ds, groupby, models)
        return self._call("stack", other, dim=dim, name=name, models=models)

    def to_masked(self, name: str | None = None) -> xr.Dataset:
        """This dataset with its safe mask applied (gammapy's ``to_masked``: stacked onto
        an empty dataset; ``mask_fit`` dropped).

        >>> import xdl4
        >>> ds = xdl4.examples.spectrum_dataset()
        >>> float(ds.counts.sum()), float(ds.dl4.to_masked().counts.sum())
        (3230.0, 1160.0)
        """
        return self._call("to_masked", name=name)

    def resample_energy(self, energy_edges) -> xr.Dataset:
        """Reco-energy bins merged into ``energy_edges`` (a subset of the edges).

        >>> import xdl4
        >>> ds = xdl4.examples.spectrum_dataset()
        >>> ds.dl4.resample_energy([0.1, 1, 10, 100]).dl4.energy_edges.value.tolist()
        [0.1, 1.0, 10.0, 100.0]
        """
        return self._call("resample_energy", energy_edges)

    def to_image(self) -> xr.Dataset:
        """All reco-energy bins merged into one.

        >>> import xdl4
        >>> xdl4.examples.map_dataset(width=1.0, binsz=0.1).dl4.to_image().counts.sizes["energy"]
        1
        """
        return self._call("to_image")

    def downsample(self, factor: int, axis_name: str | None = None,
                   name: str | None = None) -> xr.Dataset:
        """Merge ``factor x factor`` pixels (or reco-energy bins with ``axis_name``).

        >>> import xdl4
        >>> xdl4.examples.map_dataset(width=1.0, binsz=0.1).dl4.downsample(2).dl4.grid.shape
        (5, 5)
        """
        return self._call("downsample", factor, axis_name, name)

    def cutout(self, position, width, mode: str = "trim", name: str | None = None) -> xr.Dataset:
        """The part around ``position`` ((lon, lat) deg or SkyCoord), ``width`` deg wide.

        >>> import xdl4
        >>> ds = xdl4.examples.map_dataset(width=1.0, binsz=0.1)
        >>> ds.dl4.cutout((83.63, 22.01), 0.5).dl4.grid.shape
        (5, 5)
        """
        return self._call("cutout", position, width, mode, name)

    def pad(self, pad_width, mode: str = "constant", cval: float = 0,
            name: str | None = None) -> xr.Dataset:
        """Add ``pad_width`` pixels around the data grid (masks False).

        >>> import xdl4
        >>> xdl4.examples.map_dataset(width=1.0, binsz=0.1).dl4.pad(2).dl4.grid.shape
        (14, 14)
        """
        return self._call("pad", pad_width, mode, cval, name)

    def to_region(self, region: Region | str, containment_correction: bool = False,
                  name: str | None = None) -> xr.Dataset:
        """This map dataset reduced to a spectrum dataset in ``region`` (gammapy's
        ``to_spectrum_dataset`` rules, see :func:`xdl4.region.to_region`).

        >>> import xdl4
        >>> ds = xdl4.examples.map_dataset(width=1.0, binsz=0.1)
        >>> spec = ds.dl4.to_region("icrs;circle(83.63,22.01,0.2)")
        >>> spec.dl4.kind, spec.sizes["energy"]
        ('spectrum', 12)
        """
        return self._call("to_region", region, containment_correction, name)

    # -- plots (matplotlib imported when a plot is drawn) ---------------------------
    @property
    def plot(self):
        """Plots of this dataset: ``ds.dl4.plot.peek()``, ``.image(...)``, ``.residuals(
        models)``, ``.fit(models)``, ``.masks()``, ``.psf()``, ``.edisp()``,
        ``.exposure()``, ``.sed()``, ``.stacking(models)`` (see :mod:`xdl4.plot`).

        >>> import xdl4
        >>> type(xdl4.examples.spectrum_dataset().dl4.plot).__name__  # draws nothing yet
        'DatasetPlots'
        """
        from xdl4.plot import DatasetPlots

        return DatasetPlots(self._ds)

    # -- I/O -----------------------------------------------------------------------
    def to_netcdf(self, path: str | os.PathLike, overwrite: bool = False, **kwargs) -> None:
        """Write NetCDF atomically; refuses to replace a file unless ``overwrite``.

        >>> import os, tempfile, xdl4
        >>> path = os.path.join(tempfile.mkdtemp(), "run.nc")
        >>> xdl4.examples.spectrum_dataset().dl4.to_netcdf(path)
        >>> xdl4.open_dataset(path).dl4.kind
        'spectrum'
        """
        from xdl4.io.netcdf import to_netcdf

        to_netcdf(self._ds, path, overwrite=overwrite, **kwargs)

    def to_gadf(self, path: str | os.PathLike, overwrite: bool = False):
        """Write a GADF FITS file as gammapy 2.1 writes it (flux points: a FITS table).

        >>> import os, tempfile, xdl4
        >>> path = os.path.join(tempfile.mkdtemp(), "spectrum.fits")
        >>> xdl4.examples.spectrum_dataset().dl4.to_gadf(path).name
        'spectrum.fits'
        >>> xdl4.open_dataset(path).dl4.kind
        'spectrum'
        """
        from xdl4.io.gadf import to_gadf

        return to_gadf(self._ds, path, overwrite)

    def to_ogip(self, path: str | os.PathLike, overwrite: bool = False):
        """Write OGIP PHA + ARF (+ BKG, RMF) files, companions named as gammapy names them
        (region kinds only).

        >>> import os, tempfile, xdl4
        >>> path = os.path.join(tempfile.mkdtemp(), "pha.fits")
        >>> [p.name for p in xdl4.examples.spectrum_dataset(onoff=True).dl4.to_ogip(path)]
        ['pha.fits', 'pha_arf.fits', 'pha_bkg.fits', 'pha_rmf.fits']
        """
        from xdl4.io.ogip import to_ogip

        return to_ogip(self._ds, path, overwrite)

    # -- estimators (xdl4.estimators) ------------------------------------------------
    def excess_map(self, correlation_radius="0.1 deg", models: ModelsLike = None,
                   **kwargs) -> xr.Dataset:
        """Correlated counts, background, excess, significance and flux maps (gammapy's
        ``ExcessMapEstimator``; see :func:`xdl4.estimators.excess_map`).

        >>> import xdl4
        >>> maps = xdl4.examples.map_dataset(width=1.0, binsz=0.1).dl4.excess_map("0.2 deg")
        >>> maps["sqrt_ts"].dims
        ('energy', 'lat', 'lon')
        """
        import xdl4.estimators  # noqa: F401  (registers the estimators with the map kinds)

        return self._call("excess_map", correlation_radius, models, **kwargs)

    def ts_map(self, kernel_model=None, models: ModelsLike = None, **kwargs) -> xr.Dataset:
        """TS, sqrt(TS), norm and error maps of a test source at every pixel (gammapy's
        ``TSMapEstimator``; see :func:`xdl4.estimators.ts_map`).

        >>> import xdl4
        >>> ts = xdl4.examples.map_dataset(width=1.0, binsz=0.1).dl4.ts_map()
        >>> ts["sqrt_ts"].shape
        (1, 10, 10)
        """
        import xdl4.estimators  # noqa: F401  (registers the estimators with the map kinds)

        return self._call("ts_map", kernel_model, models, **kwargs)


def _irf(irf_interpolation: str | None, dtype: Any = "float64") -> dict:
    """The ``irf_interpolation`` and ``dtype`` options, passed on only when given (flux
    points take neither: their chi2 is float64 in gammapy too); ``dtype`` checked here
    for every kind."""
    from xdl4.gammapy_float32 import working_dtype

    out = {} if irf_interpolation is None else {"irf_interpolation": irf_interpolation}
    if working_dtype(dtype, "dtype").name != "float64":
        out["dtype"] = dtype
    return out


@functools.lru_cache(maxsize=256)
def _accepts(function, name: str) -> bool:
    """Whether ``function`` takes the keyword ``name`` (or any keyword); cached: asked on
    every accessor call."""
    import inspect

    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)
