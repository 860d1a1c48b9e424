"""Statistics: the edge-case table of xdl4.stats, flux points, fake, residuals, bias."""

import numpy as np
import pytest
from astropy import units as u
from hypothesis import given, settings
from hypothesis import strategies as st

import xdl4
from xdl4.models import (
    DiskSpatialModel,
    GaussianSpatialModel,
    Models,
    PointSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
)
from xdl4.stats import cash, wstat, wstat_mu_bkg

# -- the edge-case table --------------------------------------------------------------------


def test_cash_edges():
    assert cash(0, 3.0) == 6.0  # n = 0: 2 mu
    assert np.isfinite(cash(5, 0.0))  # mu floored at 1e-25
    assert cash(5, 0.0) == pytest.approx(2 * (1e-25 - 5 * np.log(1e-25)))


def test_wstat_edges():
    # n_on = 0: mu_b = n_off / (1 + alpha), whatever mu_sig
    np.testing.assert_allclose(wstat_mu_bkg(0, 10, 0.25, [0.0, 1.0, 7.0]), 8.0)
    # n_off = 0: mu_b = max(0, n_on/(1+alpha) - mu_sig/alpha)
    np.testing.assert_allclose(wstat_mu_bkg(5, 0, 0.2, 2.0), 0.0)
    np.testing.assert_allclose(wstat(5, 0, 0.2, 2.0), 3.1629, atol=1e-4)  # gammapy's value
    np.testing.assert_allclose(wstat(0, 0, 0.3, 2.5), 5.0)  # 2 mu_sig
    np.testing.assert_allclose(wstat(0, 0, 0.3, 0.0), 0.0)
    # alpha = 0: the limit (cash on the ON counts, background 0), not gammapy's silent 0
    np.testing.assert_allclose(wstat(4, 7, 0.0, 3.0),
                               cash(4, 3.0) - cash(4, 4.0) + 0.0, rtol=1e-12)
    # negative mu_sig is allowed: the profile keeps the ON expectation positive
    mu_b = wstat_mu_bkg(3, 2, 0.5, -10.0)
    assert -10.0 + 0.5 * mu_b > 0 and np.isfinite(wstat(3, 2, 0.5, -10.0))
    # an impossible ON expectation (given mu_b) costs +inf, never a silent 0
    assert wstat(3, 2, 0.5, -10.0, mu_bkg=1.0) == np.inf


@given(st.integers(0, 60), st.floats(0, 80))
def test_wstat_infinite_alpha_is_the_limit(n_on, mu_sig):
    """acceptance_off = 0 (alpha = inf) with no OFF counts: the alpha -> inf limit, the ON
    background free (0 cost while mu_sig <= n_on); OFF counts without OFF exposure: +inf."""
    from xdl4.stats import wstat_background

    limit = wstat(n_on, 0, np.inf, mu_sig)
    np.testing.assert_allclose(limit, wstat(n_on, 0, 1e9, mu_sig), rtol=1e-6, atol=1e-6)
    expected = 0.0 if mu_sig <= n_on else cash(n_on, mu_sig) - cash(n_on, max(n_on, 1e-25))
    np.testing.assert_allclose(limit, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(wstat_background(n_on, 0, np.inf, mu_sig),
                               max(0.0, n_on - mu_sig))
    assert wstat(n_on, 3, np.inf, mu_sig) == np.inf


def test_onoff_bin_without_off_exposure_as_gammapy(data_dir):
    """gammapy 2.1, pha_sonoff.fits with acceptance_off = counts_off = 0 in bin 6 (396 ON
    counts), PowerLaw(2.5, 3e-11): stat_sum 469.73594815963463 (the bin adds 0), info
    background 22.25; xdl4 gives the same while the model stays below the ON counts."""
    ds = xdl4.open_dataset(data_dir / "gammapy" / "spectrum_onoff" / "pha_sonoff.fits")
    ds = ds.assign(acceptance_off=ds.acceptance_off.astype(float),
                   counts_off=ds.counts_off.astype(float))
    ds["acceptance_off"][6] = 0.0
    ds["counts_off"][6] = 0.0
    models = Models([SkyModel(PowerLawSpectralModel(index=2.5, amplitude=3e-11), name="s")])
    assert ds.dl4.stat_array(models).values[6] == 0.0
    assert ds.dl4.stat_sum(models) == pytest.approx(469.73594815963463, rel=1e-12)
    assert ds.dl4.info(models)["background"] == 22.25
    assert float(ds.dl4.npred_background(models)[6]) == float(ds.counts[6]) - float(
        ds.dl4.npred_signal(models)[6])


@given(st.floats(0, 50), st.floats(0, 50), st.floats(0.01, 5), st.floats(0, 50))
def test_wstat_profile_is_the_minimum(n_on, n_off, alpha, mu_sig):
    n_on, n_off = np.floor(n_on), np.floor(n_off)
    mu_b = wstat_mu_bkg(n_on, n_off, alpha, mu_sig)
    w = wstat(n_on, n_off, alpha, mu_sig)
    assert np.isfinite(w) and w >= -1e-9
    for b in (mu_b * 1.01 + 1e-6, max(mu_b * 0.99 - 1e-6, 0)):
        assert wstat(n_on, n_off, alpha, mu_sig, b) >= w - 1e-9


# -- flux points ------------------------------------------------------------------------------

def test_flux_points_match_gammapy(data_dir, reference):
    from xdl4.kinds.flux_points import stat_array
    from xdl4.testing import reference_case

    for key in ("flux_points_hess", "flux_points_hawc"):
        fp, m = reference_case(data_dir, key)
        np.testing.assert_allclose(fp.dl4.stat_sum(m), reference[key]["stat_sum"], rtol=1e-10)
    hess, m = reference_case(data_dir, "flux_points_hess")
    np.testing.assert_allclose(hess.dl4.residuals(m).values,
                               reference["flux_points_hess"]["residuals"], rtol=1e-10)
    # the profile statistic |stat_scan - stat| interpolated: >= 0; NaN (masked) exactly
    # where a point's scan has non-finite values, as gammapy
    prof = stat_array(hess, m, "profile").values
    bad_scan = ~np.isfinite(hess["stat_scan"].values).all(axis=1)
    np.testing.assert_array_equal(np.isnan(prof), bad_scan)
    assert (prof[~bad_scan] >= -1e-6).all()


def test_flux_point_statistics_by_hand():
    fp = xdl4.create_flux_points([1, 2, 4, 8], dnde=[1e-11, 2e-12, 1e-13],
                                 dnde_err=[1e-12, 2e-13, 5e-14], dnde_errn=[1e-12, 2e-13, 5e-14],
                                 dnde_errp=[2e-12, 4e-13, 6e-14], dnde_ul=[np.nan, np.nan, 3e-13],
                                 is_ul=[False, False, True])
    m = Models([SkyModel(PowerLawSpectralModel(index=2.5, amplitude=1e-11 * u.Unit(
        "cm-2 s-1 TeV-1")), name="s")])
    model = 1e-11 * fp.energy.values ** -2.5
    d, e = np.array([1e-11, 2e-12]), np.array([1e-12, 2e-13])
    chi2 = (((d - model[:2]) / e) ** 2).sum()
    assert fp.dl4.stat_sum(m) == pytest.approx(chi2, rel=1e-12)
    assert np.isnan(fp.dl4.residuals(m).values[2])
    from scipy.special import erfc

    dist = xdl4.kinds.flux_points.stat_array(fp, m, "distrib").values
    ul_term = 2 * np.log(erfc((3e-13 - model[2]) / 3e-13) / erfc(1))
    assert dist[2] == pytest.approx(ul_term)
    err = np.where(model[:2] >= d, [2e-12, 4e-13], [1e-12, 2e-13])
    np.testing.assert_allclose(dist[:2], ((model[:2] - d) / err) ** 2)


# -- counts datasets ---------------------------------------------------------------------------

def _source(spatial):
    return Models([SkyModel(PowerLawSpectralModel(index=2.5, amplitude=3.8e-11 * u.Unit(
        "cm-2 s-1 TeV-1")), spatial, name="src")])


MAP = xdl4.examples.map_dataset()


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(["point", "gauss", "disk"]), dlon=st.floats(-2.5, 2.5),
       dlat=st.floats(-2.5, 2.5), size=st.floats(0.01, 1.0), index=st.floats(1.0, 4.0))
def test_npred_never_negative(kind, dlon, dlat, size, index):
    lon, lat = 83.63 + dlon, 22.01 + dlat  # inside, near and beyond the 3 deg map edge
    spatial = {"point": lambda: PointSpatialModel(lon_0=lon, lat_0=lat),
               "gauss": lambda: GaussianSpatialModel(lon_0=lon, lat_0=lat, sigma=size),
               "disk": lambda: DiskSpatialModel(lon_0=lon, lat_0=lat, r_0=size)}[kind]()
    models = _source(spatial)
    models.parameters["src.index"].value = index
    npred = MAP.dl4.npred(models)
    assert float(npred.min()) >= 0
    sig = MAP.dl4.npred_signal(models)
    assert float(sig.min()) >= 0


def test_point_source_flux_is_conserved_inside_map():
    """A point source at the corner of the four central pixels: all its flux lands in the
    map, sum = sum_t F_t X_t sum_r K_tr with X the mean exposure of those pixels."""
    from xdl4.kinds.counts import evaluator as Evaluator

    models = _source(PointSpatialModel(lon_0=83.63, lat_0=22.01))
    flat = MAP.copy(deep=True)
    flat["exposure"][:] = flat.exposure.isel(lat=30, lon=30)  # uniform in space
    sig = flat.dl4.npred_signal(models)
    ev = Evaluator(flat)
    flux = models["src"].spectral.integral_bins(ev.e_true)
    expo = ev.exposure[:, 30, 30]
    kernel = ev.edisp_matrix(83.63, 22.01)
    assert float(sig.sum()) == pytest.approx((flux * expo * kernel.sum(axis=1)).sum(),
                                             rel=1e-9)


def test_fake_and_residuals():
    ds = xdl4.examples.spectrum_dataset()
    models = _source(None)
    a = ds.dl4.fake(models, seed=3)
    b = ds.dl4.fake(models, seed=3)
    np.testing.assert_array_equal(a.counts, b.counts)
    many = ds.dl4.fake(models, seed=4, size=2000)
    np.testing.assert_allclose(many.counts.mean("obs"), ds.dl4.npred(models), rtol=0.05,
                               atol=0.5)
    res = ds.dl4.residuals(models, "diff/sqrt(model)")
    assert res.isnull().sum() == (~ds.mask_safe).sum()
    with pytest.raises(ValueError, match="residual method"):
        ds.dl4.residuals(models, "ratio")


def test_wstat_bias_at_true_model():
    """300 fake on/off spectra at the true model: mean WStat = number of fit bins
    (one profiled background per bin -> chi2 with one dof per bin) within 3 s.e."""
    n_bins = 10
    e = np.geomspace(1, 10, n_bins + 1)
    mu_sig = np.linspace(150, 60, n_bins)
    alpha = 0.2
    b_on = np.full(n_bins, 100.0)
    ds = xdl4.create("spectrum_onoff", e, e, region="icrs;circle(83.63,22.01,0.2)",
                     counts=0.0, counts_off=0.0, acceptance=alpha, acceptance_off=1.0,
                     exposure=1e10 * u.Unit("cm2 s"))
    src = Models([SkyModel(PowerLawSpectralModel(index=2.0, amplitude=1.0 * u.Unit(
        "cm-2 s-1 TeV-1")), name="s")])
    flux = src["s"].spectral.integral_bins(e)
    ds["exposure"][:] = mu_sig / flux * 1e0
    fakes = ds.dl4.fake(src, seed=11, size=300, npred_background=ds.counts * 0 + b_on)
    stats = np.array([fakes.isel(obs=i).dl4.stat_sum(src) for i in range(300)])
    assert abs(stats.mean() - n_bins) < 3 * stats.std(ddof=1) / np.sqrt(300)


def test_region_psf_containment():
    """A spectrum with a PSF and a circular region: a centred point source gets the PSF
    containment at the region radius (gammapy); moving it out lowers it smoothly to 0."""
    import xdl4.forward
    from xdl4.psf import containment

    spec = xdl4.examples.spectrum_dataset()
    grid_ds = xdl4.examples.map_dataset()
    psf = grid_ds.psf.isel(irf_lat=7, irf_lon=7, drop=True)
    ds = spec.assign(psf=psf.drop_vars([c for c in psf.coords if c not in ("energy_true",
                                                                           "rad")]))
    ds = ds.assign_coords(rad=grid_ds.rad, rad_bounds=grid_ds.rad_bounds)
    ds.dl4.validate()
    fractions = []
    # without a PSF, a source inside the region gets the full flux: the one at the centre
    without = spec.dl4.npred_signal(_source(PointSpatialModel(lon_0=83.63, lat_0=22.01))).sum()
    for dlat in (0.0, 0.1, 0.2, 0.4, 1.5):
        models = _source(PointSpatialModel(lon_0=83.63, lat_0=22.01 + dlat))
        with_psf = ds.dl4.npred_signal(models).sum()
        fractions.append(float(with_psf / without))
    assert 0.5 < fractions[0] < 1.01 and np.all(np.diff(fractions) < 0)
    assert fractions[-1] == 0.0
    # on axis, each true-energy bin gets exactly gammapy's containment at the radius
    ev = xdl4.kinds.counts.evaluator(ds)
    frac = ev._region_fraction(_source(PointSpatialModel(lon_0=83.63, lat_0=22.01))["src"])
    np.testing.assert_allclose(frac, containment(psf.values, grid_ds.rad.values, 0.2))


def test_reco_energy_psf_matches_true_energy_psf_without_dispersion():
    """A PSF given in reco energy is applied after the EDISP (HAWC-style files). With an
    identity EDISP, uniform exposure and the same PSF, both orders give the same npred."""
    e = np.geomspace(0.5, 50, 7)
    grid = xdl4.WcsGrid.create((83.63, 22.01), 2.0, 0.05)
    kwargs = dict(grid=grid, binsz_irf=0.5, counts=0.0, exposure=1e10 * u.Unit("cm2 s"))
    true_psf = xdl4.create("map", e, e, **kwargs)
    reco_psf = xdl4.create("map", e, e, reco_psf=True, **kwargs)
    sigma = np.array([0.2, 0.15, 0.1, 0.08, 0.06, 0.05])
    rad = true_psf.rad.values
    prof = np.exp(-0.5 * (rad[None] / sigma[:, None]) ** 2)
    prof /= (prof * 2 * np.pi * np.radians(rad[None]) * np.radians(0.01)).sum(1, keepdims=True)
    for ds in (true_psf, reco_psf):
        ds["psf"][:] = prof[:, :, None, None]
    models = _source(GaussianSpatialModel(lon_0=83.6, lat_0=22.05, sigma=0.1))
    a = true_psf.dl4.npred_signal(models)
    b = reco_psf.dl4.npred_signal(models)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-9, atol=1e-12 * float(a.max()))
    assert float(a.sum()) > 0


def test_migration_edisp_becomes_a_kernel():
    """A narrow migration density around 1 puts each true bin into the reco bin holding
    its centre; the cumulative-integral construction conserves probability."""
    from xdl4.edisp import migra_to_kernel

    migra = np.linspace(0.2, 5, 481)
    centres = 0.5 * (migra[1:] + migra[:-1])
    dens = np.exp(-0.5 * ((centres - 1) / 0.02) ** 2) / (0.02 * np.sqrt(2 * np.pi))
    e_true = np.geomspace(0.1, 100, 13)
    e_reco = np.geomspace(0.1, 100, 7)
    k = migra_to_kernel(np.tile(dens, (12, 1)), migra, e_true, e_reco)
    np.testing.assert_allclose(k.sum(axis=1), 1, atol=1e-6)
    centre = np.sqrt(e_true[:-1] * e_true[1:])
    np.testing.assert_array_equal(k.argmax(axis=1), np.searchsorted(e_reco, centre) - 1)


def test_flux_points_info():
    fp = xdl4.examples.flux_points()
    info = fp.dl4.info(_source(None))
    assert (info["n_points"], info["n_ul"], info["sed_type"]) == (8, 1, "dnde")
    assert info["n_fit_bins"] == 7
    assert info["stat_sum"] == pytest.approx(fp.dl4.stat_sum(_source(None)))
    with pytest.raises(ValueError, match="needs a pixel grid"):
        xdl4.examples.spectrum_dataset().dl4.sky_coords()


@settings(max_examples=20, deadline=None)
@given(ny=st.integers(5, 40), nx=st.integers(5, 40), half=st.lists(st.integers(0, 6),
                                                                    min_size=1, max_size=4),
       seed=st.integers(0, 1000))
def test_convolve_equals_linear_same_convolution(ny, nx, half, seed):
    """xdl4's grouped circular FFT convolution is scipy's linear 'same' convolution."""
    from scipy.signal import fftconvolve

    from xdl4.psf import convolve

    rng = np.random.default_rng(seed)
    big = 2 * max(half) + 1
    kernels = np.zeros((len(half), big, big))
    for i, h in enumerate(half):
        c = big // 2
        kernels[i, c - h:c + h + 1, c - h:c + h + 1] = rng.random((2 * h + 1, 2 * h + 1))
    image = rng.random((ny, nx))
    expected = np.stack([fftconvolve(image, k, mode="same") for k in kernels])
    np.testing.assert_allclose(convolve(image, kernels, {}), np.clip(expected, 0, None),
                               atol=1e-12)


def test_evaluator_cache_is_not_fooled_by_a_new_model_of_the_same_name():
    from xdl4.kinds.counts import evaluator as Evaluator
    from xdl4.models import ConstantSpectralModel

    ev = Evaluator(MAP)
    a = _source(GaussianSpatialModel(lon_0=83.6, lat_0=22.0, sigma=0.2))
    first = ev.npred_signal(a).sum()
    b = Models([SkyModel(ConstantSpectralModel(const=3.8e-11 * u.Unit("cm-2 s-1 TeV-1")),
                         GaussianSpatialModel(lon_0=83.6, lat_0=22.0, sigma=0.2), name="src")])
    assert ev.npred_signal(b).sum() == pytest.approx(Evaluator(MAP).npred_signal(b).sum())
    assert ev.npred_signal(a).sum() == pytest.approx(first)


def test_flux_points_model_at_the_stored_reference_energy():
    """A flux point's dN/dE is quoted at its e_ref: the model is evaluated there, also when
    e_ref is not the bin's geometric centre (gammapy 2.1 then uses the centre of
    e_min/e_max and ignores e_ref: 88.89 vs 66.86 on such a table; documented)."""
    from xdl4.kinds.flux_points import create_flux_points, model_dnde
    from xdl4.models import PowerLaw

    fp = create_flux_points([1.0, 2.0, 4.0], energy_ref=[1.2, 3.5], dnde=[1e-11, 1e-12],
                            dnde_err=[1e-12, 1e-13])
    models = Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="s")])
    np.testing.assert_allclose(model_dnde(fp, models), 1e-11 * np.array([1.2, 3.5]) ** -2.0,
                               rtol=1e-12)
