"""Shared small files for the reliability catalogue (written once per session)."""

from pathlib import Path

import pytest

import xdl4


@pytest.fixture(scope="session")
def small_files(tmp_path_factory) -> dict[str, Path]:
    """A small map dataset as .fits, .fits.gz and .nc, and an on/off spectrum as OGIP."""
    folder = tmp_path_factory.mktemp("reliability")
    ds = xdl4.examples.map_dataset(width=1.0, binsz=0.1)
    out = {}
    for name in ("map.fits", "map.fits.gz", "map.nc"):
        out[name] = folder / name
        (ds.dl4.to_netcdf if name.endswith(".nc") else ds.dl4.to_gadf)(out[name])
    out["pha.fits"] = folder / "pha.fits"
    xdl4.examples.spectrum_dataset(onoff=True).dl4.to_ogip(out["pha.fits"])
    return out


@pytest.fixture(scope="session")
def copy_ogip():
    """``copy_ogip(src, folder, name="pha")``: a copy of an OGIP set under a new name."""
    return _copy_ogip


def _copy_ogip(src: Path, folder: Path, name: str = "pha") -> Path:
    """A copy of an OGIP set (PHA and companions) under a new base name."""
    import shutil

    from xdl4.io.ogip import companion_paths

    dst = folder / f"{name}.fits"
    shutil.copy(src, dst)
    for key, path in companion_paths(src).items():
        if path.exists():
            shutil.copy(path, companion_paths(dst)[key])
    return dst
