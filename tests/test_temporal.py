"""Temporal models: evaluate / integral, the temporal norm in npred, YAML, fits, errors.

Reference numbers were computed by hand with gammapy 2.1 (never imported here); each block
says which gammapy calls produced them.
"""

import numpy as np
import pytest
import xarray as xr
import yaml
from astropy import units as u
from astropy.time import Time

import xdl4
from xdl4.gti import _duration, good_times
from xdl4.kinds.counts import evaluator as Evaluator
from xdl4.models import (
    ConstantTemporalModel,
    ExpDecayTemporalModel,
    FoVBackgroundModel,
    GaussianTemporalModel,
    GeneralizedGaussianTemporalModel,
    LightCurveTemplateTemporalModel,
    LinearTemporalModel,
    Models,
    OpaqueTemporalModel,
    PowerLaw,
    PowerLawTemporalModel,
    SineTemporalModel,
    SkyModel,
    read_models,
)
from xdl4.models.temporal import temporal_norm

# ---- (1) evaluate and integral -------------------------------------------------------------
# gammapy 2.1:
#   gti = GTI.create([10800, 20000, 259200] * u.s, [14400, 30000, 266400] * u.s,
#                    Time(51544, 0.0, format="mjd", scale="tt"))
#   times = Time([51544.12, 51544.14, 51544.16, 51544.3, 51547.05], format="mjd", scale="tt")
#   model.integral(gti.time_start, gti.time_stop), model(times)
# with the models of MODELS below built with the same arguments (units d, d-1, rad/d, h).
GTI_REF = Time(51544, 0.0, format="mjd", scale="tt")
GTI_START = GTI_REF + [10800.0, 20000.0, 259200.0] * u.s
GTI_STOP = GTI_REF + [14400.0, 30000.0, 266400.0] * u.s
TIMES = Time([51544.12, 51544.14, 51544.16, 51544.3, 51547.05], format="mjd", scale="tt")

MODELS = {
    "const": lambda: ConstantTemporalModel(),
    "linear": lambda: LinearTemporalModel(alpha=1.2, beta=0.8, t_ref=51544.1),
    "expdecay": lambda: ExpDecayTemporalModel(t0=0.2, t_ref=51544.1),
    "expdecay_h_tt": lambda: ExpDecayTemporalModel(t0=3 * u.h, t_ref=51544.1, scale="tt"),
    "gauss": lambda: GaussianTemporalModel(t_ref=51544.14, sigma=0.002),
    "gauss_tt": lambda: GaussianTemporalModel(t_ref=51544.14, sigma=0.002, scale="tt"),
    "gauss_edge": lambda: GaussianTemporalModel(t_ref=51544.1665, sigma=0.001),
    "gauss_edge_tt": lambda: GaussianTemporalModel(t_ref=51544.1665, sigma=0.001, scale="tt"),
    "gengauss": lambda: GeneralizedGaussianTemporalModel(t_ref=51544.14, t_rise=0.01,
                                                         t_decay=0.03, eta=0.7),
    "powerlaw": lambda: PowerLawTemporalModel(alpha=-1.5, t_ref=51544.0, t0=0.1),
    "powerlaw_m1": lambda: PowerLawTemporalModel(alpha=-1, t_ref=51544.0, t0=0.1),
    "sine": lambda: SineTemporalModel(amp=0.5, omega=20, t_ref=51544.1),
}

# (integral over the three GTIs, value at the five TIMES)
GAMMAPY = {
    "const": ([0.17307692307692296, 0.48076923076923067, 0.34615384615384637],
              [1.0, 1.0, 1.0, 1.0, 1.0]),
    "linear": ([0.2139356025643039, 0.6494649928780525, 1.229794282051683],
               [1.2154057037085295, 1.2314057037059682, 1.2474057037092279,
                1.3594057037087623, 3.5594057037087623]),
    "expdecay": ([0.13839219102217867, 0.18985446835844158, 1.4330830009318242e-07],
                 [0.908204552036935, 0.8217774619267597, 0.7435749968348048,
                  0.36924841569598255, 3.9424801413759094e-07]),
    "expdecay_h_tt": ([0.12050543088964805, 0.10951299531220338, 2.1226836062649483e-11],
                      [0.8521437889384346, 0.7261490370686189, 0.6187833917816487,
                       0.20189651798760425, 5.63183894987759e-11]),
    "gauss": ([0.02082429643539597, 0.0, 0.0],
              [4.387275232246314e-24, 0.9333434352781685, 7.386520072912963e-21, 0.0, 0.0]),
    "gauss_tt": ([0.020824296435395337, 0.0, 0.0],
                 [1.928749878837609e-22, 1.0, 1.9287498086700985e-22, 0.0, 0.0]),
    "gauss_edge": ([0.0029387117109565524, 0.0, 0.0],
                   [0.0, 6.901868082479433e-162, 4.06102562637966e-12, 0.0, 0.0]),
    "gauss_edge_tt": ([0.005895189986231852, 0.0, 0.0],
                      [0.0, 3.2236660269777135e-153, 6.691586271047761e-10, 0.0, 0.0]),
    "gengauss": ([0.13940661604782875, 0.00864531641931772, 2.8777039761760998e-148],
                 [0.242226742681817, 0.9878844151809931, 0.7668866360653428,
                  0.004391185058771989, 2.6984714355511646e-150]),
    "powerlaw": ([0.1003304496198893, 0.10060029561934909, 0.002064485421799674],
                 [0.7678448427430138, 0.6085185771542956, 0.4975671202981622,
                  0.1931671360824985, 0.00593893986858016]),
    "powerlaw_m1": ([0.1201190870127155, 0.16886951032395608, 0.011383893006592581],
                    [0.8385242903860475, 0.7180960878985062, 0.6279153732654797,
                     0.33416079383684705, 0.03279487289810374]),
    "sine": ([0.1209460256371781, 0.6343880694739291, 0.4450725766523246],
             [1.1878456438160647, 1.3534630211432621, 1.4632763594238827,
              0.6264960623098219, 1.3240617811445623]),
}


@pytest.mark.parametrize("key", sorted(MODELS))
def test_integral_and_evaluate_match_gammapy(key):
    model = MODELS[key]()
    integral, values = GAMMAPY[key]
    np.testing.assert_allclose(model.integral(GTI_START, GTI_STOP), integral, rtol=1e-12,
                               atol=1e-300)
    np.testing.assert_allclose(model.evaluate(TIMES), values, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(model(TIMES), model.evaluate(TIMES))


def test_tt_utc_offset_matters_for_a_short_gaussian():
    # a 86 s Gaussian at the GTI's end: TT-UTC (69.184 s) halves the norm, as in gammapy
    utc, tt = GAMMAPY["gauss_edge"][0][0], GAMMAPY["gauss_edge_tt"][0][0]
    assert tt / utc == pytest.approx(2.006, abs=1e-3)


@pytest.mark.parametrize("gti_scale", ["utc", "tt", "tdb"])
@pytest.mark.parametrize("model_scale", ["utc", "tt", "tai"])
def test_time_differences_equal_astropy(gti_scale, model_scale):
    # t - t_ref and durations from two-part JDs: the numbers of astropy's Time - Time,
    # across the leap second of 2016-12-31 (MJD 57754)
    rng = np.random.default_rng(1)
    t = Time(57753, 0.7, format="mjd", scale=gti_scale) + rng.uniform(-2e5, 2e5, 500) * u.s
    m = GaussianTemporalModel(t_ref=57754.0001, sigma=1.0, scale=model_scale)
    np.testing.assert_array_equal(m._since_ref(t), (t - m.reference_time).to_value("d"))
    t2 = t + rng.uniform(0, 1e5, 500) * u.s
    np.testing.assert_array_equal(_duration(t, t2), (t2 - t).to_value("d"))


def test_numbers_are_mjd_in_the_model_scale():
    m = GaussianTemporalModel(t_ref=51544.14, sigma=0.002, scale="tt")
    assert m.evaluate([51544.14]) == pytest.approx(1.0)
    np.testing.assert_allclose(m.integral(GTI_START.mjd, GTI_STOP.mjd),
                               GAMMAPY["gauss_tt"][0], rtol=1e-10, atol=1e-300)
    assert m.reference_time.scale == "tt"


def test_sine_integral_is_gammapy_formula():
    # gammapy 2.1 subtracts amp/omega (sin(w dt1) - sin(w dt0)); the exact integral of
    # 1 + amp sin has -cos: ours follows gammapy (documented), i.e. 1 - amp cos(w dt)
    m = SineTemporalModel(amp=0.5, omega=20, t_ref=51544.1, scale="tt")  # GTIs in tt
    t0, t1 = GTI_START[:1], GTI_STOP[:1]
    nodes = np.linspace(t0.mjd[0], t1.mjd[0], 200001)
    dt = nodes - 51544.1
    exact_cos = np.trapezoid(1 - 0.5 * np.cos(20 * dt), nodes) / (t1.mjd[0] - t0.mjd[0])
    assert m.integral(t0, t1)[0] == pytest.approx(exact_cos, rel=1e-8)


# ---- (2) npred of real datasets --------------------------------------------------------
# gammapy 2.1: SpectrumDataset.read("spectrum_dataset.fits.gz"); the "point" model of
# map_dataset_models.yaml with temporal_model = TEMPORAL[key] and a FoVBackgroundModel;
# dataset.npred().data.ravel(). (GTI: 51544.125-51544.1667 utc.)
TEMPORAL = {
    "expdecay": lambda: ExpDecayTemporalModel(t0=0.05, t_ref=51544.1),
    "gauss_edge_tt": lambda: GaussianTemporalModel(t_ref=51544.1665, sigma=0.001, scale="tt"),
    "gengauss": lambda: GeneralizedGaussianTemporalModel(t_ref=51544.15, t_rise=0.01,
                                                         t_decay=0.02, eta=0.7),
    "sine": lambda: SineTemporalModel(amp=0.5, omega=20, t_ref=51544.1),
}
SPECTRUM_NPRED = {
    "expdecay": [718.4631807025337, 604.2617494634277, 526.3667519759485, 393.0845702448678,
                 232.96108848522545, 258.2768295152002, 173.3450792967108, 72.11793798340534,
                 51.76636579675709, 26.173791938484108, 9.551869639691933, 6.414842122005357],
    "gauss_edge_tt": [85.96377737369637, 72.29963051902182, 62.979531170311134,
                      57.3913677481732, 32.37934119613836, 33.18342480692768,
                      22.055636521250076, 9.240690154906583, 6.426305556141459,
                      3.2302242177943286, 1.1725495422397005, 0.7823448811583406],
    "gengauss": [1170.001638018692, 984.0270951295493, 857.1767886675038, 632.7344260220002,
                 376.1554887645348, 418.96999093020486, 281.3499267946249, 117.00572022532043,
                 84.13442930467701, 42.55310094558359, 15.533828279097595, 10.435856373693623],
    "sine": [1229.9565115867415, 1034.451998957833, 901.1014502406749, 664.5549200926945,
             395.1687134972124, 440.3066855567292, 295.69071409979114, 122.96587990930456,
             88.43223190336275, 44.727930984401446, 16.328107411038175, 10.969763059091397],
}


@pytest.mark.parametrize("key", sorted(TEMPORAL))
def test_spectrum_npred_with_temporal_model_matches_gammapy(data_dir, key):
    g = data_dir / "gammapy"
    ds = xdl4.open_dataset(g / "spectrum_dataset.fits.gz")
    point = read_models(g / "map_dataset_models.yaml")["point"]
    point.temporal = TEMPORAL[key]()
    models = Models([point, FoVBackgroundModel(ds.dl4.name)])
    npred = ds.dl4.npred(models).values.ravel()
    np.testing.assert_allclose(npred, SPECTRUM_NPRED[key], rtol=1e-8)


# gammapy 2.1: MapDataset.read("map_dataset.fits.gz"), models of map_dataset_models.yaml,
# "point".temporal_model = TEMPORAL["expdecay"], "gauss".temporal_model =
# TEMPORAL["gauss_edge_tt"]; npred_signal(model_names=[name]).data.sum(axis=(1, 2)), without
# ("none_*") and with the temporal models.
MAP_SIGNAL = {
    "none_point": [2056.947851222798, 1534.7934813600286, 1286.9776641882559,
                   927.0047167601731, 553.851207689305, 621.5011896396225, 417.6797751870168,
                   173.56402380706004, 125.14450252255406, 63.331502541925886,
                   23.12893812952668, 15.539139049984747],
    "none_gauss": [186.46425444529754, 207.73656365602494, 236.5632441376616,
                   214.6743338012321, 143.98520964890974, 162.90765795050694,
                   100.58747903324168, 35.68458924370912, 20.167911374016757,
                   6.725237879656671, 1.5752315875481704, 0.6298373168500185],
    "point": [846.4756444085936, 631.5985601657435, 529.617339100554, 381.48119045550857,
              227.9209741056785, 255.76030996029567, 171.88367544062308, 71.42510628594262,
              51.49949394876411, 26.062194232912802, 9.518025843989662, 6.394670012208229],
    "gauss": [9.181164071645252, 10.228574266309423, 11.64794809712826, 10.570177573517,
              7.089572409518825, 8.021279685055413, 4.9527463121801505, 1.757044907349121,
              0.9930316341761342, 0.3311386012169191, 0.07756156642001744,
              0.031012055161174456],
}


def test_map_npred_with_temporal_models_matches_gammapy(data_dir):
    g = data_dir / "gammapy"
    ds = xdl4.open_dataset(g / "map_dataset.fits.gz")
    models = read_models(g / "map_dataset_models.yaml")
    base = {s: ds.dl4.npred_signal(models, [s]).sum(("lon", "lat")).values
            for s in ("point", "gauss")}
    models["point"].temporal = TEMPORAL["expdecay"]()
    models["gauss"].temporal = TEMPORAL["gauss_edge_tt"]()
    for s in ("point", "gauss"):
        sig = ds.dl4.npred_signal(models, [s]).sum(("lon", "lat")).values
        # the map npred itself agrees with gammapy to ~1e-7 (PSF, as without temporal
        # model); the temporal factor alone agrees to 1e-8 and better
        np.testing.assert_allclose(sig, MAP_SIGNAL[s], rtol=1e-6)
        expected = np.array(MAP_SIGNAL[s]) / MAP_SIGNAL[f"none_{s}"]
        np.testing.assert_allclose(sig / base[s], expected, rtol=1e-8)


# ---- runs along obs ------------------------------------------------------------------------
def _runs(data_dir, gtis: list[list[tuple[float, float]]]) -> xr.Dataset:
    """The spectrum dataset repeated along obs, run i with the GTIs gtis[i] (seconds)."""
    ds = xdl4.open_dataset(data_dir / "gammapy" / "spectrum_dataset.fits.gz")
    attrs = ds["gti_start"].attrs
    runs = []
    for intervals in gtis:
        start, stop = np.array(intervals, dtype=float).T
        run = ds.drop_vars(["gti_start", "gti_stop", "gti"]).assign_coords(
            gti=np.arange(start.size))
        run["gti_start"] = ("gti", start, attrs)
        run["gti_stop"] = ("gti", stop, attrs)
        runs.append(run)
    runs = xr.concat(runs, "obs", join="outer")  # GTIs padded with NaN
    return runs.assign_coords(obs=[f"r{i}" for i in range(len(gtis))])


GTIS = [[(0.0, 1800.0)], [(7200.0, 9000.0), (10800.0, 12600.0)], [(86400.0, 90000.0)]]


def test_runs_get_one_norm_each(data_dir):
    runs = _runs(data_dir, GTIS)
    assert np.isnan(runs["gti_start"].values[0, 1])  # padded
    src = SkyModel(PowerLaw(index=2.3, amplitude=4e-11),
                   temporal=ExpDecayTemporalModel(t0=0.3, t_ref=51544.0), name="flare")
    ev = Evaluator(runs)
    norm = ev.temporal_norm(src).ravel()
    t0 = 0.3 * 86400
    expected = [t0 * (np.exp(-a / t0) - np.exp(-b / t0)) for a, b in ((0, 1800),)]
    expected.append(t0 * (np.exp(-7200 / t0) - np.exp(-9000 / t0) + np.exp(-10800 / t0)
                          - np.exp(-12600 / t0)))
    expected.append(t0 * (np.exp(-86400 / t0) - np.exp(-90000 / t0)))
    np.testing.assert_allclose(norm, np.array(expected) / [1800, 3600, 3600], rtol=1e-12)
    # vectorised over runs == run by run == norm x npred without temporal model
    sig = xdl4.kinds.counts.npred_signal(runs, [src]).values
    steady = SkyModel(src.spectral, name="flare")
    for i in range(3):
        one = xdl4.kinds.counts.npred_signal(runs.isel(obs=i), [src]).values
        np.testing.assert_allclose(sig[i], one, rtol=1e-14)
        base = xdl4.kinds.counts.npred_signal(runs.isel(obs=i), [steady]).values
        np.testing.assert_allclose(one, norm[i] * base, rtol=1e-14)


def test_map_runs_are_evaluated_run_by_run(data_dir):
    ds = xdl4.open_dataset(data_dir / "gammapy" / "map_dataset.fits.gz")
    later = ds.assign(gti_start=ds["gti_start"] + 3600, gti_stop=ds["gti_stop"] + 3600)
    runs = xr.concat([ds, later], "obs")
    point = read_models(data_dir / "gammapy" / "map_dataset_models.yaml")["point"]
    point.temporal = ExpDecayTemporalModel(t0=0.05, t_ref=51544.1)
    sig = xdl4.kinds.counts.npred_signal(runs, [point]).sum(("lon", "lat")).values
    np.testing.assert_allclose(sig[0], MAP_SIGNAL["point"], rtol=1e-6)
    # one hour later: the mean of exp(-t/t0) over the GTI drops by exp(-1/24/0.05)
    np.testing.assert_allclose(sig[1] / sig[0], np.exp(-1 / 24 / 0.05), rtol=1e-12)


# ---- (4) fits of a temporal parameter ------------------------------------------------------
def test_fit_exp_decay_t0_on_runs(data_dir):
    runs = _runs(data_dir, GTIS)
    truth = SkyModel(PowerLaw(index=2.3, amplitude=4e-11),
                     temporal=ExpDecayTemporalModel(t0=0.3, t_ref=51544.0), name="flare")
    bkg = xdl4.kinds.counts.npred_background(runs, None)
    asimov = runs.assign(counts=xdl4.kinds.counts.npred_signal(runs, [truth]) + bkg)
    models = Models([truth])
    p = models.parameters
    p["flare.index"].frozen = p["flare.amplitude"].frozen = True
    p["flare.t0"].value = 0.5
    lik = xdl4.Likelihood(asimov, models)
    stats = []
    for t0 in (0.5, 0.3, 0.5):  # the cache follows the temporal parameter both ways
        p["flare.t0"].value = t0
        stats.append(lik.stat())
    assert stats[0] == stats[2] > stats[1]
    expected = xdl4.kinds.counts.stat_sum(asimov, models)
    assert stats[2] == pytest.approx(expected, rel=1e-12)
    result = xdl4.fit(lik, None)
    assert result.success
    assert p["flare.t0"].value == pytest.approx(0.3, rel=1e-4)
    assert 0 < p["flare.t0"].error < 0.3


def test_fit_gaussian_t_ref_and_key_follows_scale():
    ds = xdl4.examples.spectrum_dataset()  # GTI: 0-3600 s after MJD 51544 utc
    flare = GaussianTemporalModel(t_ref=51544.02, sigma=0.005)
    src = SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), temporal=flare, name="src")
    ev = Evaluator(ds)
    n_utc = ev.npred_signal([src]).sum()
    flare.scale = "tt"  # not a parameter: part of the cache key all the same
    n_tt = ev.npred_signal([src]).sum()
    assert n_tt != n_utc
    assert n_tt == pytest.approx(Evaluator(ds).npred_signal([src]).sum(), rel=1e-14)
    flare.t_ref.value = 51544.021
    assert ev.npred_signal([src]).sum() == pytest.approx(
        Evaluator(ds).npred_signal([src]).sum(), rel=1e-14)


def test_constant_model_is_norm_one_without_gti():
    ds = xdl4.examples.spectrum_dataset().drop_vars(["gti_start", "gti_stop"])
    steady = SkyModel(PowerLaw(), name="a")
    const = SkyModel(PowerLaw(), temporal=ConstantTemporalModel(), name="a")
    np.testing.assert_array_equal(xdl4.kinds.counts.npred_signal(ds, [const]),
                                  xdl4.kinds.counts.npred_signal(ds, [steady]))


# ---- (3) YAML ----------------------------------------------------------------------------------
# written by gammapy 2.1: Models([...]).write("temporal.yaml", write_covariance=False) with
# ExpDecay(t0=3 h frozen, t_ref=51544.1) on a point source, a tt Gaussian whose t_ref is
# linked to it (gauss.t_ref = exp.t_ref) and sigma.min = 1e-4, the other models with the
# arguments shown, a LightCurveTemplateTemporalModel.read("lc.fits") and a
# TemplatePhaseCurveTemporalModel.read("phase.fits", t_ref=55555.5 d, f0=30 s-1).
GAMMAPY_YAML = """
components:
-   name: flare
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.2
        -   name: amplitude
            value: 2.0e-12
            unit: TeV-1 s-1 cm-2
        -   name: reference
            value: 1.0
            unit: TeV
    spatial:
        type: PointSpatialModel
        frame: icrs
        parameters:
        -   name: lon_0
            value: 83.6
            unit: deg
        -   name: lat_0
            value: 22.0
            unit: deg
    temporal:
        type: ExpDecayTemporalModel
        parameters:
        -   name: t0
            value: 3.0
            unit: h
            frozen: true
        -   name: t_ref
            value: 51544.1
            unit: d
            link: t_ref@dFQGmpxN
        scale: utc
-   name: burst
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.2
        -   name: amplitude
            value: 2.0e-12
            unit: TeV-1 s-1 cm-2
        -   name: reference
            value: 1.0
            unit: TeV
    temporal:
        type: GaussianTemporalModel
        parameters:
        -   name: t_ref
            value: 51544.1
            unit: d
            frozen: true
            link: t_ref@dFQGmpxN
        -   name: sigma
            value: 0.002
            unit: d
            min: 0.0001
        scale: tt
-   name: gg
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.2
        -   name: amplitude
            value: 2.0e-12
            unit: TeV-1 s-1 cm-2
        -   name: reference
            value: 1.0
            unit: TeV
    temporal:
        type: GeneralizedGaussianTemporalModel
        parameters:
        -   name: t_ref
            value: 51544.14
            unit: d
        -   name: t_rise
            value: 0.01
            unit: d
        -   name: t_decay
            value: 0.03
            unit: d
        -   name: eta
            value: 0.7
        scale: utc
-   name: sine
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.2
        -   name: amplitude
            value: 2.0e-12
            unit: TeV-1 s-1 cm-2
        -   name: reference
            value: 1.0
            unit: TeV
    temporal:
        type: SineTemporalModel
        parameters:
        -   name: amp
            value: 0.5
        -   name: omega
            value: 20.0
            unit: rad d-1
        -   name: t_ref
            value: 51544.1
            unit: d
        scale: utc
-   name: pl
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.2
        -   name: amplitude
            value: 2.0e-12
            unit: TeV-1 s-1 cm-2
        -   name: reference
            value: 1.0
            unit: TeV
    temporal:
        type: PowerLawTemporalModel
        parameters:
        -   name: alpha
            value: -1.5
        -   name: t_ref
            value: 51544.0
            unit: d
        -   name: t0
            value: 0.1
            unit: d
        scale: utc
-   name: lin
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.2
        -   name: amplitude
            value: 2.0e-12
            unit: TeV-1 s-1 cm-2
        -   name: reference
            value: 1.0
            unit: TeV
    temporal:
        type: LinearTemporalModel
        parameters:
        -   name: alpha
            value: 1.2
        -   name: beta
            value: 0.8
            unit: d-1
        -   name: t_ref
            value: 51544.0
            unit: d
        scale: utc
-   name: const
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.2
        -   name: amplitude
            value: 2.0e-12
            unit: TeV-1 s-1 cm-2
        -   name: reference
            value: 1.0
            unit: TeV
    temporal:
        type: ConstantTemporalModel
        parameters: []
        scale: utc
-   name: lc
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.2
        -   name: amplitude
            value: 2.0e-12
            unit: TeV-1 s-1 cm-2
        -   name: reference
            value: 1.0
            unit: TeV
    temporal:
        type: LightCurveTemplateTemporalModel
        parameters:
        -   name: t_ref
            value: 51544.5
            unit: d
        scale: utc
        filename: lc.fits
        format: table
        unit: ''
-   name: phase
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.2
        -   name: amplitude
            value: 2.0e-12
            unit: TeV-1 s-1 cm-2
        -   name: reference
            value: 1.0
            unit: TeV
    temporal:
        type: TemplatePhaseCurveTemporalModel
        parameters:
        -   name: t_ref
            value: 55555.5
            unit: d
        -   name: phi_ref
            value: 0.0
        -   name: f0
            value: 30.0
            unit: s-1
        -   name: f1
            value: 0.0
            unit: s-2
        -   name: f2
            value: 0.0
            unit: s-3
        scale: utc
        filename: phase.fits
        normalize: true
metadata:
    creator: Gammapy 2.1
    date: '2026-11-25T12:11:37.595983'
    origin: null
"""


def test_gammapy_yaml_round_trip(tmp_path):
    data = yaml.safe_load(GAMMAPY_YAML)
    data.pop("metadata")
    models = Models.from_dict(data)
    assert models.to_dict() == data
    assert models["flare"].temporal.t_ref is models["burst"].temporal.t_ref
    assert isinstance(models["burst"].temporal, GaussianTemporalModel)
    assert models["burst"].temporal.scale == "tt"
    assert models["flare"].temporal.t0.quantity == 3 * u.h
    assert isinstance(models["lc"].temporal, LightCurveTemplateTemporalModel)  # no file
    assert isinstance(models["phase"].temporal, OpaqueTemporalModel)
    assert models.parameters["phase.f0"].value == 30.0
    path = tmp_path / "m.yaml"
    models.write(path)
    again = yaml.safe_load(path.read_text())
    again.pop("metadata")
    assert again == data
    copy = models["sine"].temporal.copy()
    assert copy.to_dict() == models["sine"].temporal.to_dict()
    # without a scale key (older files): utc, written back as gammapy does
    bare = SkyModel.from_dict({"name": "a", "type": "SkyModel", "spectral": {
        "type": "PowerLawSpectralModel"}, "temporal": {"type": "gauss"}})
    assert bare.temporal.to_dict()["scale"] == "utc"
    assert bare.temporal.t_ref.value == 51544.0 and not bare.temporal.t_ref.frozen


# ---- (5) errors ---------------------------------------------------------------------------
def test_no_gti_names_the_model():
    ds = xdl4.examples.spectrum_dataset().drop_vars(["gti_start", "gti_stop"])
    src = SkyModel(PowerLaw(), temporal=ExpDecayTemporalModel(), name="flare")
    with pytest.raises(ValueError, match="model 'flare': temporal model ExpDecayTemporalModel "
                                         "needs the dataset's good-time intervals"):
        ds.dl4.npred([src])


def test_template_models_without_file_or_phase_curve_raise(data_dir):
    data = yaml.safe_load(GAMMAPY_YAML)
    models = Models.from_dict({"components": data["components"][-2:]})
    ds = xdl4.open_dataset(data_dir / "gammapy" / "spectrum_dataset.fits.gz")
    with pytest.raises(FileNotFoundError, match="model 'lc': temporal model "
                                                "LightCurveTemplateTemporalModel: light-curve "
                                                "file 'lc.fits' not found"):
        ds.dl4.npred(Models([models["lc"]]))
    with pytest.raises(NotImplementedError, match="model 'phase': temporal model "
                                                  "TemplatePhaseCurveTemporalModel: read/write"):
        ds.dl4.npred(Models([models["phase"]]))
    with pytest.raises(NotImplementedError, match="read/write only"):
        models["phase"].temporal.evaluate(TIMES)
    lc = LightCurveTemplateTemporalModel(format="map", filename="lc_map.fits")
    with pytest.raises(NotImplementedError, match="format 'map' is read and written back"):
        lc.evaluate(TIMES)


# gammapy 2.1: Table({"TIME": [0, 2, 5, 10, 30, 80] * u.h, "NORM": LC_NORM}, meta={"MJDREFI":
# 51544, "MJDREFF": 0.1, "TIMESYS": "tt"}).write("lc.fits"); lc =
# LightCurveTemplateTemporalModel.read("lc.fits"); lc.t_ref.value;
# lc.integral(gti.time_start[j:j+1], gti.time_stop[j:j+1]) for each GTI j of (1); lc(TIMES);
# spectrum dataset npred (point source, FoV background) with temporal_model=lc; Models.write.
LC_NORM = [0.2, 1.0, 0.6, 0.4, 0.1, 0.05]
LC_T_REF = 51544.09925712963
LC_INTEGRALS = [0.653668237880225, 0.6806623690569481, 0.059981991023052815]
LC_VALUES = [0.39200000003911556, 0.5840000000083819, 0.7760000000474975, 0.6266666666526969,
             0.05919999999989525]
LC_NPRED = [1141.2235213460665, 959.8233285428478, 836.0931142248654, 617.460707032206,
            367.0292114977034, 408.72845674243996, 274.4664021420884, 114.14486570982397,
            82.07150001702686, 41.509190603095846, 15.152577245290075, 10.179583147343932]
LC_YAML = """
components:
-   name: point
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.3
        -   name: amplitude
            value: 4.0e-11
            unit: TeV-1 s-1 cm-2
        -   name: reference
            value: 1.0
            unit: TeV
    spatial:
        type: PointSpatialModel
        frame: icrs
        parameters:
        -   name: lon_0
            value: 83.63
            unit: deg
        -   name: lat_0
            value: 22.01
            unit: deg
    temporal:
        type: LightCurveTemplateTemporalModel
        parameters:
        -   name: t_ref
            value: 51544.09925712963
            unit: d
        scale: utc
        filename: lc.fits
        format: table
        unit: ''
"""


def test_light_curve_template_matches_gammapy(data_dir, tmp_path):
    from astropy.table import Table

    Table({"TIME": [0.0, 2.0, 5.0, 10.0, 30.0, 80.0] * u.h, "NORM": LC_NORM},
          meta={"MJDREFI": 51544, "MJDREFF": 0.1, "TIMESYS": "tt"}).write(tmp_path / "lc.fits")
    data = yaml.safe_load(LC_YAML)
    data["components"][0]["temporal"]["parameters"][0]["value"] = 51544.0  # the file's wins
    models = Models.from_dict(data, base_path=tmp_path)  # lc.fits next to the YAML
    lc = models["point"].temporal
    assert lc.t_ref.value == LC_T_REF and lc.scale == "utc"
    assert models.to_dict() == yaml.safe_load(LC_YAML)
    integrals = [lc.integral(GTI_START[j:j + 1], GTI_STOP[j:j + 1])[0] for j in range(3)]
    np.testing.assert_allclose(integrals, LC_INTEGRALS, rtol=1e-12)
    np.testing.assert_allclose(lc.evaluate(TIMES), LC_VALUES, rtol=1e-12)
    ds = xdl4.open_dataset(data_dir / "gammapy" / "spectrum_dataset.fits.gz")
    models.append(FoVBackgroundModel(ds.dl4.name))
    np.testing.assert_allclose(ds.dl4.npred(models).values.ravel(), LC_NPRED, rtol=1e-8)
    copy = lc.copy()
    assert copy.to_dict() == lc.to_dict() and copy.evaluate(TIMES)[0] == lc.evaluate(TIMES)[0]


@pytest.mark.parametrize("temporal, msg", [
    ({"type": "NoSuchTemporalModel"}, "unknown temporal model type 'NoSuchTemporalModel'"),
    ({"type": "gauss", "scale": "martian"}, "time scale 'martian' is not one of"),
    ({"type": "gauss", "filename": "x.fits"}, r"unknown key\(s\) \['filename'\]"),
    ({"type": "gauss", "parameters": [{"name": "t0", "value": 1}]}, "unknown parameter 't0'"),
    ({"type": "gauss", "parameters": [{"name": "sigma", "value": 1, "unit": "deg"}]},
     "not convertible"),
])
def test_bad_temporal_yaml(temporal, msg):
    comp = {"name": "a", "type": "SkyModel", "spectral": {"type": "PowerLawSpectralModel"},
            "temporal": temporal}
    with pytest.raises(ValueError, match=msg):
        Models.from_dict({"components": [comp]})


def test_temporal_must_be_a_temporal_model():
    with pytest.raises(TypeError, match="temporal must be a TemporalModel"):
        SkyModel(PowerLaw(), temporal=PowerLaw())
    m = GaussianTemporalModel()
    with pytest.raises(ValueError, match="time scale 'UTC' is not one of"):
        m.scale = "UTC"
    assert "temporal=GaussianTemporalModel(t_ref=51544, sigma=1, scale='utc')" in repr(
        SkyModel(PowerLaw(), temporal=m, name="a"))


def test_gti_without_column_unit_takes_timeunit():
    """A GTI table whose columns have no unit is in TIMEUNIT (gammapy): the GTI times and
    the ontime / livetime read the same unit."""
    from xdl4.gti import livetime, ontime

    attrs = {"units": "s", "fits_tunit": "", "timeunit": "d", "mjdrefi": 55000}  # as read
    ds = xr.Dataset({"gti_start": ("gti", [0.0, 1.0], dict(attrs)),
                     "gti_stop": ("gti", [0.25, 1.25], dict(attrs))})
    gti = good_times(ds)
    np.testing.assert_allclose((gti.stop - gti.start).to_value("s"), [21600.0, 21600.0])
    assert ontime(ds) == pytest.approx(43200.0, rel=1e-12) == livetime(ds)
    no_timeunit = ds.copy()
    for v in no_timeunit.data_vars.values():
        v.attrs = {"mjdrefi": 55000}  # neither: seconds
    assert ontime(no_timeunit) == pytest.approx(0.5) and \
        (good_times(no_timeunit).stop - good_times(no_timeunit).start).to_value("s").sum() \
        == pytest.approx(0.5)


def test_empty_run_and_helpers(data_dir):
    runs = _runs(data_dir, GTIS)
    gti = good_times(runs)
    assert gti.n_runs == 3 and gti.run.tolist() == [0, 1, 1, 2]
    assert gti.start.scale == "utc"
    assert temporal_norm(ConstantTemporalModel(), None) == 1.0
    empty = runs.assign(gti_start=runs["gti_start"].where(runs["obs"] != "r1"))
    with pytest.raises(ValueError, match=r"run\(s\) \[1\] have no GTI"):
        temporal_norm(ExpDecayTemporalModel(), good_times(empty), "x")


def test_flux_points_scale_by_the_temporal_norm_of_their_gtis(data_dir):
    """gammapy 2.1, FluxPoints.read(crab_hess_fp.fits) (its GTI: 2004-12-04 to 12-08 TT),
    LogParabola (2.4, 0.1, 3.5e-11, 1 TeV): FluxPointsDataset.stat_sum() 1.7936574158327345
    alone; 1.8546901750623241 with ExpDecayTemporalModel(t0=1000 d, t_ref=53343) (norm
    0.9970781646144101); with fp.gti = GTI.create([0, 7200] s, [3600, 10800] s,
    reference_time=MJD 55197 TT) and ExpDecay(t0=0.2 d, t_ref=55197): 10.784592844572984
    (norm 0.7517767206206705)."""
    from xdl4.models import LogParabola, Models, SkyModel

    ds = xdl4.open_dataset(data_dir / "estimators" / "crab_hess_fp" / "crab_hess_fp.fits")

    def stat(data, temporal=None):
        return data.dl4.stat_sum(Models([SkyModel(LogParabola(
            alpha=2.4, beta=0.1, amplitude=3.5e-11, reference=1.0), name="crab",
            temporal=temporal)]))

    assert stat(ds) == pytest.approx(1.7936574158327345, rel=1e-10)
    slow = ExpDecayTemporalModel(t0=1000.0, t_ref=53343.0)
    assert temporal_norm(slow, good_times(ds)) == pytest.approx(0.9970781646144101, rel=1e-12)
    assert stat(ds, slow) == pytest.approx(1.8546901750623241, rel=1e-10)
    attrs = {"units": "s", "mjdrefi": 55197, "mjdreff": 0.0, "timesys": "tt"}
    timed = ds.drop_dims("gti").assign(gti_start=("gti", [0.0, 7200.0], attrs),
                                       gti_stop=("gti", [3600.0, 10800.0], attrs))
    fast = ExpDecayTemporalModel(t0=0.2, t_ref=55197.0)
    assert temporal_norm(fast, good_times(timed)) == pytest.approx(0.7517767206206705,
                                                                   rel=1e-12)
    assert stat(timed, fast) == pytest.approx(10.784592844572984, rel=1e-10)
    assert stat(ds.drop_dims("gti"), fast) == pytest.approx(1.7936574158327345, rel=1e-10)


def test_light_curve_table_without_its_columns_or_reference_is_a_model_error(tmp_path):
    from astropy.table import Table

    path = tmp_path / "lc_bad.fits"
    Table({"TIME": [0.0, 1.0], "NORM": [1.0, 2.0]}).write(path)  # no MJDREFI/F
    with pytest.raises(xdl4.ModelError, match="light curve lc_bad.fits: not a light-curve "
                                              "table.*MJDREFI"):
        LightCurveTemplateTemporalModel.read(path)
