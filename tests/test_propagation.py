"""Error propagation of spectral models (xdl4.models.propagation): the linear propagation
equals the analytic Jacobian propagation, and agrees with 10,000 covariance samples."""

import numpy as np
import pytest

import xdl4
from xdl4.models import LogParabola, Models, PowerLaw, SkyModel
from xdl4.models.propagation import covariance_block, propagate, sample

ENERGIES = np.array([0.4, 1.5, 5.0])  # TeV


def _cov(sigmas, corr):
    s = np.asarray(sigmas, float)
    return np.asarray(corr, float) * np.outer(s, s)


def _pl():
    model = PowerLaw(index=2.4, amplitude=3.5e-11, reference=1.0)
    # parameters (index, amplitude, reference): reference frozen, index-amplitude correlated
    cov = _cov([0.03, 2e-12, 0.0], [[1, 0.4, 0], [0.4, 1, 0], [0, 0, 1]])
    return model, cov


def _lp():
    model = LogParabola(amplitude=2e-11, reference=1.2, alpha=2.3, beta=0.12)
    # parameters (amplitude, reference, alpha, beta)
    cov = _cov([1.5e-12, 0.0, 0.04, 0.012],
               [[1, 0, 0.3, -0.2], [0, 1, 0, 0], [0.3, 0, 1, 0.6], [-0.2, 0, 0.6, 1]])
    return model, cov


def _analytic_pl(e, cov, model):
    index, amp, ref = (p.value for p in model.parameters)
    f = amp * (e / ref) ** -index
    jac = np.stack([-np.log(e / ref) * f, f / amp, index * f / ref], axis=-1)
    return f, np.sqrt(np.einsum("ei,ij,ej->e", jac, cov, jac))


def _analytic_lp(e, cov, model):
    amp, ref, alpha, beta = (p.value for p in model.parameters)
    lx = np.log(e / ref)
    f = amp * (e / ref) ** (-alpha - beta * lx)
    d_ref = f * (alpha + 2 * beta * lx) / ref  # d/d ref of -(alpha + beta lx) lx
    jac = np.stack([f / amp, d_ref, -lx * f, -lx**2 * f], axis=-1)
    return f, np.sqrt(np.einsum("ei,ij,ej->e", jac, cov, jac))


@pytest.mark.parametrize("case", [(_pl, _analytic_pl), (_lp, _analytic_lp)],
                         ids=["powerlaw", "logparabola"])
def test_linear_propagation_equals_analytic_jacobian(case):
    make, analytic = case
    model, cov = make()
    value, error = analytic(ENERGIES, cov, model)
    band = propagate(model, ENERGIES, "dnde", covariance=cov)
    np.testing.assert_allclose(band["value"], value, rtol=1e-12)
    np.testing.assert_allclose(band["error"], error, rtol=1e-6)
    np.testing.assert_allclose(band["lower"], value - error, rtol=1e-6)
    np.testing.assert_allclose(band["upper"], value + error, rtol=1e-6)
    assert band["value"].attrs["units"] == band["error"].attrs["units"]
    # E^2 dN/dE: the same relative error, TeV^2 more in the unit
    sed = propagate(model, ENERGIES, "e2dnde", covariance=cov, n_sigma=2)
    np.testing.assert_allclose(sed["error"], ENERGIES**2 * error, rtol=1e-6)
    np.testing.assert_allclose(sed["upper"] - sed["value"], 2 * sed["error"], rtol=1e-9)


@pytest.mark.parametrize("make", [_pl, _lp], ids=["powerlaw", "logparabola"])
@pytest.mark.parametrize("sed_type", ["dnde", "e2dnde", "flux"])
def test_linear_propagation_matches_covariance_samples(make, sed_type):
    model, cov = make()
    energy = ENERGIES if sed_type != "flux" else (ENERGIES, 2 * ENERGIES)
    linear = propagate(model, energy, sed_type, covariance=cov)
    sampled = sample(model, energy, sed_type, covariance=cov, n_samples=10_000, seed=1)
    np.testing.assert_allclose(sampled["error"], linear["error"], rtol=0.02)
    np.testing.assert_allclose(sampled["median"], linear["value"], rtol=0.02)
    # the samples' vectorised formula (or integral) is the model's own at the best fit
    from xdl4.models.propagation import _energies, _sampled_values, covariance_block

    e, bounds = _energies(energy, sed_type)
    params, _ = covariance_block(model, None, cov)
    best = np.array([[p.value for p in params]])
    at_best = _sampled_values(model, params, best, e, sed_type, bounds)[0]
    np.testing.assert_allclose(at_best, linear["value"].values, rtol=1e-12)


def test_sample_loop_fallback_equals_vectorised():
    model, cov = _pl()
    fast = sample(model, ENERGIES, "e2dnde", covariance=cov, n_samples=300, seed=3)
    # a compound model goes the loop way; PL x (norm 1, tilt 0) is the same spectrum
    slow_model = model * xdl4.models.PowerLawNorm()
    big = np.zeros((6, 6))
    big[:3, :3] = cov
    slow = sample(slow_model, ENERGIES, "e2dnde", covariance=big, n_samples=300, seed=3)
    np.testing.assert_allclose(slow["error"], fast["error"], rtol=1e-9)


def test_covariance_sources_fit_result_models_and_errors(examples):
    src = SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="src")
    models = Models([src])
    result = xdl4.fit(examples["spectrum_onoff"], models)
    by_result = propagate(src, ENERGIES, result=result)
    by_models = propagate(src, ENERGIES, covariance=models)
    by_array = propagate(src.spectral, ENERGIES, covariance=result.covariance)  # by suffix
    np.testing.assert_allclose(by_models["error"], by_result["error"], rtol=1e-12)
    np.testing.assert_allclose(by_array["error"], by_result["error"], rtol=1e-12)
    # without a covariance: the parameter errors, no correlation
    params, cov = covariance_block(src)
    assert np.count_nonzero(cov - np.diag(np.diag(cov))) == 0
    np.testing.assert_allclose(np.sqrt(np.diag(cov))[:2],
                               [p.error for p in params][:2], rtol=1e-12)
    with pytest.raises(ValueError, match="expected"):
        propagate(src, ENERGIES, covariance=np.eye(2))
    with pytest.raises(ValueError, match="sed_type"):
        propagate(src, ENERGIES, "nufnu", result=result)
