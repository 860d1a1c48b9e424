"""The wide-PSF five-dataset case of issue #14, xdl4 and gammapy 2.1 side by side.

A synthetic instrument with a wide PSF given in reco energy (gammapy's RecoPSFMap): 200
``rad`` nodes out to 3 deg on a 6 x 6 IRF grid of 1 deg pixels (PSF and EDISP vary with
the offset from each run's pointing); data 120 x 120 pixels of 0.05 deg, 10 reco-energy
bins (1 - 100 TeV), 20 true-energy bins; five runs with different pointings and
livetimes; a point source with a log-parabola at the map centre, which is a corner of
the IRF grid (where gammapy-reduced data put the target). The runs are written as GADF
files (``wide{i}.fits``) with the models YAML (``models.yaml``, truth), read back by both
libraries.

    python benchmarks/bench_wide_psf.py --compare /work/.venv-gammapy/bin/python
        # build the files, then xdl4 and gammapy alternately (--repeat pairs), one table
    python benchmarks/bench_wide_psf.py                 # xdl4 alone
    GAMMAPY_PYTHON benchmarks/bench_wide_psf.py --gammapy DIR   # gammapy alone (by hand)

Measured per library, each in a fresh subprocess (imports and file reading untimed):

* ``eval_spectral``: one joint -2 ln L after changing the log-parabola's alpha (xdl4:
  ``Likelihood.stat()``; gammapy: ``Datasets.stat_sum()``), median (wall and CPU) and
  fastest of 40 changes;
* ``eval_move``: the same after moving the point source by 1e-3 - 2e-2 deg (new
  position each time, so no kernel cache hits for xdl4; gammapy refetches its PSF kernel
  only after moves > 0.1 deg, as it always does);
* ``accessor``: the five plain per-dataset calls a notebook user repeats after changing
  alpha, ``ds.dl4.stat_sum(models)`` (xdl4) and ``dataset.stat_sum()`` (gammapy);
* ``fit``: the whole five-dataset fit from a start 0.06 deg and 30% off (MIGRAD + HESSE
  for xdl4's ``fit``; gammapy's ``Fit().run``, MIGRAD + its covariance), wall time and
  number of evaluations; the fitted values of both;
* ``cache_mib``: xdl4's evaluator caches after the fit (peak of each bounded cache, the
  sampling matrices and per-source arrays); ``rss_mib``: peak resident memory of the
  process (both libraries).

The gammapy mode imports gammapy only in that separate interpreter; xdl4 never does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CENTER = (83.63, 22.01)
N_RUNS = 5
E_RECO = np.geomspace(1.0, 100.0, 11)
E_TRUE = np.geomspace(0.5, 200.0, 21)
RAD_EDGES = np.linspace(0.0, 3.0, 201)  # 200 rad nodes (bin centres) out to 3 deg
TRUTH = {"alpha": 2.6, "beta": 0.15, "amplitude": 2e-12, "reference": 7.0}
START = {"alpha": 2.3, "amplitude": 1.4e-12, "dlon": 0.06, "dlat": -0.04}


def _psf_sigmas(energy: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Core and tail widths (deg) of a double Gaussian: ~0.9 deg at 1 TeV, 0.12 deg at
    100 TeV, 15% wider 3 deg off-axis."""
    core = np.clip(0.9 * energy ** -0.45, 0.1, 1.2) * (1 + 0.05 * offset)
    return core, 2.2 * core


def psf_density(rad: np.ndarray, energy: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """PSF (energy, rad, *offset.shape) per sr, normalised on the sphere's tangent plane."""
    core, tail = _psf_sigmas(energy[:, None, None, None], offset[None, None])
    r = np.radians(rad)[None, :, None, None]
    out = 0.0
    for s, w in ((np.radians(core), 0.8), (np.radians(tail), 0.2)):
        out = out + w * np.exp(-0.5 * (r / s) ** 2) / (2 * np.pi * s**2)
    return out


def edisp_kernel(offset: np.ndarray) -> np.ndarray:
    """P(reco bin | true bin) (n_true, n_reco, *offset.shape): Gaussian in ln E, 30%
    resolution, a bias growing with the offset."""
    from scipy.special import ndtr

    et = np.sqrt(E_TRUE[:-1] * E_TRUE[1:])[:, None, None, None]
    bias = 0.03 * offset[None, None]
    z = (np.log(E_RECO)[None, :, None, None] - np.log(et) - bias) / 0.3
    return np.diff(ndtr(z), axis=1)


def make_case(folder: Path) -> list[Path]:
    """Write the five runs (GADF) and ``models.yaml`` into ``folder``; their paths."""
    import xdl4
    from xdl4.kinds.counts import evaluator
    from xdl4.models import LogParabola, Models, PointSpatialModel, SkyModel
    from xdl4.skymath import separation

    folder.mkdir(parents=True, exist_ok=True)
    truth = Models([SkyModel(LogParabola(**TRUTH), PointSpatialModel(
        lon_0=CENTER[0], lat_0=CENTER[1], frame="icrs"), name="src")])
    truth.write(folder / "models.yaml", overwrite=True)
    grid = xdl4.WcsGrid.create(CENTER, width=6.0, binsz=0.05, frame="icrs", proj="CAR")
    lon, lat = grid.sky_coords()
    et = np.sqrt(E_TRUE[:-1] * E_TRUE[1:])
    paths = []
    rng = np.random.default_rng(14)
    for i in range(N_RUNS):
        angle = 2 * np.pi * i / N_RUNS
        pointing = (CENTER[0] + 0.7 * np.cos(angle) / np.cos(np.radians(CENTER[1])),
                    CENTER[1] + 0.7 * np.sin(angle))
        livetime = 3600.0 * (1 + i)
        offset = separation(lon, lat, *pointing)
        accept = np.exp(-0.5 * (offset / 2.0) ** 2)
        aeff = 3e9 * np.exp(-(1.5 / et) ** 2)  # cm2
        ds = xdl4.create("map", E_RECO, E_TRUE, grid=grid, binsz_irf=1.0,
                         rad_edges=RAD_EDGES, reco_psf=True, name=f"wide{i}", livetime=livetime,
                         gti=[(0.0, livetime)],
                         exposure=(aeff[:, None, None] * accept * livetime) * 1e-4)
        irf = ds.dl4.irf_grid
        ilon, ilat = irf.sky_coords()
        ioff = separation(ilon, ilat, *pointing)
        ds["psf"][:] = psf_density(ds["rad"].values, ds["energy"].values, ioff)
        ds["edisp"][:] = edisp_kernel(ioff)
        irf_expo = aeff[:, None, None] * np.exp(-0.5 * (ioff / 2.0) ** 2) * livetime * 1e-4
        ds["edisp_exposure"][:] = irf_expo
        ds["psf_exposure"][:] = irf_expo[np.searchsorted(et, ds["energy"].values)]
        per_hour = 5.0 * (E_RECO[:-1] ** -1.6 - E_RECO[1:] ** -1.6)  # counts per pixel
        ds["background"][:] = per_hour[:, None, None] * accept * livetime / 3600.0
        npred = evaluator(ds).npred(truth)
        ds["counts"][:] = rng.poisson(npred).astype(float)
        path = folder / f"wide{i}.fits"
        ds.dl4.to_gadf(path, overwrite=True)
        paths.append(path)
    return paths


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _start(models, center) -> None:
    p = models.parameters
    p["src.alpha"].value = START["alpha"]
    p["src.amplitude"].value = START["amplitude"]
    p["src.lon_0"].value = center[0] + START["dlon"]
    p["src.lat_0"].value = center[1] + START["dlat"]


def _loop(out: dict, name: str, change, evaluate, n: int) -> None:
    """Median wall and CPU time (ms) of ``evaluate()`` after ``change(k)``, k = 0..n-1."""
    wall, cpu = [], []
    for k in range(n):
        change(k)
        t0, c0 = time.perf_counter(), time.process_time()
        evaluate()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    out[f"{name}_ms"] = float(np.median(wall) * 1e3)
    out[f"{name}_cpu_ms"] = float(np.median(cpu) * 1e3)
    out[f"{name}_min_ms"] = float(np.min(wall) * 1e3)


def _set_alpha(p, k: int, sign: bool = True) -> None:
    p.value = TRUTH["alpha"] + 0.01 * (k + 1) * ((-1) ** k if sign else 1)


def _move(lon, lat, k: int) -> None:
    d = 1e-3 * (k + 1) * (-1) ** k
    lon.value, lat.value = CENTER[0] + d, CENTER[1] - 0.5 * d


def run_xdl4(folder: Path, fit_options: dict | None = None) -> dict:
    import xdl4
    from xdl4.fitting import Likelihood
    from xdl4.kinds.counts import stat_sum

    datasets = [xdl4.open_dataset(p) for p in sorted(folder.glob("wide*.fits"))]
    for ds in datasets:
        ds.load()
    models = xdl4.read_models(folder / "models.yaml")
    p = models.parameters
    out: dict = {}
    # the same files and numbers as gammapy: -2 ln L at the truth, gammapy's IRF lookup
    out["stat_truth_nearest"] = sum(stat_sum(ds, models, "nearest") for ds in datasets)
    out["stat_truth_bilinear"] = sum(stat_sum(ds, models, "bilinear") for ds in datasets)
    lik = Likelihood(datasets, models, **{k: v for k, v in (fit_options or {}).items()
                                          if k == "irf_interpolation"})
    lik.stat()
    _loop(out, "eval_spectral", lambda k: _set_alpha(p["src.alpha"], k), lik.stat, 40)
    _loop(out, "eval_move", lambda k: _move(p["src.lon_0"], p["src.lat_0"], k), lik.stat, 40)
    _loop(out, "accessor", lambda k: _set_alpha(p["src.alpha"], k, False),
          lambda: sum(ds.dl4.stat_sum(models) for ds in datasets), 5)
    models = xdl4.read_models(folder / "models.yaml")
    _start(models, CENTER)
    t0, c0 = time.perf_counter(), time.process_time()
    result = xdl4.fit(datasets, models, **(fit_options or {}))
    out["fit_s"] = time.perf_counter() - t0
    out["fit_cpu_s"] = time.process_time() - c0
    out["fit_nfev"] = result.nfev
    # finite differences of single datasets inside the gradient, in full evaluations
    out["fit_grad_evals"] = (result.gradient["dataset_evals"] / len(datasets)
                             if result.gradient else 0.0)
    out["fit_success"] = bool(result.success)
    out["fit_values"] = {lab: float(v) for lab, v in zip(
        result.parameters.parameter.values, result.parameters.value.values, strict=True)
        if lab.startswith("src.") and not result.parameters.frozen.sel(parameter=lab)}
    # caches of the evaluators of a fresh Likelihood driven through the same fit
    models = xdl4.read_models(folder / "models.yaml")
    _start(models, CENTER)
    lik = Likelihood(datasets, models, **{k: v for k, v in (fit_options or {}).items()
                                          if k == "irf_interpolation"})
    xdl4.fit(lik, None, **{k: v for k, v in (fit_options or {}).items()
                          if k != "irf_interpolation"})
    sizes: dict[str, int] = {}
    for term in lik.terms:
        for name, size in term.cache_nbytes().items():
            if name.endswith("_peak") or name in ("sources", "edisp_nodes"):
                sizes[name] = sizes.get(name, 0) + size
            elif name == "psf_sampling":  # one cache shared by all evaluators
                sizes[name] = size
    out["cache_mib"] = {k: v / 2**20 for k, v in sizes.items()}
    out["cache_total_mib"] = sum(sizes.values()) / 2**20
    out["rss_mib"] = _rss_mib()
    return out


def run_gammapy(folder: Path) -> dict:
    import warnings

    from gammapy.datasets import Datasets, MapDataset
    from gammapy.modeling import Fit
    from gammapy.modeling.models import Models

    warnings.simplefilter("ignore")
    datasets = Datasets([MapDataset.read(p, name=p.stem)
                         for p in sorted(folder.glob("wide*.fits"))])
    models = Models.read(folder / "models.yaml")
    datasets.models = models
    src = models["src"]
    out: dict = {"stat_truth": float(datasets.stat_sum())}
    alpha, spatial = src.spectral_model.alpha, src.spatial_model
    _loop(out, "eval_spectral", lambda k: _set_alpha(alpha, k), datasets.stat_sum, 40)
    _loop(out, "eval_move", lambda k: _move(spatial.lon_0, spatial.lat_0, k),
          datasets.stat_sum, 40)
    _loop(out, "accessor", lambda k: _set_alpha(alpha, k, False),
          lambda: sum(ds.stat_sum() for ds in datasets), 5)
    models = Models.read(folder / "models.yaml")
    datasets.models = models
    p = models.parameters
    p["alpha"].value, p["amplitude"].value = START["alpha"], START["amplitude"]
    p["lon_0"].value = CENTER[0] + START["dlon"]
    p["lat_0"].value = CENTER[1] + START["dlat"]
    t0, c0 = time.perf_counter(), time.process_time()
    result = Fit().run(datasets)
    out["fit_s"] = time.perf_counter() - t0
    out["fit_cpu_s"] = time.process_time() - c0
    out["fit_nfev"] = int(result.optimize_result.nfev)
    out["fit_success"] = bool(result.success)
    out["fit_values"] = {f"src.{par.name}": float(par.value) for par in models.parameters
                         if not par.frozen}
    out["rss_mib"] = _rss_mib()
    return out


def _child(args: list[str], blas_threads: int) -> dict:
    env = dict(os.environ)
    if blas_threads > 0:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(blas_threads)
    proc = subprocess.run(args, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


ROWS = (("eval after a spectral change (ms)", "eval_spectral_ms"),
        ("  CPU (ms)", "eval_spectral_cpu_ms"),
        ("  fastest (ms)", "eval_spectral_min_ms"),
        ("eval after moving the source (ms)", "eval_move_ms"),
        ("  CPU (ms)", "eval_move_cpu_ms"),
        ("  fastest (ms)", "eval_move_min_ms"),
        ("accessor, 5 x stat_sum (ms)", "accessor_ms"),
        ("  CPU (ms)", "accessor_cpu_ms"),
        ("full fit (s)", "fit_s"),
        ("  CPU (s)", "fit_cpu_s"))


def report(xdl4_runs: list[dict], gammapy_runs: list[dict]) -> None:
    def med(runs, key):
        return float(np.median([r[key] for r in runs])) if runs else float("nan")

    print(f"{'':38s}{'xdl4':>10s}{'gammapy':>10s}{'ratio':>8s}")
    for label, key in ROWS:
        a, b = med(xdl4_runs, key), med(gammapy_runs, key)
        print(f"{label:38s}{a:10.3g}{b:10.3g}{b / a:8.1f}")
    for label, key in (("fit evaluations (nfev)", "fit_nfev"), ("peak RSS (MiB)", "rss_mib")):
        print(f"{label:38s}{med(xdl4_runs, key):10.0f}{med(gammapy_runs, key):10.0f}")
    if med(xdl4_runs, "fit_grad_evals") > 0:
        print(f"{'  + gradient finite differences':38s}{med(xdl4_runs, 'fit_grad_evals'):10.0f}")
    x = xdl4_runs[-1]
    if gammapy_runs:
        g = gammapy_runs[-1]["stat_truth"]
        print(f"-2 ln L at the truth: gammapy {g:.6f}, xdl4 nearest "
              f"{x['stat_truth_nearest']:.6f} (rel. diff "
              f"{abs(x['stat_truth_nearest'] - g) / abs(g):.1e}), xdl4 bilinear "
              f"{x['stat_truth_bilinear']:.6f}")
    print(f"xdl4 caches after the fit: {x['cache_total_mib']:.1f} MiB "
          + ", ".join(f"{k} {v:.2f}" for k, v in x["cache_mib"].items()))
    print("fit success: xdl4", [r["fit_success"] for r in xdl4_runs], "gammapy",
          [r["fit_success"] for r in gammapy_runs])
    for name, runs in (("xdl4", xdl4_runs), ("gammapy", gammapy_runs)):
        if runs:
            print(f"{name:8s} fitted", ", ".join(f"{k} {v:.6g}" for k, v in
                                                 runs[-1]["fit_values"].items()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", help="folder of the case (default: a temporary one)")
    parser.add_argument("--compare", metavar="GAMMAPY_PYTHON")
    parser.add_argument("--repeat", type=int, default=3, help="xdl4/gammapy pairs")
    parser.add_argument("--gammapy", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--xdl4", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="BLAS threads of both libraries' processes (0: inherit the "
                             "environment); on a few busy cores, threaded BLAS calls on "
                             "these small arrays only wait for each other")
    parser.add_argument("--fit-options", default="{}",
                        help="JSON keyword arguments of xdl4.fit, e.g. '{\"grad\": true}'")
    args = parser.parse_args()
    if args.gammapy:
        print(json.dumps(run_gammapy(Path(args.gammapy))))
        return
    if args.xdl4:
        print(json.dumps(run_xdl4(Path(args.xdl4), json.loads(args.fit_options))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir or tmp)
        if not (folder / "models.yaml").exists():
            make_case(folder)
        xs, gs = [], []
        for _ in range(args.repeat):
            xs.append(_child([sys.executable, __file__, "--xdl4", str(folder),
                              "--fit-options", args.fit_options], args.blas_threads))
            if args.compare:
                gs.append(_child([args.compare, __file__, "--gammapy", str(folder)],
                                 args.blas_threads))
        report(xs, gs)


if __name__ == "__main__":
    main()
