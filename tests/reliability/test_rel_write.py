"""Catalogue, WRITES category: atomic no-overwrite (also under a race), modes that follow
the umask, temporary names that fit, nothing left behind by a failed write, all-or-nothing
file sets, checksums written by default, round-off negatives written back."""

import multiprocessing as mp
import os
import time
import warnings

import netCDF4
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import xdl4
from xdl4 import DL4FileExistsError, DL4FileNotFoundError, DL4ValidationError, FormatError
from xdl4 import files as util
from xdl4.files import atomic_write, remove_stale_temporaries, write_all
from xdl4.io.datasets_index import write_datasets
from xdl4.io.flux_points import to_flux_points_fits
from xdl4.io.gadf import to_gadf
from xdl4.io.netcdf import to_netcdf
from xdl4.io.ogip import companion_paths, to_ogip


@pytest.fixture(scope="module")
def spec():
    return xdl4.examples.spectrum_dataset(onoff=True)


@pytest.fixture(scope="module")
def small_map():
    return xdl4.examples.map_dataset(width=1.0, binsz=0.2)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if util.TMP_TAG in p.name
                  or util.BAK_TAG in p.name)


# --------------------------------------------------------------------------------------
# no overwrite, also under a race


def test_refuses_existing_and_keeps_it(tmp_path, small_map):
    for writer, name in ((to_gadf, "a.fits"), (to_netcdf, "a.nc")):
        (tmp_path / name).write_text("keep me")
        with pytest.raises(DL4FileExistsError, match="overwrite=True"):
            writer(small_map, tmp_path / name)
        assert (tmp_path / name).read_text() == "keep me"
    assert _leftovers(tmp_path) == []


def _race(folder, trials, barrier, queue, fallback):
    if fallback:
        util._RENAMEAT2 = None
    for i in range(trials):
        barrier.wait()
        try:
            atomic_write(folder / f"r{i}", lambda t: t.write_text(str(os.getpid())))
            queue.put((i, os.getpid()))
        except DL4FileExistsError:
            queue.put((i, None))


@pytest.mark.parametrize("fallback", [False, True], ids=["renameat2", "link"])
def test_concurrent_no_overwrite_exactly_one_wins(tmp_path, fallback):
    """Two processes write the same paths at the same moment, 60 times: each path has
    exactly one winner and holds the winner's content (check-then-rename lost ~10%)."""
    if fallback is False and util._RENAMEAT2 is None:
        pytest.skip("renameat2 not available here")
    ctx = mp.get_context("fork")
    trials, barrier, queue = 60, ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(tmp_path, trials, barrier, queue, fallback))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in range(2 * trials)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    for i in range(trials):
        winners = [pid for j, pid in results if j == i and pid is not None]
        assert len(winners) == 1, f"trial {i}: {len(winners)} winners"
        assert (tmp_path / f"r{i}").read_text() == str(winners[0])
    assert _leftovers(tmp_path) == []


def test_fallback_without_hard_links(tmp_path, monkeypatch):
    """No renameat2 and no hard links (some file systems): an exclusive placeholder."""
    monkeypatch.setattr(util, "_RENAMEAT2", None)

    def no_link(*_):
        raise PermissionError(1, "links not supported")

    monkeypatch.setattr(os, "link", no_link)
    atomic_write(tmp_path / "a", lambda t: t.write_text("1"))
    with pytest.raises(DL4FileExistsError):
        atomic_write(tmp_path / "a", lambda t: t.write_text("2"))
    assert (tmp_path / "a").read_text() == "1" and _leftovers(tmp_path) == []


def test_missing_folder(tmp_path, small_map):
    with pytest.raises(DL4FileNotFoundError, match="folder"):
        to_netcdf(small_map, tmp_path / "no" / "a.nc")


# --------------------------------------------------------------------------------------
# modes and names


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_file_mode_follows_umask(tmp_path, small_map, umask, mode):
    old = os.umask(umask)
    try:
        to_netcdf(small_map, tmp_path / "a.nc")
        to_gadf(small_map, tmp_path / "a.fits")
    finally:
        os.umask(old)
    for name in ("a.nc", "a.fits"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode


def test_overwrite_keeps_mode(tmp_path, small_map):
    path = tmp_path / "a.fits"
    to_gadf(small_map, path)
    os.chmod(path, 0o640)
    to_gadf(small_map, path, overwrite=True)
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("suffix", [".nc", ".fits", ".fits.gz", "-ogip.fits"])
def test_243_character_file_name(tmp_path, spec, suffix):
    name = "x" * (243 - len(suffix)) + suffix
    if suffix == "-ogip.fits":
        name = "x" * (243 - len(suffix) - 4) + suffix  # its "_arf" companion: 243
        to_ogip(spec, tmp_path / name)
    elif suffix == ".nc":
        to_netcdf(spec, tmp_path / name)
    else:
        to_gadf(spec, tmp_path / name)
    assert len(max((p.name for p in tmp_path.iterdir()), key=len)) == 243
    assert xdl4.open_dataset(tmp_path / name).dl4.kind == "spectrum_onoff"
    assert _leftovers(tmp_path) == []


def test_temporary_names_fit_and_are_clear(tmp_path):
    tmp = util.temporary_name(tmp_path / ("é" * 127))  # 254 bytes in UTF-8
    assert len(tmp.name.encode()) <= 255 and util.TMP_TAG in tmp.name
    assert tmp.name.startswith(".é")


# --------------------------------------------------------------------------------------
# nothing left behind


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failed_write_leaves_nothing(tmp_path, error):
    def write(tmp):
        tmp.write_bytes(b"x" * 100_000)
        raise error("stop")

    with pytest.raises(error):
        atomic_write(tmp_path / "a.fits", write)
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_removed(tmp_path, small_map):
    old = tmp_path / ".a.nc.xdl4-tmp-deadbeef"
    fresh = tmp_path / ".a.nc.xdl4-tmp-feedbeef"
    other = tmp_path / ".b.nc.xdl4-tmp-0badf00d"
    for p in (old, fresh, other):
        p.write_bytes(b"partial")
    two_days = time.time() - 2 * 86400
    os.utime(old, (two_days, two_days))
    os.utime(other, (two_days, two_days))
    to_netcdf(small_map, tmp_path / "a.nc")
    assert not old.exists() and fresh.exists() and other.exists()  # only a.nc's, only stale
    assert remove_stale_temporaries(tmp_path) == [other]
    assert remove_stale_temporaries(tmp_path, older_than=0) == [fresh]


# --------------------------------------------------------------------------------------
# all or nothing


def test_ogip_set_refused_as_a_whole(tmp_path, spec):
    rmf = companion_paths(tmp_path / "s.fits")["rmf"]
    rmf.write_text("keep me")
    with pytest.raises(DL4FileExistsError, match="s_rmf.fits"):
        to_ogip(spec, tmp_path / "s.fits")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s_rmf.fits"]
    assert rmf.read_text() == "keep me"


def test_ogip_overwrite_rolled_back_when_a_commit_fails(tmp_path, spec, monkeypatch):
    """The RMF cannot be replaced: the new PHA/ARF/BKG already committed are rolled back
    to the old files (was: a new PHA/ARF/BKG beside the old RMF)."""
    paths = to_ogip(spec, tmp_path / "s.fits")
    before = {p.name: p.read_bytes() for p in paths}
    commit = util.commit

    def failing(tmp, path, overwrite):
        if path.name.endswith("_rmf.fits"):
            raise PermissionError(13, "read-only", str(path))
        commit(tmp, path, overwrite)

    monkeypatch.setattr(util, "commit", failing)
    changed = spec.assign(counts=spec.counts + 1)
    with pytest.raises(PermissionError):
        to_ogip(changed, tmp_path / "s.fits", overwrite=True)
    assert {p.name: p.read_bytes() for p in paths} == before
    assert _leftovers(tmp_path) == []


def test_write_all_validates_every_target_first(tmp_path):
    (tmp_path / "b").write_text("old")
    with pytest.raises(DL4FileExistsError):
        write_all([(tmp_path / "a", lambda t: t.write_text("a")),
                   (tmp_path / "b", lambda t: t.write_text("b"))])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_write_datasets_invalid_second_dataset_writes_nothing(tmp_path, small_map):
    bad = small_map.assign(counts=-small_map.counts - 1).assign_attrs(name="bad")
    tree = xr.DataTree.from_dict({"/good": small_map.assign_attrs(name="good"), "/bad": bad})
    with pytest.raises(DL4ValidationError, match="bad"):
        write_datasets(tree, tmp_path / "index.yaml")
    assert list(tmp_path.iterdir()) == []


def test_write_datasets_same_file_for_two_names(tmp_path, small_map):
    tree = xr.DataTree.from_dict({"/a b": small_map, "/a_b": small_map})  # node names
    with pytest.raises(FormatError, match="a_b.fits"):
        write_datasets(tree, tmp_path / "index.yaml")
    assert list(tmp_path.iterdir()) == []


def test_write_datasets_round_trip_all_committed(tmp_path, small_map):
    tree = xr.DataTree.from_dict({"/a": small_map.assign_attrs(name="a"),
                                  "/b": small_map.assign_attrs(name="b")})
    write_datasets(tree, tmp_path / "index.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fits", "b.fits", "index.yaml"]
    with pytest.raises(DL4FileExistsError):
        write_datasets(tree, tmp_path / "index.yaml", overwrite=False)


def test_models_write_with_covariance_all_or_nothing(tmp_path):
    from xdl4.models import Models, PowerLaw, SkyModel

    m = Models([SkyModel(PowerLaw(), name="src")])
    m.covariance = np.eye(len(m.parameters))
    (tmp_path / "m_covariance.dat").write_text("keep me")
    with pytest.raises(DL4FileExistsError):
        m.write(tmp_path / "m.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_covariance.dat"]
    m.write(tmp_path / "m.yaml", overwrite=True)
    back = xdl4.read_models(tmp_path / "m.yaml")
    np.testing.assert_array_equal(back.covariance, np.eye(len(m.parameters)))


# --------------------------------------------------------------------------------------
# checksums


def test_fits_checksums_on_every_hdu(tmp_path, spec, small_map, examples):
    files = [to_gadf(small_map, tmp_path / "m.fits.gz"),
             *to_ogip(spec, tmp_path / "s.fits"),
             to_flux_points_fits(examples["flux_points"], tmp_path / "fp.fits")]
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # astropy warns on a checksum mismatch
            with fits.open(path, checksum=True) as hdul:
                for hdu in hdul:
                    hdu.data  # noqa: B018
                    assert "CHECKSUM" in hdu.header and "DATASUM" in hdu.header, path
    to_gadf(small_map, tmp_path / "plain.fits", checksum=False)
    with fits.open(tmp_path / "plain.fits") as hdul:
        assert not any("CHECKSUM" in h.header for h in hdul)


def test_netcdf_checksums_on_every_array(tmp_path, small_map):
    to_netcdf(small_map, tmp_path / "a.nc")
    with netCDF4.Dataset(tmp_path / "a.nc") as nc:
        arrays = [v for v in nc.variables.values() if v.ndim and v.dtype.kind in "biuf"]
        assert arrays and all(v.filters()["fletcher32"] for v in arrays)
        assert "xdl4_checksums" in nc.groups["xdl4"].ncattrs()  # out of xarray's sight
    to_netcdf(small_map, tmp_path / "b.nc", checksum=False)
    with netCDF4.Dataset(tmp_path / "b.nc") as nc:
        assert not any(v.filters()["fletcher32"] for v in nc.variables.values() if v.ndim)
        assert "xdl4" not in nc.groups and "xdl4_checksums" not in nc.ncattrs()
    xr.testing.assert_identical(xdl4.open_dataset(tmp_path / "a.nc"),
                                xdl4.open_dataset(tmp_path / "b.nc"))


# --------------------------------------------------------------------------------------
# round-off negatives: what reads can be written back


@pytest.mark.parametrize("fmt", ["gadf", "netcdf", "ogip"])
def test_roundoff_negatives_written_back_unchanged(tmp_path, fmt):
    if fmt == "ogip":
        ds = xdl4.examples.spectrum_dataset(onoff=True)
        ds["exposure"] = ds.exposure.copy(data=ds.exposure.values.copy())
        ds.exposure.values[0] = -8e-9  # 1e-10 of 1.8e9 cm2 s is 0.18
        var = "exposure"
    else:
        ds = xdl4.examples.spectrum_dataset()
        ds["background"] = ds.background.copy(data=ds.background.values.copy())
        ds.background.values[3] = -8e-18
        var = "background"
    path = tmp_path / ("a.nc" if fmt == "netcdf" else "a.fits")
    {"gadf": to_gadf, "netcdf": to_netcdf, "ogip": to_ogip}[fmt](ds, path)
    back = xdl4.open_dataset(path)
    assert float(back[var].min()) < 0
    np.testing.assert_allclose(back[var].values, ds[var].values, rtol=1e-15, atol=0)


@pytest.mark.parametrize("fmt", ["gadf", "netcdf", "ogip"])
def test_real_negatives_refused_by_every_writer(tmp_path, fmt):
    ds = xdl4.examples.spectrum_dataset(onoff=fmt == "ogip")
    ds = ds.assign(counts=ds.counts.where(ds.energy != ds.energy[2], -3.0))
    writer = {"gadf": to_gadf, "netcdf": to_netcdf, "ogip": to_ogip}[fmt]
    with pytest.raises(DL4ValidationError, match="counts has negative values"):
        writer(ds, tmp_path / "a.fits")
    assert list(tmp_path.iterdir()) == []
