"""Predicted source counts by forward folding: the array core of the counts kinds.

    npred_signal = sum_sources EDISP( exposure x F x (PSF * S) )

with F the spectrum integrated over true-energy bins and S the morphology integrated over
pixels. An :class:`Evaluator` prepares a dataset's arrays once (numpy, float64, canonical
units) and caches per source what did not change: the folded morphology
``exposure x (PSF * S)`` and the EDISP matrix while only the spectrum moves, the PSF
kernels per position. The background and the statistic are the kind's (see
:mod:`xdl4.kinds.counts`: cash and wstat evaluators extend this one). Predicted counts are
never negative: point sources are stamped with
the PSF kernel directly; extended sources are convolved in float64 by FFT and clipped at 0
(the clip only removes round-off of order 1e-16 of the peak).

>>> import xdl4
>>> from xdl4.models import Models, SkyModel, PowerLawSpectralModel, PointSpatialModel
>>> ds = xdl4.examples.map_dataset()
>>> src = SkyModel(PowerLawSpectralModel(index=2.5, amplitude=3.8e-11),
...                PointSpatialModel(lon_0=83.63, lat_0=22.01), name="crab")
>>> float(ds.dl4.npred(Models([src])).sum()) > 0
True
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import xarray as xr

from xdl4 import masks
from xdl4.axes import edges, has_bounds
from xdl4.cache import BoundedCache
from xdl4.edisp import migra_to_kernel, overlap_kernel
from xdl4.errors import ArgumentError, ModelError
from xdl4.gammapy_float32 import folded_morphology, working_dtype
from xdl4.irf import check_irf_interpolation, mix, node_weights
from xdl4.models.routing import ModelsLike, Routed
from xdl4.psf import (
    KernelBuilder,
    bilinear_weights,
    convolve,
    extents,
    footprint_runs,
    interp_log_energy,
    plane_runs,
)
from xdl4.schema import REGION, canonical, parse_unit, unit_factor
from xdl4.sky import Region, WcsGrid, grid_of, nearest_index
from xdl4.validation import dataset_name

#: gammapy's margin (deg) added to a model's evaluation diameter in its contribution test
CUTOUT_MARGIN = 0.1
#: bounds (bytes) of an Evaluator's caches: PSF kernels per source position, the kernels
#: of the IRF-grid pixels and their stacks per IRF cell (bilinear mode), the kernels'
#: FFTs (extended sources)
KERNEL_CACHE_BYTES = 8 * 2**20
NODE_KERNEL_CACHE_BYTES = 64 * 2**20
CELL_CACHE_BYTES = 64 * 2**20
FFT_CACHE_BYTES = 64 * 2**20
#: spectral integrals per (spectral model, values, true-energy edges), shared by evaluators
_FLUX_CACHE = BoundedCache(2**20, max_items=256)


def values_in(da: xr.DataArray, unit: str, what: str) -> np.ndarray:
    """The values of ``da`` as float64 in ``unit`` (its ``units`` attribute converted)."""
    return np.asarray(da.values, dtype=float) * unit_factor(da.attrs.get("units"), unit, what)


def flux_unit_factor(model) -> float:
    """Factor turning (spectral integral) x (spatial pixel integral) into cm-2 s-1: 1 for
    a flux spectrum times a normalised morphology; e.g. 1e6 for a norm spectrum (TeV)
    times a template in cm-2 s-1 MeV-1 sr-1."""
    spatial = "sr-1" if model.spatial is None else getattr(model.spatial, "unit", "sr-1")
    try:
        return _flux_unit_factor(str(model.spectral.unit), str(spatial))
    except ValueError as err:
        raise ModelError(f"model {model.name!r}: {err}") from err


@functools.lru_cache(maxsize=64)
def _flux_unit_factor(spectral: str, spatial: str) -> float:
    from astropy import units as u

    product = parse_unit(spectral, "spectral unit") * u.TeV * parse_unit(
        spatial, "spatial unit") * u.sr
    try:
        return float(product.to("cm-2 s-1"))
    except u.UnitConversionError as err:
        raise ModelError(f"spectral unit {spectral!r} times spatial unit {spatial!r} is not "
                         "a flux (cm-2 s-1)") from err


def _convert_position(model, frame: str) -> tuple[float, float]:
    from xdl4.skymath import convert_lonlat

    lon, lat = convert_lonlat(*model.spatial.position, model.spatial.frame, frame)
    return float(lon), float(lat)


class Evaluator(Routed):
    """Forward folding of one dataset (or of runs along ``obs`` at once, for region
    datasets without a PSF, see :func:`vectorises_runs`): predicted source counts.

    Build it once and call it many times (a fit does): per-source results are cached and
    recomputed only when the source's parameters change. Arrays are read by dimension
    name (:func:`xdl4.schema.canonical`), never by position. A kind's evaluator adds the
    background and the statistic (:mod:`xdl4.kinds.counts`).

    ``irf_interpolation``: how the PSF and EDISP maps are taken at a source position,
    ``"nearest"`` (default here: gammapy 2.1's lookup, its numbers) or ``"bilinear"``
    (the kernels of the surrounding IRF pixels mixed bilinearly: npred continuous in the
    position; the default of fits); see :mod:`xdl4.irf`.

    ``dtype="float32"`` (map datasets, nearest IRFs): fold as gammapy does, in its
    float32 steps (PSF kernels, FFT convolution, oversampled morphologies) on its cutout
    around each source, to reproduce its predicted counts to the last digits
    (:func:`xdl4.gammapy_float32.folded_morphology`); float64 (default) is more exact.
    """

    def __init__(self, ds: xr.Dataset, irf_interpolation: str | None = None,
                 dtype: Any = "float64"):
        self.irf_interpolation = check_irf_interpolation(irf_interpolation)
        self.float32 = working_dtype(dtype, "Evaluator") == np.float32
        if self.float32 and self.irf_interpolation != "nearest":
            raise ArgumentError("dtype='float32' replays gammapy's folding, which takes the "
                                "IRFs at the nearest pixel: use irf_interpolation='nearest'")
        ds = canonical(ds)
        if "obs" in ds.dims and not vectorises_runs(ds):
            raise ArgumentError("Evaluator takes the runs of an obs dimension at once only for "
                             "region datasets without a PSF; use ds.isel(obs=i)")
        self.lead = ("obs",) if "obs" in ds.dims else ()
        self.ds = ds
        self.name = self.label = dataset_name(ds)
        self.e_true = edges(ds, "energy_true").to_value("TeV")
        self._e_true_key = self.e_true.tobytes()
        self.e_reco = edges(ds, "energy").to_value("TeV")
        self.e_reco_center = values_in(ds["energy"], "TeV", "energy")
        self.exposure = values_in(self._order(ds["exposure"], "energy_true"), "cm2 s", "exposure")
        self.is_map = "lat" in ds.dims
        self.grid = WcsGrid.from_dataset(ds) if self.is_map else None
        self.region = Region.from_dataset(ds)
        self.counts = np.asarray(self._order(ds["counts"]).values, dtype=float)
        self.mask = np.broadcast_to(np.asarray(self._order(masks.fit(ds)).values, bool),
                                    self.counts.shape)
        self._prepare_psf(ds)
        if self.float32 and self.is_map and self.psf_axis == "energy":
            raise ArgumentError("dtype='float32' replays gammapy's folding with a PSF in true "
                                "energy; this dataset's PSF is in reco energy")
        self._prepare_edisp(ds)
        self._cache: dict[str, dict] = {}
        self._kernels = BoundedCache(KERNEL_CACHE_BYTES, max_items=8)
        self._node_kernels = BoundedCache(NODE_KERNEL_CACHE_BYTES)
        self._cell_stacks = BoundedCache(CELL_CACHE_BYTES)
        self._kernel_ffts = BoundedCache(FFT_CACHE_BYTES, max_items=16)
        self._edisp_nodes: dict[tuple[int, int], np.ndarray] = {}
        self._gti = None  # (GoodTimes or None,), built when a temporal model needs it

    def _order(self, da: xr.DataArray, first: str = "energy") -> xr.DataArray:
        """``da`` with dims (obs, first, ...): runs lead, energy next, sky last."""
        return da.transpose(*[d for d in self.lead if d in da.dims], first, ...)

    # -- IRFs --------------------------------------------------------------------------
    def _irf_pixel_grid(self, ds: xr.Dataset, da: xr.DataArray) -> WcsGrid | None:
        prefix = grid_of(da)
        return None if prefix is None else WcsGrid.from_dataset(ds, prefix)

    def _prepare_psf(self, ds: xr.Dataset) -> None:
        self.psf_axis = None
        if "psf" not in ds:
            return
        psf = ds["psf"]
        axis = psf.dims[0]
        self.psf_axis = "energy" if axis == "energy" else "energy_true"
        sky = [d for d in psf.dims if d not in (axis, "rad")]
        values = values_in(psf.transpose(axis, "rad", *sky), "sr-1", "psf")
        # the PSF map's own unit per sr-1: gammapy rounds its float32 kernels in that unit
        self.psf_unit_scale = 1.0 / unit_factor(psf.attrs.get("units"), "sr-1", "psf")
        if not sky:
            values = values[..., None, None]
        nodes = values_in(ds[axis], "TeV", axis)
        targets = self.e_reco_center if axis == "energy" else \
            np.sqrt(self.e_true[:-1] * self.e_true[1:])
        self.psf_node_values = values
        self.psf_values = interp_log_energy(values, nodes, targets)
        self.psf_grid = self._irf_pixel_grid(ds, psf)
        rad = values_in(ds["rad"], "deg", "rad")
        # gammapy's containment radii depend on whether its rad axis has bin edges
        self.rad_edges = edges(ds, "rad").to_value("deg") if has_bounds(ds, "rad") else None
        if self.is_map:
            self.kernel_builder = KernelBuilder(rad, max(self.grid.binsz), self.grid.center,
                                                self.rad_edges)
        self.rad_nodes = rad

    def _prepare_edisp(self, ds: xr.Dataset) -> None:
        self.edisp_values = None
        if "edisp" not in ds:
            return
        ed = ds["edisp"]
        second = "migra" if "migra" in ed.dims else "energy"
        sky = [d for d in ed.dims if d not in ("obs", "energy_true", second)]
        values = np.asarray(ed.transpose(..., "energy_true", second, *sky).values, dtype=float)
        if not sky:
            values = values[..., None, None]
        self.edisp_values = values
        self.edisp_grid = self._irf_pixel_grid(ds, ed)
        self.migra_edges = edges(ds, "migra").value if second == "migra" else None

    def _irf_xy(self, grid: WcsGrid | None, lon: float, lat: float) -> tuple[float, float]:
        if grid is None:
            return 0.0, 0.0
        x, y = grid.world_to_pixel(lon, lat)
        return float(x), float(y)

    def psf_profiles(self, lon: float, lat: float, at_nodes: bool = False) -> np.ndarray:
        """PSF profiles (n_energy, n_rad) [sr-1] at a position (data frame), at the data's
        energies or (``at_nodes``) at the PSF map's own energy nodes."""
        values = self.psf_node_values if at_nodes else self.psf_values
        _, _, ny, nx = values.shape
        x, y = self._irf_xy(self.psf_grid, lon, lat)
        if not (-0.5 < x < nx - 0.5 and -0.5 < y < ny - 0.5):
            # outside the PSF map: its nearest pixel, as gammapy does
            x, y = float(nearest_index(x, nx)), float(nearest_index(y, ny))
        prof = sum(w * values[:, :, iy, ix] for iy, ix, w in bilinear_weights(x, y, nx, ny))
        return np.clip(prof, 0, None)

    def psf_kernels(self, lon: float, lat: float) -> np.ndarray:
        """Normalised PSF kernels (n_energy, N, N) on the data grid at a position (cached
        per position: resizing an extended source does not rebuild them). ``nearest``:
        built from the profile at the position (gammapy); ``bilinear``: the kernels of the
        surrounding IRF pixels (each built once) mixed with bilinear weights."""
        key = (lon, lat)
        kern = self._kernels.get(key)
        if kern is None:
            if self.irf_interpolation == "nearest":
                kern = self.kernel_builder.kernels(
                    self.psf_profiles(lon, lat), self.psf_profiles(lon, lat, at_nodes=True),
                    np.float32 if self.float32 else np.float64, self.psf_unit_scale)
            else:
                ny, nx = self.psf_values.shape[-2:]
                x, y = self._irf_xy(self.psf_grid, lon, lat)
                weights = node_weights(x, y, nx, ny, "bilinear")
                if len(weights) == 1:
                    kern = self._node_kernel(*weights[0][:2])[0]
                else:
                    stack, runs = self._cell_kernels(tuple((iy, ix) for iy, ix, _ in weights))
                    # one fused pass over the stacked kernels of the cell's pixels
                    kern = np.einsum("a,aijk->ijk", [w for *_, w in weights], stack)
                    footprint_runs(kern, runs)
            kern.flags.writeable = False  # cached and shared: never modified in place
            self._kernels.put(key, kern)
        return kern

    def _cell_kernels(self, nodes: tuple) -> tuple[np.ndarray, list]:
        """The kernels of the IRF pixels ``nodes`` (the corners of a cell) stacked on a
        common size (k, n, N, N), and the stamping runs of their largest footprints (those
        of every mix of them)."""
        def build():
            parts = [self._node_kernel(iy, ix) for iy, ix in nodes]
            big = max(k.shape[-1] for k, _ in parts)
            stack = np.zeros((len(parts), parts[0][0].shape[0], big, big))
            for i, (k, _) in enumerate(parts):
                o = (big - k.shape[-1]) // 2
                stack[i, :, o:o + k.shape[-1], o:o + k.shape[-1]] = k
            stack.flags.writeable = False
            return stack, plane_runs(np.max([e for _, e in parts], axis=0))

        return self._cell_stacks.get_or_build(nodes, build)

    def _node_kernel(self, iy: int, ix: int) -> tuple[np.ndarray, np.ndarray]:
        """PSF kernels of IRF-grid pixel (iy, ix), as gammapy builds them at its centre,
        and their footprints."""
        def build():
            kern = self.kernel_builder.kernels(self.psf_values[:, :, iy, ix],
                                               self.psf_node_values[:, :, iy, ix])
            kern.flags.writeable = False
            return kern, extents(kern)

        return self._node_kernels.get_or_build((iy, ix), build)

    def edisp_matrix(self, lon: float | None, lat: float | None) -> np.ndarray:
        """EDISP kernel (n_true, n_reco) at a position: the nearest IRF pixel's
        (``nearest``) or the bilinear mix of the surrounding pixels' kernels."""
        if self.edisp_values is None:
            return overlap_kernel(self.e_true, self.e_reco)
        ny, nx = self.edisp_values.shape[-2:]
        x, y = (0.0, 0.0) if lon is None else self._irf_xy(self.edisp_grid, lon, lat)
        return mix(node_weights(x, y, nx, ny, self.irf_interpolation), self._edisp_node)

    def _edisp_node(self, iy: int, ix: int) -> np.ndarray:
        """EDISP kernel of IRF-grid pixel (iy, ix) (cached: a few KB each)."""
        kern = self._edisp_nodes.get((iy, ix))
        if kern is None:
            kern = np.ascontiguousarray(self.edisp_values[..., iy, ix])
            if self.migra_edges is not None:
                kern = migra_to_kernel(kern, self.migra_edges, self.e_true, self.e_reco)
            kern.flags.writeable = False  # returned as is at a pixel centre: shared
            self._edisp_nodes[(iy, ix)] = kern
        return kern

    def cache_nbytes(self) -> dict[str, int]:
        """Bytes held by this evaluator's caches now (and their peaks, ``*_peak``)."""
        out = {"psf_kernels": self._kernels.nbytes, "psf_node_kernels":
               self._node_kernels.nbytes, "psf_cell_stacks": self._cell_stacks.nbytes,
               "psf_kernel_ffts": self._kernel_ffts.nbytes,
               "edisp_nodes": sum(k.nbytes for k in self._edisp_nodes.values()),
               "sources": sum(v.nbytes for c in self._cache.values() for v in c.values()
                              if isinstance(v, np.ndarray))}
        if self.psf_axis is not None and self.is_map:
            out["psf_sampling"] = self.kernel_builder.cache.nbytes
        for name, cache in (("psf_kernels", self._kernels),
                            ("psf_node_kernels", self._node_kernels),
                            ("psf_cell_stacks", self._cell_stacks),
                            ("psf_kernel_ffts", self._kernel_ffts)):
            out[name + "_peak"] = cache.peak_nbytes
        return out

    # -- one source ----------------------------------------------------------------------
    def _folded_morphology(self, model) -> tuple[np.ndarray, tuple | None]:
        """exposure x (PSF * S) on the smallest box holding it: (n_true, h, w), box."""
        irf = model.apply_irf
        exposure = self.exposure if irf["exposure"] else np.ones_like(self.exposure)
        if not self.is_map:
            return (exposure * self._region_fraction(model))[..., None], None
        if model.spatial is None:
            raise ModelError(f"model {model.name!r} has no spatial model: a map dataset needs "
                             "one (or use a spectrum dataset)")
        if self.float32:
            return folded_morphology(self, model, exposure,
                                     _convert_position(model, self.grid.frame), CUTOUT_MARGIN)
        ny, nx = self.grid.shape
        s = model.spatial.integrate_pixels(self.grid.wcs, self.grid.shape,
                                           self.morphology_energies(model))
        nz_y, nz_x = np.nonzero(s if s.ndim == 2 else s.any(axis=0))
        if nz_y.size == 0:  # nothing of the source on the map
            return self.nothing_folded()
        use_psf = irf["psf"] and self.psf_axis == "energy_true"
        if use_psf:
            kern = self.psf_kernels(*_convert_position(model, self.grid.frame))
            h = kern.shape[-1] // 2
        else:
            h = 0
        y0, y1 = max(nz_y.min() - h, 0), min(nz_y.max() + h + 1, ny)
        x0, x1 = max(nz_x.min() - h, 0), min(nz_x.max() + h + 1, nx)
        box = (slice(y0, y1), slice(x0, x1))
        s_box = s[(...,) + box]
        if use_psf:
            conv = convolve(s_box, kern, self._kernel_ffts)
        else:
            conv = np.broadcast_to(s_box, (exposure.shape[0],) + s_box.shape)
        return exposure[:, box[0], box[1]] * conv, box

    def morphology_energies(self, model) -> np.ndarray | None:
        """The true energies (TeV, bin centres) an energy-dependent morphology is taken
        at; None for the others."""
        if getattr(model.spatial, "is_energy_dependent", False):
            return np.sqrt(self.e_true[:-1] * self.e_true[1:])
        return None

    def nothing_folded(self) -> tuple[np.ndarray, tuple[slice, slice]]:
        """The folded morphology of a source that puts nothing on the map: an empty box."""
        return np.zeros((len(self.e_true) - 1, 0, 0)), (slice(0, 0), slice(0, 0))

    def _region_fraction(self, model) -> np.ndarray:
        """The share of a source's flux a region dataset sees, per true energy. With a PSF
        and a circular region: the fraction of the PSF inside the region (gammapy's
        containment at the region radius when the source sits at the centre, falling off
        with the offset). Without a PSF (the containment is in the exposure): 1 if the
        source passes gammapy's contribution test (its evaluation radius plus 0.05 deg
        reaches a pixel of the region), else 0."""
        n = self.exposure.shape[-1]
        if self.psf_axis != "energy_true" or not model.apply_irf["psf"]:
            return np.full(n, float(self._contributes(model)))
        if self.region is None or self.region.radius is None:
            return np.ones(n)
        from xdl4.psf import region_fraction
        from xdl4.skymath import separation

        centre = self.region.center
        offset = 0.0
        if model.spatial is not None and model.spatial.position is not None:
            offset = float(separation(*_convert_position(model, self.region.frame), *centre))
        return region_fraction(self.psf_profiles(*centre), self.rad_nodes,
                               self.region.radius, offset)

    def _contributes(self, model) -> bool:
        spatial = model.spatial
        radius = None if spatial is None else spatial.evaluation_radius
        if self.region is None or radius is None or spatial.position is None:
            return True  # no region to test, or a model evaluated everywhere (gammapy)
        lon, lat = _convert_position(model, self.region.frame)
        return self.region.overlaps_box(lon, lat, 2 * radius + CUTOUT_MARGIN,
                                        self.ds[REGION].attrs.get("wcs_header"))

    def npred_source(self, model) -> tuple[np.ndarray, tuple | None]:
        """Predicted counts of one source on its box: (n_reco, h, w) [or (n_reco, 1)]."""
        cache = self._cache.setdefault(model.name, {})
        # values plus the model classes and IRF switches: a new model of the same name and
        # parameter values is never mistaken for a cached one
        skey = (type(model.spatial), tuple(model.apply_irf.values()), model.spatial_key())
        if cache.get("spatial_key") != skey or "folded" not in cache:
            folded, box = self._folded_morphology(model)
            pos = (_convert_position(model, self.grid.frame) if self.is_map and
                   model.spatial is not None else (None, None))
            edisp = self.edisp_matrix(*pos) if model.apply_irf["edisp"] else \
                overlap_kernel(self.e_true, self.e_reco)
            cache.update(spatial_key=skey, folded=folded, unit=flux_unit_factor(model),
                         box=box, edisp=edisp, spectral_key=None)
        fkey = (type(model.spectral), model.spectral_key())
        if model.temporal is not None:
            fkey += (model.temporal_key(),)
        if cache.get("spectral_key") != fkey:
            if cache.get("flux_key") != fkey[:2]:  # the flux survives a spatial change
                cache.update(flux=self._flux(model, fkey[:2]), flux_key=fkey[:2])
            flux = cache["flux"] * cache["unit"]
            if model.temporal is not None:
                flux = flux * self.temporal_norm(model)
            folded = cache["folded"]
            if self.is_map:  # the flux scales the small EDISP matrix, not the big cube
                # einsum: the BLAS build here is slow for this (12 x 24) @ (24 x n) shape
                npred = np.einsum("tr,tp->rp", cache["edisp"] * flux[:, None],
                                  folded.reshape(folded.shape[0], -1))
                npred = npred.reshape((npred.shape[0],) + folded.shape[1:])
            else:  # region: (runs,) true energy -> (runs,) reco energy
                npred = np.einsum("...tr,...t->...r", cache["edisp"], flux * folded[..., 0])
            if self.psf_axis == "energy" and model.apply_irf["psf"] and self.is_map:
                npred, cache["box_reco"] = self._reco_psf(model, npred, cache["box"])
            cache.update(spectral_key=fkey, npred=npred)
        return cache["npred"], cache.get("box_reco", cache["box"])

    def _flux(self, model, key: tuple) -> np.ndarray:
        """The spectrum integrated over the true-energy bins, shared by the evaluators of
        datasets with the same binning (a joint fit computes it once per step)."""
        slot = (id(model.spectral), self._e_true_key)  # one entry per model and binning
        hit = _FLUX_CACHE.get(slot)
        if hit is None or hit[0] is not model.spectral or hit[1] != key:
            hit = (model.spectral, key, model.spectral.integral_bins(self.e_true))
            _FLUX_CACHE.put(slot, hit, size=hit[2].nbytes)
        return hit[2]

    def temporal_norm(self, model) -> float | np.ndarray:
        """Mean light curve of a source over this dataset's GTIs, cached per temporal key;
        with runs along ``obs`` one norm per run, shaped (runs, 1) against the true energy."""
        cache = self._cache.setdefault(model.name, {})
        key = model.temporal_key()
        if cache.get("temporal_key") != key:
            from xdl4.gti import good_times
            from xdl4.models.temporal import temporal_norm

            if self._gti is None:
                self._gti = (good_times(self.ds),)
            norm = temporal_norm(model.temporal, self._gti[0], model.name)
            if np.ndim(norm):
                norm = norm[:, None]
            cache.update(temporal_key=key, temporal_norm=norm)
        return cache["temporal_norm"]

    def _reco_psf(self, model, npred: np.ndarray, box: tuple) -> tuple[np.ndarray, tuple]:
        """Reco-energy PSF (applied after the dispersion): pad the box by the kernel."""
        kern = self.psf_kernels(*_convert_position(model, self.grid.frame))
        h = kern.shape[-1] // 2
        ny, nx = self.grid.shape
        big = (slice(max(box[0].start - h, 0), min(box[0].stop + h, ny)),
               slice(max(box[1].start - h, 0), min(box[1].stop + h, nx)))
        padded = np.zeros((npred.shape[0], big[0].stop - big[0].start,
                           big[1].stop - big[1].start))
        padded[:, box[0].start - big[0].start:box[0].stop - big[0].start,
               box[1].start - big[1].start:box[1].stop - big[1].start] = npred
        return convolve(padded, kern, self._kernel_ffts), big  # stamps a point source

    # -- totals --------------------------------------------------------------------------
    def npred_signal(self, models: ModelsLike, names=None) -> np.ndarray:
        out = np.zeros(self.counts.shape)
        for model in self.sources(models, names):
            npred, box = self.npred_source(model)
            if box is None:
                out += npred
            else:
                out[:, box[0], box[1]] += npred
        return out

    def npred_background(self, models: ModelsLike,
                         npred_signal: np.ndarray | None = None) -> np.ndarray:
        """Background counts: none here (the kinds' evaluators add theirs)."""
        return np.zeros(self.counts.shape)

    def npred(self, models: ModelsLike) -> np.ndarray:
        """Predicted counts, signal + background, never negative."""
        sig = self.npred_signal(models)
        return np.clip(sig + self.npred_background(models, sig), 0, None)


def vectorises_runs(ds: xr.Dataset) -> bool:
    """Whether the runs along ``obs`` are evaluated at once (region datasets without a
    PSF: every IRF is a small matrix); map datasets are evaluated run by run."""
    return "obs" in ds.dims and "lat" not in ds.dims and "psf" not in ds
