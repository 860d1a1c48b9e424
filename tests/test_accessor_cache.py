"""The accessor remembers: repeated ``ds.dl4.stat_sum / npred`` calls on one Dataset object
reuse its prepared evaluators, and never return stale numbers."""

import numpy as np
import pytest

import xdl4
from xdl4.kinds.counts import npred, stat_sum
from xdl4.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel


def _models(name, spatial=True, index=2.4):
    src = SkyModel(PowerLaw(index=index, amplitude=3e-11),
                   PointSpatialModel(lon_0=83.65, lat_0=22.0) if spatial else None, name="src")
    return Models([src, FoVBackgroundModel(name)])


@pytest.mark.parametrize("kind", ["map", "spectrum_onoff"])
def test_repeated_calls_equal_fresh_evaluations(kind, examples):
    ds = examples[kind].copy()
    models = _models(ds.dl4.name, spatial=kind == "map")
    first = ds.dl4.stat_sum(models)
    assert ds.dl4._cache  # evaluators prepared and kept
    prepared = {key: id(value) for key, value in ds.dl4._cache.items()}
    for index in (2.2, 2.6):
        models.parameters["src.index"].value = index
        assert ds.dl4.stat_sum(models) == pytest.approx(stat_sum(ds, models), rel=1e-12)
        np.testing.assert_allclose(ds.dl4.npred(models).values, npred(ds, models).values,
                                   rtol=1e-12)
    # the same prepared evaluators, reused (not rebuilt) by every later call
    assert {key: id(ds.dl4._cache[key]) for key in prepared} == prepared
    other = _models(ds.dl4.name, spatial=kind == "map", index=3.0)  # a new model set
    assert ds.dl4.stat_sum(other) == pytest.approx(stat_sum(ds, other), rel=1e-12)
    assert ds.dl4.stat_sum(None) == pytest.approx(stat_sum(ds, None), rel=1e-12)
    assert first != ds.dl4.stat_sum(other)


def test_replaced_variable_rebuilds(examples):
    ds = examples["map"].copy()
    models = _models(ds.dl4.name)
    before = ds.dl4.stat_sum(models)
    prepared = {key: id(value) for key, value in ds.dl4._cache.items()}
    ds["counts"] = ds.counts + 1  # in place on the same Dataset object
    after = ds.dl4.stat_sum(models)
    assert {key: id(value) for key, value in ds.dl4._cache.items()} != prepared  # rebuilt
    assert after != before and after == pytest.approx(stat_sum(ds, models), rel=1e-12)


def test_irf_interpolation_keeps_its_own_evaluators(examples):
    ds = examples["map"].copy()
    models = _models(ds.dl4.name)
    a = ds.dl4.stat_sum(models)
    b = ds.dl4.stat_sum(models, irf_interpolation="bilinear")
    assert a == pytest.approx(stat_sum(ds, models, "nearest"), rel=1e-12)
    assert b == pytest.approx(stat_sum(ds, models, "bilinear"), rel=1e-12)
    assert xdl4.fit(ds, models).total_stat == pytest.approx(
        ds.dl4.stat_sum(models, irf_interpolation="bilinear"), rel=1e-9)


def test_renaming_routes_the_models_anew(examples):
    """A rename changes which FoV background model binds: the cached evaluators (which
    carry the name) are dropped. A stacked dataset has no scalar ``obs``, so the rename
    changes only ``attrs["name"]`` and no variable the cache key sees."""
    ds = examples["map"].dl4.stack(examples["map"].dl4.renamed("other"), name="stacked")
    models = _models("new")
    models.parameters["new-bkg.norm"].value = 1.5
    before = ds.dl4.stat_sum(models)  # "new-bkg" applies to no dataset yet
    ds.dl4.name = "new"
    assert ds.dl4.stat_sum(models) == pytest.approx(stat_sum(ds, models), rel=1e-12)
    assert ds.dl4.stat_sum(models) != before
