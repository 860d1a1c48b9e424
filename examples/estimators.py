"""xdl4 estimators on the built-in examples: an SED, a light curve, significance and TS maps.

    python examples/estimators.py [OUTPUT_FOLDER]

No downloads; writes the flux points and the light curve as gammapy's FITS, and (with
matplotlib) a PNG of the SED and of the significance and TS maps.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import xdl4
from xdl4.models import Models, PowerLaw, SkyModel


def main(out: Path) -> None:
    models = Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), name="crab")])

    # 1. flux points in 6 energy bins: norms, errors, ULs, TS and likelihood scans at once
    spec = xdl4.examples.spectrum_dataset(onoff=True)
    fp = xdl4.flux_points(spec, models, "crab", energy_edges=np.geomspace(0.3, 30, 7))
    dnde = fp["norm"] * fp["ref_dnde"]
    for e, v, ts in zip(fp["energy"].values, dnde.values, fp["ts"].values, strict=True):
        print(f"E = {e:6.2f} TeV  dN/dE = {v:.3e} cm-2 s-1 TeV-1  TS = {ts:8.1f}")
    fp.dl4.to_gadf(out / "sed.fits", overwrite=True)

    # 2. a light curve over 4 runs (one bin per run GTI)
    attrs = {"units": "s", "mjdrefi": 51544, "mjdreff": 0.0, "timesys": "tt"}
    runs = [xdl4.examples.spectrum_dataset(seed=i, onoff=True, name=f"run{i}").assign(
        gti_start=("gti", [7200.0 * i], attrs), gti_stop=("gti", [7200.0 * i + 3600], attrs))
        for i in range(4)]
    lc = xdl4.light_curve(runs, models, "crab", energy_edges=[0.3, 30])
    print("light-curve norms:", np.round(lc["norm"].values.ravel(), 3))
    lc.dl4.to_gadf(out / "light_curve.fits", overwrite=True)

    # 3. significance and TS maps of the example map dataset
    ds = xdl4.examples.map_dataset()
    excess = ds.dl4.excess_map("0.2 deg")
    ts = ds.dl4.ts_map()
    print("peak significance:", float(excess["sqrt_ts"].max()),
          "peak sqrt(TS):", float(ts["sqrt_ts"].max()))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ok = ~fp["is_ul"].values
    e = fp["energy"].values
    axes[0].errorbar(e[ok], dnde.values[ok] * e[ok] ** 2,
                     yerr=[(fp["norm_errn"] * fp["ref_dnde"]).values[ok] * e[ok] ** 2,
                           (fp["norm_errp"] * fp["ref_dnde"]).values[ok] * e[ok] ** 2],
                     fmt="o")
    axes[0].set(xscale="log", yscale="log", xlabel="E [TeV]", ylabel="E2 dN/dE")
    excess["sqrt_ts"].isel(energy=0).plot(ax=axes[1])
    ts["sqrt_ts"].isel(energy=0).plot(ax=axes[2])
    fig.tight_layout()
    fig.savefig(out / "estimators.png")


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    main(folder)
    print("files in", folder)
