"""Estimators, xdl4 against gammapy 2.1 in one run: flux points (10 energy bins) on the shared
on/off spectrum, on the three on/off spectra of ``stack/`` (joint) and on the shared map
dataset, a TS map (point-source kernel) and an excess map on the shared map dataset.

    python benchmarks/bench_estimators.py                   # xdl4 only (needs XDL4_DATA)
    python benchmarks/bench_estimators.py --compare /work/.venv-gammapy/bin/python
        # xdl4 and gammapy, each case in a fresh subprocess of its own interpreter
    /work/.venv-gammapy/bin/python benchmarks/bench_estimators.py --gammapy
        # by hand, in a gammapy 2.1 env: gammapy's estimators alone

Every case reads its data and imports outside the clock (xdl4: a first call on its
built-in examples), then times the first call on the shared data (cold: per-dataset set-up
included) and the median of ``--repeat`` further calls (warm; gammapy's warm calls only
with ``--gammapy-repeat``: the "warm" ratio is gammapy's cold over xdl4's warm). Both tools
compute the same quantities: flux points with asymmetric errors, upper limits and
likelihood scans (gammapy: selection_optional=["errn-errp", "ul", "scan"]), TS maps with
their defaults, excess maps with errors and upper limits.
gammapy is imported only in its own interpreter; xdl4 never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

CASES = ("fp_onoff", "fp_onoff3", "fp_map", "ts_map", "excess_map")


def _data() -> Path:
    return Path(os.environ.get("XDL4_DATA", "/work/shared/data")) / "gammapy"


def _time(call, repeat: int) -> dict:
    t0 = time.perf_counter()
    call()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        warm.append(time.perf_counter() - t0)
    return {"cold_s": cold, "warm_s": statistics.median(warm) if warm else None}


def run_xdl4(case: str, repeat: int) -> dict:
    import xdl4
    from xdl4.estimators import excess_map, flux_points, ts_map

    # imports outside the clock (as gammapy's, done at its import): a first call on the
    # built-in examples loads the modules each estimator uses
    ex = xdl4.examples.spectrum_dataset(onoff=True)
    m = xdl4.examples.map_dataset()
    src = xdl4.Models([xdl4.models.SkyModel(xdl4.models.PowerLaw(), name="s")])
    flux_points(ex, src, "s", [1, 10])
    ts_map(m)
    excess_map(m)
    d = _data()
    models = xdl4.read_models(d / "map_dataset_models.yaml")
    if case == "fp_onoff":
        ds = xdl4.open_dataset(d / "spectrum_onoff" / "pha_sonoff.fits")
        edges = ds.dl4.energy_edges[2:]
        return _time(lambda: flux_points(ds, [models["point"]], "point", edges), repeat)
    if case == "fp_onoff3":
        runs = [xdl4.open_dataset(d / "stack" / f"son{i}.fits") for i in range(3)]
        edges = runs[0].dl4.energy_edges[2:]
        return _time(lambda: flux_points(runs, [models["point"]], "point", edges), repeat)
    ds = xdl4.open_dataset(d / "map_dataset.fits.gz")
    if case == "fp_map":
        edges = ds.dl4.energy_edges[2:]
        return _time(lambda: flux_points(ds, models, "point", edges), repeat)
    if case == "ts_map":
        return _time(lambda: ts_map(ds, models=[models["run1-bkg"]]), repeat)
    return _time(lambda: excess_map(ds, "0.1 deg", [models["run1-bkg"]]), repeat)


def run_gammapy(case: str, repeat: int) -> dict:
    warnings.filterwarnings("ignore")
    from gammapy.datasets import MapDataset, SpectrumDatasetOnOff
    from gammapy.estimators import ExcessMapEstimator, FluxPointsEstimator, TSMapEstimator
    from gammapy.modeling.models import Models

    d = _data()
    models = Models.read(d / "map_dataset_models.yaml")
    sel = ["errn-errp", "ul", "scan"]
    if case == "fp_onoff":
        ds = SpectrumDatasetOnOff.read(d / "spectrum_onoff" / "pha_sonoff.fits")
        ds.models = [models["point"]]
        est = FluxPointsEstimator(energy_edges=ds.counts.geom.axes["energy"].edges[2:],
                                  source="point", selection_optional=sel)
        return _time(lambda: est.run(ds), repeat)
    if case == "fp_onoff3":
        runs = [SpectrumDatasetOnOff.read(d / "stack" / f"son{i}.fits") for i in range(3)]
        for r in runs:
            r.models = [models["point"]]
        est = FluxPointsEstimator(energy_edges=runs[0].counts.geom.axes["energy"].edges[2:],
                                  source="point", selection_optional=sel)
        return _time(lambda: est.run(runs), repeat)
    ds = MapDataset.read(d / "map_dataset.fits.gz")
    if case == "fp_map":
        ds.models = models
        est = FluxPointsEstimator(energy_edges=ds.counts.geom.axes["energy"].edges[2:],
                                  source="point", selection_optional=sel)
        return _time(lambda: est.run(ds), repeat)
    ds.models = [models["run1-bkg"]]
    if case == "ts_map":
        return _time(lambda: TSMapEstimator().run(ds), repeat)
    est = ExcessMapEstimator("0.1 deg", selection_optional=["errn-errp", "ul"])
    return _time(lambda: est.run(ds), repeat)


def _child(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", metavar="GAMMAPY_PYTHON", default=None)
    parser.add_argument("--gammapy", action="store_true", help="run gammapy's estimators")
    parser.add_argument("--case", choices=CASES, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gammapy-repeat", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=1,
                        help="xdl4/gammapy pairs per case (the machine's load moves: the "
                             "median ratio of the pairs is reported)")
    args = parser.parse_args()
    if args.case:  # one case in this interpreter, JSON on the last line
        runner = run_gammapy if args.gammapy else run_xdl4
        print(json.dumps(runner(args.case, args.repeat)))
        return
    me = [sys.executable, __file__]
    rows = []
    for case in args.cases:
        if args.gammapy:
            theirs = _child(me + ["--gammapy", "--case", case, "--repeat",
                                  str(args.gammapy_repeat)])
            print(f"{case:12s} gammapy cold {theirs['cold_s']:8.3f} s", flush=True)
            continue
        for _ in range(args.pairs if args.compare else 1):
            ours = _child(me + ["--case", case, "--repeat", str(args.repeat)])
            row = {"case": case, "xdl4_cold_s": ours["cold_s"], "xdl4_warm_s": ours["warm_s"]}
            line = (f"{case:12s} xdl4 cold {ours['cold_s']:8.3f} s  warm "
                    f"{ours['warm_s']:8.3f} s")
            if args.compare:
                theirs = _child([args.compare, __file__, "--gammapy", "--case", case,
                                 "--repeat", str(args.gammapy_repeat)])
                row["gammapy_cold_s"] = theirs["cold_s"]
                line += (f"   gammapy {theirs['cold_s']:8.2f} s   ratio cold "
                         f"{theirs['cold_s'] / ours['cold_s']:6.0f}x  gammapy cold / xdl4 "
                         f"warm {theirs['cold_s'] / ours['warm_s']:6.0f}x")
            rows.append(row)
            print(line, flush=True)
        if args.compare and args.pairs > 1:
            mine = [r for r in rows if r["case"] == case]
            cold = statistics.median(r["gammapy_cold_s"] / r["xdl4_cold_s"] for r in mine)
            warm = statistics.median(r["gammapy_cold_s"] / r["xdl4_warm_s"] for r in mine)
            print(f"{case:12s} median ratio over {len(mine)} pairs: cold {cold:.0f}x, "
                  f"gammapy cold / xdl4 warm {warm:.0f}x", flush=True)
    if rows:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
