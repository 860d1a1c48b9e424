"""Results never depend on the order a variable's dimensions are stored in: computations
read arrays by name (issue #15: the shared map dataset with counts stored as (energy, lon,
lat) gave -410.04 instead of -74.23, no error)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xdl4
from xdl4.models import Models, PointSpatialModel, PowerLaw, SkyModel


def _models(ds):
    spatial = PointSpatialModel(lon_0=83.7, lat_0=22.05) if "lat" in ds.dims else None
    return Models([SkyModel(PowerLaw(index=2.4, amplitude=3e-11), spatial, name="src")])


_DATASETS = {
    "map": xdl4.examples.map_dataset(1, width=1.0, binsz=0.1),
    "map_onoff": xdl4.examples.map_dataset(1, onoff=True, width=1.0, binsz=0.1),
    "spectrum": xdl4.examples.spectrum_dataset(1),
    "spectrum_onoff": xdl4.examples.spectrum_dataset(1, onoff=True),
}


def _transposed(ds, draw):
    """``ds`` with some multi-dim variables stored in a random dims order."""
    names = [n for n, v in ds.data_vars.items() if v.ndim > 1]
    picked = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    changes = {}
    for name in picked:
        dims = list(ds[name].dims)
        order = draw(st.permutations(dims))
        changes[name] = ds[name].transpose(*order)
    return ds.assign(changes)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(list(_DATASETS)), data=st.data())
def test_transposing_variables_changes_nothing(kind, data):
    ds = _DATASETS[kind]
    other = _transposed(ds, data.draw)
    models = _models(ds)
    assert other.dl4.stat_sum(models) == pytest.approx(ds.dl4.stat_sum(models), rel=1e-12)
    np.testing.assert_allclose(other.dl4.npred(models).transpose(*ds.counts.dims).values,
                               ds.dl4.npred(models).values, rtol=1e-12, atol=1e-15)
    a, b = ds.dl4.stack(ds), other.dl4.stack(other)
    for name in a.data_vars:
        np.testing.assert_allclose(b[name].transpose(*a[name].dims).values, a[name].values,
                                   rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", ["map", "spectrum_onoff"])
def test_fit_is_independent_of_layout(kind):
    ds = _DATASETS[kind]
    other = ds.assign({n: v.transpose(*v.dims[::-1]) for n, v in ds.data_vars.items()
                       if v.ndim > 1})
    r1, r2 = xdl4.fit(ds, _models(ds)), xdl4.fit(other, _models(ds))
    assert r1.success and r2.success
    np.testing.assert_allclose(r2.parameters.value.values, r1.parameters.value.values,
                               rtol=1e-6)


def test_shared_map_dataset_counts_transposed(data_dir):
    """The case of the issue on the shared file."""
    ds = xdl4.open_dataset(data_dir / "gammapy" / "map_dataset.fits.gz")
    models = xdl4.read_models(data_dir / "gammapy" / "map_dataset_models.yaml")
    models = Models([m for m in models if not m.name.endswith("-bkg")])
    flipped = ds.assign(counts=ds.counts.transpose("energy", "lon", "lat"))
    assert flipped.dl4.stat_sum(models) == pytest.approx(ds.dl4.stat_sum(models), rel=1e-12)
    npred = flipped.dl4.npred(models)
    assert npred.dims == ("energy", "lon", "lat")
    np.testing.assert_allclose(npred.transpose(*ds.counts.dims).values,
                               ds.dl4.npred(models).values, rtol=1e-12)


def _reversed(ds):
    """Every variable (coordinates and CF bounds included) with its dims reversed."""
    return ds.transpose(*reversed(list(ds.dims)))


def _same(a, b):
    if hasattr(a, "data_vars"):
        for name, var in a.variables.items():  # coordinates and bounds too
            if var.dtype.kind in "fib":
                np.testing.assert_allclose(b[name].transpose(*var.dims).values, var.values,
                                           rtol=1e-12, atol=1e-300, err_msg=name)
    else:
        np.testing.assert_allclose(b, a, rtol=1e-12)


@pytest.mark.parametrize("kind", list(_DATASETS))
def test_a_fully_transposed_dataset_gives_the_same_results(kind, tmp_path):
    """``ds.transpose(*reversed(ds.dims))`` (bounds too) validates and gives the same
    statistic, estimator maps, flux points, images, stacks and files (GADF maps, OGIP on/off
    spectra; a cash spectrum has no file format of its own) (the excess map and
    the smoothed significance image once read a (lon, lat) mask or image by position)."""
    ds = _DATASETS[kind]
    other, models = _reversed(ds), _models(ds)
    other.dl4.validate()
    for call in (lambda d: d.dl4.stat_sum(models),
                 lambda d: d.dl4.info(models)["sqrt_ts"],
                 lambda d: d.dl4.stack(d),
                 lambda d: xdl4.flux_points(d, models, "src", [0.5, 5, 50])[["norm", "ts"]]):
        _same(call(ds), call(other))
    if "lat" in ds.dims:
        _same(ds.dl4.excess_map("0.2 deg"), other.dl4.excess_map("0.2 deg"))
        if kind == "map":  # a TS map is for cash maps
            _same(ds.dl4.ts_map(), other.dl4.ts_map())
        pytest.importorskip("matplotlib")
        import matplotlib.pyplot as plt

        images = [d.dl4.plot.image("sqrt_ts", smooth=0.2).images[0].get_array()
                  for d in (ds, other)]
        np.testing.assert_array_equal(*(i.filled(np.nan) for i in images))  # masked too
        plt.close("all")
        written = [xdl4.open_dataset(d.dl4.to_gadf(tmp_path / f"{i}.fits"))
                   for i, d in enumerate((ds, other))]
        _same(*written)
    elif kind == "spectrum_onoff":
        written = [xdl4.open_dataset(d.dl4.to_ogip(tmp_path / f"{i}.fits")[0])
                   for i, d in enumerate((ds, other))]
        _same(*written)


def test_fully_transposed_flux_points_write_and_evaluate_the_same(tmp_path):
    fp = xdl4.examples.all_kinds(seed=0)["flux_points"]
    other = _reversed(fp)
    models = Models([SkyModel(PowerLaw(index=2.4, amplitude=3e-11), name="src")])
    assert other.dl4.stat_sum(models) == pytest.approx(fp.dl4.stat_sum(models), rel=1e-12)
    written = [xdl4.open_dataset(d.dl4.to_gadf(tmp_path / f"{i}.fits"))
               for i, d in enumerate((fp, other))]
    _same(*written)
