"""Build the example notebooks from the cells below and run them (outputs saved):

    XDL4_DATA=../shared/data python examples/make_notebooks.py [NAME ...]

The notebooks are committed with their outputs; ``tests/test_notebooks.py`` runs them top
to bottom on the shared data. Edit the cells here, then rebuild.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent

def setup(*imports: str) -> str:
    """The first code cell: imports and where the shared data are."""
    lines = "\n".join(imports)
    return f'''import os
from pathlib import Path

{lines}

import xdl4

# the shared real files (gammapy-written datasets, instrument flux points)
DATA = Path(os.environ.get("XDL4_DATA", "../../shared/data"))
os.environ.setdefault("GAMMAPY_DATA", str(DATA))  # the Fermi diffuse template path'''


PLT, NP = "import matplotlib.pyplot as plt", "import numpy as np"

NOTEBOOKS = {
    "map_analysis": [
        "# A 3D map analysis\n\nA gammapy-written `MapDataset` (three sources and a FoV "
        "background), opened as an `xarray.Dataset`: look at it, fit its models, check the "
        "residuals, then estimate flux points, an excess map and a TS map.",
        setup(NP),
        "## The dataset\n\nOne call opens it; `ds.dl4` summarises it (kind, statistic, "
        "energy ranges, grid, counts and significance).",
        'ds = xdl4.open_dataset(DATA / "gammapy" / "map_dataset.fits.gz")\nds.dl4',
        "ds.dl4.plot.peek();",
        "## Models and the fit",
        'models = xdl4.read_models(DATA / "gammapy" / "map_dataset_models.yaml")\nmodels',
        "result = xdl4.fit(ds, models)\nresult",
        "## Residuals\n\nThe spatial residual map (significance of the smoothed difference) "
        "and the spectral residuals in a region around the point source.",
        'ds.dl4.plot.residuals(models, region="icrs;circle(83.63,22.01,0.3)");',
        "## Spectra with their errors\n\nThe fitted point-source spectrum with its error "
        "band, propagated from the fit covariance.",
        'xdl4.plot.spectrum(models["point"], (0.5, 100), result=result);',
        "## Flux points\n\nIn each energy bin the point source's norm is fitted (the other "
        "parameters fixed, as gammapy's default); the likelihood profiles are kept.",
        'fp = xdl4.flux_points(ds, models, "point", energy_edges=np.geomspace(0.6, 60, 6))\n'
        'fp[["norm", "norm_err", "ts", "is_ul"]].to_dataframe()',
        'ax = fp.dl4.plot.sed(models=models["point"], result=result)',
        "## Excess, significance and TS maps",
        "excess = ds.dl4.excess_map(0.1)\n"
        'ds.dl4.plot.image(excess["sqrt_ts"]);',
        "others = xdl4.models.Models([m for m in models if m.name != \"point\"])\n"
        "ts = ds.dl4.ts_map(models=others)  # where would a new point source be?\n"
        'ds.dl4.plot.image(ts["sqrt_ts"]);',
        "## A spectrum in a region\n\nThe map reduced to an on-region (gammapy's "
        "`to_spectrum_dataset`), data against the model with residuals below.",
        'spec = ds.dl4.to_region("icrs;circle(83.63,22.01,0.2)", containment_correction=True)\n'
        'spec.dl4.plot.fit(models, result=result);',
    ],
    "joint_spectral_fit": [
        "# A joint fit of several instruments\n\nThe Crab Nebula seen by Fermi-LAT (a 3FHL "
        "map dataset), H.E.S.S. (flux points with likelihood profiles) and HAWC (flux "
        "points): one log-parabola fitted to all three at once, each dataset with its own "
        "statistic (cash, likelihood profile, chi2).",
        setup(PLT, NP),
        "## The datasets",
        'fermi = xdl4.open_datasets(DATA / "fermi-3fhl-crab" / "Fermi-LAT-3FHL_datasets.yaml")\n'
        'fermi = fermi["Fermi-LAT"].to_dataset()\n'
        'hess = xdl4.open_dataset(DATA / "estimators" / "crab_hess_fp" / "crab_hess_fp.fits")\n'
        'hawc = xdl4.open_dataset(DATA / "hawc" / "crab_flux" / "HAWC19_flux_points.fits")\n'
        "datasets = [fermi, hess, hawc]\n"
        "xdl4.summary(datasets).to_dataframe()",
        "fermi.dl4",
        "## One model for all\n\nA point source with a log-parabola; the Fermi dataset "
        "also gets its FoV background model.",
        "from xdl4.models import FoVBackgroundModel, LogParabola, Models, "
        "PointSpatialModel, SkyModel\n\n"
        'crab = SkyModel(LogParabola(amplitude=3.5e-11, reference=1.0, alpha=2.5, beta=0.1),\n'
        '                PointSpatialModel(lon_0=83.6331, lat_0=22.0199, frame="icrs"),\n'
        '                name="crab")\n'
        'models = Models([crab, FoVBackgroundModel("Fermi-LAT")])\n'
        'models.freeze("spatial")  # the position is known\n'
        "models",
        "result = xdl4.fit(datasets, models)\nresult",
        "result.correlation.plot(cmap=\"RdBu_r\", vmin=-1, vmax=1);",
        "## The SED of three instruments\n\nFlux points estimated from the Fermi-LAT map "
        "(xdl4's estimator), the published H.E.S.S. and HAWC points, and the joint model "
        "with its error band.",
        'edges = np.geomspace(0.01, 2, 5)\n'
        'fermi_fp = xdl4.flux_points(fermi, models, "crab", energy_edges=edges)\n'
        'fig, ax = plt.subplots(figsize=(7, 5))\n'
        'for fp, label in [(fermi_fp, "Fermi-LAT"), (hess, "H.E.S.S."), (hawc, "HAWC")]:\n'
        '    fp.dl4.plot.sed(ax=ax, label=label, profiles=False)\n'
        'xdl4.plot.spectrum(crab, (0.01, 200), result=result, ax=ax)\n'
        'ax.legend();',
        "## Each instrument's share of the statistic, and a contour",
        "xdl4.Likelihood(datasets, models).stat_per_dataset()",
        'contour = xdl4.stat_contour(datasets, models, "crab.alpha", "crab.beta", npoints=12)\n'
        "xdl4.fitting.plot_contour(contour);",
    ],
    "many_runs": [
        "# Many runs\n\nThree runs on one grid are one dataset along `obs`, labelled by their "
        "names. Look at them run by run (gammapy's `info_table`), stack them, see that "
        "stacking conserves the predicted counts, stack runs by group and fit the stacks "
        "jointly, and make a light curve.",
        setup(PLT),
        'runs = xdl4.open_dataset(DATA / "gammapy" / "stack" / "run*.fits.gz")\nruns.dl4',
        "## One row per run",
        "runs.dl4.info_table().to_dataframe()",
        "cumulative = runs.dl4.info_table(cumulative=True)\n"
        'plt.plot(cumulative.livetime / 3600, cumulative.sqrt_ts, "o-")\n'
        'plt.xlabel("Livetime [h]")\n'
        'plt.ylabel("sqrt(TS)");',
        "### gammapy's numbers to the last digit\n\ngammapy stacks into float32 maps, so "
        "its cumulative table carries float32 "
        "rounding; `dtype=\"float32\"` replays that and gives gammapy's numbers to the "
        "last digit. The difference from xdl4's float64 table:",
        'float32 = runs.dl4.info_table(cumulative=True, dtype="float32")\n'
        '(float32[["background", "sqrt_ts"]] / cumulative[["background", "sqrt_ts"]] - 1)'
        '.to_dataframe()',
        "### With models\n\ngammapy folds models with float32 PSF kernels and float32 FFT "
        "convolutions on a cutout around each source; `dtype=\"float32\"` replays that "
        "too (its per-run table with models to the last digit). The difference from "
        "xdl4's float64 folding:",
        'models = xdl4.read_models(DATA / "gammapy" / "map_dataset_models.yaml")\n'
        "with_models = runs.dl4.info_table(models=models)\n"
        'replayed = runs.dl4.info_table(models=models, dtype="float32")\n'
        '(replayed[["npred", "stat_sum"]] / with_models[["npred", "stat_sum"]] - 1)'
        ".to_dataframe()",
        "## Stacking",
        'runs.sel(obs="run1").dl4',
        "stacked = runs.dl4.stack(name=\"stacked\")\nstacked.dl4.plot.peek();",
        "sources = xdl4.models.Models([m for m in models if not m.name.endswith(\"-bkg\")])\n"
        "runs.dl4.plot.stacking(sources);",
        "## Stack similar runs, then fit the stacks jointly\n\nHere the runs are grouped "
        "by a label along `obs` (in practice: zenith or offset bins).",
        'grouped = runs.assign_coords(wobble=("obs", ["A", "A", "B"]))\n'
        'stacks = grouped.dl4.stack(groupby="wobble")\nstacks.dl4',
        "result = xdl4.fit(stacks, sources)\nresult",
        "## A light curve: flux points per run",
        'lc = xdl4.light_curve(runs, sources, "point", energy_edges=[1, 10])\n'
        'lc[["norm", "norm_err"]].to_dataframe()',
        "lc.dl4.plot.sed();",
    ],
}


def build(name: str) -> Path:
    cells = [nbformat.v4.new_markdown_cell(c) if c.startswith("#") else
             nbformat.v4.new_code_cell(c) for c in NOTEBOOKS[name]]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    path = HERE / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend: figures in the outputs
    for name in sys.argv[1:] or NOTEBOOKS:
        print("wrote", build(name))
