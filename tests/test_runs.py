"""Runs that keep their names: labels along ``obs``, run tables against gammapy 2.1's
``Datasets.info_table``, per-run background models in joint fits, stack-by-group then
joint fit, and ordinary xarray code on many runs."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from astropy import units as u

import xdl4
from xdl4.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel

REFERENCE = Path(__file__).parent / "reference" / "info_table_gammapy.json"


@pytest.fixture(scope="module")
def runs(data_dir):
    return xdl4.open_dataset(sorted((data_dir / "gammapy" / "stack").glob("run*.fits.gz")))


@pytest.fixture(scope="module")
def onoff_runs(data_dir):
    return xdl4.open_dataset([data_dir / "gammapy" / "stack" / f"son{i}.fits" for i in range(3)])


@pytest.fixture(scope="module")
def gammapy_tables():
    return json.loads(REFERENCE.read_text())


def _source():
    return SkyModel(PowerLaw(index=2.3, amplitude=3e-11),
                    PointSpatialModel(lon_0=83.63, lat_0=22.01), name="src")


# -- names --------------------------------------------------------------------------------

def test_runs_are_labelled_and_selected_by_name(runs, data_dir):
    assert runs.obs.values.tolist() == ["run0", "run1", "run2"]
    one = runs.sel(obs="run1")
    assert one.dl4.name == "run1" and runs.isel(obs=2).dl4.name == "run2"
    # plain xarray concatenation of runs read one by one labels them too
    files = [data_dir / "gammapy" / "stack" / f"run{i}.fits.gz" for i in range(3)]
    plain = xr.concat([xdl4.open_dataset(f) for f in files], "obs", coords="different",
                      compat="equals")
    assert plain.obs.values.tolist() == ["run0", "run1", "run2"]
    with xr.open_mfdataset(files, engine="gadf", combine="nested", concat_dim="obs",
                           coords="different", compat="equals") as mf:
        assert mf.obs.values.tolist() == ["run0", "run1", "run2"]
        assert float(mf.counts.sum()) == float(runs.counts.sum())


def test_info_is_one_row_per_run(runs):
    table = runs.dl4.info()
    assert table.obs.values.tolist() == ["run0", "run1", "run2"]
    for i, name in enumerate(table.obs.values):
        single = runs.sel(obs=name).dl4.info()
        assert single["name"] == name
        assert table.counts.values[i] == single["counts"]


def test_renamed_run_keeps_its_label_consistent(examples):
    ds = examples["spectrum"].dl4.renamed("crab-run")
    assert ds.dl4.name == "crab-run" and ds.obs.item() == "crab-run"
    ds.dl4.name = "other"  # in place
    assert ds.dl4.name == ds.obs.item() == "other" and "name" not in ds.attrs
    repaired = ds.where(ds.counts >= 0)  # masks become float: the accessor repairs a copy
    repaired.dl4.name = "third"
    assert repaired.obs.item() == "third"  # the user's dataset is renamed, not the copy only


# -- run tables against gammapy -------------------------------------------------------------

def _compare(table, rows, rtol, float32=(), folded=()):
    units, rows = rows[0], rows[1:]
    assert table.sizes["obs"] == len(rows)
    for i, row in enumerate(rows):
        for field, expected in row.items():
            if field == "name":
                continue
            got = table[field].values[i]
            if isinstance(expected, str):
                assert got == expected, field
                continue
            if units[field]:
                assert table[field].attrs["units"].replace(" ", "") in (
                    units[field].replace(" ", ""), units[field].replace("1 / s", "s-1")), field
            tol = 3e-7 if field in float32 else 1e-7 if field in folded else rtol
            if math.isnan(expected):
                assert math.isnan(got), (field, i)
            else:
                np.testing.assert_allclose(got, expected, rtol=tol, err_msg=f"{field} [{i}]")


def test_info_table_matches_gammapy(runs, onoff_runs, gammapy_tables):
    _compare(runs.dl4.info_table(), gammapy_tables["maps"], 1e-9)
    _compare(onoff_runs.dl4.info_table(), gammapy_tables["onoff"], 1e-9)
    frame = runs.dl4.info_table().to_dataframe()
    assert list(frame.index) == ["run0", "run1", "run2"] and "sqrt_ts" in frame.columns


def test_info_table_with_models_matches_gammapy(runs, data_dir, gammapy_tables):
    models = xdl4.read_models(data_dir / "gammapy" / "map_dataset_models.yaml")
    sources = Models([m for m in models if not m.name.endswith("-bkg")])
    # float64 (default): the forward-folded numbers differ from gammapy's by its float32
    # PSF kernels and FFT (measured 2.5e-8 npred, 3.7e-8 npred_signal, 6.1e-8 stat_sum):
    # held to 1e-7; the rest to 1e-9
    _compare(runs.dl4.info_table(models=sources), gammapy_tables["maps_models"], 1e-9,
             folded={"npred", "npred_signal", "stat_sum"})
    # dtype="float32" folds as gammapy does (float32 kernels and FFT on its cutouts):
    # every field to 1e-12 (measured < 1e-13)
    table = runs.dl4.info_table(models=sources, dtype="float32")
    _compare(table, gammapy_tables["maps_models"], 1e-12)
    assert table.attrs["dtype"] == "float32"
    # and without models the per-run rows are gammapy's as they are (no float32 step)
    _compare(runs.dl4.info_table(dtype="float32"), gammapy_tables["maps"], 1e-12)


def test_info_table_cumulative_matches_gammapy(runs, onoff_runs, gammapy_tables):
    """gammapy stacks in float32: its stacked sums carry float32 rounding (< 3e-7); xdl4
    stacks in float64 by default (docs/stacking.md). Counts, livetime, bins are exact; the
    test below replays the float32 to 1e-12."""
    rounded = {"excess", "sqrt_ts", "background", "npred", "npred_background",
               "exposure_min", "exposure_max", "background_rate", "excess_rate", "stat_sum",
               "alpha", "acceptance_off"}
    _compare(runs.dl4.info_table(cumulative=True), gammapy_tables["maps_cumulative"], 1e-9,
             rounded)
    _compare(onoff_runs.dl4.info_table(cumulative=True),
             gammapy_tables["onoff_cumulative"], 1e-9, rounded)
    table = runs.dl4.info_table(cumulative=True)
    assert np.all(np.diff(table.livetime.values) > 0)  # significance vs livetime


def test_info_table_cumulative_float32_matches_gammapy_to_the_last_digit(
        runs, onoff_runs, gammapy_tables):
    """``dtype="float32"`` replays gammapy's float32 working maps and sums: every field of
    its cumulative tables to 1e-12 (measured: 2.2e-16), exposure in gammapy's m2 s."""
    for data, case in ((runs, "maps_cumulative"), (onoff_runs, "onoff_cumulative")):
        table = data.dl4.info_table(cumulative=True, dtype="float32")
        _compare(table, gammapy_tables[case], 1e-12)
        assert table.attrs["dtype"] == "float32"
        float64 = data.dl4.info_table(cumulative=True)
        for field in ("counts", "livetime", "ontime", "n_bins", "n_fit_bins"):  # exact in both
            np.testing.assert_array_equal(table[field], float64[field])
    # the first cumulative row is gammapy's float32 to_masked(), not its float64 per-run row
    assert runs.dl4.info_table(cumulative=True, dtype=np.float32).background.values[0] == \
        gammapy_tables["maps_cumulative"][1]["background"]


def test_info_table_without_background_as_gammapy(runs, gammapy_tables):
    """No background variable: per run no excess, significance or npred (NaN, not counts
    over a zero background), as gammapy; gammapy's cumulative rows start from zero maps
    (background 0), which the float32 replay gives and float64 reports as NaN."""
    bare = runs.isel(obs=[0, 1]).drop_vars("background")
    _compare(bare.dl4.info_table(), gammapy_tables["maps_no_background"], 1e-9)
    _compare(bare.dl4.info_table(cumulative=True, dtype="float32"),
             gammapy_tables["maps_no_background_cumulative"], 1e-12)
    float64 = bare.dl4.info_table(cumulative=True)
    assert np.isnan(float64.background).all() and np.isnan(float64.sqrt_ts).all()


def test_info_table_float32_matches_gammapy_on_every_counts_kind(data_dir, gammapy_tables):
    """map on/off and cash spectra too (each shared file stacked onto a copy of itself):
    every field to 1e-12. A copy doubles every float32 map exactly, so the second row
    checks the on/off step formulas more than float32 rounding (the three distinct runs
    of the tests above do that). gammapy reads no livetime from ``spectrum_dataset.fits.gz``
    (NaN, and NaN rates); xdl4 takes the sum of the GTIs, whose union is one run's for two
    copies of it: those fields are compared with xdl4's own numbers."""
    no_livetime = {"livetime", "counts_rate", "background_rate", "excess_rate"}
    for key, name in (("map_onoff_twice", "map_dataset_onoff.fits.gz"),
                      ("spectrum_twice", "spectrum_dataset.fits.gz")):
        ds = xdl4.open_dataset(data_dir / "gammapy" / name)
        pair = [ds.dl4.renamed("a"), ds.dl4.renamed("b")]
        rows = gammapy_tables[f"{key}_cumulative"]
        table = xdl4.runs.info_table(pair, cumulative=True, dtype="float32")
        if key == "spectrum_twice":
            assert all(math.isnan(row["livetime"]) for row in rows[1:])
            rows = [{k: v for k, v in row.items() if k not in no_livetime} for row in rows]
            np.testing.assert_allclose(table.livetime, 3600.0, rtol=1e-12)  # the GTI union
            for field in ("counts", "background", "excess"):
                np.testing.assert_allclose(table[f"{field}_rate"],
                                           table[field] / table.livetime, rtol=1e-15)
        _compare(table, rows, 1e-12)


def test_info_table_float32_ignores_dimension_order_and_units(runs):
    """The float32 replay reads every array in canonical order and converts exposure to
    gammapy's m2 s first: a transposed run with exposure in cm2 s gives the same table."""
    table = runs.dl4.info_table(cumulative=True, dtype="float32")
    other = runs.transpose(*reversed(list(runs.dims)))
    other = other.assign(exposure=(other.exposure * 1e4).assign_attrs(
        other.exposure.attrs, units="cm2 s"))
    again = other.dl4.info_table(cumulative=True, dtype="float32")
    assert again.exposure_min.attrs["units"] == "m2 s"
    for field in table.data_vars:  # bit for bit: one float32 ulp would be 6e-8 here
        np.testing.assert_array_equal(again[field], table[field], err_msg=field)


def test_info_table_float32_options(runs):
    with pytest.raises(xdl4.ArgumentError, match="cumulative table has no model information"):
        runs.dl4.info_table(cumulative=True, models=[_source()], dtype="float32")
    for bad in ("float16", "nonsense", None, int):
        with pytest.raises(xdl4.ArgumentError, match="dtype must be 'float64' or 'float32'"):
            runs.dl4.info_table(cumulative=True, dtype=bad)
    assert runs.dl4.info_table(cumulative=True, dtype=float).attrs["dtype"] == "float64"


def test_cumulative_first_row_is_the_first_run(runs, onoff_runs, gammapy_tables):
    """The first cumulative row is the first run alone: xdl4 gives the same numbers both
    ways (float64 throughout). gammapy's two rows differ by 1.2e-8 for the same data: its
    cumulative rows are float32 sums of float32 working maps (984.372802734375 is a float32),
    its per-run rows float64 sums; so 1e-9 against its cumulative table is below gammapy's
    own precision, and the test above holds those fields to float32 rounding."""
    for data, case in ((runs, "maps"), (onoff_runs, "onoff")):
        single, cumulative = data.dl4.info_table(), data.dl4.info_table(cumulative=True)
        for field in ("counts", "background", "excess", "sqrt_ts", "npred_background",
                      "exposure_min", "exposure_max", "livetime", "n_fit_bins"):
            assert cumulative[field].values[0] == single[field].values[0], (case, field)
    per_run, stacked = gammapy_tables["maps"][1], gammapy_tables["maps_cumulative"][1]
    assert stacked["background"] == np.float32(stacked["background"])
    assert 1e-8 < abs(stacked["background"] / per_run["background"] - 1) < 3e-7


def test_info_table_of_lists_and_trees(runs):
    as_list = [runs.isel(obs=i) for i in range(3)]
    tree = xr.DataTree.from_dict({f"/{n}": runs.sel(obs=n) for n in runs.obs.values})
    for data in (as_list, tree):
        xr.testing.assert_allclose(xdl4.runs.info_table(data).counts,
                                   runs.dl4.info_table().counts)


# -- helpers users reach for ---------------------------------------------------------------

def test_energy_ranges_per_run(runs):
    safe = runs.dl4.energy_range_safe
    assert safe.energy_min.dims == ("obs",)
    for i in range(3):
        run = runs.isel(obs=i)
        e = run.dl4.energy_edges.value
        rows = np.flatnonzero(run.mask_safe.any(("lat", "lon")).values)
        assert safe.energy_min.values[i] == pytest.approx(e[rows[0]])
        assert safe.energy_max.values[i] == pytest.approx(e[rows[-1] + 1])
    full = runs.dl4.energy_range()
    assert full.energy_min.dims == ("obs",) and list(full.obs.values) == list(runs.obs.values)
    assert set(full.coords) == set(safe.coords)  # the same shape of answer for every mask
    with pytest.raises(xdl4.ArgumentError, match="mask must be None, 'safe' or 'fit'"):
        runs.dl4.energy_range("all")
    np.testing.assert_allclose(full.energy_min, 0.1)
    np.testing.assert_allclose(full.energy_max, 100.0)
    assert runs.dl4.energy_range_fit.energy_min.dims == ("obs",)


def test_select_time(runs):
    from xdl4.gti import good_times

    start = good_times(runs).start.mjd
    picked = runs.dl4.select_time(start[1] - 1e-6, start[1] + 1e-6)
    assert picked.obs.values.tolist() == ["run1"]
    assert runs.dl4.select_time().sizes["obs"] == 3
    t = good_times(runs).start[1]  # the same as ISO strings (UTC, as astropy reads them)
    window = [(t - d).utc.to_value("isot", subfmt="date_hms") for d in (1e-3 * u.s, -1 * u.s)]
    assert runs.dl4.select_time(*window).obs.values.tolist() == ["run1"]


def test_excess_background_alpha(onoff_runs, examples):
    run = onoff_runs.isel(obs=0)
    alpha = run.acceptance / run.acceptance_off
    xr.testing.assert_allclose(run.dl4.alpha, alpha.where(np.isfinite(alpha), 0).rename("alpha"))
    xr.testing.assert_allclose(run.dl4.background, (run.dl4.alpha * run.counts_off).rename(
        "background"))
    xr.testing.assert_allclose(run.dl4.excess, (run.counts - run.dl4.background).rename(
        "excess"))
    ds = examples["map"]
    xr.testing.assert_allclose(ds.dl4.excess, (ds.counts - ds.background).rename("excess"))
    with pytest.raises(xdl4.KindError, match="alpha is not defined for map"):
        ds.dl4.alpha  # noqa: B018


# -- per-run background models and joint fits ------------------------------------------------

def test_per_run_background_models_bind_to_their_run(runs):
    bkg = Models([_source(), FoVBackgroundModel("run1")])
    lik = xdl4.Likelihood(runs, bkg)
    assert [t.label for t in lik.terms] == ["run0", "run1", "run2"]
    bkg["run1-bkg"].parameters["norm"].value = 1.2
    expected = sum(runs.sel(obs=n).dl4.stat_sum(bkg) for n in runs.obs.values)
    assert lik.stat() == pytest.approx(expected, rel=1e-12)
    plain = Models([_source()])
    for name in ("run0", "run2"):  # the other runs: no background model applies
        other = runs.sel(obs=name)
        assert other.dl4.stat_sum(bkg) == other.dl4.stat_sum(plain)
    one = runs.sel(obs="run1")
    assert one.dl4.stat_sum(bkg) != pytest.approx(one.dl4.stat_sum(plain))


def test_joint_fit_with_a_background_model_per_run(runs):
    """Each run's FoV background model binds to that run only, in a joint fit of the runs
    along obs and of the same runs selected one by one (the same fit)."""
    models = Models([_source(), *(FoVBackgroundModel(n) for n in runs.obs.values)])
    r1 = xdl4.fit(runs, models)
    assert r1.success
    norms = [models[f"{n}-bkg"].parameters["norm"].value for n in runs.obs.values]
    assert len(set(np.round(norms, 6))) == 3  # three runs, three backgrounds
    # the joint statistic is the sum of each run's with its own background model
    per_run = sum(runs.sel(obs=n).dl4.stat_sum(models, irf_interpolation="bilinear")
                  for n in runs.obs.values)  # the fit's default interpolation
    assert r1.total_stat == pytest.approx(per_run, rel=1e-12)
    again = Models([_source(), *(FoVBackgroundModel(n) for n in runs.obs.values)])
    r2 = xdl4.fit([runs.sel(obs=n) for n in runs.obs.values], again)
    np.testing.assert_allclose(r2.parameters.value.values, r1.parameters.value.values,
                               rtol=1e-6)


def test_stack_by_group_then_joint_fit_equals_by_hand(runs):
    grouped = runs.assign_coords(wobble=("obs", ["A", "A", "B"]))
    stacks = grouped.dl4.stack(groupby="wobble")
    assert stacks.obs.values.tolist() == ["A", "B"] and stacks.wobble.values.tolist() == [
        "A", "B"]
    by_hand = [runs.isel(obs=[0, 1]).dl4.stack(name="A"),
               runs.isel(obs=2).dl4.to_masked(name="B")]
    for i in range(2):
        xr.testing.assert_allclose(stacks.isel(obs=i).counts.drop_vars(["obs", "wobble"]),
                                   by_hand[i].counts)
    m1, m2 = Models([_source()]), Models([_source()])
    r1 = xdl4.fit(stacks, m1)
    r2 = xdl4.fit(by_hand, m2)
    assert r1.success and r2.success
    np.testing.assert_allclose(r1.parameters.value.values, r2.parameters.value.values,
                               rtol=1e-5)
    assert r1.total_stat == pytest.approx(r2.total_stat, rel=1e-9)
    # the plain xarray idiom works too: one stack per group along the group dimension
    plain = grouped.groupby("wobble").map(lambda g: g.dl4.stack())
    assert plain.sizes["wobble"] == 2
    np.testing.assert_allclose(plain.counts.sum(("energy", "lat", "lon")).values,
                               stacks.counts.sum(("energy", "lat", "lon")).values)


def test_to_region_of_many_runs(runs):
    spectra = runs.dl4.to_region("icrs;circle(83.63,22.01,0.2)")
    assert spectra.dl4.kind == "spectrum" and spectra.obs.values.tolist() == [
        "run0", "run1", "run2"]
    one = runs.sel(obs="run2").dl4.to_region("icrs;circle(83.63,22.01,0.2)")
    xr.testing.assert_allclose(spectra.sel(obs="run2").counts, one.counts)


# -- ordinary xarray code on many runs -----------------------------------------------------

OPERATIONS = {
    "assign_coords(xr.where)": lambda r: r.assign_coords(
        flag=xr.where(r.livetime > 2000, "long", "short")),
    "where": lambda r: r.where(r.livetime > 0),
    "sel": lambda r: r.sel(obs=["run0", "run2"]),
    "isel": lambda r: r.isel(obs=slice(0, 2)),
    "sortby": lambda r: r.sortby("livetime", ascending=False),
    "concat": lambda r: xr.concat([r.isel(obs=[0]), r.isel(obs=[1, 2])], "obs"),
    "merge": lambda r: xr.merge([r, r.livetime.rename("lt2")], combine_attrs="override"),
    "groupby.map": lambda r: r.groupby("obs").map(lambda g: g),
    "pipe": lambda r: r.pipe(lambda d: d.assign_attrs(note="x")),
    "copy": lambda r: r.copy(deep=True),
}


#: the runs each operation keeps (the others keep all three)
KEPT = {"sel": ["run0", "run2"], "isel": ["run0", "run1"]}


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_common_xarray_operations_keep_runs_usable(runs, op):
    """After common xarray operations the runs validate, stack and fit as the runs they
    keep: the same stacked counts and the same statistic."""
    out = OPERATIONS[op](runs)
    kept = runs.sel(obs=KEPT.get(op, ["run0", "run1", "run2"]))
    out.dl4.validate()
    np.testing.assert_array_equal(out.dl4.stack().counts.values,
                                  kept.dl4.stack().counts.values)
    models = Models([_source()])
    assert out.dl4.stat_sum(models) == pytest.approx(kept.dl4.stat_sum(models), rel=1e-12)


def test_runs_along_obs_share_kind_axes_and_grid(data_dir, tmp_path):
    """Combining runs refuses what an outer join would pad with NaN: another kind, energy
    axis or sky grid (GTI tables of different lengths are fine); an empty pattern or list
    is a typed error."""
    from xdl4.validation import concat_runs

    ds = xdl4.open_dataset(data_dir / "gammapy" / "map_dataset.fits.gz")
    others = {"another kind": xdl4.open_dataset(data_dir / "gammapy" / "spectrum_onoff" /
                                                "pha_sonoff.fits"),
              "another 'energy' axis": ds.dl4.resample_energy(ds.dl4.energy_edges[::2]),
              "another 'lon' axis": ds.isel(lon=slice(5, 30))}
    for problem, other in others.items():
        match = "is a spectrum_onoff dataset, not map" if problem == "another kind" else problem
        with pytest.raises(xdl4.StackError, match=match):
            concat_runs([ds, other])
    with pytest.raises(xdl4.DL4FileNotFoundError, match="no file matches"):
        xdl4.open_dataset(tmp_path / "run*.fits")
    with pytest.raises(xdl4.ArgumentError, match="no runs given"):
        xdl4.open_dataset([])
    two_gtis = ds.drop_vars(["gti_start", "gti_stop", "gti"]).assign(
        gti_start=("gti", [0.0, 10.0], ds.gti_start.attrs),
        gti_stop=("gti", [5.0, 20.0], ds.gti_stop.attrs)).assign_coords(gti=[0, 1])
    assert concat_runs([ds, two_gtis]).sizes["gti"] == 2


def test_info_fields_are_plain_python_and_energies_take_strings(examples):
    """info() gives plain floats / ints / strings (no numpy scalars in a printed dict);
    energy edges may be given as strings with units, as elsewhere."""
    for ds in examples.values():
        if "counts" in ds:
            assert all(type(v) in (float, int, str) for v in ds.dl4.info().values())
    spec = examples["spectrum"]
    merged = spec.dl4.resample_energy(["0.1 TeV", "1 TeV", "10000 GeV", "100 TeV"])
    np.testing.assert_allclose(merged.dl4.energy_edges.to_value("TeV"), [0.1, 1, 10, 100])


def test_a_stack_of_runs_is_named_as_stack_files_names_it(runs, tmp_path):
    assert runs.dl4.stack().dl4.name == "stacked"
    assert runs.assign_attrs(name="crab").dl4.stack().dl4.name == "crab"
    assert runs.dl4.stack(name="all").dl4.name == "all"
