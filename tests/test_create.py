"""Constructors, accessor basics, info, resampling and to_image."""

import numpy as np
import pytest
import xarray as xr
from astropy import units as u

import xdl4


def test_create_empty_map_like_gammapy():
    grid = xdl4.WcsGrid.create((83.63, 22.01), width=(3, 2), binsz=0.1, proj="TAN")
    ds = xdl4.create("map", u.Quantity([0.1, 1, 10], "TeV"), [0.05, 0.5, 5, 50], grid=grid)
    assert dict(ds.counts.sizes) == {"energy": 2, "lat": 20, "lon": 30}
    assert dict(ds.exposure.sizes) == {"energy_true": 3, "lat": 20, "lon": 30}
    assert ds.psf.dims == ("energy_true", "rad", "irf_lat", "irf_lon")
    assert ds.edisp.dims == ("energy_true", "energy", "irf_lat", "irf_lon")
    assert ds.sizes["rad"] == 66 and ds.sizes["irf_lon"] == 15
    assert not ds.mask_safe.any()  # empty dataset: nothing safe, as gammapy's create
    # default kernel: linear-width overlap of true and reco bins
    k = ds.edisp.isel(irf_lat=0, irf_lon=0).values
    np.testing.assert_allclose(k, [[0.4 / 0.45, 0], [0.5 / 4.5, 4 / 4.5], [0, 5 / 45]],
                               rtol=1e-12)
    assert ds.dl4.grid.projection == "TAN"


def test_create_migra_and_reco_psf():
    grid = xdl4.WcsGrid.create((0, 0), 1.0, 0.1, frame="galactic")
    ds = xdl4.create("map", [1, 10], grid=grid, migra_edges=np.linspace(0.2, 5, 49),
                     reco_psf=True)
    assert ds.edisp.dims == ("energy_true", "migra", "irf_lat", "irf_lon")
    assert ds.psf.dims == ("energy", "rad", "irf_lat", "irf_lon")
    assert ds.dl4.grid.frame == "galactic"


def test_create_from_arrays_and_errors():
    ds = xdl4.create("spectrum", [1, 2, 4], region="icrs;circle(83.6,22.0,0.1)",
                     counts=[3, 4], exposure=u.Quantity([1e9, 2e9], "cm2 s"))
    assert ds.mask_safe.all()
    assert ds.exposure.attrs["units"] == "cm2 s"
    with pytest.raises(ValueError, match="does not fit"):
        xdl4.create("spectrum", [1, 2, 4], counts=[1, 2, 3])
    with pytest.raises(ValueError, match="unknown DL4 variables"):
        xdl4.create("spectrum", [1, 2, 4], countz=[1, 2])
    with pytest.raises(ValueError, match="strictly increasing"):
        xdl4.create("spectrum", [1, 4, 2])
    with pytest.raises(ValueError, match="needs a sky grid"):
        xdl4.create("map", [1, 2])
    with pytest.raises(ValueError, match="region frame"):
        xdl4.Region.parse("fk4;circle(1,2,3)")


def test_energy_edges_and_mask(examples):
    ds = examples["map"]
    e = ds.dl4.energy_edges
    assert e.unit == u.TeV and len(e) == 13
    np.testing.assert_allclose(e[[0, -1]].value, [0.1, 100])
    mask = ds.dl4.energy_mask("1 TeV", 10 * u.TeV)
    assert mask.sum() == 4 and mask.dims == ("energy",)
    assert ds.dl4.energy_mask(energy_min="1000 GeV").sum() == 8
    assert len(ds.dl4.energy_true_edges) == 25


def test_sky_coords_any_projection():
    grid = xdl4.WcsGrid.create((266.4, -28.9), 4.0, 0.5, proj="AIT")
    ds = xdl4.create("map", [1, 10], grid=grid, binsz_irf=None)
    sc = ds.dl4.sky_coords()
    assert sc.lon_2d.shape == (8, 8)
    lon, lat = grid.pixel_to_world(3.5, 3.5)
    np.testing.assert_allclose([lon, lat], [266.4, -28.9], atol=1e-8)


def test_info_fields(examples):
    ds = examples["map"]
    info = ds.dl4.info()
    mask = ds.mask_safe
    assert info["counts"] == float(ds.counts.where(mask, 0).sum())
    assert info["background"] == pytest.approx(float(ds.background.where(mask, 0).sum()))
    assert info["excess"] == pytest.approx(info["counts"] - info["background"])
    n, b = info["counts"], info["background"]
    assert info["sqrt_ts"] == pytest.approx(np.sqrt(2 * (n * np.log(n / b) - (n - b))))
    assert info["n_bins"] == ds.counts.size and info["n_fit_bins"] == int(mask.sum())
    assert info["livetime"] == 3600.0 and info["ontime"] == 3600.0
    assert info["counts_rate"] == pytest.approx(info["counts"] / 3600)
    onoff = examples["spectrum_onoff"].dl4.info()
    assert onoff["alpha"] == pytest.approx(0.25)
    assert onoff["acceptance_off"] == pytest.approx(onoff["acceptance"] / 0.25)
    assert onoff["excess"] == pytest.approx(onoff["counts"] - 0.25 * onoff["counts_off"])


def test_resample_energy_rules(examples):
    ds = examples["map_onoff"]
    new = ds.dl4.energy_edges[::3]
    res = ds.dl4.resample_energy(new)
    res.dl4.validate()
    assert res.sizes["energy"] == 4
    masked = ds.counts.where(ds.mask_safe, 0)
    np.testing.assert_allclose(res.counts.sum("energy"), masked.sum("energy"))
    np.testing.assert_array_equal(res.mask_safe.isel(energy=1), ds.mask_safe.isel(
        energy=slice(3, 6)).any("energy"))
    alpha = ds.acceptance / ds.acceptance_off
    bkg_old = (alpha * ds.counts_off).where(ds.mask_safe, 0).sum()
    bkg_new = (res.acceptance / res.acceptance_off * res.counts_off).fillna(0).sum()
    np.testing.assert_allclose(bkg_new, bkg_old, rtol=1e-12)
    xr.testing.assert_identical(res.exposure, ds.exposure)
    with pytest.raises(ValueError, match="not a subset"):
        ds.dl4.resample_energy([0.1, 0.5, 100])


def test_edisp_resampling_keeps_probability(examples):
    ds = examples["spectrum"]
    res = ds.dl4.resample_energy(ds.dl4.energy_edges[::2])
    safe = ds.mask_safe
    np.testing.assert_allclose(res.edisp.sum("energy"), ds.edisp.where(safe, 0).sum("energy"))


def test_to_image(examples):
    ds = examples["map"]
    img = ds.dl4.to_image()
    img.dl4.validate()
    assert img.sizes["energy"] == 1 and img.sizes["energy_true"] == ds.sizes["energy_true"]
    assert float(img.counts.sum()) == ds.dl4.info()["counts"]
    assert img.mask_safe.all()


def test_edges_as_strings_or_quantities():
    for edges in (["1 TeV", "10000 GeV"], [1000, 10000] * u.GeV, [1, 10]):
        ds = xdl4.create("spectrum", edges, counts=[1.0], exposure=1e10)
        np.testing.assert_allclose(ds.dl4.energy_edges.to_value("TeV"), [1, 10])
