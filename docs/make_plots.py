"""Make the figures of docs/plots.md from the shared data.

    XDL4_DATA=/path/to/data python docs/make_plots.py [output folder, default docs/images]

Every figure is one call of ``xdl4.plot`` (or ``ds.dl4.plot``); tests/test_docs.py runs
this script into a temporary folder.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import xarray as xr

import xdl4
from xdl4.models import Models, SkyModel

DPI = 80
MAP_REGION = "icrs;circle(83.63,22.01,0.2)"


def _save(obj, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = obj if hasattr(obj, "savefig") else obj.figure
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def make(out: Path, data: Path) -> list[Path]:
    """Draw every figure into ``out``; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    out.mkdir(parents=True, exist_ok=True)
    g = data / "gammapy"
    made = []

    def save(obj, name):
        made.append(_save(obj, out / f"{name}.png"))

    # -- the shared map dataset: look, fit, diagnose ---------------------------------------
    ds = xdl4.open_dataset(g / "map_dataset.fits.gz")
    models = xdl4.read_models(g / "map_dataset_models.yaml")
    # the covariance (HESSE) at the models' values, the ones the data were simulated from:
    # a full MIGRAD would triple the time of this script for the same figures
    result = xdl4.fit(ds, models, optimize=False)
    save(ds.dl4.plot.peek(), "map_peek")
    save(ds.dl4.plot.image("sqrt_ts", smooth=0.1), "map_sqrt_ts")
    save(ds.dl4.plot.residuals(models, region=MAP_REGION), "map_residuals")
    point = Models([models["point"]])  # the 1D view: the point source in its circle
    spec = ds.dl4.to_region(MAP_REGION, containment_correction=True)
    save(spec.dl4.plot.fit(point), "map_fit")
    ax = None
    for name in ("point", "gauss", "disk"):
        ax = xdl4.plot.spectrum(models[name], (0.5, 100), result=result, ax=ax)
    ax.legend(fontsize="small")
    ax.set_title("map dataset: spectra with 1σ bands (HESSE covariance)", fontsize="medium")
    save(ax, "map_sed")
    save(ds.dl4.plot.masks(), "map_masks")
    save(ds.dl4.plot.psf(), "map_psf")
    save(ds.dl4.plot.edisp(), "map_edisp")
    save(ds.dl4.plot.exposure(), "map_exposure")
    runs = xr.concat([xdl4.open_dataset(g / "stack" / f"run{i}.fits.gz") for i in range(3)],
                     "obs")
    save(runs.dl4.plot.stacking(models), "map_stacking")

    # -- the shared OGIP on/off spectrum --------------------------------------------------
    onoff = xdl4.open_dataset(g / "spectrum_onoff" / "pha_sonoff.fits")
    pl = Models([SkyModel(xdl4.models.PowerLaw(index=2.3, amplitude=4e-11), name="crab")])
    pl_result = xdl4.fit(onoff, pl)
    save(onoff.dl4.plot.peek(), "onoff_peek")
    save(onoff.dl4.plot.residuals(pl), "onoff_residuals")
    save(onoff.dl4.plot.fit(pl), "onoff_fit")
    ax = xdl4.plot.spectrum(pl["crab"], (0.56, 100), result=pl_result)
    ax.set_title("on/off spectrum: fitted power law with its 1σ band", fontsize="medium")
    ax.legend(fontsize="small")
    save(ax, "onoff_sed")
    sons = xr.concat([xdl4.open_dataset(g / "stack" / f"son{i}.fits") for i in range(3)],
                     "obs")
    save(sons.dl4.plot.stacking(pl), "onoff_stacking")

    # -- flux points and a light curve ---------------------------------------------------------
    hess = xdl4.open_dataset(data / "estimators" / "crab_hess_fp" / "crab_hess_fp.fits")
    hess_models = xdl4.read_models(data / "estimators" / "crab_hess_fp" / "models.yaml")
    hess_result = xdl4.fit(hess, hess_models)
    save(hess.dl4.plot.sed(hess_models, result=hess_result), "hess_sed")
    save(hess.dl4.plot.fit(hess_models, result=hess_result), "hess_fit")
    hawc = xdl4.open_dataset(data / "hawc" / "crab_flux" / "HAWC19_flux_points.fits")
    save(hawc.dl4.plot.sed(), "hawc_sed")
    lc = xdl4.open_dataset(Path(__file__).parent.parent / "tests" / "data" / "lc_dnde.fits")
    save(lc.dl4.plot.sed(), "lightcurve")
    return made


def main(argv: list[str]) -> None:
    data = os.environ.get("XDL4_DATA")
    if not data:
        sys.exit("set XDL4_DATA to the shared data folder")
    out = Path(argv[0]) if argv else Path(__file__).parent / "images"
    t0 = time.perf_counter()
    for path in make(out, Path(data)):
        print(path)
    print(f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
