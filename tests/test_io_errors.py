"""Bad input raises errors naming the file, the HDU and the problem; OGIP sparse RMFs
round-trip for random kernels."""

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

import xdl4
from xdl4.constructors import create
from xdl4.io.backends import open_dataset
from xdl4.io.gadf import read_gadf, to_gadf
from xdl4.io.ogip import read_ogip, sparse_rows, to_ogip


@pytest.fixture(scope="module")
def map_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("err") / "map.fits"
    to_gadf(xdl4.examples.map_dataset(width=1.0, binsz=0.1), path)
    return path


def test_example_kinds_roundtrip(tmp_path):
    for kind, ds in xdl4.examples.all_kinds().items():
        path = tmp_path / f"{kind}.fits"
        to_gadf(ds, path)
        once = open_dataset(path)
        xdl4.validate(once)
        np.testing.assert_array_equal(once.counts.values if "counts" in once else 0,
                                      ds.counts.values if "counts" in ds else 0)
        to_gadf(once, tmp_path / f"{kind}2.fits")
        xr.testing.assert_identical(once, open_dataset(tmp_path / f"{kind}2.fits"))
    onoff = xdl4.examples.spectrum_dataset(onoff=True)
    to_ogip(onoff, tmp_path / "pha.fits")
    assert sorted(p.name for p in tmp_path.glob("pha*")) == [
        "pha.fits", "pha_arf.fits", "pha_bkg.fits", "pha_rmf.fits"]
    once = read_ogip(tmp_path / "pha.fits")
    np.testing.assert_allclose(once.exposure.values, onoff.exposure.values, rtol=1e-15)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        to_ogip(onoff, tmp_path / "pha.fits")


def test_truncated(map_file, tmp_path):
    bad = tmp_path / "trunc.fits"
    bad.write_bytes(map_file.read_bytes()[: map_file.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"trunc\.fits.*(truncated|corrupt)"):
        read_gadf(bad)


def test_missing_hdu(map_file, tmp_path):
    with fits.open(map_file) as hdul:
        keep = [h for h in hdul if h.name not in ("COUNTS", "EXPOSURE_BANDS")]
        fits.HDUList([h.copy() for h in keep]).writeto(tmp_path / "nocounts.fits")
        rest = [h for h in hdul if h.name != "EXPOSURE_BANDS"]
        fits.HDUList([h.copy() for h in rest]).writeto(tmp_path / "nobands.fits")
    with pytest.raises(ValueError, match=r"nocounts\.fits.*missing required HDU 'COUNTS'"):
        read_gadf(tmp_path / "nocounts.fits")
    with pytest.raises(ValueError, match=r"\[HDU EXPOSURE\].*missing required HDU"):
        read_gadf(tmp_path / "nobands.fits")


def _edit(map_file, out, hdu, fn):
    with fits.open(map_file) as hdul:
        hdus = [h.copy() for h in hdul]
    fn(next(h for h in hdus if h.name == hdu))
    fits.HDUList(hdus).writeto(out, checksum=True)  # an edit that keeps the checksums valid
    return out


def test_unknown_unit(map_file, tmp_path):
    path = _edit(map_file, tmp_path / "unit.fits", "EXPOSURE",
                 lambda h: h.header.set("BUNIT", "furlong fortnight"))
    with pytest.raises(ValueError, match=r"\[HDU EXPOSURE\].*cannot parse unit"):
        read_gadf(path)


def test_shape_mismatch(map_file, tmp_path):
    def cut(h):
        h.data = h.data[:-1].copy()

    path = _edit(map_file, tmp_path / "shape.fits", "BACKGROUND", cut)
    with pytest.raises(ValueError, match=r"\[HDU BACKGROUND\].*does not match"):
        read_gadf(path)


def test_healpix(map_file, tmp_path):
    path = _edit(map_file, tmp_path / "hpx.fits", "COUNTS",
                 lambda h: h.header.set("PIXTYPE", "HEALPIX"))
    with pytest.raises(ValueError, match="HEALPix maps are not supported"):
        read_gadf(path)


def test_sparse_rows_zero_row():
    k = np.array([[0, 0, 0], [0.5, 0, 0.25]], dtype=np.float32)
    ngrp, f, n, m = sparse_rows(k)
    assert ngrp == [1, 2] and f == [[0], [0, 2]] and n == [[0], [1, 1]] and m[0] == []


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 8), st.integers(2, 8), st.integers(0, 2**32 - 1), st.floats(0.3, 0.9))
def test_rmf_roundtrip(n_true, n_reco, seed, density):
    import tempfile
    from pathlib import Path

    rng = np.random.default_rng(seed)
    kernel = rng.uniform(0, 1, (n_true, n_reco)) * (rng.uniform(size=(n_true, n_reco))
                                                     < density)
    kernel[rng.integers(n_true)] = 0.0  # at least one all-zero row
    kernel /= np.maximum(kernel.sum(axis=1, keepdims=True), 1.0)  # probabilities: rows <= 1
    kernel = kernel.astype(np.float32)
    et, e = np.geomspace(0.1, 100, n_true + 1), np.geomspace(0.1, 100, n_reco + 1)
    ds = create("spectrum_onoff", e, et, region="icrs;circle(83.6,22.0,0.2)",
                     counts=rng.poisson(5, n_reco).astype(float), exposure=1e9,
                     counts_off=3.0, acceptance=1.0, acceptance_off=4.0, livetime=100.0)
    ds["edisp"] = (("energy_true", "energy"), kernel, {"units": ""})
    with tempfile.TemporaryDirectory() as d:
        to_ogip(ds, Path(d) / "a.fits")
        once = read_ogip(Path(d) / "a.fits")
        np.testing.assert_array_equal(once.edisp.values, kernel)
        to_ogip(once, Path(d) / "b.fits")
        xr.testing.assert_identical(once, read_ogip(Path(d) / "b.fits"))
