"""Light curves: flux points with a time axis, read/written as gammapy's ``lightcurve`` format,
their statistics with temporal models and fits, compared with gammapy 2.1.

The files in tests/data were written with gammapy 2.1 (never imported here): a FluxPoints
built with ``FluxPoints.from_table(table, format="lightcurve")`` from a table of 5 time bins
(MJD 55197 + [0, .5], [.5, 1], [1, 1.5], [2, 3], [3, 4.5]: a gap between 1.5 and 2) x 2
energy bins ([1, 3], [3, 10] TeV), noisy power law x exponential decay, one upper limit
(last bin, high energy), then ``fp.write(path, sed_type=..., format="lightcurve")``:

* ``lc_dnde.fits`` / ``lc_dnde.ecsv``: sed_type dnde (dnde, errors, dnde_ul, is_ul,
  sqrt_ts), TIMESYS tt;
* ``lc_gti.fits``: the same with a GTI HDU (8 intervals from MJD 55197 tt, one crossing a
  bin edge, two overlapping, a bin partly covered);
* ``lc_likelihood.fits``: sed_type likelihood (norm*, ref_*, ts, stat, stat_scan and
  norm_scan on 11 norms), TIMESYS utc.

Reference numbers: ``FluxPointsDataset(models=..., data=FluxPoints.read(path,
format="lightcurve"), stat_type=...)`` with the gammapy models of `models` below (same
parameters), ``.stat_sum()``, ``.stat_array()``, ``.residuals()``, ``.flux_pred()``, and
``Fit(optimize_opts={"tol": 1e-4, "strategy": 2}, covariance_opts={"strategy": 2}).run``.
"""

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy.table import Table

import xdl4
from xdl4.axes import time_edges
from xdl4.errors import FormatError as FitsFormatError
from xdl4.io.flux_points import read_flux_points, to_flux_points_fits
from xdl4.kinds.flux_points import create_flux_points, model_dnde
from xdl4.models import (
    ExpDecayTemporalModel,
    GaussianTemporalModel,
    GeneralizedGaussianTemporalModel,
    Models,
    PowerLaw,
    SkyModel,
)

DATA = Path(__file__).parent / "data"
FILES = ("lc_dnde.fits", "lc_dnde.ecsv", "lc_gti.fits", "lc_likelihood.fits")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():  # ERFA: "dubious year" for MJD 0 in utc (as gammapy)
        warnings.simplefilter("ignore")
        yield


def read(name: str) -> xr.Dataset:
    return read_flux_points(DATA / name)


def pl() -> PowerLaw:
    return PowerLaw(index=2.4, amplitude=1e-12, reference=1.0)


def exp() -> ExpDecayTemporalModel:
    return ExpDecayTemporalModel(t0=1.2, t_ref=55197.0)


def models(key: str) -> Models:
    """gammapy: the same models, units cm-2 s-1 TeV-1, TeV and d, default scale utc."""
    return Models({
        "pl": lambda: [SkyModel(pl(), name="src")],
        "pl_exp": lambda: [SkyModel(pl(), temporal=exp(), name="src")],
        "pl_gauss_utc": lambda: [SkyModel(pl(), temporal=GaussianTemporalModel(
            t_ref=55198.3, sigma=0.8), name="src")],
        "pl_gengauss": lambda: [SkyModel(pl(), temporal=GeneralizedGaussianTemporalModel(
            t_ref=55198.0, t_rise=0.3, t_decay=1.0, eta=0.5), name="src")],
        "two": lambda: [SkyModel(pl(), temporal=exp(), name="src"),
                        SkyModel(PowerLaw(index=3.0, amplitude=2e-13), name="bkg")],
    }[key]())


# ---- data model and I/O ------------------------------------------------------------------
def test_read_layout():
    ds = read("lc_dnde.fits")
    assert ds.dl4.validate() is ds
    assert dict(ds["dnde"].sizes) == {"time": 5, "energy": 2}
    assert ds.attrs["sed_type"] == "dnde" and "fits_header" not in ds.attrs
    np.testing.assert_array_equal(ds["time_bounds"].values[:, 0],
                                  55197 + np.array([0, 0.5, 1, 2, 3]))
    assert ds["time"].attrs == {"units": "d", "mjdrefi": 0, "mjdreff": 0.0, "timesys": "tt",
                                "bounds": "time_bounds"}
    np.testing.assert_allclose(ds["energy_bounds"].values, [[1, 3], [3, 10]], rtol=1e-15)
    assert ds["is_ul"].dtype == bool and int(ds["is_ul"].sum()) == 1
    lik = read("lc_likelihood.fits")
    assert lik["stat_scan"].dims == ("time", "energy", "scan")
    assert lik["norm_scan"].dims == ("time", "energy", "scan")
    assert lik.attrs["sed_type"] == "likelihood"


def test_time_edges_as_gammapy():
    # gammapy: FluxPoints.read(path, format="lightcurve").geom.axes["time"].time_min.mjd
    start, stop = time_edges(read("lc_dnde.fits"))
    assert start.scale == "tt"
    np.testing.assert_array_equal(start.mjd, [55197.0, 55197.5, 55198.0, 55199.0, 55200.0])
    np.testing.assert_array_equal(stop.mjd, [55197.5, 55198.0, 55198.5, 55200.0, 55201.5])
    # utc and a zero reference: astropy adds the MJDs to a 1858 utc epoch, so every gammapy
    # write + read moves the bins by TAI-UTC (34 s in 2010). The file holds 55197 - 34 s
    # (written once); read, gammapy and xdl4 both see 55197 - 68 s.
    start, _ = time_edges(read("lc_likelihood.fits"))
    assert start.scale == "utc"
    np.testing.assert_allclose(start.mjd[:2], [55196.99921296, 55197.49921296], rtol=0,
                               atol=1e-8)


@pytest.mark.parametrize("name", FILES)
def test_roundtrip_identical(tmp_path, name):
    ds = read(name)
    path = to_flux_points_fits(ds, tmp_path / name)
    xr.testing.assert_identical(read_flux_points(path).assign_attrs(name=ds.attrs["name"]), ds)
    with pytest.raises(FileExistsError):
        to_flux_points_fits(ds, path)
    to_flux_points_fits(ds, path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # atomic: no leftovers
    ds.dl4.to_netcdf(tmp_path / "lc.nc")
    xr.testing.assert_identical(xdl4.open_dataset(tmp_path / "lc.nc").load(), ds)


def test_written_table_is_gammapy_layout(tmp_path):
    # gammapy 2.1 reads these files back (format="lightcurve") with identical time edges
    # (0 s), energy axis, GTI and values of every quantity (checked by hand, array_equal)
    path = to_flux_points_fits(read("lc_gti.fits"), tmp_path / "lc.fits")
    table = Table.read(path, hdu="FLUXPOINTS")
    assert table.colnames[:5] == ["time_min", "time_max", "e_ref", "e_min", "e_max"]
    assert table["e_min"].shape == (5, 2) and table["time_min"].unit is None
    assert {k: table.meta[k] for k in ("MJDREFI", "MJDREFF", "TIMESYS", "TIMEUNIT")} == \
        {"MJDREFI": 0, "MJDREFF": 0.0, "TIMESYS": "tt", "TIMEUNIT": "d"}
    original = Table.read(DATA / "lc_gti.fits", hdu="FLUXPOINTS")
    for name in original.colnames:
        np.testing.assert_array_equal(table[name], original[name], err_msg=name)
    assert Table.read(path, hdu="GTI")["START"].tolist() == \
        Table.read(DATA / "lc_gti.fits", hdu="GTI")["START"].tolist()


def test_extra_table_keys_kept_once(tmp_path):
    # were kept both as fits_meta_<KEY> and in fits_header: written twice, then lost
    lc = read("lc_dnde.fits").assign_attrs(fits_meta_OBSERVER="me", fits_meta_LONGKEYWORD=3)
    once = read_flux_points(to_flux_points_fits(lc, tmp_path / "a.fits"))
    assert "fits_header" not in once.attrs and once.attrs["fits_meta_OBSERVER"] == "me"
    twice = read_flux_points(to_flux_points_fits(once, tmp_path / "b.fits"))
    xr.testing.assert_identical(twice, once)


def _write_table(tmp_path, edit) -> Path:
    table = Table.read(DATA / "lc_dnde.ecsv")
    edit(table)
    path = tmp_path / "bad.ecsv"
    table.write(path)
    return path


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.remove_column("time_max"), "lacks column 'time_max'"),
    (lambda t: t["time_max"].__setitem__(1, 55197.2), "time_min < time_max"),
    (lambda t: t["e_min"].__setitem__((2, 0), 1.1), "'e_min' differs between time bins"),
    (lambda t: t.meta.__setitem__("TIMESYS", "martian"), "TIMESYS 'martian'"),
    (lambda t: t.meta.__setitem__("TIMEUNIT", "m"), "TIMEUNIT 'm'"),
    (lambda t: t.replace_column("dnde", t["dnde"][:, :1]), "'dnde' has 1 values per time"),
])
def test_malformed_tables(tmp_path, edit, match):
    with pytest.raises(FitsFormatError, match=match):
        read_flux_points(_write_table(tmp_path, edit))


def test_validate_lists_every_problem():
    ds = read("lc_dnde.fits")
    bad = ds.drop_vars("time_bounds")
    with pytest.raises(xdl4.DL4ValidationError, match="no bounds variable 'time_bounds'"):
        bad.dl4.validate()
    bad = ds.assign(dnde_err=ds["dnde_err"].isel(time=0))
    bad["time_bounds"] = bad["time_bounds"][:, ::-1].assign_attrs(
        {**ds["time_bounds"].attrs, "timesys": "martian"})
    with pytest.raises(xdl4.DL4ValidationError) as err:
        bad.dl4.validate()
    assert len(err.value.problems) == 3
    text = str(err.value)
    assert "dnde_err has dims ('energy',)" in text and "time bounds are not increasing" in text
    assert "'martian'" in text


def test_create_light_curve(tmp_path):
    lc = create_flux_points([1, 3, 10], time_bounds=([55197.0, 55198.0], [55197.5, 55199.0]),
                            dnde=[[1e-12, 1e-13], [2e-12, 2e-13]],
                            dnde_err=[[1e-13, 1e-14], [1e-13, 1e-14]])
    assert lc["dnde"].dims == ("time", "energy")
    path = to_flux_points_fits(lc, tmp_path / "lc.fits")
    back = read_flux_points(path)
    np.testing.assert_array_equal(back["time_bounds"].values, lc["time_bounds"].values)
    np.testing.assert_array_equal(back["dnde"].values, lc["dnde"].values)


# ---- statistics ----------------------------------------------------------------------------
# gammapy 2.1 FluxPointsDataset(models, FluxPoints.read(path, format="lightcurve"),
# stat_type=stat).stat_sum(); xdl4 agrees to 3e-14 relative.
STAT_SUMS = [
    ("lc_dnde.fits", "chi2", "pl", 113.23635094298568),
    ("lc_dnde.fits", "chi2", "pl_exp", 178.52813201111843),
    ("lc_dnde.fits", "chi2", "pl_gauss_utc", 164.38743146350777),
    ("lc_dnde.fits", "chi2", "pl_gengauss", 170.7103325146848),
    ("lc_dnde.fits", "chi2", "two", 159.33051734209826),
    ("lc_dnde.fits", "distrib", "pl", 141.73223575191508),
    ("lc_dnde.fits", "distrib", "pl_exp", 220.56940228469279),
    ("lc_dnde.fits", "distrib", "pl_gauss_utc", 203.02657591278057),
    ("lc_dnde.fits", "distrib", "pl_gengauss", 210.8880580991825),
    ("lc_dnde.fits", "distrib", "two", 197.11481926278626),
    ("lc_gti.fits", "chi2", "pl", 113.23635094298568),
    ("lc_gti.fits", "chi2", "pl_exp", 177.954240353308),
    ("lc_gti.fits", "chi2", "pl_gauss_utc", 165.89363030641772),
    ("lc_gti.fits", "chi2", "pl_gengauss", 171.4532535772941),
    ("lc_gti.fits", "chi2", "two", 158.80128002451843),
    ("lc_gti.fits", "distrib", "pl_exp", 219.87316928605554),
    ("lc_gti.fits", "distrib", "pl_gauss_utc", 204.90061526192682),
    ("lc_gti.fits", "distrib", "pl_gengauss", 211.82721256250824),
    ("lc_likelihood.fits", "chi2", "pl_exp", 178.5275161140092),
    ("lc_likelihood.fits", "chi2", "pl_gauss_utc", 164.38740994086535),
    ("lc_likelihood.fits", "profile", "pl", 114.91277864973449),
    ("lc_likelihood.fits", "profile", "pl_exp", 178.5330367091581),
    ("lc_likelihood.fits", "profile", "pl_gauss_utc", 164.39937401413022),
    ("lc_likelihood.fits", "profile", "pl_gengauss", 170.72841469129),
    ("lc_likelihood.fits", "profile", "two", 159.3307870676506),
    ("lc_dnde.ecsv", "chi2", "pl_exp", 178.52813201111843),
]


@pytest.mark.parametrize("name, stat, key, want", STAT_SUMS)
def test_stat_sum_as_gammapy(name, stat, key, want):
    ds = read(name).assign_attrs(stat_type=stat)
    assert ds.dl4.stat_sum(models(key)) == pytest.approx(want, rel=1e-10)


def test_arrays_as_gammapy():
    # gammapy: flux_pred(), stat_array(), residuals() of the lc_gti.fits chi2 dataset, pl_exp
    ds = read("lc_gti.fits")
    m = models("pl_exp")
    flux_pred = [[2.2493850086281581e-13, 1.4192659917575783e-14],
                 [1.4384022456411527e-13, 9.0757046120408757e-15],
                 [1.0289926419332570e-13, 6.4925046484386570e-15],
                 [3.2241481848975459e-14, 2.0342999769535895e-15],
                 [1.3492751020683696e-14, 8.5133503537429956e-16]]
    np.testing.assert_allclose(model_dnde(ds, m), flux_pred, rtol=1e-12)
    stat = [[3.7112198577538251e+01, 7.5489848765473395e+00],
            [4.2792283609605910e+01, 1.8559548253573578e+01],
            [1.4042264010206406e+01, 2.4676957705542559e+00],
            [3.1189188866428754e+01, 2.1185412231450100e+00],
            [2.2123535165708500e+01, np.nan]]  # gammapy's 4.79e-3 at the UL is masked
    got = ds.dl4.stat_array(m)
    assert got.dims == ("time", "energy")
    np.testing.assert_allclose(got.values, stat, rtol=1e-12)
    residuals = [[2.0200604448604530e-12, 7.7163420456156886e-14],
                 [1.5728042544539083e-12, 9.8905462331814866e-14],
                 [6.5619590768027296e-13, 3.0294472040090857e-14],
                 [4.5659180365929436e-13, 2.0428534192631193e-14],
                 [1.9371898800968639e-13, np.nan]]
    np.testing.assert_allclose(ds.dl4.residuals(m).values, residuals, rtol=1e-12)
    # gammapy: flux_pred() of lc_dnde.fits (no GTI: mean over each whole bin), first column
    np.testing.assert_allclose(model_dnde(read("lc_dnde.fits"), m)[:, 0],
                               [2.1897310356309482e-13, 1.4435596678988156e-13,
                                9.5165318519755886e-14, 3.4311998595664667e-14,
                                1.2545170426561180e-14], rtol=1e-12)


def test_info():
    info = read("lc_gti.fits").dl4.info(models("pl_exp"))
    assert (info["n_points"], info["n_time_bins"], info["n_ul"], info["n_fit_bins"]) == \
        (10, 5, 1, 9)
    assert info["stat_sum"] == pytest.approx(177.954240353308, rel=1e-10)


def test_bin_without_gti_is_an_error():
    ds = read("lc_gti.fits").isel(gti=[0, 1, 2, 5, 6, 7])  # nothing left in [1, 1.5] d
    with pytest.raises(ValueError, match=r"time bin\(s\) \[2\] have no GTI"):
        ds.dl4.stat_sum(models("pl_exp"))
    assert ds.dl4.stat_sum(models("pl")) == pytest.approx(113.23635094298568, rel=1e-10)


# gammapy: Fit(optimize_opts={"tol": 1e-4, "strategy": 2}, covariance_opts={"strategy": 2})
# from index 2.4, amplitude 2e-12, t0 1.2 (t_ref frozen): total_stat, then (value, error)
# of index, amplitude, t0.
FITS = {
    ("lc_dnde.fits", "chi2"): (7.229371320121219, [
        (2.598423951071762, 0.16370668719548992), (1.050133777738405e-11, 1.8870147571723554e-12),
        (1.448557872000147, 0.1401801002423315)]),
    ("lc_gti.fits", "chi2"): (9.411005505194177, [
        (2.5956497832652317, 0.16501121586472295), (1.0131193314617536e-11, 1.819127182272954e-12),
        (1.4632593141162094, 0.1404325997572359)]),
    ("lc_likelihood.fits", "profile"): (7.703668051340758, [
        (2.615894181250842, 0.16303294387979916), (1.0708157582768725e-11, 1.8822118102422583e-12),
        (1.4338784398166748, 0.13604126444263748)]),
}


@pytest.mark.parametrize("name, stat", list(FITS))
def test_fit_as_gammapy(name, stat):
    total, params = FITS[(name, stat)]
    ds = read(name).assign_attrs(stat_type=stat)
    m = models("pl_exp")
    m.parameters["src.amplitude"].value = 2e-12
    r = xdl4.fit(ds, m, tol=1e-4, strategy=2)
    assert r.success
    # measured: total_stat 1e-12 (chi2) / 7e-9 (profile) relative; values 1e-8 (chi2) /
    # 1e-5 (profile: its interpolated scans make the minimum flat); HESSE errors 3e-4
    assert r.total_stat == pytest.approx(total, rel=1e-8)
    rel = 1e-5 if stat == "chi2" else 2e-5
    for label, (value, error) in zip(("src.index", "src.amplitude", "src.t0"), params,
                                     strict=True):
        assert m.parameters[label].value == pytest.approx(value, rel=rel), label
        assert m.parameters[label].error == pytest.approx(error, rel=2e-3), label
