"""The DL4 contract: every kind validates, and each kind of bad input gets a clear error."""

import numpy as np
import pytest
import xarray as xr

import xdl4
from xdl4.errors import DL4ValidationError


@pytest.mark.parametrize("kind", xdl4.KINDS)
def test_examples_validate(examples, kind):
    ds = examples[kind]
    assert ds.dl4.kind == kind
    assert ds.dl4.validate() is ds


def _map():
    return xdl4.examples.map_dataset()


def _set(ds, name, func):
    ds = ds.copy(deep=True)
    ds[name] = func(ds[name])
    return ds


BAD = {
    "missing counts": (lambda: _map().drop_vars("counts"),
                       "missing required variable 'counts'"),
    "wrong dims": (lambda: _set(_map(), "counts", lambda d: d.expand_dims(run=1)),
                   "counts has dims ('run', 'energy', 'lat', 'lon')"),
    "energy bounds decreasing": (
        lambda: _map().assign_coords(energy_bounds=_map().energy_bounds[::-1].variable),
        "energy bounds are not increasing"),
    "negative exposure": (lambda: _set(_map(), "exposure", lambda d: d - 1e20),
                          "exposure has negative values"),
    "nan exposure": (lambda: _set(_map(), "exposure", lambda d: d.where(d.lon > 83.7)),
                     "exposure contains NaN"),
    "nan counts": (lambda: _set(_map(), "counts", lambda d: d.where(d.lat > 22)),
                   "counts contains NaN"),
    "unit not convertible": (
        lambda: _set(_map(), "exposure", lambda d: d.assign_attrs(units="TeV")),
        "exposure has unit 'TeV', not convertible to 'cm2 s'"),
    "unit not parsable": (
        lambda: _set(_map(), "exposure", lambda d: d.assign_attrs(units="furlongs")),
        "cannot parse unit 'furlongs'"),
    "mask not boolean": (lambda: _set(_map(), "mask_safe", lambda d: d.astype(float) * 0.5),
                         "mask_safe must be boolean"),
    "mismatched sky grid": (
        lambda: _map().assign_coords(lon=_map().lon + 0.3),
        "mismatched sky grid: lon/lat coordinates do not match the WCS"),
    "reordered sky grid": (lambda: _map().isel(lon=slice(None, None, 2)),
                           "pixels are not contiguous"),
    "unknown kind": (lambda: _map().assign_attrs(dl4_kind="cube"),
                     "attrs['dl4_kind'] is 'cube'"),
    "counts as strings": (lambda: _set(_map(), "counts", lambda d: d.astype(str)),
                          "counts must be numeric"),
    "energy without bounds": (lambda: _map().drop_vars("energy_bounds"),
                              "energy axis 'energy' has no bounds variable"),
    "region kind with pixels": (lambda: _map().assign_attrs(dl4_kind="spectrum"),
                                "has a region, not a pixel grid"),
    "variable of other kind": (
        lambda: xdl4.examples.spectrum_dataset().assign(
            counts_off=xdl4.examples.spectrum_dataset().counts),
        "'counts_off' does not belong to kind 'spectrum'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_errors(case):
    make, message = BAD[case]
    with pytest.raises(DL4ValidationError) as err:
        make().dl4.validate()
    assert message in str(err.value)


def test_error_lists_all_problems():
    ds = _map().drop_vars("counts")
    ds["mask_safe"] = ds.mask_safe.astype(int)
    with pytest.raises(DL4ValidationError) as err:
        ds.dl4.validate()
    assert len(err.value.problems) == 2


def test_flux_points_errors():
    fp = xdl4.examples.flux_points()
    with pytest.raises(DL4ValidationError, match="need variable 'dnde'"):
        fp.drop_vars("dnde").dl4.validate()
    with pytest.raises(DL4ValidationError, match="negative errors"):
        fp.assign(dnde_err=-fp.dnde_err).dl4.validate()
    with pytest.raises(DL4ValidationError, match="sed_type"):
        fp.assign_attrs(sed_type="nufnu").dl4.validate()


@pytest.mark.parametrize("kind", ["map", "spectrum_onoff"])
def test_plain_xarray_selection_stays_valid(examples, kind):
    ds = examples[kind]
    ds.isel(energy=slice(2, 8)).dl4.validate()
    ds.sel(energy=slice(0.5, 20)).dl4.validate()
    ds.isel(energy_true=slice(1, -1)).dl4.validate()
    if "lat" in ds.dims:
        cut = ds.isel(lon=slice(10, 40), lat=slice(5, 30))
        cut.dl4.validate()
        # the cut-out knows where it lies: same sky positions as the parent
        lon, lat = cut.dl4.grid.sky_coords()
        plon, plat = ds.dl4.grid.sky_coords()
        np.testing.assert_allclose(lon, plon[5:30, 10:40], atol=1e-10)
        np.testing.assert_allclose(lat, plat[5:30, 10:40], atol=1e-10)
        assert cut.dl4.grid.pixel_offset_in(ds.dl4.grid) == (10, 5)


def test_lazy_validation_does_not_compute(examples, tmp_path):
    import dask

    path = tmp_path / "m.nc"
    examples["map"].dl4.to_netcdf(path)
    lazy = xdl4.open_dataset(path, chunks={})

    def fail(*args, **kwargs):
        raise AssertionError("validation computed a dask array")

    with dask.config.set(scheduler=fail):
        lazy.dl4.validate()
    assert isinstance(lazy.counts.data, dask.array.Array)


def test_obs_dimension_validates(examples):
    runs = xr.concat([examples["spectrum"], examples["spectrum"]], "obs")
    runs.dl4.validate()


def test_unit_errors_are_typed():
    """A unit that cannot be parsed, or converted where a computation needs it, is a
    UnitError (a ValueError) naming what carries it, also on a direct call that skips
    validation."""
    from xdl4.kinds.counts import evaluator
    from xdl4.schema import parse_unit

    with pytest.raises(xdl4.UnitError, match="variable exposure: cannot parse unit 'bogus'"):
        parse_unit("bogus", "variable exposure")
    ds = xdl4.examples.map_dataset()
    ds.exposure.attrs["units"] = "TeV"
    with pytest.raises(xdl4.UnitError, match="exposure: unit 'TeV' cannot be converted"):
        evaluator(ds)
    with pytest.raises(xdl4.DL4ValidationError, match="exposure has unit 'TeV'"):
        ds.dl4.npred(None)
    assert issubclass(xdl4.UnitError, ValueError)
