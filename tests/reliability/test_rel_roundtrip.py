"""Catalogue, ROUND TRIP category: every real file of the shared data reads and is written
back by every writer that applies to its kind (NetCDF always; GADF for maps, region
spectra and flux points; OGIP for on/off spectra) and reads again with identical data."""

import numpy as np
import pytest
import xarray as xr

import xdl4
from xdl4.io.flux_points import to_flux_points_fits
from xdl4.io.gadf import to_gadf
from xdl4.io.netcdf import to_netcdf
from xdl4.io.ogip import to_ogip

FILES = ["gammapy/map_dataset.fits.gz", "gammapy/map_dataset_onoff.fits.gz",
         "gammapy/spectrum_dataset.fits.gz", "gammapy/stack/run0.fits.gz",
         "gammapy/stack/run1.fits.gz", "gammapy/stack/run2.fits.gz",
         "gammapy/stack/stacked_by_gammapy.fits.gz",
         "fermi-3fhl-crab/Fermi-LAT-3FHL_data_Fermi-LAT.fits",
         "tests/models/gc_example_data_gc.fits", "tests/models/gc_example_data_g09.fits",
         "gammapy/spectrum_onoff/pha_sonoff.fits", "gammapy/stack/son0.fits",
         "gammapy/stack/son1.fits", "gammapy/stack/son2.fits",
         "datasets/simulations/simulated_spectrum_dataset_PL.fits",
         "datasets/simulations/simulated_spectrum_dataset_ECPL.fits",
         "estimators/crab_hess_fp/crab_hess_fp.fits", "hawc/crab_flux/HAWC19_flux_points.fits"]


def _writers(ds: xr.Dataset, ogip_file: bool) -> dict:
    kind = ds.dl4.kind
    out = {"netcdf": (to_netcdf, "out.nc")}
    if kind == "flux_points":
        out["flux_points"] = (to_flux_points_fits, "out.fits")
    else:
        out["gadf"] = (to_gadf, "out.fits")
    if kind == "spectrum_onoff":
        out["ogip"] = (to_ogip, "out_pha.fits")
    return out


def _same_data(a: xr.Dataset, b: xr.Dataset) -> None:
    """Same variables, coordinates and values (dtypes included); attrs are compared by
    the identical round trips of the file's own format."""
    assert sorted(a.data_vars) == sorted(b.data_vars)
    for name in [*a.data_vars, *a.coords]:
        if name in ("region",):
            continue
        x, y = a[name], b[name]
        assert x.dims == y.dims, name
        assert x.dtype == y.dtype or (x.dtype.kind in "US" and y.dtype.kind in "USO"), name
        np.testing.assert_array_equal(x.values, y.values, err_msg=name)


@pytest.mark.parametrize("rel", FILES)
def test_every_real_file_through_every_writer(data_dir, tmp_path, rel):
    ds = xdl4.open_dataset(data_dir / rel)
    ogip_file = (data_dir / rel).name.startswith(("pha_", "son", "simulated"))
    native = "ogip" if ogip_file else "flux_points" if ds.dl4.kind == "flux_points" else "gadf"
    for fmt, (writer, name) in _writers(ds, ogip_file).items():
        path = tmp_path / fmt / name
        path.parent.mkdir()
        writer(ds, path)
        back = xdl4.open_dataset(path)
        if fmt in ("netcdf", native):
            xr.testing.assert_identical(back, ds)
        else:  # another format: the data, not the format's bookkeeping attrs
            _same_data(back, ds)
