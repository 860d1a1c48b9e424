"""NetCDF: exact round trips of every kind, lazily too; atomic, non-clobbering writes."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xdl4


@pytest.mark.parametrize("kind", xdl4.KINDS)
def test_round_trip_every_kind(examples, kind, tmp_path):
    ds = examples[kind]
    path = tmp_path / f"{kind}.nc"
    ds.dl4.to_netcdf(path)
    back = xdl4.open_dataset(path)
    xr.testing.assert_identical(ds, back)
    for name in ds.variables:
        assert back[name].dtype == ds[name].dtype, name
    lazy = xdl4.open_dataset(path, chunks={})
    assert all(lazy[v].chunks is not None for v in lazy.data_vars if lazy[v].ndim)
    xr.testing.assert_identical(ds, lazy.compute())


def test_round_trip_keeps_region_gti_meta_attrs(tmp_path):
    ds = xdl4.examples.spectrum_dataset()
    ds["meta_obs_id"] = ("meta_row", np.array([101, 102]))
    ds["meta_telescop"] = ("meta_row", np.array(["CTA", "CTA"]))
    ds.attrs["flag"] = True
    path = tmp_path / "s.nc"
    ds.dl4.to_netcdf(path)
    back = xdl4.open_dataset(path)
    xr.testing.assert_identical(ds, back)
    assert back.attrs["flag"] is True
    assert back.dl4.region.radius == 0.2
    assert back.gti_start.attrs["mjdrefi"] == 51544


def test_no_overwrite_without_permission(tmp_path):
    ds = xdl4.examples.spectrum_dataset()
    path = tmp_path / "s.nc"
    ds.dl4.to_netcdf(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ds.dl4.to_netcdf(path)
    assert path.read_bytes() == before
    ds.dl4.to_netcdf(path, overwrite=True)


def test_failed_write_leaves_nothing(tmp_path):
    ds = xdl4.examples.spectrum_dataset()
    ds.attrs["bad"] = {"a": 1}  # not serialisable
    with pytest.raises(TypeError):
        ds.dl4.to_netcdf(tmp_path / "s.nc")
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        xdl4.examples.spectrum_dataset().dl4.to_netcdf(tmp_path / "nope" / "s.nc")


edges = st.lists(st.floats(0.01, 1e3), min_size=2, max_size=8, unique=True).map(sorted).filter(
    lambda e: np.all(np.diff(e) / np.asarray(e[1:]) > 1e-6))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(e_reco=edges, e_true=edges, proj=st.sampled_from(["CAR", "TAN"]),
       frame=st.sampled_from(["icrs", "galactic"]), nx=st.integers(1, 12),
       ny=st.integers(1, 12), binsz=st.floats(0.01, 0.5), lon=st.floats(0, 359.9),
       lat=st.floats(-80, 80), seed=st.integers(0, 2**16), onoff=st.booleans())
def test_hypothesis_round_trip(tmp_path_factory, e_reco, e_true, proj, frame, nx, ny, binsz,
                               lon, lat, seed, onoff):
    rng = np.random.default_rng(seed)
    grid = xdl4.WcsGrid.create((lon, lat), (nx * binsz, ny * binsz), binsz, frame, proj)
    shape = (len(e_reco) - 1, *grid.shape)
    data = {"counts": rng.poisson(3, shape).astype(float),
            "mask_safe": rng.random(shape) > 0.3}
    if onoff:
        data.update(counts_off=rng.poisson(5, shape).astype(np.float32), acceptance=1.0,
                    acceptance_off=rng.uniform(2, 10, shape))
    ds = xdl4.create("map_onoff" if onoff else "map", e_reco, e_true, grid=grid,
                     binsz_irf=None if seed % 2 else 2 * binsz, **data)
    path = tmp_path_factory.mktemp("rt") / "ds.nc"
    ds.dl4.to_netcdf(path)
    back = xdl4.open_dataset(path)
    xr.testing.assert_identical(ds, back)
    back.dl4.validate()
    assert xdl4.WcsGrid.from_dataset(back) == grid


@pytest.mark.parametrize("kind", ["map", "map_onoff", "spectrum", "spectrum_onoff",
                                  "flux_points"])
def test_plain_xarray_open_is_xdl4_open(examples, kind, tmp_path):
    """A plain ``xr.open_dataset`` of an xdl4 NetCDF file is the dataset xdl4 reads: CF
    bounds inherit their coordinate's units, grids are named by ``grid_mapping``."""
    path = tmp_path / f"{kind}.nc"
    examples[kind].dl4.to_netcdf(path)
    with xr.open_dataset(path) as plain:
        xr.testing.assert_identical(plain.load(), xdl4.open_dataset(path).load())
        plain.dl4.validate()
        for name, var in plain.data_vars.items():
            if "lat" in var.dims:
                assert var.attrs["grid_mapping"] == "spatial_ref", name
            elif "irf_lat" in var.dims:
                assert var.attrs["grid_mapping"] == "irf_spatial_ref", name
            else:
                assert "grid_mapping" not in var.attrs, name


def test_grid_of_follows_the_dims_when_the_attribute_is_stale():
    from xdl4.sky import grid_of

    ds = xdl4.examples.map_dataset()
    moved = ds.edisp.rename(irf_lat="lat", irf_lon="lon")  # attrs still name irf_spatial_ref
    assert grid_of(ds.edisp) == "irf_" and grid_of(moved) == ""
    assert grid_of(ds.edisp.isel(irf_lat=0, irf_lon=0)) is None
