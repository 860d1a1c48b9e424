"""Flux points as any SED type (``fp.dl4.sed(sed_type)``) against gammapy 2.1's
``FluxPoints.to_table(sed_type=...)`` on the shared flux points (reference numbers:
tests/reference/make_sed_reference.py)."""

import json
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u

import xdl4

REFERENCE = Path(__file__).parent / "reference" / "sed_gammapy.json"
FILES = {"hess": ("estimators", "crab_hess_fp", "crab_hess_fp.fits"),
         "hawc": ("hawc", "crab_flux", "HAWC19_flux_points.fits")}


@pytest.mark.parametrize("key", list(FILES))
@pytest.mark.parametrize("sed_type", ["dnde", "e2dnde", "flux", "eflux"])
def test_sed_types_match_gammapy(key, sed_type, data_dir):
    fp = xdl4.open_dataset(data_dir.joinpath(*FILES[key]))
    out = fp.dl4.sed(sed_type)
    for name, column in json.loads(REFERENCE.read_text())[key][sed_type].items():
        expected = np.array([np.nan if v is None else v for v in column["values"]])
        got = u.Quantity(out[name].values, out[name].attrs["units"]).to_value(column["unit"])
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
        np.testing.assert_allclose(got, expected, rtol=1e-9, err_msg=name)
    absent = {f"{sed_type}{s}" for s in ("", "_err", "_errn", "_errp", "_ul")} - set(
        json.loads(REFERENCE.read_text())[key][sed_type])
    assert all(np.isnan(out[name].values).all() for name in absent)  # NaN where absent


def test_sed_of_other_kinds_is_a_kind_error(examples):
    with pytest.raises(xdl4.KindError, match="sed is not defined for spectrum datasets"):
        examples["spectrum"].dl4.sed()
    with pytest.raises(xdl4.ArgumentError, match="sed_type must be one of"):
        examples["flux_points"].dl4.sed("photons")


def test_sed_of_a_light_curve_keeps_time(data_dir, tmp_path):
    """A light curve (time, energy): the flux is norm x ref_flux, point by point, also
    after a round trip through gammapy's light-curve FITS."""
    import glob

    runs = xdl4.open_dataset(sorted(glob.glob(str(data_dir / "gammapy/stack/run*.fits.gz"))))
    models = xdl4.read_models(data_dir / "gammapy" / "map_dataset_models.yaml")
    lc = xdl4.light_curve(runs, models, "point", energy_edges=[1, 3, 10])
    flux = lc.dl4.sed("flux")["flux"]
    assert flux.dims == ("time", "energy")
    np.testing.assert_allclose(flux.values, (lc.norm * lc.ref_flux).values, rtol=1e-12)
    assert lc.dl4.sed("flux").is_ul.dims == ("time", "energy")
    back = xdl4.open_dataset(lc.dl4.to_gadf(tmp_path / "lc.fits"))
    np.testing.assert_allclose(back.dl4.sed("flux")["flux"].values, flux.values, rtol=1e-12)


def test_create_flux_points_converts_energies_to_tev():
    """Edges in GeV were taken as TeV numbers (100 GeV became 100 TeV), no error."""
    for edges, ref in (([100, 1000, 10000] * u.GeV, [300, 3000] * u.GeV),
                       (["0.1 TeV", "1 TeV", "10 TeV"], ["0.3 TeV", "3 TeV"])):
        fp = xdl4.create_flux_points(edges, energy_ref=ref, dnde=[1e-11, 1e-12])
        np.testing.assert_allclose(fp.dl4.energy_edges.to_value("TeV"), [0.1, 1, 10])
        np.testing.assert_allclose(fp["energy"].values, [0.3, 3])
    only_ref = xdl4.create_flux_points(energy_ref=[300, 3000] * u.GeV, dnde=[1e-11, 1e-12])
    np.testing.assert_allclose(only_ref["energy"].values, [0.3, 3])


def test_unknown_stat_type_is_found_by_validation(examples):
    """The dataset's ``stat_type`` is checked where every attribute is: ``validate()``
    names it (it surfaced only at the first statistic, as a nameless error); a bad
    ``stat_type=`` argument is an ArgumentError."""
    from xdl4.kinds.flux_points import stat_sum

    fp = examples["flux_points"].assign_attrs(stat_type="cash")
    with pytest.raises(xdl4.DL4ValidationError, match="attrs\\['stat_type'\\] is 'cash'"):
        fp.dl4.validate()
    with pytest.raises(xdl4.ArgumentError, match="unknown flux-points stat_type 'nope'"):
        stat_sum(examples["flux_points"], None, stat_type="nope")
