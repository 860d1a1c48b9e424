"""xdl4.fit: API behaviour on the built-in examples, and gammapy's reference fits."""

import math

import numpy as np
import pytest
import xarray as xr

import xdl4
from xdl4.fitting import FitError, Likelihood, confidence, stat_contour, stat_profile
from xdl4.models import (
    FoVBackgroundModel,
    Models,
    PowerLaw,
    SkyModel,
    read_models,
)
from xdl4.testing import reference_case
from xdl4.validation import with_name


@pytest.fixture()
def onoff(examples):
    return examples["spectrum_onoff"]


def pl_models(name="src", index=2.0, amplitude=1e-11, **kw) -> Models:
    return Models([SkyModel(PowerLaw(index=index, amplitude=amplitude), name=name, **kw)])


# -- API --------------------------------------------------------------------------------

def test_fit_result_and_write_back(onoff):
    models = pl_models()
    r = xdl4.fit(onoff, models)
    assert r.success and r.nfev > 0 and "MIGRAD converged" in r.message
    p = r.parameters
    assert list(p.data_vars) == ["value", "error", "unit", "min", "max", "frozen"]
    assert list(p["parameter"].values) == ["src.index", "src.amplitude", "src.reference"]
    idx = models.parameters["src.index"]
    assert idx.value == p["value"].sel(parameter="src.index")
    assert idx.error > 0 and idx.error == p["error"].sel(parameter="src.index")
    assert models.parameters["src.reference"].error == 0  # frozen: untouched
    cov = r.covariance
    assert cov.dims == ("parameter_1", "parameter_2")
    assert math.isclose(math.sqrt(cov.sel(parameter_1="src.index", parameter_2="src.index")),
                        idx.error)
    assert float(cov.sel(parameter_1="src.reference").sum()) == 0
    np.testing.assert_allclose(models.covariance, cov.values)
    assert abs(float(r.correlation.sel(parameter_1="src.index", parameter_2="src.amplitude"))) < 1
    assert math.isclose(r.total_stat, Likelihood(onoff, models).stat())
    text = repr(r)
    assert "src.index" in text and "src.reference" not in text and "frozen" in text


def test_frozen_and_bounds(onoff):
    models = pl_models()
    models.parameters["src.index"].frozen = True
    r = xdl4.fit(onoff, models)
    assert models.parameters["src.index"].value == 2.0
    assert "src.index" not in repr(r).split("\n", 3)[-1]
    models = pl_models()
    free_fit = xdl4.fit(onoff, pl_models()).parameters["value"].sel(parameter="src.index")
    models.parameters["src.index"].max = float(free_fit) - 0.2
    r = xdl4.fit(onoff, models)
    assert models.parameters["src.index"].value <= float(free_fit) - 0.2 + 1e-9
    assert models.parameters["src.index"].value > float(free_fit) - 0.21


def test_initial_steps_and_scaling():
    from xdl4.fitting.parameters import _Free

    models = pl_models(index=2.3, amplitude=4e-11)
    models.parameters["src.amplitude"].error = 1e-12
    free = _Free(models)
    np.testing.assert_allclose(free.factors(), [2.3, 4.0])
    np.testing.assert_allclose(free.steps(), [0.023, 0.1])  # 1% of value; error / scale


def test_joint_likelihood_is_sum_and_background_per_dataset(examples):
    on, sp = examples["spectrum_onoff"], examples["spectrum"]
    models = pl_models()
    models.append(FoVBackgroundModel("example-spectrum"))
    models.parameters["example-spectrum-bkg.norm"].value = 1.3
    joint = Likelihood([on, sp], models).stat()
    parts = xdl4.kinds.counts.stat_sum(on, models) + xdl4.kinds.counts.stat_sum(sp, models)
    assert math.isclose(joint, parts, rel_tol=1e-12)
    assert Likelihood([on, sp], models).stat_per_dataset().keys() == {on.dl4.name,
                                                                      sp.dl4.name}
    r = xdl4.fit([on, sp], models)
    assert r.success and models.parameters["example-spectrum-bkg.norm"].error > 0


def test_datasets_names_restricts_and_unmatched_model_raises(examples):
    on, sp = examples["spectrum_onoff"], examples["spectrum"]
    only_on = pl_models(datasets_names=[on.dl4.name])
    lik = Likelihood([on, sp], only_on)
    assert math.isclose(lik.stat(), xdl4.kinds.counts.stat_sum(on, only_on)
                        + xdl4.kinds.counts.stat_sum(sp, None))
    with pytest.raises(FitError, match="apply to no dataset"):
        Likelihood([on, sp], pl_models(datasets_names=["nope"]))
    with pytest.raises(FitError, match="nope-bkg"):
        Likelihood(on, Models([*pl_models(), FoVBackgroundModel("nope")]))
    with pytest.raises(FitError, match="unique"):
        Likelihood([on, on], pl_models())


def test_linked_parameter_is_one_fit_parameter(examples):
    on = examples["spectrum_onoff"]
    other = with_name(on, "second")
    a = SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="a", datasets_names=["second"])
    b = SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="b",
                 datasets_names=[on.dl4.name])
    b.spectral.index = a.spectral.index
    models = Models([a, b])
    r = xdl4.fit([on, other], models)
    assert models.parameters.free_names() == ["a.index", "a.amplitude", "b.amplitude"]
    p = r.parameters
    assert p["value"].sel(parameter="a.index") == p["value"].sel(parameter="b.index")
    assert float(r.covariance.sel(parameter_1="b.index", parameter_2="a.index")) > 0


def test_obs_dimension_list_and_datatree_agree(onoff):
    second = onoff.assign(counts=onoff["counts"] * 0 + np.maximum(onoff["counts"] - 3, 0))
    stacked = xr.concat([onoff, second], dim="obs").assign_coords(obs=["r1", "r2"])
    r_obs = xdl4.fit(stacked, pl_models())
    r_list = xdl4.fit([with_name(onoff, "r1"), with_name(second, "r2")],
                      pl_models())
    tree = xr.DataTree.from_dict({"/r1": with_name(onoff, "r1"), "/r2": with_name(second, "r2")})
    r_tree = xdl4.fit(tree, pl_models())
    for r in (r_list, r_tree):
        assert math.isclose(r.total_stat, r_obs.total_stat, rel_tol=1e-9)
        np.testing.assert_allclose(r.parameters["value"], r_obs.parameters["value"], rtol=1e-6)


def test_nan_statistic_names_dataset_and_parameters(onoff):
    bad = onoff.assign(exposure=onoff["exposure"] * np.nan)
    models = pl_models()
    with pytest.raises(xdl4.DL4ValidationError, match="exposure contains NaN"):
        xdl4.fit(bad, models)  # refused before any evaluation
    assert models.parameters["src.index"].value == 2.0
    lik = Likelihood(onoff, models)
    models.parameters["src.amplitude"].value = np.nan
    with pytest.raises(FitError, match=r"example-spectrum-onoff.*src.index=2"):
        lik.stat()


def test_non_convergence_is_reported(onoff):
    r = xdl4.fit(onoff, pl_models(index=4.0, amplitude=1e-13), ncall=5)
    assert not r.success and "call limit" in r.message


def test_minos_in_fit(onoff):
    r = xdl4.fit(onoff, pl_models(), minos=True)
    p = r.parameters
    assert {"errn", "errp"} <= set(p.data_vars)
    assert np.isnan(p["errn"].sel(parameter="src.reference"))
    assert 0.7 < float(p["errn"].sel(parameter="src.index") / p["error"].sel(
        parameter="src.index")) < 1.3


def test_profile_slice_and_reoptimized(onoff):
    models = pl_models()
    xdl4.fit(onoff, models)
    idx = models.parameters["src.index"]
    best, err = idx.value, idx.error
    prof = stat_profile(onoff, models, "src.index")
    assert prof.sizes["src.index"] == 11 and idx.value == best  # restored
    stat = prof["stat"].values
    assert np.argmin(stat) == 5
    np.testing.assert_allclose(prof["src.index"].values[[0, -1]], [best - 2 * err,
                                                                   best + 2 * err])
    values = [best - err, best, best + err]
    slice_ = stat_profile(onoff, models, "src.index", values=values)
    prof_r = stat_profile(onoff, models, "src.index", values=values, reoptimize=True)
    d = prof_r["stat"].values - prof_r["stat"].values[1]
    np.testing.assert_allclose(d[[0, 2]], 1.0, rtol=0.1)  # profile: Delta = 1 at +-error
    assert np.all(slice_["stat"].values >= prof_r["stat"].values - 1e-3)
    assert prof_r["success"].all() and prof_r["fit_value"].dims == ("src.index", "parameter")
    assert not idx.frozen and idx.value == best


def test_confidence_matches_profile_crossings(onoff):
    models = pl_models()
    xdl4.fit(onoff, models)
    ci = confidence(onoff, models, ["src.index", "src.amplitude"])
    assert ci["valid"].all() and ci.attrs["cl"] == pytest.approx(0.6827, abs=1e-4)
    best = models.parameters["src.index"].value
    lo = best - float(ci["errn"].sel(parameter="src.index"))
    hi = best + float(ci["errp"].sel(parameter="src.index"))
    prof = stat_profile(onoff, models, "src.index", values=[lo, best, hi], reoptimize=True,
                        tol=0.001)
    np.testing.assert_allclose(prof["stat"].values[[0, 2]] - prof["stat"].values[1], 1.0,
                               atol=0.01)


def test_contour_has_two_dof_level(onoff):
    models = pl_models()
    r = xdl4.fit(onoff, models)
    c = stat_contour(onoff, models, "src.index", "src.amplitude", npoints=12)
    assert c.sizes["point"] == 12
    assert c.attrs["delta_stat"] == pytest.approx(2.2957, abs=1e-4)
    assert c.attrs["cl"] == pytest.approx(0.6827, abs=1e-4)
    lik = Likelihood(onoff, models)
    p = models.parameters
    for x, y in zip(c["src.index"].values, c["src.amplitude"].values, strict=True):
        p["src.index"].value, p["src.amplitude"].value = x, y
        assert lik.stat() - r.total_stat == pytest.approx(2.2957, abs=0.02)


def test_plot_helpers(onoff):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    from xdl4.fitting import plot_contour, plot_profile

    models = pl_models()
    xdl4.fit(onoff, models)
    ax = plot_profile(stat_profile(onoff, models, "src.index"))
    assert ax.get_ylabel() == "Delta stat"
    _, ax = plt.subplots()
    plot_contour(stat_contour(onoff, models, "src.index", "src.amplitude", npoints=6), ax=ax)
    assert "68.3%" in ax.get_lines()[0].get_label()
    plt.close("all")


# -- gammapy's reference fits ------------------------------------------------------------

def check_reference(result, ref, skip_errors=()):
    assert result.success
    p = result.parameters
    for label, want in ref["parameters"].items():
        value = float(p["value"].sel(parameter=label))
        error = float(p["error"].sel(parameter=label))
        assert abs(value - want["value"]) < 0.02 * want["error"], label
        if label not in skip_errors:
            assert error == pytest.approx(want["error"], rel=0.03), label


@pytest.mark.parametrize("case", ["spectrum_dataset_onoff_fit", "simulated_spectrum_PL_fit",
                                  "simulated_spectrum_ECPL_fit", "flux_points_hess_fit",
                                  "flux_points_hawc_fit"])
def test_reference_fit(data_dir, reference, case):
    ds, models = reference_case(data_dir, case)
    r = xdl4.fit(ds, models)
    ref = reference[case]
    check_reference(r, ref)
    assert r.total_stat == pytest.approx(ref["total_stat"], abs=0.01)


# gammapy 2.1 fetches IRFs (PSF/EDISP kernels, cutout) again only after a source moved by
# more than r_eval + 0.1 deg (semantics 1.7): its map fit ends with the point source's IRFs
# taken near the start position lon 83.66. Its reported total_stat (-1784.0934) and
# position errors come from that stale state: a fresh gammapy evaluator at gammapy's own
# best fit gives -1784.03747 (measured with gammapy 2.1), and its own Fit.covariance gives
# lat_0 error 7.5e-4 vs 5.7e-4 in the reference. xdl4 always uses the IRFs at the current
# position. Index, amplitude and background norm agree to 3%; all values to 0.02 sigma.
GAMMAPY_FRESH_MAP_STAT = -1784.03747


def test_map_dataset_fit(data_dir, reference):
    ds, models = reference_case(data_dir, "map_dataset_fit")
    r = xdl4.fit(ds, models, irf_interpolation="nearest")  # gammapy's IRF lookup
    ref = reference["map_dataset_fit"]
    check_reference(r, ref, skip_errors=("point.lon_0", "point.lat_0"))
    assert r.total_stat == pytest.approx(GAMMAPY_FRESH_MAP_STAT, abs=0.01)
    # the position errors are the true 1-sigma widths of this likelihood
    lik = Likelihood(ds, models, irf_interpolation="nearest")
    for label in ("point.lon_0", "point.lat_0"):
        par = models.parameters[label]
        best, err = par.value, par.error
        prof = stat_profile(lik, models, label, values=[best - err, best + err])
        np.testing.assert_allclose(prof["stat"].values - r.total_stat, 1.0, rtol=0.05)
        assert par.value == best


@pytest.mark.xfail(strict=True, reason="gammapy's map fit ends with stale IRFs (see above)")
def test_map_dataset_fit_position_errors_and_stat_as_gammapy(data_dir, reference):
    ds, models = reference_case(data_dir, "map_dataset_fit")
    r = xdl4.fit(ds, models, irf_interpolation="nearest")
    ref = reference["map_dataset_fit"]
    assert r.total_stat == pytest.approx(ref["total_stat"], abs=0.01)
    check_reference(r, ref)


def test_gc_example_joint_stat_from_datatree(data_dir, reference, monkeypatch):
    monkeypatch.setenv("GAMMAPY_DATA", str(data_dir))
    from xdl4.io.datasets_index import open_datasets

    folder = data_dir / "tests/models"
    tree = open_datasets(folder / "gc_example_datasets.yaml")
    models = read_models(folder / "gc_example_models.yaml")
    lik = Likelihood(tree, models, irf_interpolation="nearest")  # gammapy's IRF lookup
    ref = reference["gc_example"]
    assert lik.stat() == pytest.approx(ref["total_stat"], rel=1e-9)
    per = lik.stat_per_dataset()
    assert per["gc"] == pytest.approx(ref["gc"]["stat_sum"], rel=1e-9)
    assert per["g09"] == pytest.approx(ref["g09"]["stat_sum"], rel=1e-9)


def test_likelihood_is_reusable_only_with_its_models(onoff):
    models = pl_models()
    lik = Likelihood(onoff, models)
    assert xdl4.fit(lik, None).success and xdl4.fit(lik, list(models)).success
    with pytest.raises(ValueError, match="other models"):
        xdl4.fit(lik, pl_models())


def test_obs_runs_fitted_in_one_vectorised_evaluation():
    """Runs of a region dataset along obs: one evaluator for all of them, same statistic
    as the runs one by one."""
    from xdl4.fitting import Likelihood

    truth = pl_models(index=2.5, amplitude=3.8e-11)
    runs = xdl4.examples.spectrum_dataset(onoff=True).dl4.fake(truth, seed=5, size=6)
    lik = Likelihood(runs, pl_models())
    assert len(lik.terms) == 1
    per_run = sum(runs.isel(obs=i).dl4.stat_sum(lik.models) for i in range(6))
    assert lik.stat() == pytest.approx(per_run, rel=1e-12)
    r = xdl4.fit(runs, pl_models())
    assert r.success
    idx = r.parameters["value"].sel(parameter="src.index")
    err = r.parameters["error"].sel(parameter="src.index")
    assert abs(float(idx) - 2.5) < 4 * float(err)


def test_fit_refuses_a_bad_start_and_an_empty_fit_mask(onoff):
    models = pl_models()
    models.parameters["src.index"].min, models.parameters["src.index"].max = 2.5, 4.0
    with pytest.raises(xdl4.ModelError, match="src.index"):
        xdl4.fit(onoff, models)  # start value 2 below its minimum 2.5
    with pytest.raises(FitError, match="no bin"):
        xdl4.fit(onoff.assign(mask_fit=onoff.mask_safe & False), pl_models())


def test_minos_of_a_parameter_that_is_not_free_is_a_model_error(onoff):
    models = Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="src")])
    with pytest.raises(xdl4.ModelError, match=r"MINOS for \['src.reference'\]: not free.*"
                       r"free: \['src.index', 'src.amplitude'\]"):
        confidence(onoff, models, "src.reference")
    with pytest.raises(xdl4.ModelError, match="MINOS for \\['nope'\\]"):
        xdl4.fit(onoff, models, minos=["nope"])


def test_minos_takes_one_name_as_a_string():
    """``minos="src.index"``: one parameter, not its characters."""
    from xdl4.models import Models, PowerLaw, SkyModel

    ds = xdl4.examples.spectrum_dataset(onoff=True)
    models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="src")])
    result = xdl4.fit(ds, models, minos="src.index")
    errn = result.parameters["errn"].to_series()
    assert np.isfinite(errn["src.index"]) and errn["src.index"] > 0
    assert np.isnan(errn["src.amplitude"])  # MINOS ran for the one parameter named
