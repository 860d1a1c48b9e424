"""Spatial operations (xdl4.spatial: downsample, cutout, pad) against gammapy 2.1.

Reference numbers were computed by hand in the gammapy 2.1 environment on
``$XDL4_DATA/gammapy/map_dataset.fits.gz`` and ``map_dataset_onoff.fits.gz``, read with
``MapDataset.read(path, name="run1")`` (the FoV background model binds to "run1"), models
``map_dataset_models.yaml``; e.g. ``d = ds.downsample(2, name="run1")``,
``ds.cutout(SkyCoord(83.63, 22.01, unit="deg"), 1 * u.deg, name="run1")``,
``ds.pad(3, name="run1")``, then ``d.counts.data.sum(axis=(1, 2))``,
``d.counts.geom.wcs.wcs.crpix``, ``d.psf.psf_map.data.sum()``, ``d.edisp.edisp_map.data.sum()``,
``d.models = models; d.stat_sum(); d.npred().data.sum()``.
"""


import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import xdl4
from xdl4 import masks, spatial
from xdl4.sky import WcsGrid
from xdl4.stack import stack

CRAB = (83.63, 22.01)
ZEROS3 = [0.0] * 3

# gammapy 2.1 numbers (see the module docstring). "geom": (shape (ny, nx), CRPIX, CDELT)
# of the data grid, "irf": (shape, CRPIX) of the IRF grid; per reco-energy sums over pixels.
MAP = {
    "downsample2": {
        "geom": ([30, 30], [15.5, 15.5], [-0.1, 0.1]), "irf": ([15, 15], [8.0, 8.0]),
        "counts": ZEROS3 + [2256.0, 1159.0, 1017.0, 681.0, 296.0, 176.0, 102.0, 30.0, 9.0],
        "background": ZEROS3 + [1042.30849449, 449.716716141, 229.524556784, 133.03057057,
                                64.704706486, 27.3790601481, 13.4464396819, 5.69074466,
                                2.9442949589],
        "mask_safe": ZEROS3 + [776.0] * 9,
        "exposure": 183488935941751.56, "psf": 3063879.7947296007,
        "edisp": 4514.4760063261565, "npred": 11562.980939572552,
        "stat_sum": -15491.732968544271,
    },
    "downsample2_energy": {
        "geom": ([60, 60], [30.5, 30.5], [-0.05, 0.05]), "irf": ([15, 15], [8.0, 8.0]),
        "counts": [0.0, 2256.0, 2176.0, 977.0, 278.0, 39.0],
        "background": [0.0, 1042.30849449, 679.241272925, 197.735277056, 40.82549983,
                       8.6350396189],
        "mask_safe": [0.0] + [3070.0] * 5,
        "exposure": 733955743767006.2, "psf": 3063879.7947296007,
        "edisp": 2943.965099999281, "npred": 5870.542130656997,
        "stat_sum": -6352.131236866369,
    },
    "cutout": {
        "geom": ([20, 20], [10.5, 10.5], [-0.05, 0.05]), "irf": ([5, 5], [3.0, 3.0]),
        "counts": [3739.0, 2421.0, 1667.0, 1162.0, 630.0, 652.0, 465.0, 195.0, 134.0, 80.0,
                   27.0, 9.0],
        "background": [1700.95538093, 718.388373533, 325.879861209, 138.631155523,
                       60.731558096, 31.065397256, 18.0926999151, 8.57214660707,
                       3.36577625475, 1.49297824818, 0.499267962654, 0.25533510979],
        "mask_safe": ZEROS3 + [400.0] * 9,
        "exposure": 81054521391174.56, "psf": 357547.4117924714,
        "edisp": 499.82934916303174, "npred": 11498.169291150622,
        "stat_sum": -13062.435761571654,
    },
    "pad3": {
        "geom": ([66, 66], [33.5, 33.5], [-0.05, 0.05]), "irf": ([15, 15], [8.0, 8.0]),
        "counts": [16898.0, 8222.0, 4443.0, 2403.0, 1220.0, 1049.0, 691.0, 302.0, 178.0,
                   102.0, 30.0, 9.0],
        "background": [14690.0831433, 6467.28757798, 2872.57243261, 1206.94224602,
                       519.796553867, 266.083393967, 154.16617496, 75.8329688647,
                       32.764350867, 16.47495533, 7.33086788523, 3.68536507265],
        "mask_safe": ZEROS3 + [3070.0] * 9,
        "exposure": 733955743767006.2, "psf": 3063879.7947296007,
        "edisp": 4514.4760063261565, "npred": 38009.003484773624,
        "stat_sum": -1775.5729367762935,
    },
}
# gammapy's on/off downsample sets alpha to 0 (acceptance_off NaN) in blocks whose summed
# OFF counts are 0, and its stat_sum is then inf; xdl4 stores acceptance_off = 0 there and
# reads it as "no OFF information" (ON background free, see xdl4.stats), a finite stat.
# "stat_defined" is gammapy's stat_array summed over mask & ~(counts_off == 0 & alpha == 0).
ONOFF = {
    "downsample2": {
        "counts": ZEROS3 + [2291.0, 1257.0, 1067.0, 700.0, 294.0, 183.0, 91.0, 34.0, 18.0],
        "counts_off": ZEROS3 + [5455.0, 2422.0, 1130.0, 663.0, 308.0, 145.0, 90.0, 23.0,
                                16.0],
        "acceptance": [900.0] * 12,
        "acceptance_off": ZEROS3 + [3870.0, 3695.0, 2970.0, 2170.0, 1320.0, 625.0, 425.0,
                                    110.0, 80.0],
        "stat_defined": 2974.203551706347,
    },
    "downsample2_energy": {
        "counts": [0.0, 2291.0, 2324.0, 994.0, 274.0, 52.0],
        "counts_off": [0.0, 5455.0, 3552.0, 971.0, 235.0, 39.0],
        "stat_defined": 4479.441043490253,
    },
    "cutout": {
        "counts": [4048.0, 2402.0, 1658.0, 1142.0, 675.0, 694.0, 470.0, 196.0, 138.0, 69.0,
                   31.0, 16.0],
        "counts_off": [9410.0, 3886.0, 1706.0, 752.0, 341.0, 174.0, 97.0, 44.0, 16.0, 10.0,
                       2.0, 4.0],
        "acceptance": [400.0] * 12, "acceptance_off": [2000.0] * 12,
        "stat_defined": 1472.2397547346197,
    },
}


@pytest.fixture(scope="module")
def map_ds(data_dir):
    return xdl4.open_dataset(data_dir / "gammapy" / "map_dataset.fits.gz").load()


@pytest.fixture(scope="module")
def onoff_ds(data_dir):
    return xdl4.open_dataset(data_dir / "gammapy" / "map_dataset_onoff.fits.gz").load()


@pytest.fixture(scope="module")
def models(data_dir):
    return xdl4.read_models(data_dir / "gammapy" / "map_dataset_models.yaml")


OPS = {
    "downsample2": lambda ds: spatial.downsample(ds, 2, name="run1"),
    "downsample2_energy": lambda ds: spatial.downsample(ds, 2, axis_name="energy",
                                                        name="run1"),
    "cutout": lambda ds: spatial.cutout(ds, CRAB, 1.0, name="run1"),
    "pad3": lambda ds: spatial.pad(ds, 3, name="run1"),
}


def _per_energy(da):
    return da.sum(("lat", "lon")).values


@pytest.mark.parametrize("op", list(MAP))
def test_map_dataset_as_gammapy(map_ds, models, op):
    ref, out = MAP[op], OPS[op](map_ds)
    grid, irf = out.dl4.grid, WcsGrid.from_dataset(out, "irf_")
    shape, crpix, cdelt = ref["geom"]
    assert list(grid.shape) == shape
    np.testing.assert_allclose(grid.wcs.wcs.crpix, crpix, rtol=1e-12)
    np.testing.assert_allclose(grid.wcs.wcs.cdelt, cdelt, rtol=1e-12)
    np.testing.assert_allclose(grid.wcs.wcs.crval, CRAB, rtol=1e-12)
    assert list(irf.shape) == ref["irf"][0]
    np.testing.assert_allclose(irf.wcs.wcs.crpix, ref["irf"][1], rtol=1e-12)
    for name in ("counts", "background", "mask_safe"):
        np.testing.assert_allclose(_per_energy(out[name]), ref[name], rtol=1e-10, err_msg=name)
    np.testing.assert_allclose(float(out.exposure.sum()), ref["exposure"], rtol=1e-12)
    np.testing.assert_allclose(float(out.psf.sum()), ref["psf"], rtol=1e-12)
    np.testing.assert_allclose(float(out.edisp.sum()), ref["edisp"], rtol=1e-12)
    # xdl4's forward model agrees with gammapy's to ~1e-7 on the original dataset too
    np.testing.assert_allclose(float(out.dl4.npred(models).sum()), ref["npred"], rtol=1e-6)
    np.testing.assert_allclose(out.dl4.stat_sum(models), ref["stat_sum"], rtol=1e-6)


def _stat_where_alpha_defined(ds, models):
    alpha = ds.acceptance / ds.acceptance_off
    alpha = alpha.where(np.isfinite(alpha), 0)
    ok = masks.fit(ds) & ~((ds.counts_off == 0) & (alpha == 0))
    return float(ds.dl4.stat_array(models).where(ok, 0).sum())


@pytest.mark.parametrize("op", list(ONOFF))
def test_onoff_dataset_as_gammapy(onoff_ds, models, op):
    ref, out = ONOFF[op], OPS[op](onoff_ds)
    for name in ("counts", "counts_off", "acceptance", "acceptance_off"):
        if name in ref:
            np.testing.assert_allclose(_per_energy(out[name]), ref[name], rtol=1e-10,
                                       err_msg=name)
    np.testing.assert_allclose(_stat_where_alpha_defined(out, models), ref["stat_defined"],
                               rtol=1e-6)


def test_onoff_energy_downsample_keeps_gammapy_alpha(onoff_ds):
    # gammapy averages acceptance over merged bins, xdl4's resample_energy sums it over safe
    # bins; alpha = acceptance / acceptance_off (what the statistic uses) is the same
    out = spatial.downsample(onoff_ds, 2, axis_name="energy")
    safe = onoff_ds.mask_safe
    bkg = (onoff_ds.acceptance / onoff_ds.acceptance_off * onoff_ds.counts_off).where(safe, 0)
    off = onoff_ds.counts_off.where(safe, 0)
    group = xr.DataArray(np.arange(12) // 2, dims="energy")
    expected = (bkg.groupby(group).sum() / off.groupby(group).sum()).fillna(0).values
    alpha = (out.acceptance / out.acceptance_off)
    np.testing.assert_allclose(alpha.where(np.isfinite(alpha), 0).values, expected,
                               rtol=1e-12)


def test_cutout_at_the_edge_as_gammapy(map_ds, models):
    # gammapy: ds.cutout(SkyCoord(85.0, 23.2, unit="deg"), 1 * u.deg, mode=...)
    trim = spatial.cutout(map_ds, (85.0, 23.2), 1.0)
    part = spatial.cutout(map_ds, (85.0, 23.2), 1.0, mode="partial")
    for out, shape, crpix, irf_shape, irf_crpix in [
            (trim, (16, 15), [30.5, -13.5], (4, 4), [8.0, -3.0]),
            (part, (20, 20), [35.5, -13.5], (5, 5), [9.0, -3.0])]:
        assert out.dl4.grid.shape == shape
        np.testing.assert_allclose(out.dl4.grid.wcs.wcs.crpix, crpix)
        irf = WcsGrid.from_dataset(out, "irf_")
        assert irf.shape == irf_shape
        np.testing.assert_allclose(irf.wcs.wcs.crpix, irf_crpix)
        np.testing.assert_allclose(_per_energy(out.counts)[:4], [852.0, 405.0, 173.0, 65.0])
        np.testing.assert_allclose(float(out.exposure.sum()), 47113815464074.48, rtol=1e-12)
        np.testing.assert_allclose(out.dl4.stat_sum(models), 185.56648260448642, rtol=1e-9)
    assert trim.lon_pixel.values[0] == 0 and trim.lat_pixel.values[0] == 44
    assert part.lon_pixel.values[0] == 0 and not part.mask_safe[:, -4:].any()


@pytest.mark.parametrize("pos, width, mode, shape, crpix, irf_shape, irf_crpix", [
    # gammapy: MapDataset.counts.geom.cutout(...) and .psf.psf_map.geom.cutout(min_npix=3)
    (CRAB, (0.73, 1.22), "trim", (24, 15), [8.5, 12.5], (6, 4), [3.0, 4.0]),
    ((82.1, 20.5), 0.3, "partial", (6, 6), [-25.5, 33.5], (3, 3), [-5.0, 10.0]),
    ((84.5, 21.0), 0.02, "trim", (1, 1), [17.5, 21.5], (3, 3), [6.0, 7.0]),
])
def test_cutout_boxes(map_ds, pos, width, mode, shape, crpix, irf_shape, irf_crpix):
    out = spatial.cutout(map_ds, pos, width, mode=mode)
    assert out.dl4.grid.shape == shape
    np.testing.assert_allclose(out.dl4.grid.wcs.wcs.crpix, crpix)
    irf = WcsGrid.from_dataset(out, "irf_")
    assert irf.shape == irf_shape
    np.testing.assert_allclose(irf.wcs.wcs.crpix, irf_crpix)


@pytest.mark.parametrize("op", ["downsample2", "cutout", "pad3"])
def test_gadf_round_trip(map_ds, tmp_path, op):
    out = OPS[op](map_ds)
    out.dl4.to_gadf(tmp_path / "out.fits")
    back = xdl4.open_dataset(tmp_path / "out.fits").load()
    for prefix in ("", "irf_"):
        a, b = WcsGrid.from_dataset(out, prefix), WcsGrid.from_dataset(back, prefix)
        assert a.shape == b.shape and b.pixel_offset_in(a) == (0, 0)
    for name in ("counts", "background", "exposure", "mask_safe", "psf", "edisp"):
        np.testing.assert_allclose(back[name].values, out[name].values, rtol=1e-6,
                                   err_msg=name)


@settings(max_examples=15, deadline=None)
@given(factor=st.sampled_from([1, 2, 3, 4, 6]), seed=st.integers(0, 5))
def test_downsample_preserves_masked_totals(factor, seed):
    ds = xdl4.examples.map_dataset(seed, width=1.2, binsz=0.1)
    ds = ds.assign(mask_safe=ds.mask_safe & (ds.lon_pixel + ds.lat_pixel) % 5 > 0)
    out = spatial.downsample(ds, factor)
    safe = ds.mask_safe
    for name in ("counts", "background"):
        np.testing.assert_allclose(float(out[name].sum()), float(ds[name].where(safe).sum()),
                                   rtol=1e-12)
    np.testing.assert_allclose(float(out.exposure.mean()), float(ds.exposure.mean()),
                               rtol=1e-12)
    assert int(out.mask_safe.sum()) <= int(safe.sum())
    assert out.dl4.grid.binsz == pytest.approx((0.1 * factor, 0.1 * factor))
    assert out.dl4.grid.center == pytest.approx(ds.dl4.grid.center)
    xdl4.validate(out)


@settings(max_examples=20, deadline=None)
@given(lon=st.floats(82.9, 84.4), lat=st.floats(21.3, 22.7), width=st.floats(0.05, 1.6))
def test_cutout_stacks_back_onto_its_parent(lon, lat, width):
    parent = xdl4.examples.map_dataset(0, width=1.5, binsz=0.1).drop_vars("obs")  # no label
    cut = spatial.cutout(parent, (lon, lat), width)
    xdl4.validate(cut)
    empty = parent.assign(mask_safe=xr.zeros_like(parent.mask_safe))
    out = stack(empty, cut)
    inside = parent.lon_pixel.isin(cut.lon_pixel) & parent.lat_pixel.isin(cut.lat_pixel)
    safe = parent.mask_safe & inside
    for name in ("counts", "background"):
        xr.testing.assert_allclose(out[name], parent[name].where(safe, 0))
    xr.testing.assert_equal(out.mask_safe, safe.transpose(*out.mask_safe.dims))
    xr.testing.assert_allclose(out.exposure, parent.exposure.where(masks.image(safe), 0))


def test_pad_then_cutout_restores_the_dataset(map_ds):
    padded = spatial.pad(map_ds, (2, 1))
    assert not padded.mask_safe[:, :1].any() and float(padded.counts[:, :, :2].sum()) == 0
    back = spatial.cutout(padded, map_ds.dl4.grid.center, (3.0, 3.0))
    for name in ("counts", "exposure", "mask_safe"):
        np.testing.assert_array_equal(back[name].values, map_ds[name].values)
    edge = spatial.pad(map_ds, 1, mode="edge")
    np.testing.assert_array_equal(edge.exposure[:, 0, 1:-1].values, map_ds.exposure[:, 0].values)


def test_irfs_on_the_data_grid_stay_as_they_are():
    ds = xdl4.examples.map_dataset(width=1.0, binsz=0.1)
    ds = ds.isel(irf_lat=slice(0, 0), irf_lon=slice(0, 0)).drop_dims(["irf_lat", "irf_lon"])
    ds = ds.assign(psf_exposure=ds.exposure)  # an IRF map on the data grid
    out = spatial.downsample(ds, 2)
    assert out.psf_exposure.dims[-2:] == ("irf_lat", "irf_lon")
    np.testing.assert_array_equal(out.psf_exposure.values, ds.psf_exposure.values)


def test_errors(map_ds, onoff_ds, examples):
    with pytest.raises(ValueError, match="not divisible by factor 7"):
        spatial.downsample(map_ds, 7)
    with pytest.raises(ValueError, match="energy bins .12. is not divisible by 5"):
        spatial.downsample(map_ds, 5, axis_name="energy")
    with pytest.raises(ValueError, match="axis_name"):
        spatial.downsample(map_ds, 2, axis_name="energy_true")
    with pytest.raises(ValueError, match="positive integer"):
        spatial.downsample(map_ds, 1.5)
    with pytest.raises(ValueError, match="does not overlap"):
        spatial.cutout(map_ds, (90.0, 22.0), 1.0)
    with pytest.raises(ValueError, match="partially"):
        spatial.cutout(map_ds, (85.0, 23.2), 1.0, mode="strict")
    with pytest.raises(ValueError, match="mode"):
        spatial.cutout(map_ds, CRAB, 1.0, mode="edge")
    with pytest.raises(xdl4.KindError, match="pad is not defined for map_onoff datasets"):
        onoff_ds.dl4.pad(2)  # gammapy 2.1 has no pad for on/off datasets either
    with pytest.raises(ValueError, match="non-negative integers"):
        spatial.pad(map_ds, -1)
    for kind in ("spectrum", "spectrum_onoff", "flux_points"):
        with pytest.raises(ValueError, match="needs a map dataset"):
            spatial.downsample(examples[kind], 2)
        with pytest.raises(ValueError, match="needs a map dataset"):
            spatial.cutout(examples[kind], CRAB, 1.0)
        with pytest.raises(xdl4.KindError, match=f"downsample is not defined for {kind}"):
            examples[kind].dl4.downsample(2)


def test_accessor():
    ds = xdl4.examples.map_dataset(width=1.0, binsz=0.1)
    xr.testing.assert_identical(ds.dl4.downsample(2, name="x"), spatial.downsample(ds, 2, name="x"))
    xr.testing.assert_identical(ds.dl4.cutout(CRAB, 0.5), spatial.cutout(ds, CRAB, 0.5))
    xr.testing.assert_identical(ds.dl4.pad(1, cval=2.0), spatial.pad(ds, 1, cval=2.0))
