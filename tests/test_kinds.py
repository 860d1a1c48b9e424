"""The kind registry: every accessor method on every kind either works or raises the typed
"not defined" error; a kind registered from outside the package works end to end; no kind
dispatch outside the kinds' modules."""

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xdl4
from xdl4.kinds import KindBehaviour
from xdl4.models import Models, PointSpatialModel, PowerLaw, SkyModel
from xdl4.schema import Kind

PACKAGE = Path(__file__).resolve().parents[1] / "xdl4"  # the sources, also when installed


@pytest.fixture(scope="module")
def examples():
    return xdl4.examples.all_kinds(seed=0)


def _models(ds):
    if "lat" in ds.dims:
        lon, lat = ds.dl4.grid.center
        return Models([SkyModel(PowerLaw(index=2.5, amplitude=3e-11),
                                PointSpatialModel(lon_0=lon, lat_0=lat), name="src")])
    return Models([SkyModel(PowerLaw(index=2.5, amplitude=3e-11), name="src")])


def _calls(ds, tmp_path):
    """(accessor method, kind operation or None, call) for every public accessor method."""
    models = _models(ds)
    region = "icrs;circle(83.63,22.01,0.3)"
    if "lat" in ds.dims:
        lon, lat = ds.dl4.grid.center
        region = f"icrs;circle({lon},{lat},0.3)"
    edges = ds.dl4.energy_edges[::2] if "energy_bounds" in ds.coords else None
    return [
        ("validate", None, lambda: ds.dl4.validate()),
        ("info", "info", lambda: ds.dl4.info(models)),
        ("npred", "npred", lambda: ds.dl4.npred(models)),
        ("npred_signal", "npred_signal", lambda: ds.dl4.npred_signal(models)),
        ("npred_background", "npred_background", lambda: ds.dl4.npred_background(models)),
        ("stat_array", "stat_array", lambda: ds.dl4.stat_array(models)),
        ("stat_sum", "stat_sum", lambda: ds.dl4.stat_sum(models)),
        ("fake", "fake", lambda: ds.dl4.fake(models, seed=1)),
        ("residuals", "residuals", lambda: ds.dl4.residuals(models)),
        ("stack", "stack", lambda: ds.dl4.stack(ds)),
        ("to_masked", "to_masked", lambda: ds.dl4.to_masked()),
        ("resample_energy", "resample_energy", lambda: ds.dl4.resample_energy(edges)),
        ("to_image", "to_image", lambda: ds.dl4.to_image()),
        ("downsample", "downsample", lambda: ds.dl4.downsample(2)),
        ("cutout", "cutout", lambda: ds.dl4.cutout((83.63, 22.01), 1.0)),
        ("pad", "pad", lambda: ds.dl4.pad(1)),
        ("to_region", "to_region", lambda: ds.dl4.to_region(region)),
        ("to_netcdf", None, lambda: ds.dl4.to_netcdf(tmp_path / "x.nc")),
        ("to_gadf", None, lambda: ds.dl4.to_gadf(tmp_path / "x.fits")),
        ("to_ogip", None, lambda: ds.dl4.to_ogip(tmp_path / "x_pha.fits")),
        ("info_table", None, lambda: ds.dl4.info_table()),
        ("excess_map", "excess_map", lambda: ds.dl4.excess_map(0.1)),
        ("ts_map", "ts_map", lambda: ds.dl4.ts_map()),
        ("sed", "sed", lambda: ds.dl4.sed("e2dnde")),
        ("renamed", None, lambda: ds.dl4.renamed("x")),
        ("energy_range", None, lambda: ds.dl4.energy_range()),
        ("energy_range_safe", None, lambda: ds.dl4.energy_range_safe),
        ("energy_range_fit", None, lambda: ds.dl4.energy_range_fit),
        ("select_time", None, lambda: ds.dl4.select_time(51544, 51545)),
        ("excess", None, lambda: ds.dl4.excess),
        ("background", None, lambda: ds.dl4.background),
        ("alpha", None, lambda: ds.dl4.alpha),
        ("kind", None, lambda: ds.dl4.kind),
        ("stat_type", None, lambda: ds.dl4.stat_type),
        ("energy_edges", None, lambda: ds.dl4.energy_edges),
    ]


def test_every_public_accessor_method_is_walked():
    public = {n for n in dir(xdl4.accessor.DL4Accessor) if not n.startswith("_")}
    walked = {n for n, _, _ in _calls(xdl4.examples.spectrum_dataset(), Path("."))}
    # properties that only describe (no kind dispatch) need no walk
    described = {"behaviour", "name", "energy_true_edges", "energy_mask", "grid",
                 "irf_grid", "region", "sky_coords", "plot"}  # plot: tests/test_plot.py
    assert public - described <= walked, public - described - walked


@pytest.mark.parametrize("kind", ["map", "map_onoff", "spectrum", "spectrum_onoff",
                                  "flux_points"])
def test_accessor_walk_works_or_raises_kind_error(kind, examples, tmp_path):
    ds = examples[kind]
    behaviour = xdl4.kinds.of(ds)
    outcomes = {}
    for name, operation, call in _calls(ds, tmp_path):
        try:
            call()
            outcomes[name] = "ok"
        except xdl4.KindError as err:
            assert "is not defined for" in str(err), (name, err)
            outcomes[name] = "undefined"
        except xdl4.FormatError as err:  # defined, but refused for these data
            assert (kind, name) == ("spectrum", "to_ogip"), err  # its background: no OGIP
            outcomes[name] = "refused"
        except (KeyError, AttributeError) as err:  # never from inside xarray
            pytest.fail(f"{kind}.{name}: {type(err).__name__}: {err}")
        if operation is not None:  # dispatch agrees with the registry
            assert (outcomes[name] == "ok") == behaviour.defines(operation), (kind, name)
    if kind == "flux_points":
        assert outcomes["npred"] == outcomes["stack"] == outcomes["to_image"] == "undefined"
        assert outcomes["stat_sum"] == "ok"
    elif kind.startswith("map"):
        assert outcomes["to_region"] == outcomes["downsample"] == "ok"
        assert outcomes["to_ogip"] == "undefined"
    else:
        assert outcomes["to_ogip"] in ("ok", "refused") and outcomes["downsample"] == "undefined"


def test_undefined_message(examples):
    with pytest.raises(xdl4.KindError, match="npred is not defined for flux_points datasets"):
        examples["flux_points"].dl4.npred(None)
    with pytest.raises(TypeError):  # KindError is also a TypeError
        examples["flux_points"].dl4.stack(examples["flux_points"])


def test_records_are_frozen_and_complete():
    for name, record in xdl4.KINDS.items():
        assert record.name == name and record.statistic in ("cash", "wstat", "chi2")
        assert set(record.required) <= set(xdl4.VARIABLES)
        assert set(record.optional) <= set(xdl4.VARIABLES)
        assert record.gammapy_class
        with pytest.raises(AttributeError):
            record.statistic = "x"
        assert xdl4.kinds.get(name).record is record


# -- a kind registered from outside the package ----------------------------------------------

def _toy_npred(ds, models):
    """A constant-rate toy: npred = rate x exposure summed over true energy."""
    rate = 1e-12 if models is None else float(models["rate"])
    return (ds["exposure"].sum("energy_true") * rate).rename("npred")


def _toy_stat_sum(ds, models):
    from xdl4.stats import cash

    return float(cash(ds["counts"].values, _toy_npred(ds, models).values).sum())


@pytest.fixture
def toy():
    record = Kind("toy_counts", "cash", "region", ("counts", "exposure"), ("mask_safe",),
                  gammapy_class="ToyDataset", doc="a test kind")
    behaviour = xdl4.kinds.register(record, {"npred": _toy_npred, "stat_sum": _toy_stat_sum,
                                             "info": lambda ds, models=None: {"n": 1}})
    yield behaviour
    xdl4.kinds.unregister("toy_counts")


def _toy_dataset(kind="toy_counts"):
    ds = xdl4.create("spectrum", [1, 10], counts=[5.0], exposure=[1e12])
    return ds.drop_vars([v for v in ds.data_vars if v not in ("counts", "exposure",
                                                              "mask_safe")]
                        ).assign_attrs(dl4_kind=kind)


def test_register_a_toy_kind(toy):
    assert isinstance(toy, KindBehaviour) and "toy_counts" in xdl4.KINDS
    ds = _toy_dataset()
    assert ds.dl4.kind == "toy_counts" and ds.dl4.stat_type == "cash"
    ds.dl4.validate()  # the generic rules of the variables it declares
    assert float(ds.dl4.npred({"rate": 2e-12}).sum()) == pytest.approx(2.0)
    assert ds.dl4.stat_sum({"rate": 5e-12}) == pytest.approx(float(
        xdl4.stats.cash(5.0, 5.0)))
    assert ds.dl4.info() == {"n": 1}
    with pytest.raises(xdl4.KindError, match="fake is not defined for toy_counts datasets"):
        ds.dl4.fake(None)
    bad = ds.assign(background=ds.counts)  # not a variable of this kind
    with pytest.raises(xdl4.DL4ValidationError, match="does not belong to kind"):
        bad.dl4.validate()
    with pytest.raises(xdl4.KindError, match="registered already"):
        xdl4.kinds.register(toy.record, {})


def test_unregistered_kind_is_a_validation_error():
    with pytest.raises(xdl4.DL4ValidationError, match="dl4_kind"):
        _toy_dataset("never_registered").dl4.npred(None)


# -- no kind dispatch outside the kinds' modules ----------------------------------------------

DISPATCH = re.compile(r"(?<!dtype\.)\bkind\s*(==|!=|\bin\b|\bnot in\b)|\bKINDS\[")
REGISTRY = {"schema.py", "validation.py"}  # the declarations and their one lookup


def test_the_dispatch_pattern_catches_what_it_should():
    for line in ('if kind == "flux_points":', "if kind != x:", "ok = kind in ONOFF",
                 'record = KINDS["map"]'):
        assert DISPATCH.search(line), line
    for line in ('if arr.dtype.kind == "S":', "kinds = 1", "kind_record(ds)"):
        assert not DISPATCH.search(line), line


def test_no_kind_dispatch_outside_kinds():
    hits = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "kinds" or str(rel) in REGISTRY:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if DISPATCH.search(line):
                hits.append(f"{rel}:{i}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_results_are_datasets_of_the_right_kind(examples):
    spec = examples["map"].dl4.to_region("icrs;circle(83.63,22.01,0.3)")
    assert spec.dl4.kind == "spectrum"
    onoff = examples["map_onoff"].dl4.to_region("icrs;circle(83.63,22.01,0.3)")
    assert onoff.dl4.kind == "spectrum_onoff"
    runs = xr.concat([examples["spectrum"], examples["spectrum"]], "obs")
    assert np.isfinite(runs.dl4.stat_sum(None))
