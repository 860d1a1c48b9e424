"""Benchmark xdl4.fit on gammapy's reference fits (plain script: prints median timings).

Run: XDL4_DATA=../shared/data python benchmarks/bench_fit.py [--repeat N] [--grad]

``--grad`` times every case twice, MIGRAD with xdl4's gradient (``fit(grad=True)``:
analytic for spectral parameters and background norms, finite differences of the
datasets concerned for the rest) and without (Minuit's numerical gradient), alternately;
``evals`` adds the gradient's single-dataset evaluations (in full evaluations) to nfev.
Without ``--grad``: ``fit``'s defaults (``grad=None``: xdl4's gradient when at least half
of the free parameters are analytic; bilinear IRFs).

Each timing is one full ``xdl4.fit`` call (Likelihood set-up, MIGRAD, HESSE) on a dataset
already read; models are read again (outside the timer) before every run. gammapy 2.1
on the reference machine: map_dataset_fit ~4 s (211 evaluations), spectrum on/off 0.15 s.
Targets: map fit <= 0.4 s, on/off spectrum <= 15 ms.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import xdl4.fitting
from xdl4.testing import reference_case

CASES = ("spectrum_dataset_onoff_fit", "simulated_spectrum_ECPL_fit", "flux_points_hawc_fit",
         "map_dataset_fit")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--grad", action="store_true", help="compare grad=False / True")
    args = parser.parse_args()
    modes = (False, True) if args.grad else (None,)  # None: fit's default
    data = Path(os.environ.get("XDL4_DATA", Path(__file__).parents[2] / "shared/data"))
    for name in CASES:
        ds, _ = reference_case(data, name)

        def make_models(name=name):
            return reference_case(data, name)[1]

        xdl4.fitting.fit(ds, make_models())  # warm-up (imports, caches of readers)
        times = {g: [] for g in modes}
        cpu = {g: [] for g in modes}
        results = {}
        for _ in range(args.repeat):
            for g in modes:  # alternately: the machine's drift hits both alike
                models = make_models()
                t0, c0 = time.perf_counter(), time.process_time()
                results[g] = xdl4.fitting.fit(ds, models, grad=g)
                times[g].append(time.perf_counter() - t0)
                cpu[g].append(time.process_time() - c0)
        for g in modes:
            result = results[g]
            nfev = result.nfev
            extra = result.gradient["dataset_evals"] / max(len(
                xdl4.fitting.Likelihood(ds, make_models()).terms), 1) if result.gradient else 0
            med = float(np.median(times[g]))
            label = f"{name}{' grad' if g else ' no grad' if g is False else ''}"
            print(f"{label:35s} median {med * 1e3:7.1f} ms (min {min(times[g]) * 1e3:6.1f}, "
                  f"cpu {np.median(cpu[g]) * 1e3:6.1f})  nfev {nfev:4d}  evals "
                  f"{nfev + extra:6.1f}  {med / (nfev + extra) * 1e6:6.0f} us/eval  "
                  f"success {result.success}")


if __name__ == "__main__":
    main()
