"""stack_files: bounded-memory fold of runs on disk, errors naming the run, atomic output,
the CLI, and a small dask.distributed cluster."""

import numpy as np
import pytest

import xdl4
from xdl4.cli import main
from xdl4.stack import stack
from xdl4.streaming import RunReadError, stack_files


@pytest.fixture
def run_paths(tmp_path):
    paths = []
    for seed in range(5):
        path = tmp_path / f"run{seed}.nc"
        ds = xdl4.examples.spectrum_dataset(seed, onoff=True).assign_attrs(name=f"run{seed}")
        ds.dl4.to_netcdf(path)  # distinct names: stack_files refuses a run given twice
        paths.append(path)
    return paths


def _expected(paths):
    out = xdl4.open_dataset(paths[0])
    for p in paths[1:]:
        out = stack(out, xdl4.open_dataset(p))
    return out


def _assert_same(a, b):
    for name in b.data_vars:
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("npartitions", [1, 2, 5])
def test_stack_files_equals_pairwise(run_paths, npartitions):
    out = stack_files(run_paths, progress=False, npartitions=npartitions)
    _assert_same(out, _expected(run_paths))
    assert out.attrs["name"] == "stacked"


def test_bad_run_is_named_and_nothing_written(run_paths, tmp_path):
    bad = tmp_path / "broken.nc"
    bad.write_bytes(b"CDF\x01 not really")
    output = tmp_path / "out.nc"
    with pytest.raises(RunReadError, match="broken.nc"):
        stack_files([*run_paths, bad], progress=False, output=output)
    assert not output.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.nc")]


def test_existing_output_is_kept(run_paths, tmp_path):
    output = tmp_path / "out.nc"
    output.write_text("keep me")
    with pytest.raises(FileExistsError):
        stack_files(run_paths, progress=False, output=output)
    assert output.read_text() == "keep me"


def test_cli_stack(run_paths, tmp_path, capsys):
    output = tmp_path / "stacked.nc"
    assert main(["stack", *map(str, run_paths), "-o", str(output), "-q"]) == 0
    assert "stacked 5 runs" in capsys.readouterr().out
    _assert_same(xdl4.open_dataset(output), _expected(run_paths))
    assert main(["stack", *map(str, run_paths), "-o", str(output), "-q"]) == 1
    assert "exists; pass overwrite=True" in capsys.readouterr().err
    assert main(["stack", *map(str, run_paths[:2]), "-o", str(output), "-q",
                 "--overwrite"]) == 0


def test_stack_files_on_local_cluster(run_paths):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        out = stack_files(run_paths, client=client, progress=False)
    _assert_same(out, _expected(run_paths))


def test_stack_files_gadf_output_keeps_irf_units(data_dir, tmp_path):
    """The CLI's --format gadf path: the stacked IRFs keep their units (an exposure-weighted
    mean), the file validates and reads back."""
    runs = [str(data_dir / "gammapy" / "stack" / f"run{i}.fits.gz") for i in range(3)]
    out = tmp_path / "stacked.fits"
    assert main(["stack", *runs, "-o", str(out), "--format", "gadf", "-q"]) == 0
    back = xdl4.open_dataset(out).dl4.validate()
    run0 = xdl4.open_dataset(runs[0])
    assert back.psf.attrs.get("units") == run0.psf.attrs.get("units")
    assert back.edisp.attrs.get("units") == run0.edisp.attrs.get("units")  # dimensionless
    assert float(back.livetime) == pytest.approx(12600.0)
