"""Helpers for tests and benchmarks: gammapy's reference cases, set up once.

``reference_case(data_dir, key)`` returns the dataset and models behind each key of
``shared/reference/gammapy_reference.json`` (what each key means is written in that
folder's README), so tests and benchmarks build them the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REFERENCE_KEYS", "reference_case"]

REFERENCE_KEYS = (
    "map_dataset", "map_dataset_onoff", "spectrum_dataset", "spectrum_dataset_onoff",
    "simulated_spectrum_PL", "simulated_spectrum_ECPL", "fermi_3fhl_crab",
    "flux_points_hess", "flux_points_hawc", "map_dataset_fit", "spectrum_dataset_onoff_fit",
    "simulated_spectrum_PL_fit", "simulated_spectrum_ECPL_fit", "flux_points_hess_fit",
    "flux_points_hawc_fit",
)

#: LogParabola starting models of the flux-point cases: file, alpha, amplitude, reference
_FLUX_POINTS = {
    "flux_points_hess": ("estimators/crab_hess_fp/crab_hess_fp.fits", 2.4, 3.5e-11, 1.0),
    "flux_points_hawc": ("hawc/crab_flux/HAWC19_flux_points.fits", 2.8, 2.5e-13, 7.0),
}


def reference_case(data_dir: str | os.PathLike, key: str):
    """(dataset, Models) of a gammapy reference case (fresh models on every call), e.g.
    ``ds, models = reference_case(os.environ["XDL4_DATA"], "map_dataset_fit")``."""
    import xdl4
    from xdl4.models import FoVBackgroundModel, LogParabola, Models, PowerLaw, SkyModel

    data = Path(data_dir)
    base = key.removesuffix("_fit")
    if base in _FLUX_POINTS:
        path, alpha, amplitude, reference = _FLUX_POINTS[base]
        return xdl4.open_dataset(data / path), Models([SkyModel(LogParabola(
            alpha=alpha, beta=0.1, amplitude=amplitude, reference=reference), name="crab")])
    if base.startswith("simulated_spectrum_"):
        sim = data / "datasets/simulations" / f"simulated_spectrum_dataset_{base[19:]}"
        return xdl4.open_dataset(f"{sim}.fits"), xdl4.read_models(f"{sim}_model.yaml")
    if base == "fermi_3fhl_crab":
        folder = data / "fermi-3fhl-crab"
        ds = xdl4.open_dataset(folder / "Fermi-LAT-3FHL_data_Fermi-LAT.fits")
        from xdl4.validation import with_name

        ds = with_name(ds, "Fermi-LAT")  # the name its datasets YAML index gives
        return ds, xdl4.read_models(folder / "Fermi-LAT-3FHL_models.yaml")
    g = data / "gammapy"
    models = xdl4.read_models(g / "map_dataset_models.yaml")
    if key == "map_dataset_fit":
        p = models.parameters
        p["point.index"].value, p["point.amplitude"].value = 2.6, 2e-11
        p["point.lon_0"].value = 83.66
        for label, par in p.items():
            if label.startswith(("gauss.", "disk.")):
                par.frozen = True
    if base == "map_dataset":
        return xdl4.open_dataset(g / "map_dataset.fits.gz"), models
    if key == "map_dataset_onoff":
        return (xdl4.open_dataset(g / "map_dataset_onoff.fits.gz"),
                Models([m for m in models if m.name != "run1-bkg"]))
    if key == "spectrum_dataset":
        ds = xdl4.open_dataset(g / "spectrum_dataset.fits.gz")
        return ds, Models([models["point"], FoVBackgroundModel(ds.dl4.name)])
    if base == "spectrum_dataset_onoff":
        ds = xdl4.open_dataset(g / "spectrum_onoff" / "pha_sonoff.fits")
        if key.endswith("_fit"):  # a new power law (reference README)
            return ds, Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11, reference=1.0),
                                        name="point")])
        return ds, Models([models["point"]])
    raise KeyError(f"no reference case {key!r}; known: {', '.join(REFERENCE_KEYS)}")
