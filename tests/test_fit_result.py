"""FitResult beyond the numbers: contours centred on the best fit, plots of the covariance
and correlation matrices, write / read of a fit as gammapy writes it."""

import numpy as np
import pytest

import xdl4
from xdl4.fitting import Likelihood, stat_contour
from xdl4.models import Models, PowerLaw, SkyModel


def pl_models(index=2.0, amplitude=1e-11) -> Models:
    return Models([SkyModel(PowerLaw(index=index, amplitude=amplitude), name="crab")])


@pytest.fixture(scope="module")
def onoff():
    return xdl4.examples.all_kinds(seed=0)["spectrum_onoff"]


@pytest.fixture(scope="module")
def pha(data_dir):
    return xdl4.open_dataset(data_dir / "gammapy" / "spectrum_onoff" / "pha_sonoff.fits")


# -- stat_contour --------------------------------------------------------------------------

def _check_contour_at_best(ds, fitted_first):
    """The contour's best fit is the fit's best (not the last contour point MINOS visited),
    and its points lie at Delta stat = 2.30 from it (in the right decade whatever the start
    values: the factor scales are the fit's)."""
    models = pl_models(amplitude=1e-12)  # a start value a decade below the best fit
    r = xdl4.fit(ds, models)
    best = r.parameters["value"].sel(parameter=["crab.index", "crab.amplitude"]).values
    err = r.parameters["error"].sel(parameter=["crab.index", "crab.amplitude"]).values
    if not fitted_first:
        models = pl_models(amplitude=1e-12)
    c = stat_contour(ds, models, "crab.index", "crab.amplitude", npoints=8)
    got = np.array([c.attrs["x_best"], c.attrs["y_best"]])
    if fitted_first:  # the contour's own MIGRAD restarts at the minimum: moves within EDM
        np.testing.assert_allclose(got, best, rtol=1e-4, atol=0)
        assert np.all(np.abs(got - best) < 0.005 * err)
    else:  # the same fit from the same start: the same minimum
        np.testing.assert_allclose(got, best, rtol=1e-12)
    lik = Likelihood(ds, models)
    p = models.parameters
    p["crab.index"].value, p["crab.amplitude"].value = got
    stat0 = lik.stat()
    # the contour's minimum is the fit's, or lower by less than MIGRAD's EDM goal
    assert r.total_stat - 2e-4 < stat0 <= r.total_stat + 1e-9
    for x, y in zip(c["crab.index"].values, c["crab.amplitude"].values, strict=True):
        p["crab.index"].value, p["crab.amplitude"].value = x, y
        assert lik.stat() - stat0 == pytest.approx(c.attrs["delta_stat"], abs=0.02)


@pytest.mark.parametrize("fitted_first", [True, False])
def test_contour_best_fit_is_the_fit_best_examples(onoff, fitted_first):
    _check_contour_at_best(onoff, fitted_first)


@pytest.mark.parametrize("fitted_first", [True, False])
def test_contour_best_fit_is_the_fit_best_pha_sonoff(pha, fitted_first):
    # issue #12: (2.3335, 4.318e-11) was reported against the fit's (2.3331, 4.199e-11)
    _check_contour_at_best(pha, fitted_first)


def test_contour_accepts_long_labels(onoff):
    c = stat_contour(onoff, pl_models(), "crab.spectral.index", "crab.amplitude", npoints=4)
    assert c.sizes["point"] == 4 and "crab.spectral.index" in c
