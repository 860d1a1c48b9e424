"""The README's main job: ``xdl4 demo`` fits the built-in example and writes its files."""

import xdl4
from xdl4.cli import main


def test_demo_fits_and_writes(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "FitResult(success=True" in out
    ds = xdl4.open_dataset(tmp_path / "example_map.nc")
    assert ds.dl4.kind == "map"
    models = xdl4.read_models(tmp_path / "example_models.yaml")
    index = models.parameters["crab.index"]
    assert abs(index.value - 2.5) < 4 * index.error  # the truth of the example
    assert (tmp_path / "example_fit.png").stat().st_size > 10_000


def test_info_command(tmp_path, capsys):
    xdl4.examples.spectrum_dataset().dl4.to_netcdf(tmp_path / "s.nc")
    assert main(["info", str(tmp_path / "s.nc")]) == 0
    out = capsys.readouterr().out
    assert "<xdl4 spectrum dataset 'example-spectrum' (cash)>" in out and "n_fit_bins" in out
    assert "ontime" not in out  # the summary; --full adds every info_dict field
    assert main(["info", "--full", str(tmp_path / "s.nc")]) == 0
    assert "gammapy's info_dict" in capsys.readouterr().out


def test_quickstart_example_runs(tmp_path, capsys):
    import runpy
    from pathlib import Path

    script = Path(__file__).parent.parent / "examples" / "quickstart.py"
    module = runpy.run_path(str(script))
    module["main"](tmp_path)
    out = capsys.readouterr().out
    assert "GADF round trip counts equal: True" in out
    assert (tmp_path / "map.nc").exists() and (tmp_path / "models.yaml").exists()
