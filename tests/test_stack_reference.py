"""Stacking reproduces gammapy 2.1 on its own files (``gammapy/stack``, env XDL4_DATA).

gammapy stacks into float32 working maps (semantics 3.2/3.3): quantities that are not
integers agree to float32 rounding (2e-7 relative), counts and masks exactly.
See docs/stacking.md.
"""

import numpy as np
import pytest
from astropy import units as u

import xdl4
from xdl4.stack import empty_like, stack
from xdl4.streaming import stack_files

F32 = 3e-7  # a few float32 roundings (eps 1.2e-7) of gammapy's working maps


@pytest.fixture(scope="module")
def models(data_dir):
    from xdl4.models import read_models

    return read_models(data_dir / "gammapy" / "map_dataset_models.yaml")


@pytest.fixture(scope="module")
def runs(data_dir, models):
    """The three GADF runs with their background models baked in (gammapy stacks
    ``npred_background()``; the YAML's FoV model applies to run1: norm 1.05, tilt 0.02)."""
    out = []
    for i in range(3):
        run = xdl4.open_dataset(data_dir / "gammapy" / "stack" / f"run{i}.fits.gz")
        bkg = run.dl4.npred_background(models).assign_attrs(run.background.attrs)
        out.append(run.assign(background=bkg))
    return out


@pytest.fixture(scope="module")
def stacked(runs):
    out = empty_like(runs[0])
    for run in runs:
        out = stack(out, run)
    return out


def test_stack_matches_reference_json(stacked, reference):
    ref = reference["stack"]
    per_e = stacked.sum(("lat", "lon"))
    np.testing.assert_array_equal(per_e.counts, ref["counts_per_energy"])
    np.testing.assert_array_equal(per_e.mask_safe, ref["mask_safe_per_energy"])
    assert float(stacked.livetime) == ref["livetime_s"]
    np.testing.assert_allclose(per_e.background, ref["background_per_energy"], rtol=F32)
    np.testing.assert_allclose(per_e.exposure, ref["exposure_per_energy_true"], rtol=F32)
    assert stacked.gti_start.values.tolist() == [0.0, 10800.0, 21600.0]
    assert stacked.meta_obs_id.values.tolist() == [100, 101, 102]


def test_stack_matches_gammapy_stacked_file(stacked, data_dir):
    g = xdl4.open_dataset(data_dir / "gammapy" / "stack" / "stacked_by_gammapy.fits.gz")
    assert (stacked.mask_safe == g.mask_safe).all()
    np.testing.assert_array_equal(stacked.counts, g.counts)
    for name in ("background", "exposure", "psf_exposure", "edisp_exposure", "psf", "edisp"):
        factor = u.Unit(stacked[name].attrs.get("units", "")).to(
            u.Unit(g[name].attrs.get("units", "")))
        ours, theirs = stacked[name].values * factor, g[name].values.astype(float)
        # values below 1e-9 of the maximum are float32 denormal noise in gammapy's PSF tails
        np.testing.assert_allclose(ours, theirs, rtol=F32, atol=1e-9 * np.abs(theirs).max(),
                                   err_msg=name)


def test_stack_onoff_matches_reference_json(data_dir, reference):
    ref = reference["stack_onoff"]
    runs = [xdl4.open_dataset(data_dir / "gammapy" / "stack" / f"son{i}.fits")
            for i in range(3)]
    out = empty_like(runs[0])
    for run in runs:
        out = stack(out, run)
    for name in ("counts", "counts_off", "acceptance", "mask_safe"):
        np.testing.assert_array_equal(out[name], ref[name], err_msg=name)
    alpha = (out.acceptance / out.acceptance_off).fillna(0)
    for name, value in (("acceptance_off", out.acceptance_off), ("alpha", alpha),
                        ("exposure", out.exposure)):
        np.testing.assert_allclose(value, ref[name], rtol=F32, err_msg=name)


def test_npred_is_conserved(runs, stacked, models, reference):
    from xdl4.models import FoVBackgroundModel, Models

    sources = [m for m in models if not m.name.endswith("-bkg")]

    def npred(ds):
        return ds.dl4.npred(Models([*sources, FoVBackgroundModel(ds.attrs["name"])]))

    total = npred(stacked)
    np.testing.assert_allclose(float(total.sum()), reference["stack"]["npred_total"], rtol=1e-6)
    masked = float(total.where(stacked.mask_safe, 0).sum())
    runs_sum = sum(float(npred(r).where(r.mask_safe, 0).sum()) for r in runs)
    # exact up to the PSF being an exposure-weighted mean on the coarse IRF grid (1.3e-6)
    np.testing.assert_allclose(masked, runs_sum, rtol=2e-6)


def test_stack_files_on_gadf_runs(data_dir, tmp_path):
    paths = [data_dir / "gammapy" / "stack" / f"run{i}.fits.gz" for i in range(3)]
    plain = [xdl4.open_dataset(p) for p in paths]
    expected = stack(stack(plain[0], plain[1]), plain[2])
    out = stack_files(paths, progress=False, output=tmp_path / "stacked.nc")
    for name in expected.data_vars:
        if expected[name].dtype.kind in "fi":
            np.testing.assert_allclose(out[name].values, expected[name].values, rtol=1e-12,
                                       err_msg=name)
        else:
            np.testing.assert_array_equal(out[name].values, expected[name].values, name)
    back = xdl4.open_dataset(tmp_path / "stacked.nc")
    assert float(back.livetime) == float(out.livetime)
