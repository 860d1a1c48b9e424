"""Map -> region (spectrum) datasets, checked against gammapy 2.1.

Reference numbers were produced by hand in the gammapy 2.1 environment (never imported
here) with

    ds = MapDataset.read("map_dataset.fits.gz")          # or MapDatasetOnOff.read(...)
    region = CircleSkyRegion(SkyCoord(lon, lat, unit="deg"), radius * u.deg)
    spec = ds.to_spectrum_dataset(region, containment_correction=cc)
    spec.models = Models([Models.read("map_dataset_models.yaml")["point"]])
    spec.counts.data, spec.background.data, spec.exposure.quantity.to("cm2 s"),
    spec.edisp.edisp_map.data[..., 0, 0], spec.npred().data, spec.stat_sum()

printed with 12 significant digits. "centre" is (83.63, 22.01, 0.25 deg), on the point
source; "offset" is (84.0, 21.8, 0.2 deg), which does not contain it.
"""


import numpy as np
import pytest
import xarray as xr
from astropy import units as u

import xdl4
import xdl4.region
from xdl4.region import to_region

CENTRE = "icrs;circle(83.63,22.01,0.25)"
OFFSET = "icrs;circle(84.0,21.8,0.2)"
SAFE = [False] * 3 + [True] * 9  # gammapy's mask_safe, OR-ed over both regions

REF = {
    "map/centre": dict(
        counts=[0, 0, 0, 962, 559, 571, 404, 172, 123, 78, 24, 9],
        background=[0, 0, 0, 27.8327208206, 12.2367066077, 6.26469937958, 3.65289164591,
                    1.72126671844, 0.66414127463, 0.286497477412, 0.08872823868,
                    0.044905354565],
        exposure=[1.913430178e+12, 3.46622873099e+12, 5.51991386479e+12, 7.90858849277e+12,
                  1.11260543303e+13, 1.45458415152e+13, 1.88692428584e+13, 2.36520774416e+13,
                  3.0483388148e+13, 4.13989518782e+13, 6.04772087879e+13, 8.395435743e+13,
                  1.02242802722e+14, 1.17061974017e+14, 1.25171277676e+14, 1.36348952177e+14,
                  1.35288081017e+14, 1.64772325187e+14, 1.39193332962e+14, 1.74274883736e+14,
                  1.68345118283e+14, 1.4446379784e+14, 1.46960504646e+14, 1.63207742315e+14],
        exposure_cc=[1.6859158988e+12, 3.33414130912e+12, 5.47371071551e+12,
                     7.89723714262e+12, 1.11248900796e+13, 1.45457936293e+13,
                     1.88692420635e+13, 2.36520774345e+13, 3.04833881479e+13,
                     4.13989518782e+13, 6.04772087879e+13, 8.395435743e+13, 1.02242802722e+14,
                     1.17061974017e+14, 1.25171277676e+14, 1.36348952177e+14,
                     1.35288081017e+14, 1.64772325187e+14, 1.39193332962e+14,
                     1.74274883736e+14, 1.68345118283e+14, 1.4446379784e+14,
                     1.46960504646e+14, 1.63207742315e+14],
        npred=[2055.51238296, 1533.98619876, 1286.430463, 954.392815461, 565.560075594,
               627.237596669, 421.091434538, 175.269460189, 125.828673051, 63.6155368352,
               23.2186591312, 15.6084384362],
        npred_cc=[2040.35890209, 1533.45841787, 1286.4283064, 954.392814515, 565.560075593],
        stat_sum=-30396.229459713682, stat_sum_cc=-30396.229459698654,
        # the IRF pixel gammapy picks (nearest) and the diagonal of every 2nd true bin
        irf_pixel=(7, 7),
        edisp_diag=[0.00161059987624, 0.00204538182359, 0.00200766467223, 0.0268152819043,
                    0.17871447267, 0.797582078563, 0.994575152117, 0.995726189734,
                    0.984997454796, 0.889880029653, 0.199787592496, 0.00412142851037],
    ),
    "map/offset": dict(
        counts=[0, 0, 0, 46, 18, 33, 16, 6, 4, 0, 0, 0],
        background=[0, 0, 0, 17.4095110177, 7.65999443291, 3.92233147558, 2.28765608895,
                    1.07671340007, 0.413916821176, 0.177562831146, 0.05419147749,
                    0.0273734675415],
        exposure=[1.95283171237e+12, 3.5066191809e+12, 5.54428144488e+12, 7.92962202747e+12,
                  1.11491833846e+13, 1.45842893074e+13, 1.88852428021e+13, 2.36789493379e+13,
                  3.05638787063e+13, 4.15516641109e+13, 6.06548069004e+13, 8.42184371636e+13,
                  1.0247081574e+14, 1.17264192759e+14, 1.25158253931e+14, 1.36499712717e+14,
                  1.34924281326e+14, 1.65504687864e+14, 1.38029715664e+14, 1.74433449043e+14,
                  1.68157023973e+14, 1.42775100017e+14, 1.45418481954e+14, 1.6202761009e+14],
        exposure_cc=[1.45497908538e+12, 3.07604692598e+12, 5.28734519779e+12,
                     7.81087956523e+12, 1.11179739257e+13, 1.45798543938e+13,
                     1.88848917038e+13, 2.3678930836e+13, 3.0563877534e+13, 4.15516632306e+13,
                     6.065480616e+13, 8.421843688e+13, 1.02470815692e+14, 1.17264192758e+14,
                     1.25158253931e+14, 1.36499712717e+14, 1.34924281326e+14,
                     1.65504687864e+14, 1.38029715664e+14, 1.74433449043e+14,
                     1.68157023973e+14, 1.42775100017e+14, 1.45418481953e+14,
                     1.62027609525e+14],
        # the point source lies outside: gammapy's npred is the background, in both cases
        stat_sum=-380.5958536793572,
        irf_pixel=(6, 5),  # pixel coordinates (x, y) = (5.28, 5.95): nearest, not bilinear
        edisp_diag=[0.00161061455295, 0.00204541803387, 0.00200757506492, 0.0268153367962,
                    0.178714308737, 0.797582745699, 0.994575324762, 0.995726126112,
                    0.984997348041, 0.889880650306, 0.199785941844, 0.00412128354902],
    ),
    "onoff/centre": dict(
        counts=[0, 0, 0, 909, 572, 616, 417, 170, 130, 64, 28, 14],
        counts_off=[0, 0, 0, 148, 70, 37, 26, 11, 3, 1, 0, 2],
        # gammapy: acceptance 1 in safe bins (its masked bins hold int-cast NaN garbage);
        # acceptance_off = acceptance x counts_off / sum(alpha x counts_off), NaN -> 0
        acceptance_off=[0, 0, 0, 5, 5, 5, 5, 5, 5, 5, 0, 5],
        npred=[2055.51238296, 1533.98619876, 1286.430463, 955.87261811, 567.346373566,
               628.343936197, 422.624738215, 175.733930021, 125.76859645, 63.5293361418,
               23.1299308925, 15.9539693123],
        # gammapy's stat_array: bin 10 (counts_off 0, so acceptance_off 0, alpha = inf)
        # contributes 0 there
        stat_sum=3.2942662016419533,
    ),
    "onoff/offset": dict(
        counts=[0, 0, 0, 70, 33, 38, 23, 3, 0, 1, 0, 1],
        counts_off=[0, 0, 0, 99, 36, 19, 18, 3, 3, 1, 0, 1],
        npred=[0, 0, 0, 28.1666666667, 11.5, 9.5, 6.83333333333, 1, 0.5, 0.333333333333, 0,
               0.333333333333],
        stat_sum=203.79157355611437,
    ),
}


@pytest.fixture(scope="module")
def maps(data_dir):
    return {k: xdl4.open_dataset(data_dir / "gammapy" / f"{f}.fits.gz")
            for k, f in (("map", "map_dataset"), ("onoff", "map_dataset_onoff"))}


@pytest.fixture(scope="module")
def point(data_dir):
    return xdl4.Models([xdl4.read_models(data_dir / "gammapy" / "map_dataset_models.yaml")
                        ["point"]])


def _exposure_cm2s(spec):
    return u.Quantity(spec["exposure"].values, spec["exposure"].attrs["units"]).to_value(
        "cm2 s")


def _check_common(spec, ds, ref, kind):
    assert spec.dl4.kind == kind
    np.testing.assert_array_equal(spec["counts"].values, ref["counts"])
    np.testing.assert_array_equal(spec["mask_safe"].values, SAFE)
    np.testing.assert_allclose(_exposure_cm2s(spec), ref.get("exposure", _exposure_cm2s(spec)),
                               rtol=1e-10)
    if "irf_pixel" in ref:
        iy, ix = ref["irf_pixel"]
        np.testing.assert_array_equal(
            spec["edisp"].transpose("energy_true", "energy").values,
            ds["edisp"].isel(irf_lat=iy, irf_lon=ix).transpose("energy_true", "energy").values)
        e = spec["edisp"].transpose("energy_true", "energy").values
        np.testing.assert_allclose(np.diagonal(e[::2]), ref["edisp_diag"], rtol=1e-10)
        np.testing.assert_array_equal(spec["edisp_exposure"].values,
                                      ds["edisp_exposure"].isel(irf_lat=iy, irf_lon=ix).values)
    assert "psf" not in spec and "lat" not in spec.dims and "irf_lat" not in spec.dims
    assert spec.dl4.name == ds.dl4.name
    assert float(spec["livetime"]) == float(ds["livetime"])
    np.testing.assert_array_equal(spec["gti_start"].values, ds["gti_start"].values)
    assert spec["gti_start"].attrs == ds["gti_start"].attrs
    assert int(spec["meta_obs_id"][0]) == int(ds["meta_obs_id"][0])
    assert xdl4.Region.from_dataset(spec) is not None


@pytest.mark.parametrize("where", ["centre", "offset"])
def test_map_dataset_matches_gammapy(maps, point, where):
    ref = REF[f"map/{where}"]
    ds = maps["map"]
    spec = to_region(ds, CENTRE if where == "centre" else OFFSET)
    _check_common(spec, ds, ref, "spectrum")
    np.testing.assert_allclose(spec["background"].values, ref["background"], rtol=1e-10)
    if where == "centre":
        np.testing.assert_allclose(spec.dl4.npred(point).values, ref["npred"], rtol=1e-10)
        assert spec.dl4.stat_sum(point) == pytest.approx(ref["stat_sum"], rel=1e-12)
    else:  # no source in the region (see the note on region sources in the report)
        np.testing.assert_allclose(spec.dl4.npred(None).values, ref["background"], rtol=1e-10)
        assert spec.dl4.stat_sum(None) == pytest.approx(ref["stat_sum"], rel=1e-12)


@pytest.mark.parametrize("where", ["centre", "offset"])
def test_containment_correction_matches_gammapy(maps, point, where):
    ref = REF[f"map/{where}"]
    spec = to_region(maps["map"], CENTRE if where == "centre" else OFFSET,
                     containment_correction=True, name="cc")
    assert spec.dl4.name == "cc"
    exposure = _exposure_cm2s(spec)
    np.testing.assert_allclose(exposure, ref["exposure_cc"], rtol=1e-10)
    if where == "centre":
        np.testing.assert_allclose(spec.dl4.npred(point).values[:5], ref["npred_cc"],
                                   rtol=1e-9)
        assert spec.dl4.stat_sum(point) == pytest.approx(ref["stat_sum_cc"], rel=1e-12)


@pytest.mark.parametrize("where", ["centre", "offset"])
def test_map_onoff_matches_gammapy(maps, point, where):
    ref = REF[f"onoff/{where}"]
    ds = maps["onoff"]
    spec = to_region(ds, CENTRE if where == "centre" else OFFSET)
    _check_common(spec, ds, {**REF[f"map/{where}"], **ref}, "spectrum_onoff")
    np.testing.assert_array_equal(spec["counts_off"].values, ref["counts_off"])
    np.testing.assert_array_equal(spec["acceptance"].values, np.where(SAFE, 1.0, 0.0))
    np.testing.assert_allclose(spec["acceptance_off"].values,
                               ref.get("acceptance_off", spec["acceptance_off"].values),
                               rtol=1e-12)
    models = point if where == "centre" else None
    npred = spec.dl4.npred(models).values
    # where counts_off sums to 0, acceptance_off is 0 and alpha infinite: the ON background
    # is free (xdl4: its profiled limit max(0, n_on - mu_sig); gammapy: 0)
    free = spec["acceptance_off"].values == 0
    np.testing.assert_allclose(npred[~free], np.array(ref["npred"])[~free], rtol=1e-10)
    mu_sig = spec.dl4.npred_signal(models).values if models else np.zeros(free.size)
    np.testing.assert_allclose(npred[free], np.maximum(spec.counts.values, mu_sig)[free])
    stat = spec.dl4.stat_array(models).values  # those bins add 0 here, as in gammapy
    assert stat[np.array(SAFE)].sum() == pytest.approx(ref["stat_sum"], rel=1e-10)


def test_region_frame_and_pixels(maps):
    ds = maps["map"]
    galactic = xdl4.Region.parse(CENTRE)
    from xdl4.skymath import convert_lonlat

    lon, lat = convert_lonlat(*galactic.center, "icrs", "galactic")
    spec = to_region(ds, f"galactic;circle({float(lon)},{float(lat)},0.25)")
    np.testing.assert_array_equal(spec["counts"].values, REF["map/centre"]["counts"])
    inside = xdl4.region.region_pixels(ds.dl4.grid, galactic)
    assert int(inside.sum()) == 80  # gammapy's region_mask selects the same 80 pixels


def test_errors(maps):
    ds = maps["map"]
    with pytest.raises(ValueError, match="not fully inside"):
        to_region(ds, "icrs;circle(83.63,23.4,0.2)")  # gammapy raises too
    with pytest.raises(ValueError, match="not uniform within the region"):
        to_region(ds, "icrs;circle(84.9,22.9,0.3)")  # gammapy raises too
    with pytest.raises(ValueError, match="no pixel centre"):
        to_region(ds, "icrs;circle(83.6312,22.0113,0.000001)")
    with pytest.raises(ValueError, match="single circle"):
        to_region(ds, "icrs;box(83.63,22.01,0.4,0.4,0)", containment_correction=True)
    with pytest.raises(ValueError, match="needs a PSF"):
        to_region(ds.drop_vars(["psf", "psf_exposure"]), CENTRE, containment_correction=True)
    spec = to_region(ds, CENTRE)
    with pytest.raises(ValueError, match="needs a map dataset"):
        to_region(spec, CENTRE)
    with pytest.raises(ValueError, match="one run"):
        to_region(xr.concat([ds, ds], "obs"), CENTRE)


def test_round_trips(maps, tmp_path):
    for key in ("map", "onoff"):
        spec = to_region(maps[key], CENTRE, containment_correction=True)
        spec.dl4.to_netcdf(tmp_path / f"{key}.nc")
        back = xdl4.open_dataset(tmp_path / f"{key}.nc")
        xr.testing.assert_identical(back.load(), spec)
        if key == "map":  # a cash spectrum: OGIP has no place for its background
            with pytest.raises(ValueError, match="background would be lost"):
                spec.dl4.to_ogip(tmp_path / f"{key}.fits")
            spec.dl4.to_gadf(tmp_path / f"{key}.fits")
            back = xdl4.open_dataset(tmp_path / f"{key}.fits").dl4.validate()
            np.testing.assert_allclose(back.background.values, spec.background.values,
                                       rtol=1e-6)
        else:
            spec.dl4.to_ogip(tmp_path / f"{key}.fits")
            back = xdl4.open_dataset(tmp_path / f"{key}.fits").dl4.validate()
        assert back.dl4.kind == spec.dl4.kind
        for vname in ("counts", "mask_safe", "counts_off", "acceptance_off"):
            if vname in spec:
                np.testing.assert_array_equal(back[vname].values, spec[vname].values)
        np.testing.assert_allclose(_exposure_cm2s(back), _exposure_cm2s(spec), rtol=1e-6)
        assert xdl4.Region.from_dataset(back) == xdl4.Region.from_dataset(spec)
        spec.dl4.to_gadf(tmp_path / f"{key}_gadf.fits")
        back = xdl4.open_dataset(tmp_path / f"{key}_gadf.fits").dl4.validate()
        np.testing.assert_array_equal(back["counts"].values, spec["counts"].values)


def test_example_dataset_rules():
    """No data needed: sums, means and ORs over the region's pixels, by hand."""
    ds = xdl4.examples.map_dataset()
    lon, lat = ds.dl4.grid.center
    region = xdl4.Region.parse(f"icrs;circle({lon},{lat},0.3)")
    spec = to_region(ds, region)
    inside = xdl4.region.region_pixels(ds.dl4.grid, region)
    safe = ds["mask_safe"] & inside
    np.testing.assert_allclose(spec["counts"], ds["counts"].where(safe, 0).sum(("lat", "lon")))
    np.testing.assert_allclose(spec["exposure"],
                               ds["exposure"].where(inside).mean(("lat", "lon")))
    np.testing.assert_array_equal(spec["mask_safe"], safe.any(("lat", "lon")))
    assert spec.dl4.validate() is spec


# gammapy 2.1: SpectrumDataset.read(gammapy/spectrum_dataset.fits.gz) with a power law times
# a point source at (83.63 + dlon, 22.01 + dlat), or a 0.2 deg Gaussian at (83.63 + dlon,
# 22.01): npred_signal().data.sum() > 0 (the region: 0.15 deg circle on a 0.05 deg CAR grid)
GAMMAPY_CONTRIBUTES = [  # dlon, point, gaussian, point on the diagonal (dlat = dlon)
    (0, True, True, True), (0.1, True, True, True), (0.15, True, True, False),
    (0.16, True, True, False), (0.17, True, True, False), (0.18, True, True, False),
    (0.2, False, True, False), (0.3, False, True, False), (0.5, False, True, False),
    (1.0, False, True, False), (1.1, False, True, False), (1.2, False, True, False),
    (3.0, False, False, False)]


def test_region_contribution_test_matches_gammapy(data_dir):
    """gammapy's box test (2 r_eval + 0.1 deg wide cut-out on the region's pixel grid),
    up to its pixel rounding at the region's edge."""
    from xdl4.sky import Region

    ds = xdl4.open_dataset(data_dir / "gammapy" / "spectrum_dataset.fits.gz")
    region, header = Region.from_dataset(ds), ds["region"].attrs["wcs_header"]
    for dlon, point, gauss, diagonal in GAMMAPY_CONTRIBUTES:
        lon = 83.63 + dlon
        assert region.overlaps_box(lon, 22.01, 0.1, header) is point, dlon
        assert region.overlaps_box(lon, 22.01, 2 * 5 * 0.2 + 0.1, header) is gauss, dlon
        assert region.overlaps_box(lon, 22.01 + dlon, 0.1, header) is diagonal, dlon
    assert Region.parse("icrs;point(83.63,22.01)").overlaps_box(90.0, 30.0, 0.1)
    default = Region.parse("icrs;circle(83.63,22.01,0.15)")  # gammapy's TAN 0.1 deg grid
    assert default.overlaps_box(83.7, 22.0, 0.1) and not default.overlaps_box(84.0, 22.0, 0.1)


def test_sources_outside_a_region_do_not_contribute(data_dir):
    """gammapy 2.1 npred_signal().data.sum() on the same dataset: 166.21871089599182 for a
    power law at the listed positions that pass its contribution test, else 0."""
    from xdl4.models import GaussianSpatialModel, Models, PointSpatialModel, PowerLaw, SkyModel

    ds = xdl4.open_dataset(data_dir / "gammapy" / "spectrum_dataset.fits.gz")
    for dlon, point, gauss, _ in GAMMAPY_CONTRIBUTES:
        for spatial, expected in ((PointSpatialModel(lon_0=83.63 + dlon, lat_0=22.01), point),
                                  (GaussianSpatialModel(lon_0=83.63 + dlon, lat_0=22.01,
                                                        sigma=0.2), gauss)):
            npred = float(ds.dl4.npred_signal(Models([SkyModel(PowerLaw(), spatial,
                                                                name="s")])).sum())
            assert npred == pytest.approx(166.21871089599182 if expected else 0.0,
                                          rel=1e-12), (dlon, type(spatial).__name__)


def test_point_region_takes_the_nearest_pixel(maps, tmp_path):
    """gammapy 2.1: MapDataset.read(map_dataset.fits.gz).to_spectrum_dataset(
    PointSkyRegion(83.63, 22.01)): counts [0, 0, 0, 113, 78, 91, ...], exposure (m2 s)
    [1.944868777920492e8, 3.4984563895190275e8, 5.5393568284674394e8, 7.925371211841233e8],
    background[3:6] [0.3486425370308988, 0.15358308344691057, 0.07866517982511796]."""
    spec = to_region(maps["map"], "icrs;point(83.63,22.01)")
    np.testing.assert_array_equal(spec.counts.values[:6], [0, 0, 0, 113, 78, 91])
    np.testing.assert_allclose(_exposure_cm2s(spec)[:4] / 1e4, [
        1.944868777920492e8, 3.4984563895190275e8, 5.5393568284674394e8,
        7.925371211841233e8], rtol=1e-12)
    np.testing.assert_allclose(spec.background.values[3:6], [
        0.3486425370308988, 0.15358308344691057, 0.07866517982511796], rtol=1e-12)
    with pytest.raises(ValueError, match="not inside the map"):
        to_region(maps["map"], "icrs;point(95.0,22.01)")
    spec.dl4.to_netcdf(tmp_path / "point.nc")
    xr.testing.assert_identical(xdl4.open_dataset(tmp_path / "point.nc").load(), spec)
