"""Catalogue, STACKING INPUTS and CLI categories: runs given twice are refused unless
asked for, one run takes the path of many (no spawned re-import of the user's script);
the command line prints one line per error, exits 1 (2 for usage, 130 on ^C), leaves no
partial output, and shows the traceback with --debug."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import xdl4
from xdl4 import RunReadError, StackError
from xdl4.cli import main
from xdl4.streaming import stack_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    paths = []
    for seed in range(3):
        path = folder / f"run{seed}.nc"
        ds = xdl4.examples.spectrum_dataset(seed, onoff=True).assign_attrs(name=f"run{seed}")
        ds.dl4.to_netcdf(path)
        paths.append(path)
    return paths


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}


# --------------------------------------------------------------------------------------
# stacking inputs


def test_same_path_twice(runs):
    with pytest.raises(StackError, match="run0.nc.*given twice"):
        stack_files([runs[0], runs[1], runs[0]], progress=False)


def test_same_file_through_a_symlink_and_a_hard_link(runs, tmp_path):
    (tmp_path / "sym.nc").symlink_to(runs[0])
    os.link(runs[0], tmp_path / "hard.nc")
    for other in ("sym.nc", "hard.nc"):
        with pytest.raises(StackError, match="given twice"):
            stack_files([runs[0], tmp_path / other], progress=False)


def test_same_dataset_name_in_two_files(runs, tmp_path):
    copy = tmp_path / "copy.nc"
    copy.write_bytes(runs[1].read_bytes())
    with pytest.raises(StackError, match="both named 'run1'"):
        stack_files([runs[0], runs[1], copy], progress=False, scheduler="synchronous")


def test_allow_duplicates_on_purpose(runs):
    once = stack_files([runs[0]], progress=False)
    twice = stack_files([runs[0], runs[0]], progress=False, allow_duplicates=True)
    assert float(twice.livetime) == 2 * float(once.livetime)
    assert float(twice.counts.sum()) == 2 * float(once.counts.sum())


def test_runs_of_another_kind_are_named_by_file(runs, tmp_path):
    other = tmp_path / "map.nc"
    xdl4.examples.map_dataset(width=1.0, binsz=0.1).dl4.to_netcdf(other)
    with pytest.raises(StackError, match=r"cannot stack map\.nc onto run0\.nc, run1\.nc: "
                       "cannot stack a 'map' dataset onto a 'spectrum_onoff'"):
        stack_files([*runs[:2], other], scheduler="synchronous")


def test_one_path_not_in_a_list(runs):
    with pytest.raises(StackError, match="list of run files"):
        stack_files(str(runs[0]), progress=False)


def test_no_runs():
    with pytest.raises(StackError, match="at least one run"):
        stack_files([], progress=False)


def test_missing_run_fails_before_any_work(runs, tmp_path):
    with pytest.raises(RunReadError, match="gone.nc.*not found"):
        stack_files([*runs, tmp_path / "gone.nc"], progress=False)


def test_output_is_one_of_the_runs(runs, tmp_path):
    out = tmp_path / "r.nc"
    out.write_bytes(runs[0].read_bytes())
    with pytest.raises(StackError, match="output.*is one of the runs"):
        stack_files([out, runs[1]], output=out, overwrite=True, progress=False)


@pytest.mark.parametrize("kwargs, match", [({"format": "hdf"}, "format"),
                                           ({"scheduler": "spawn"}, "scheduler")])
def test_bad_options(runs, kwargs, match):
    with pytest.raises(StackError, match=match):
        stack_files(runs, progress=False, **kwargs)


def test_one_run_same_path_as_many(runs, monkeypatch):
    """One run: the stacked result is the run's own terms, no worker process involved."""
    import xdl4.streaming

    def no_pool(*args, **kwargs):
        raise AssertionError("a worker pool was started for one run")

    monkeypatch.setattr(xdl4.streaming.mp, "get_context", no_pool)
    out = stack_files([runs[2]], progress=False)
    ds = xdl4.open_dataset(runs[2])
    alone = ds.dl4.to_masked()  # the run stacked alone: its masked terms
    assert set(out.data_vars) == set(alone.data_vars)
    for name in alone.data_vars:
        np.testing.assert_array_equal(out[name].values, alone[name].values, err_msg=name)
    assert float(out.counts.sum()) == float(ds.counts.where(ds.mask_safe).sum())
    assert "_xdl4_runs" not in out.attrs


def test_script_without_main_guard(runs, tmp_path):
    """A script calling stack_files([one]) at top level (no __main__ guard) runs once
    (was: re-run in a spawned worker, dying with BrokenProcessPool)."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import xdl4
        print("script body ran")
        out = xdl4.stack_files([{str(runs[0])!r}], progress=False)
        print("livetime", float(out.livetime))
        out = xdl4.stack_files({[str(p) for p in runs]!r}, progress=False)
        print("livetime", float(out.livetime))
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("script body ran") == 1
    assert proc.stdout.count("livetime") == 2


# --------------------------------------------------------------------------------------
# CLI


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("xdl4: error: ")
    return err[0]


def test_cli_missing_file(tmp_path, capsys):
    assert main(["info", str(tmp_path / "gone.fits")]) == 1
    assert "gone.fits" in _error_line(capsys)


def test_cli_corrupt_file(runs, tmp_path, capsys):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(runs[0].read_bytes()[:3000])
    assert main(["info", str(bad)]) == 1
    assert "bad.nc" in _error_line(capsys)


def test_cli_existing_output_kept(runs, tmp_path, capsys):
    out = tmp_path / "out.nc"
    out.write_text("keep me")
    assert main(["stack", *map(str, runs), "-o", str(out), "-q"]) == 1
    assert "overwrite" in _error_line(capsys)
    assert out.read_text() == "keep me"


def test_cli_duplicates(runs, tmp_path, capsys):
    out = tmp_path / "out.nc"
    assert main(["stack", str(runs[0]), str(runs[0]), "-o", str(out), "-q"]) == 1
    assert "given twice" in _error_line(capsys)
    assert not out.exists()
    assert main(["stack", str(runs[0]), str(runs[0]), "-o", str(out), "-q",
                 "--allow-duplicates"]) == 0


def test_cli_multi_line_validation_error_is_one_line(tmp_path, capsys):
    ds = xdl4.examples.spectrum_dataset()
    bad = ds.assign(counts=-ds.counts - 1, exposure=-ds.exposure - 1)
    import netCDF4  # noqa: F401 - plain xarray writes what xdl4 would refuse

    bad.to_netcdf(tmp_path / "bad.nc", engine="netcdf4")
    assert main(["stack", str(tmp_path / "bad.nc"), "-o", str(tmp_path / "o.fits"),
                 "--format", "gadf", "-q"]) == 1
    line = _error_line(capsys)
    assert "counts has negative values" in line and "exposure has negative values" in line


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["stack", "a.nc"], ["info", "--bogus"]])
def test_cli_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_cli_debug_shows_traceback(tmp_path, capsys):
    assert main(["--debug", "info", str(tmp_path / "gone.fits")]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "xdl4: error:" in err
    assert main(["info", str(tmp_path / "gone.fits"), "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_cli_warnings_one_line(runs, tmp_path, capsys):
    import numpy as np
    from astropy.io import fits

    xdl4.examples.map_dataset(width=1.0, binsz=0.2).dl4.to_gadf(tmp_path / "m.fits")
    with fits.open(tmp_path / "m.fits") as hdul:
        hdus = [h.copy() for h in hdul] + [fits.ImageHDU(np.zeros(2), name="NOTES")]
    fits.HDUList(hdus).writeto(tmp_path / "m2.fits", checksum=True)
    assert main(["info", str(tmp_path / "m2.fits")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xdl4: warning: ") and "NOTES" in err[0]


def test_cli_interrupt_exits_130_without_output(runs, tmp_path):
    """^C while stacking: one line, status 130, no output and no temporary left."""
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent("""
        import faulthandler, sys, time
        faulthandler.dump_traceback_later(40, exit=True)  # a hang fails with its stacks
        import xdl4.streaming as streaming
        from xdl4.cli import main

        def slow(path, **kwargs):
            print("reading", flush=True)
            time.sleep(60)

        streaming.run_terms = slow
        sys.exit(main(sys.argv[1:]))
    """))
    out = tmp_path / "out.nc"
    proc = subprocess.Popen([sys.executable, str(script), "stack", *map(str, runs), "-o",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    assert proc.stdout.readline().strip() == "reading"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["xdl4: interrupted"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.py"]
