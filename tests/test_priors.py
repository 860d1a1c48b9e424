"""Parameter priors: gammapy 2.1's definitions, YAML, and their place in the joint fit."""

import math

import numpy as np
import pytest
import yaml
from scipy import stats

import xdl4
from xdl4.fitting import Likelihood
from xdl4.models import Models
from xdl4.models.prior import prior_bounds, prior_stat


def _prior(kind: str, weight: float = 1.0, **values) -> dict:
    return {"type": kind, "weight": weight,
            "parameters": [{"name": k, "value": v, "unit": ""} for k, v in values.items()]}


@pytest.mark.parametrize(("prior", "rv"), [
    (_prior("GaussianPrior", mu=2.3, sigma=0.05), stats.norm(2.3, 0.05)),
    (_prior("UniformPrior", min=-1.0, max=3.0), stats.uniform(-1.0, 4.0)),
    (_prior("LogUniformPrior", min=1e-13, max=1e-10), stats.loguniform(1e-13, 1e-10)),
    (_prior("GeneralizedGaussianPrior", mu=1.0, sigma=0.3, eta=0.8),
     stats.gennorm(beta=1 / 0.8, loc=1.0, scale=0.3 * math.sqrt(2))),
    (_prior("GeneralizedGaussianPrior", mu=1.0, sigma=0.3), (  # default eta 0.5: a normal
        stats.gennorm(beta=2.0, loc=1.0, scale=0.3 * math.sqrt(2)))),
])
@pytest.mark.parametrize("value", [-2.0, 1e-12, 0.5, 1.0, 2.3, 2.9, 5.0])
def test_prior_stat_is_minus_two_log_pdf(prior, rv, value):
    """-2 ln pdf as scipy computes it (gammapy's definition), inf outside the support."""
    for weight in (1.0, 0.25):
        expected = -2 * weight * rv.logpdf(value)
        ours = prior_stat({**prior, "weight": weight}, value)
        if math.isinf(expected):
            assert ours == math.inf
        else:
            assert ours == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_prior_bounds_and_errors():
    assert prior_bounds(_prior("UniformPrior", min=1.0, max=2.0)) == (1.0, 2.0)
    assert prior_bounds(_prior("LogUniformPrior")) == (1e-14, 1e-10)  # gammapy's defaults
    assert prior_bounds(_prior("GaussianPrior")) is None
    assert prior_bounds(None) is None
    with pytest.raises(ValueError, match="unknown prior type 'CauchyPrior'"):
        prior_stat(_prior("CauchyPrior"), 1.0)
    with pytest.raises(ValueError, match="unknown parameter 'width'"):
        prior_stat(_prior("GaussianPrior", width=1.0), 1.0)


# a models YAML written by gammapy 2.1 (Models.write) with a Gaussian prior on the index and
# a uniform prior on the amplitude (gammapy writes the prior's range as min/max too)
GAMMAPY_YAML = """
components:
-   name: point
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.0
            prior:
                type: GaussianPrior
                parameters:
                -   {name: mu, value: 2.3, unit: ''}
                -   {name: sigma, value: 0.05, unit: ''}
                weight: 1
        -   name: amplitude
            value: 1.0e-11
            unit: TeV-1 s-1 cm-2
            min: 1.0e-12
            max: 1.0e-10
            prior:
                type: UniformPrior
                parameters:
                -   {name: min, value: 1.0e-12, unit: ''}
                -   {name: max, value: 1.0e-10, unit: ''}
                weight: 1
        -   name: reference
            value: 1.0
            unit: TeV
"""


@pytest.fixture
def models():
    return Models.from_dict(yaml.safe_load(GAMMAPY_YAML))


def test_priors_yaml_round_trip(models, tmp_path):
    p = models.parameters
    assert p["point.index"].prior["type"] == "GaussianPrior"
    assert p["point.amplitude"].bounds() == (1e-12, 1e-10)
    models.write(tmp_path / "m.yaml")
    back = xdl4.read_models(tmp_path / "m.yaml")
    for label in ("point.index", "point.amplitude"):
        assert back.parameters[label].prior == p[label].prior
    bad = yaml.safe_load(GAMMAPY_YAML)
    bad["components"][0]["spectral"]["parameters"][0]["prior"]["type"] = "Cauchy"
    with pytest.raises(ValueError, match="parameter 'index': unknown prior type 'Cauchy'"):
        Models.from_dict(bad)


def test_priors_enter_the_joint_statistic_and_fit_as_in_gammapy(data_dir, models):
    """gammapy 2.1 on the same dataset and models (Datasets.stat_sum, Fit().run()):
    stat 2993.41630791926 with priors, 3007.6416979315463 without; best fit total_stat
    -43.93128084539944, index 2.328794709133265 +- 0.017993040197140733, amplitude
    4.1874918633699004e-11 +- 9.159285757921077e-13."""
    ds = xdl4.open_dataset(data_dir / "gammapy" / "spectrum_onoff" / "pha_sonoff.fits")
    lik = Likelihood(ds, models)
    assert lik.stat() == pytest.approx(2993.41630791926, rel=1e-10)
    assert lik.stat() - lik.prior_stat() == pytest.approx(3007.6416979315463, rel=1e-10)
    assert float(ds.dl4.stat_sum(models)) == pytest.approx(3007.6416979315463, rel=1e-10)
    result = xdl4.fit(ds, models)
    assert result.success
    assert result.total_stat == pytest.approx(-43.93128084539944, abs=1e-6)
    p = models.parameters
    np.testing.assert_allclose([p["point.index"].value, p["point.amplitude"].value],
                               [2.328794709133265, 4.1874918633699004e-11], rtol=1e-6)
    np.testing.assert_allclose([p["point.index"].error, p["point.amplitude"].error],
                               [0.017993040197140733, 9.159285757921077e-13], rtol=1e-4)
    # the uniform prior bounds the amplitude in the fit (Minuit limits)
    assert result.parameters["min"][1] == 1e-12 and result.parameters["max"][1] == 1e-10
