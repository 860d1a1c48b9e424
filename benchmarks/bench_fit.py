"""Benchmark xdl4.fit on gammapy's reference fits (plain script: prints median timings).

Run: XDL4_DATA=../shared/data python benchmarks/bench_fit.py [--repeat N]

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
    args = parser.parse_args()
    data = Path(os.environ.get("XDL4_DATA", Path(__file__).parents[2] / "shared/data"))
    for name in CASES:
        ds, _ = reference_case(data, name)

        def make_models(name=name):
            return reference_case(data, name)[1]

        xdl4.fitting.fit(ds, make_models())  # warm-up (imports, caches of readers)
        times, cpu, nfev = [], [], 0
        for _ in range(args.repeat):
            models = make_models()
            t0, c0 = time.perf_counter(), time.process_time()
            result = xdl4.fitting.fit(ds, models)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            nfev = result.nfev
        med = float(np.median(times))
        print(f"{name:30s} median {med * 1e3:7.1f} ms (min {min(times) * 1e3:6.1f}, cpu "
              f"{np.median(cpu) * 1e3:6.1f})  nfev {nfev:4d}  {med / nfev * 1e6:6.0f} us/eval  "
              f"success {result.success}")


if __name__ == "__main__":
    main()
