"""Reference numbers of gammapy 2.1's estimators on the shared data, for tests/test_estimators.py.

Run by hand with a gammapy 2.1 interpreter (never by the tests, which never import gammapy):

    XDL4_DATA=/work/shared/data /work/.venv-gammapy/bin/python \
        tests/reference/make_estimator_reference.py [--out tests/reference/estimators_gammapy.json]
        [--files DIR]   # also write gammapy's flux-point / light-curve FITS files there

Cases (models from ``gammapy/map_dataset_models.yaml``, used as they are: no fit first):

* ``fp_onoff``: FluxPointsEstimator on the OGIP on/off spectrum ``spectrum_onoff/pha_sonoff``,
  source ``point`` (its PL), energy edges = the dataset's edges from 0.316 TeV (10 bins; the
  first is outside the safe range), selection errn-errp, ul, scan.
* ``fp_map``: the same on ``map_dataset.fits.gz`` with all its models (3 sources + FoV
  background), source ``point``.
* ``fp_onoff_tight``, ``fp_map_tight``: the same with MIGRAD's tolerance 1e-4 instead of
  gammapy's 0.1 (its default best-fit norms scatter by up to ~0.02 sigma around the
  minimum; the errors and upper limits come from later, tighter re-optimisations).
* ``fp_map_reoptimize``: ``map_dataset`` with the FoV background norm free (everything else
  frozen), ``reoptimize=True``, 3 energy bins, selection errn-errp, ul.
* ``excess_map``: ExcessMapEstimator (0.1 deg, errn-errp + ul) on ``map_dataset`` with only
  the FoV background model (the sources show up), one energy group and two groups.
* ``excess_map_onoff``: the same on ``map_dataset_onoff`` (no models).
* ``ts_map``: TSMapEstimator (default point-source kernel, PL index 2) on ``map_dataset``
  with only the FoV background model, selection errn-errp, ul.
* ``light_curve``: LightCurveEstimator over the three runs of ``gammapy/stack/`` (one bin per
  run), the three sources, source ``point``, energy edges [1, 10] TeV, errn-errp, ul, scan.

Maps are stored with 10 significant digits on every third pixel (rows and columns 0, 3, ...,
``stride`` in the JSON; the TS map's ``sqrt_ts`` in full), plus their NaN-sums.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

STRIDE = 3


def _clean(x):
    """JSON-able values, floats to 10 significant digits, NaN kept as NaN."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    a = np.asarray(x)
    if a.dtype.kind == "b":
        return a.tolist()
    if a.dtype.kind in "iu":
        return a.tolist()
    if a.dtype.kind == "f":
        return np.vectorize(lambda v: float(f"{v:.10g}"), otypes=[object])(a).tolist() \
            if a.ndim else float(f"{float(a):.10g}")
    if a.dtype.kind in "UO":
        return a.tolist()
    return x


def table_dict(table) -> dict:
    return {c: _clean(np.asarray(table[c])) for c in table.colnames}


def fp_case(datasets, source, edges, selection, reoptimize=False, write=None, tol=None):
    from gammapy.estimators import FluxPointsEstimator
    from gammapy.modeling import Fit

    kwargs = {}
    if tol is not None:  # MIGRAD to a tighter EDM goal (gammapy's default tol is 0.1)
        kwargs["fit"] = Fit(optimize_opts={"tol": tol}, confidence_opts={"backend": "scipy"})
    fpe = FluxPointsEstimator(energy_edges=edges, source=source,
                              selection_optional=selection, reoptimize=reoptimize, **kwargs)
    t0 = time.perf_counter()
    fp = fpe.run(datasets)
    wall = time.perf_counter() - t0
    if write:
        fp.write(write, overwrite=True, sed_type="likelihood")
    out = table_dict(fp.to_table(sed_type="likelihood"))
    out["_wall_s"] = wall
    return out


def map_dict(maps: dict, full=()) -> dict:
    out = {"stride": STRIDE}
    for name, m in maps.items():
        data = np.asarray(m.data, dtype=float)
        out[f"{name}_nansum"] = _clean(np.nansum(data))
        out[name] = _clean(data if name in full else data[..., ::STRIDE, ::STRIDE])
    return out


def main() -> None:
    from astropy import units as u
    from gammapy.datasets import MapDataset, MapDatasetOnOff, SpectrumDatasetOnOff
    from gammapy.estimators import ExcessMapEstimator, LightCurveEstimator, TSMapEstimator
    from gammapy.modeling.models import Models

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(Path(__file__).with_name("estimators_gammapy.json")))
    parser.add_argument("--files", default=None)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    data = Path(os.environ.get("XDL4_DATA", "/work/shared/data")) / "gammapy"
    files = Path(args.files) if args.files else None
    if files:
        files.mkdir(parents=True, exist_ok=True)
    out_path = Path(args.out)
    ref = json.loads(out_path.read_text()) if out_path.exists() and args.only else {}

    def want(name):
        return args.only is None or name in args.only

    def models():
        return Models.read(data / "map_dataset_models.yaml")

    selection = ["errn-errp", "ul", "scan"]
    if want("fp_onoff"):
        ds = SpectrumDatasetOnOff.read(data / "spectrum_onoff" / "pha_sonoff.fits")
        ds.models = [models()["point"]]
        edges = ds.counts.geom.axes["energy"].edges[2:]
        ref["fp_onoff"] = fp_case(ds, "point", edges, selection,
                                  write=files and files / "fp_onoff_gammapy.fits")
        print("fp_onoff", ref["fp_onoff"]["_wall_s"])
        ref["fp_onoff_tight"] = fp_case(ds, "point", edges, selection, tol=1e-4)
    if want("fp_map"):
        ds = MapDataset.read(data / "map_dataset.fits.gz")
        ds.models = models()
        edges = ds.counts.geom.axes["energy"].edges[2:]
        ref["fp_map"] = fp_case(ds, "point", edges, selection,
                                write=files and files / "fp_map_gammapy.fits")
        print("fp_map", ref["fp_map"]["_wall_s"])
        ref["fp_map_tight"] = fp_case(ds, "point", edges, selection, tol=1e-4)
    if want("fp_map_reoptimize"):
        ds = MapDataset.read(data / "map_dataset.fits.gz")
        m = models()
        for p in m.parameters:
            p.frozen = True
        m["run1-bkg"].spectral_model.norm.frozen = False
        ds.models = m
        edges = ds.counts.geom.axes["energy"].edges[[3, 5, 7, 9]]
        ref["fp_map_reoptimize"] = fp_case(ds, "point", edges, ["errn-errp", "ul"],
                                           reoptimize=True)
        print("fp_map_reoptimize", ref["fp_map_reoptimize"]["_wall_s"])
    if want("excess_map"):
        ds = MapDataset.read(data / "map_dataset.fits.gz")
        ds.models = [models()["run1-bkg"]]
        est = ExcessMapEstimator("0.1 deg", selection_optional=["errn-errp", "ul"])
        t0 = time.perf_counter()
        res = est.run(ds)
        wall = time.perf_counter() - t0
        ref["excess_map"] = map_dict({k: res[k] for k in res.available_quantities})
        ref["excess_map"]["_wall_s"] = wall
        e = ds.counts.geom.axes["energy"].edges
        est = ExcessMapEstimator("0.15 deg", energy_edges=u.Quantity([e[3], e[6], e[12]]))
        res = est.run(ds)
        ref["excess_map_2bins"] = map_dict({k: res[k] for k in res.available_quantities})
        print("excess_map", wall)
    if want("excess_map_onoff"):
        ds = MapDatasetOnOff.read(data / "map_dataset_onoff.fits.gz")
        est = ExcessMapEstimator("0.1 deg", selection_optional=["errn-errp", "ul", "alpha"])
        t0 = time.perf_counter()
        res = est.run(ds)
        wall = time.perf_counter() - t0
        ref["excess_map_onoff"] = map_dict({k: res[k] for k in res.available_quantities})
        ref["excess_map_onoff"]["_wall_s"] = wall
        print("excess_map_onoff", wall)
    if want("ts_map"):
        ds = MapDataset.read(data / "map_dataset.fits.gz")
        ds.models = [models()["run1-bkg"]]
        est = TSMapEstimator(selection_optional=["errn-errp", "ul"])
        t0 = time.perf_counter()
        res = est.run(ds)
        wall = time.perf_counter() - t0
        maps = {k: res[k] for k in res.available_quantities}
        maps["sqrt_ts"] = res.sqrt_ts
        ref["ts_map"] = map_dict(maps, full=("sqrt_ts",))
        ref["ts_map"]["_wall_s"] = wall
        print("ts_map", wall)
    if want("light_curve"):
        runs = [MapDataset.read(data / "stack" / f"run{i}.fits.gz") for i in range(3)]
        m = Models([models()[n] for n in ("point", "gauss", "disk")])
        for r in runs:
            r.models = m
        est = LightCurveEstimator(energy_edges=[1, 10] * u.TeV, source="point",
                                  selection_optional=selection)
        t0 = time.perf_counter()
        lc = est.run(runs)
        wall = time.perf_counter() - t0
        if files:
            lc.write(files / "lc_gammapy.fits", overwrite=True, format="lightcurve",
                     sed_type="likelihood")
        ref["light_curve"] = table_dict(lc.to_table(format="lightcurve", sed_type="likelihood"))
        ref["light_curve"]["_wall_s"] = wall
        print("light_curve", wall)
    out_path.write_text(json.dumps(ref, separators=(",", ":"), allow_nan=True) + "\n")


if __name__ == "__main__":
    main()
