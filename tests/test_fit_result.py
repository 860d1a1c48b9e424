"""FitResult beyond the numbers: contours centred on the best fit, plots of the covariance
and correlation matrices, write / read of a fit as gammapy writes it."""

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
import xarray as xr

import xdl4
from xdl4.fitting import FitResult, Likelihood, stat_contour
from xdl4.models import Models, PowerLaw, SkyModel, read_models

DATA = Path(__file__).parent / "data"


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


# -- covariance and correlation plots (issue #12 item 7) -------------------------------------

@pytest.mark.parametrize("what", ["covariance", "correlation"])
def test_matrix_plots_with_parameter_labels(onoff, what):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    r = xdl4.fit(onoff, pl_models())
    da = getattr(r, what)
    labels = ["crab.index", "crab.amplitude", "crab.reference"]
    assert list(da["parameter_1"].values) == labels
    assert float(da.sel(parameter_1="crab.index", parameter_2="crab.index")) == pytest.approx(
        1.0 if what == "correlation" else r.parameters["error"].values[0] ** 2)
    fig, ax = plt.subplots()
    mesh = da.plot(ax=ax)
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(3, 3), da.values)
    assert [t.get_text() for t in ax.get_xticklabels()] == labels
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    assert ax.get_xlabel() == "parameter_2" and ax.get_ylabel() == "parameter_1"
    r.parameters["value"].plot.line("o", ax=ax)  # the parameter table's labels plot too
    plt.close(fig)


# -- reprs -----------------------------------------------------------------------------------

def test_fit_result_text_and_html(onoff):
    models = pl_models()
    models.parameters["crab.index"].min = 1.0
    r = xdl4.fit(onoff, models, minos=True)
    text = repr(r)
    lines = text.splitlines()
    assert lines[0] == (f"FitResult(success=True, nfev={r.nfev}, "
                        f"total_stat={r.total_stat:.6f})")
    assert "MIGRAD converged" in lines[1] and "1 frozen" in lines[2]
    assert lines[3].split() == ["name", "value", "error", "errn", "errp", "unit", "min", "max"]
    p = r.parameters.sel(parameter="crab.index")
    row = lines[4].split()
    assert row[0] == "crab.index" and float(row[1]) == pytest.approx(float(p["value"]), 1e-5)
    assert float(row[3]) == pytest.approx(float(p["errn"]), 1e-5) and row[-2:] == ["1", "nan"]
    assert "crab.reference" not in text
    corr = float(r.correlation.sel(parameter_1="crab.index", parameter_2="crab.amplitude"))
    assert lines[6].strip() == "correlation:"
    assert lines[7].split() == ["crab.index", "crab.amplitude"]
    assert lines[8].split() == ["crab.index", "1", f"{corr:.3g}"]
    html = r._repr_html_()
    assert "<b>FitResult</b>" in html and "MIGRAD converged" in html
    assert html.count("<table") == 3 and "<th>errp</th>" in html
    assert "correlation of the free parameters" in html and f">{corr:.3g}<" in html
    assert ">crab.amplitude<" in html and "crab.reference" not in html


def test_linked_parameter_is_one_row(onoff):
    a = SkyModel(PowerLaw(index=2.0, amplitude=5e-12), name="a")
    b = SkyModel(PowerLaw(index=2.0, amplitude=5e-12), name="b")
    b.spectral.index = a.spectral.index
    r = xdl4.fit(onoff, Models([a, b]))
    names = [li.split()[0] for li in repr(r).splitlines()[4:7]]
    assert names == ["a.index", "a.amplitude", "b.amplitude"]


# -- write / read ----------------------------------------------------------------------------

def _assert_same_result(r, back):
    assert (back.success, back.message, back.nfev, back.total_stat) == (
        r.success, r.message, r.nfev, r.total_stat)
    assert back.minuit is None and isinstance(back.models, Models)
    units = [u.Unit(x) for x in r.parameters["unit"].values]
    assert [u.Unit(x) for x in back.parameters["unit"].values] == units
    xr.testing.assert_identical(back.parameters.drop_vars("unit"),
                                r.parameters.drop_vars("unit"))
    xr.testing.assert_identical(back.covariance, r.covariance)


def test_write_read_round_trip(onoff, tmp_path):
    models = pl_models()
    models.parameters["crab.amplitude"].min = 0.0
    r = xdl4.fit(onoff, models, minos=["crab.index"])
    path = r.write(tmp_path / "fit.yaml")
    assert path == tmp_path / "fit.yaml"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["fit.yaml", "fit_covariance.dat"]
    text = path.read_text()
    assert text.startswith("OptimizeResult:\n    backend: minuit\n    method: migrad\n")
    assert "CovarianceResult:" in text and "covariance: fit_covariance.dat" in text
    back = FitResult.read(path)
    _assert_same_result(r, back)
    assert np.isnan(back.parameters["errn"].sel(parameter="crab.amplitude"))
    # the models YAML reads as plain models too, covariance included
    plain = read_models(path)
    np.testing.assert_array_equal(plain.covariance, r.covariance.values)


def test_write_keeps_the_fit_numbers_after_the_models_moved(onoff, tmp_path):
    models = pl_models()
    r = xdl4.fit(onoff, models)
    models.parameters["crab.index"].value = 3.0
    models.parameters["crab.index"].frozen = True
    r.write(tmp_path / "fit.yaml")
    assert models.parameters["crab.index"].value == 3.0  # restored
    assert models.parameters["crab.index"].frozen
    _assert_same_result(r, FitResult.read(tmp_path / "fit.yaml"))
    models.append(SkyModel(PowerLaw(), name="other"))
    with pytest.raises(ValueError, match="models changed since the fit"):
        r.write(tmp_path / "other.yaml")
    assert not (tmp_path / "other.yaml").exists()


def test_write_refuses_to_overwrite(onoff, tmp_path):
    r = xdl4.fit(onoff, pl_models())
    (tmp_path / "fit_covariance.dat").write_text("keep me")
    with pytest.raises(xdl4.DL4FileExistsError, match="overwrite=True"):
        r.write(tmp_path / "fit.yaml")
    assert not (tmp_path / "fit.yaml").exists()
    assert (tmp_path / "fit_covariance.dat").read_text() == "keep me"
    r.write(tmp_path / "fit.yaml", overwrite=True)
    with pytest.raises(FileExistsError):
        r.write(tmp_path / "fit.yaml")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["fit.yaml", "fit_covariance.dat"]
    _assert_same_result(r, FitResult.read(tmp_path / "fit.yaml"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        r.write(tmp_path / "missing" / "fit.yaml")


def test_read_a_fit_written_by_gammapy():
    # gammapy 2.1: Fit().run([pha_sonoff]) with a power law named crab, then
    # result.write("fit.yaml") (two `metadata` keys, as gammapy writes them)
    r = FitResult.read(DATA / "gammapy_fit" / "fit.yaml")
    assert r.success and r.nfev == 119 and r.message == "Optimization terminated successfully."
    assert r.total_stat == pytest.approx(5.912314933986387, rel=1e-15)
    p = r.parameters
    assert float(p["value"].sel(parameter="crab.index")) == 2.333110235895103
    assert float(p["error"].sel(parameter="crab.amplitude")) == 9.372661157138486e-13
    assert bool(p["frozen"].sel(parameter="crab.reference"))
    assert float(r.covariance.sel(parameter_1="crab.index", parameter_2="crab.amplitude")) \
        == 1.0314053466562035e-14
    assert "errn" not in p


def test_read_missing_or_broken_files_are_typed_errors(tmp_path):
    with pytest.raises(xdl4.DL4FileNotFoundError, match="fit.yaml"):
        FitResult.read(tmp_path / "fit.yaml")
    (tmp_path / "bad.yaml").write_text("components: [\n")
    with pytest.raises(xdl4.ModelError, match="bad.yaml: not valid YAML"):
        FitResult.read(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(xdl4.ModelError, match="list.yaml: expected a mapping"):
        FitResult.read(tmp_path / "list.yaml")
