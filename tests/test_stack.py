"""Stacking: pairwise and reductions share one set of rules; laziness; geometry; algebra."""

import functools

import dask
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xdl4
from xdl4.constructors import create
from xdl4.stack import StackError, empty_like, stack, to_masked

ADDITIVE = ("counts", "background", "exposure", "counts_off", "psf_exposure",
            "edisp_exposure", "livetime")


@functools.lru_cache(maxsize=64)
def _small(kind: str, seed: int) -> xr.Dataset:
    return small(kind, seed)


def small(kind: str, seed: int = 0, **kw) -> xr.Dataset:
    """A tiny example of ``kind`` (5 x 5 pixels for maps)."""
    onoff = kind.endswith("onoff")
    if kind.startswith("map"):
        return xdl4.examples.map_dataset(seed, onoff=onoff, width=0.5, binsz=0.1, **kw)
    return xdl4.examples.spectrum_dataset(seed, onoff=onoff, **kw)


def with_threshold(ds: xr.Dataset, e_min: float, rows: slice | None = None) -> xr.Dataset:
    """``ds`` with a safe mask from ``e_min`` TeV (optionally only on some lat rows)."""
    mask = ds.mask_safe & (ds.energy_bounds.isel(bound=0) >= e_min)
    if rows is not None and "lat" in ds.dims:
        mask = mask & (xr.zeros_like(ds.lat, dtype=bool).copy(data=np.isin(
            np.arange(ds.sizes["lat"]), np.arange(ds.sizes["lat"])[rows])))
    return ds.assign(mask_safe=mask.transpose(*ds.mask_safe.dims))


def assert_stacked_equal(a: xr.Dataset, b: xr.Dataset, rtol: float = 1e-12) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        if a[name].dtype == bool:
            assert (a[name] == b[name]).all(), name
        else:
            np.testing.assert_allclose(a[name].values, b[name].values, rtol=rtol,
                                       atol=0, err_msg=name)


KINDS = ("map", "map_onoff", "spectrum", "spectrum_onoff")


@pytest.mark.parametrize("kind", KINDS)
def test_pairwise_rules(kind):
    a = small(kind, 0)
    b = with_threshold(small(kind, 1), 1.0)
    out = stack(a, b)
    out.dl4.validate()
    ma, mb = a.mask_safe, b.mask_safe
    sky = [d for d in ("lat", "lon") if d in a.dims]
    np.testing.assert_allclose(out.counts, a.counts.where(ma, 0) + b.counts.where(mb, 0))
    assert (out.mask_safe == (ma | mb)).all()
    assert float(out.livetime) == 7200.0
    assert "mask_fit" not in out
    ia = ma.any("energy") if sky else ma.any()
    ib = mb.any("energy") if sky else mb.any()
    np.testing.assert_allclose(out.exposure, a.exposure.where(ia, 0) + b.exposure.where(ib, 0))
    if kind.endswith("onoff"):
        alpha = out.acceptance / out.acceptance_off
        bkg = sum((d.acceptance / d.acceptance_off * d.counts_off).where(d.mask_safe, 0)
                  for d in (a, b))
        np.testing.assert_allclose((alpha * out.counts_off).where(out.counts_off > 0, 0),
                                   bkg, rtol=1e-12)
    else:
        np.testing.assert_allclose(out.background,
                                   a.background.where(ma, 0) + b.background.where(mb, 0))
    # PSF: exposure-weighted mean where both runs are safe
    if "psf" in out:
        np.testing.assert_allclose(out.psf, a.psf, rtol=1e-6)  # identical analytic PSFs


@pytest.mark.parametrize("kind", KINDS)
def test_pairwise_is_reduction_over_two_runs(kind):
    a, b = small(kind, 0), with_threshold(small(kind, 1), 2.0)
    assert_stacked_equal(stack(a, b), stack(xr.concat([a, b], "obs"), dim="obs"))


def test_edisp_mask_conserves_masked_npred_proxy():
    """The stacked kernel folded with the stacked exposure equals the sum of the runs'
    masked foldings (the EDISP part of npred conservation, on the IRF grid)."""
    a, b = small("spectrum", 0), with_threshold(small("spectrum", 1), 3.0)
    flux = xr.DataArray(np.geomspace(1, 1e-3, a.sizes["energy_true"]), dims="energy_true")

    def fold(d):
        return (flux * d.edisp_exposure * d.edisp).sum("energy_true")

    out = stack(a, b)
    expected = fold(a).where(a.mask_safe, 0) + fold(b).where(b.mask_safe, 0)
    np.testing.assert_allclose(fold(out), expected, rtol=1e-12)


def test_empty_and_to_masked():
    run = with_threshold(small("map", 3), 1.0, rows=slice(1, 4))
    empty = empty_like(run)
    assert not empty.mask_safe.any() and "gti_start" not in empty
    masked = to_masked(run)
    assert_stacked_equal(stack(empty, run), masked)
    assert_stacked_equal(stack(run, empty), masked)
    np.testing.assert_array_equal(masked.counts, run.counts.where(run.mask_safe, 0))
    assert masked.gti_start.values.tolist() == [0.0]
    assert_stacked_equal(run.dl4.to_masked(name="m"), masked)
    assert run.dl4.to_masked(name="m").attrs["name"] == "m"


def test_onto_created_empty_dataset():
    run = small("spectrum_onoff", 2)
    empty = create("spectrum_onoff", run.dl4.energy_edges, run.dl4.energy_true_edges,
                        region=run.dl4.region)
    out = stack(empty, run)
    np.testing.assert_allclose(out.counts_off, run.counts_off.where(run.mask_safe, 0))
    np.testing.assert_allclose(out.exposure, run.exposure.where(run.mask_safe.any(), 0))


def test_cutout_goes_onto_the_larger_grid():
    parent = small("map", 0)
    cut = small("map", 1).isel(lon=slice(1, 4), lat=slice(2, 5))
    for out in (stack(parent, cut), stack(cut, parent)):
        assert out.sizes["lat"] == parent.sizes["lat"]
        assert (out.lon_pixel.values == parent.lon_pixel.values).all()
        inside = out.counts.isel(lon=slice(1, 4), lat=slice(2, 5))
        np.testing.assert_allclose(inside, parent.counts.where(parent.mask_safe, 0).isel(
            lon=slice(1, 4), lat=slice(2, 5)) + cut.counts.where(cut.mask_safe, 0).values)
        outside = out.counts.isel(lon=0)
        np.testing.assert_allclose(outside, parent.counts.where(parent.mask_safe, 0).isel(lon=0))
    assert_stacked_equal(stack(parent, cut), stack(cut, parent))


def test_units_are_converted():
    a, b = small("map", 0), small("map", 1)
    b_cm2 = b.assign(exposure=(b.exposure * 1e4).assign_attrs(units="cm2 s"))
    np.testing.assert_allclose(stack(a, b_cm2).exposure, stack(a, b).exposure, rtol=1e-12)
    assert stack(a, b_cm2).exposure.attrs["units"] == a.exposure.attrs["units"]


@pytest.mark.parametrize("change, match", [
    (lambda d: small("spectrum", 0), "spectrum"),
    (lambda d: d.isel(energy=slice(0, 6)), "energy axes differ"),
    (lambda d: xdl4.examples.map_dataset(0, width=0.5, binsz=0.05), "sky grids"),
    (lambda d: d.drop_vars("psf"), "only one dataset"),
])
def test_incompatible_datasets_raise(change, match):
    a = small("map", 0)
    with pytest.raises(StackError, match=match):
        stack(a, change(a))


def test_gti_union_merges_overlaps():
    a = small("spectrum", 0)
    b = create("spectrum", a.dl4.energy_edges, a.dl4.energy_true_edges,
                    region=a.dl4.region, counts=1.0, exposure=1.0, livetime=10.0,
                    gti=[(3000.0, 5000.0), (9000.0, 9100.0)])
    out = stack(b, a)
    assert out.gti_start.values.tolist() == [0.0, 9000.0]
    assert out.gti_stop.values.tolist() == [5000.0, 9100.0]


def test_meta_table_rows_concatenated():
    a, b = small("spectrum", 0), small("spectrum", 1)
    a["meta_obs_id"] = ("meta_row", [1])
    b["meta_obs_id"] = ("meta_row", [2])
    assert stack(a, b).meta_obs_id.values.tolist() == [1, 2]


class CountingScheduler:
    """A dask scheduler that counts computes and raises past ``max_computes``
    (cf-xarray's / flox's ``raise_if_dask_computes``)."""

    def __init__(self, max_computes: int = 0):
        self.max_computes, self.total = max_computes, 0

    def __call__(self, dsk, keys, **kwargs):
        self.total += 1
        if self.total > self.max_computes:
            raise AssertionError(f"too many dask computes: {self.total} > {self.max_computes}")
        return dask.get(dsk, keys, **kwargs)


@pytest.fixture
def run_files(tmp_path):
    runs = [with_threshold(small("map", s), 0.3 * (s + 1)) for s in range(4)]
    paths = []
    for i, run in enumerate(runs):
        paths.append(tmp_path / f"run{i}.nc")
        run.dl4.to_netcdf(paths[-1])
    return runs, paths


def _check_lazy_result(out, runs):
    assert all(out[v].chunks is not None for v in out.data_vars)
    eager = stack(xr.concat(runs, "obs"), dim="obs")
    computed = out.compute()
    computed = computed.isel(gti=np.isfinite(computed.gti_start.values))
    assert_stacked_equal(computed.drop_vars("gti"), eager.drop_vars("gti"))


def test_reduction_is_lazy(run_files):
    runs, paths = run_files
    lazy_runs = xr.concat([xdl4.open_dataset(p, chunks={}) for p in paths], "obs")
    with dask.config.set(scheduler=CountingScheduler(0)):
        out = stack(lazy_runs, dim="obs")
    _check_lazy_result(out, runs)


def test_reduction_over_open_mfdataset_loads_only_coordinates(run_files):
    runs, paths = run_files
    lazy_runs = xr.open_mfdataset(paths, combine="nested", concat_dim="obs",
                                  data_vars="all", coords="minimal", compat="override",
                                  decode_times=False, decode_timedelta=False)
    with dask.config.set(scheduler=CountingScheduler(1)):  # one load of the grid coords
        out = stack(lazy_runs, dim="obs")
    _check_lazy_result(out, runs)


# -- algebra (hypothesis) --------------------------------------------------------------

runs_strategy = st.tuples(st.integers(0, 5), st.sampled_from([0.1, 0.3, 1.0, 3.0, 200.0]),
                          st.integers(0, 4))


def _run(kind, params):
    seed, e_min, row = params
    return with_threshold(_small(kind, seed), e_min, rows=slice(row, None))


def _close(a, b):
    assert_stacked_equal(a[[v for v in a.data_vars if v in ADDITIVE or a[v].dtype == bool]],
                         b[[v for v in b.data_vars if v in ADDITIVE or b[v].dtype == bool]],
                         rtol=1e-12)
    for name in ("psf", "edisp", "acceptance", "acceptance_off"):
        if name in a:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-10, atol=1e-300)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), p=runs_strategy, q=runs_strategy, r=runs_strategy)
def test_commutative_associative_identity(kind, p, q, r):
    a, b, c = _run(kind, p), _run(kind, q), _run(kind, r)
    _close(stack(a, b), stack(b, a))
    _close(stack(stack(a, b), c), stack(a, stack(b, c)))
    _close(stack(a, empty_like(a)), to_masked(a))


def _with_own_psf_grid(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its PSF on a grid of its own (``psf_*``, as GADF files may have it)."""
    psf = ds[["psf", "psf_exposure"]]
    psf = psf.rename({n: "psf_" + str(n)[4:] for n in [*psf.coords, *psf.dims]
                      if str(n).startswith("irf_")})
    return xr.merge([ds.drop_vars(["psf", "psf_exposure"]), psf], combine_attrs="override")


def test_psf_on_its_own_grid_stacks_like_on_the_irf_grid():
    """Masks are sampled onto the PSF's own grid and cut-outs are aligned on it too."""
    a = xdl4.examples.map_dataset(0, width=2.0, binsz=0.1)
    b = xdl4.examples.map_dataset(1, width=2.0, binsz=0.1)
    b["mask_safe"] = b.mask_safe & (b.lon > b.lon.median())  # half the sky unsafe
    cut = b.dl4.cutout((83.63, 22.01), 1.0)
    for other in (b, cut):
        expected = stack(a, other)
        got = stack(_with_own_psf_grid(a), _with_own_psf_grid(other))
        assert got.psf.dims[-2:] == ("psf_lat", "psf_lon")
        for name in ("psf", "psf_exposure"):
            np.testing.assert_array_equal(got[name].values, expected[name].values)
