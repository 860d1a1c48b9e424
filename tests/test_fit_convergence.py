"""Default fits converge where real data put the source: on IRF-pixel corners, on the
shared runs, their stack and joint fit; NaN statistics and unbounded positions."""

import numpy as np
import pytest
import xarray as xr
from test_irf_interpolation import point, varying_irfs

import xdl4
from xdl4.fitting import Likelihood
from xdl4.fitting.likelihood import NaNStatistic
from xdl4.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel


def check_converged(r, max_pos_error=0.01):
    """Valid minimum, accurate positive-definite covariance, finite sensible errors."""
    assert r.success, r.message
    assert r.minuit.valid and r.minuit.accurate
    assert not r.minuit.fmin.has_made_posdef_covar
    assert np.all(np.linalg.eigvalsh(np.array(r.minuit.covariance)) > 0)
    p = r.parameters
    free = ~p["frozen"].values
    err = p["error"].values[free]
    labels = p.parameter.values[free]
    assert np.all(np.isfinite(err) & (err > 0)), dict(zip(labels, err, strict=True))
    for label in p.parameter.values[free]:
        e = float(p["error"].sel(parameter=label))
        if label.endswith(("lon_0", "lat_0")):
            assert 1e-5 < e < max_pos_error, (label, e)
        elif label.endswith("index"):
            assert e < 0.3, (label, e)


def test_fifty_corner_runs_converge_with_sensible_pulls():
    """A point source exactly on an IRF-pixel corner (and a data-pixel corner) of a map
    whose PSF and EDISP change from pixel to pixel: 50 Poisson realisations, each fitted
    with the defaults from the truth. All converge; the pulls of index and amplitude are
    standard normal within their sampling errors."""
    ds = varying_irfs(xdl4.examples.map_dataset(0, width=0.8, binsz=0.05))
    np.testing.assert_allclose(ds.dl4.irf_grid.world_to_pixel(83.63, 22.01), 1.5, atol=1e-9)
    truth = {"index": 2.5, "amplitude": 3.8e-11}
    fakes = ds.dl4.fake(point(83.63, 22.01, **truth), seed=2024, size=50,
                        irf_interpolation="bilinear")
    pulls = {k: [] for k in truth}
    for i in range(50):
        r = xdl4.fit(fakes.isel(obs=i), point(83.63, 22.01, **truth))
        check_converged(r)
        p = r.parameters
        for k, true in truth.items():
            pulls[k].append(float((p["value"].sel(parameter=f"src.{k}") - true)
                                  / p["error"].sel(parameter=f"src.{k}")))
    for k, x in pulls.items():
        x = np.array(x)
        # 50 pulls: the mean within ~3 sigma (0.42), the width within ~[0.72, 1.28]
        assert abs(x.mean()) < 0.45, (k, x.mean())
        assert 0.7 < x.std(ddof=1) < 1.35, (k, x.std(ddof=1))


def test_nan_statistic_during_migrad_is_stepped_back_from(examples):
    """A statistic that is NaN in part of the parameter space MIGRAD crosses (here for
    index < 2.4 while it comes down from 3.5): the fit steps back and converges, and
    says so; a NaN at the start still raises (test_fit.py)."""
    models = Models([SkyModel(PowerLaw(index=3.5, amplitude=1e-12), name="src")])
    lik = Likelihood(examples["spectrum_onoff"], models)
    stat = lik.stat

    def nan_below():
        if models.parameters["src.index"].value < 2.4:
            raise NaNStatistic("NaN for this test")
        return stat()

    lik.stat = nan_below
    r = xdl4.fit(lik, None)
    assert r.success and r.bad_calls > 0 and "stepped back" in r.message
    assert models.parameters["src.index"].value > 2.4


def test_overflowing_excursions_are_quiet(examples):
    """Where MIGRAD's excursions overflow (here exp(1000) for index < 2.4, as extreme
    spectral parameters do), the statistic is stepped back from without numpy warnings;
    at the start they still show."""
    import warnings

    models = Models([SkyModel(PowerLaw(index=3.5, amplitude=1e-12), name="src")])
    lik = Likelihood(examples["spectrum_onoff"], models)
    stat = lik.stat

    def overflow_below():
        if models.parameters["src.index"].value < 2.4:
            return float(np.exp(np.float64(1000.0)))  # inf, with an overflow warning
        return stat()

    lik.stat = overflow_below
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = xdl4.fit(lik, None)
    assert r.success and r.bad_calls > 0
    models.parameters["src.index"].value = 2.0  # a start that overflows: it still warns
    with pytest.warns(RuntimeWarning, match="overflow"), pytest.raises(xdl4.FitError):
        xdl4.fit(lik, None)


def test_unbounded_position_stays_on_the_data():
    """A source too faint to locate: its position gets the data grid's footprint as
    bounds (reported), the user's own bounds are kept, lat's natural -90..90 is not a
    user bound."""
    ds = xdl4.examples.map_dataset(1, width=1.0, binsz=0.1)
    models = point(83.63, 22.01, amplitude=1e-16)
    models.parameters["src.index"].frozen = True
    models.parameters["src.lon_0"].min = 83.2
    r = xdl4.fit(ds, models, covariance=False)
    lon_lo, lon_hi = r.default_bounds["src.lon_0"]
    lat_lo, lat_hi = r.default_bounds["src.lat_0"]
    assert lon_lo == 83.2 and lon_hi == pytest.approx(83.63 + 0.5 / np.cos(np.radians(22.01)),
                                                      abs=0.02)
    assert lat_lo == pytest.approx(21.51, abs=0.01) and lat_hi == pytest.approx(22.51, abs=0.01)
    p = r.parameters
    assert float(p["min"].sel(parameter="src.lat_0")) == lat_lo
    assert lon_lo <= models.parameters["src.lon_0"].value <= lon_hi
    assert lat_lo <= models.parameters["src.lat_0"].value <= lat_hi
    # spectra only: no sky grid, no default bounds
    sp = xdl4.examples.spectrum_dataset()
    assert xdl4.fit(sp, Models([SkyModel(PowerLaw(), name="s")])).default_bounds == {}


def test_analytic_gradient_matches_finite_differences():
    from xdl4.fitting.gradient import Gradient, check
    from xdl4.fitting.parameters import _Free

    ds = varying_irfs(xdl4.examples.map_dataset(0, width=0.8, binsz=0.05))
    models = point(83.64, 22.0, index=2.3, amplitude=3e-11)
    models.append(FoVBackgroundModel(ds.dl4.name))
    models.parameters[f"{ds.dl4.name}-bkg.norm"].value = 1.2
    models.parameters[f"{ds.dl4.name}-bkg.tilt"].frozen = False
    lik = Likelihood(ds, models)
    free = _Free(models)
    grad = Gradient(lik, free, free.steps())
    assert set(grad.analytic) == {"src.index", "src.amplitude", "example-bkg.norm",
                                  "example-bkg.tilt"}
    assert set(grad.numeric) == {"src.lon_0", "src.lat_0"}
    g, num = check(grad, free.factors(), 1e-5)
    analytic = [free.labels.index(lab) for lab in grad.analytic]
    np.testing.assert_allclose(g[analytic], num[analytic], rtol=1e-6)
    np.testing.assert_allclose(g, num, rtol=1e-2)
    r1 = xdl4.fit(ds, models, grad=True)
    assert r1.success and r1.gradient["analytic"] and r1.gradient["calls"] > 0


# -- the shared real runs (CTA-1DC IRFs, 15 x 15 IRF grid) -----------------------------

def _runs(data_dir):
    return [xdl4.open_dataset(data_dir / f"gammapy/stack/run{i}.fits.gz") for i in range(3)]


def _src(lon=83.63, lat=22.01, names=()):
    return Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11),
                            PointSpatialModel(lon_0=lon, lat_0=lat, frame="icrs"), name="src"),
                   *[FoVBackgroundModel(n) for n in names]])


def test_default_fits_of_the_shared_runs_stack_and_joint(data_dir):
    """A point source started at the target on every run, the stack of the three and
    their joint fit."""
    runs = _runs(data_dir)
    for ds in runs:
        check_converged(xdl4.fit(ds, _src(names=[ds.dl4.name])))
    stacked = xr.concat(runs, "obs").dl4.stack()
    check_converged(xdl4.fit(stacked, _src(names=[stacked.dl4.name])))
    r = xdl4.fit(runs, _src(names=[ds.dl4.name for ds in runs]))
    check_converged(r)
    assert r.irf_interpolation == "bilinear" and r.strategy == 0


def test_default_fits_of_runs_simulated_on_an_irf_corner(data_dir):
    """The three runs' real IRFs with the source put on a corner of their IRF grid:
    each simulated run (two seeds each) and the stack of the three."""
    runs = _runs(data_dir)
    lon, lat = (float(v) for v in runs[0].dl4.irf_grid.pixel_to_world(7.5, 7.5))
    truth = Models([SkyModel(PowerLaw(index=2.3, amplitude=4e-11),
                             PointSpatialModel(lon_0=lon, lat_0=lat, frame="icrs"),
                             name="src")])
    fakes = []
    for i, ds in enumerate(runs):
        for seed in (1, 2):
            fake = ds.dl4.fake(truth, seed=10 * i + seed, irf_interpolation="bilinear")
            r = xdl4.fit(fake, _src(lon, lat, names=[ds.dl4.name]))
            check_converged(r)
        fakes.append(fake)
    stacked = xr.concat(fakes, "obs").dl4.stack()
    check_converged(xdl4.fit(stacked, _src(lon, lat, names=[stacked.dl4.name])))
