"""xdl4 quickstart: build, look, predict, fit, stack, save — on the built-in examples.

    python examples/quickstart.py [OUTPUT_FOLDER]

No downloads; runs in a few seconds.
"""

import sys
import tempfile
from pathlib import Path

import xarray as xr

import xdl4
from xdl4.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLaw, SkyModel


def main(out: Path) -> None:
    # 1. a dataset is an xarray.Dataset; the DL4 behaviour is in the .dl4 accessor
    ds = xdl4.examples.map_dataset(seed=1)
    print(ds.dl4.kind, dict(ds.counts.sizes), ds.dl4.energy_edges[[0, -1]])
    ds.dl4.validate()
    print("counts in the safe range:", ds.dl4.info()["counts"])

    # 2. plain xarray keeps working and keeps valid DL4
    cut = ds.isel(lon=slice(15, 45), lat=slice(15, 45)).sel(energy=slice(0.3, 30))
    cut.dl4.validate()
    print("cut-out grid:", cut.dl4.grid.shape, "energies:", cut.sizes["energy"])

    # 3. models, predicted counts and the likelihood
    models = Models([
        SkyModel(PowerLaw(index=2.0, amplitude=1e-11),
                 PointSpatialModel(lon_0=83.7, lat_0=22.0), name="crab"),
        FoVBackgroundModel(ds.dl4.name),
    ])
    print("npred before the fit:", float(ds.dl4.npred(models).sum()))
    print("cash before the fit:", ds.dl4.stat_sum(models))

    # 4. fit (MIGRAD + HESSE); values and errors are written back into the models
    result = xdl4.fit(ds, models)
    print(result)

    # 5. many runs: a run is a coordinate, stacking is a reduction over it
    runs = xr.concat([xdl4.examples.spectrum_dataset(seed=s, onoff=True) for s in range(4)],
                     "obs")
    stacked = runs.dl4.stack()
    print("stacked livetime:", float(stacked.livetime), "s; counts:",
          float(stacked.counts.sum()))
    joint = xdl4.fit(runs, Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11),
                                            name="crab")]))
    print("joint fit of 4 runs, index =",
          float(joint.parameters["value"].sel(parameter="crab.index")))

    # 6. files: NetCDF (native), GADF FITS as gammapy writes it, models YAML
    ds.dl4.to_netcdf(out / "map.nc", overwrite=True)
    ds.dl4.to_gadf(out / "map.fits", overwrite=True)
    models.write(out / "models.yaml", overwrite=True)
    back = xdl4.open_dataset(out / "map.fits")
    print("GADF round trip counts equal:", bool((back.counts == ds.counts).all()))


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    folder.mkdir(parents=True, exist_ok=True)
    main(folder)
    print("files in", folder)
