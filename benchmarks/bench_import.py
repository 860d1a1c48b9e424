"""Time `import xdl4` in fresh interpreters (median of 9) against `import xarray`;
target: under 1 s."""

import statistics
import subprocess
import sys
import time


def median_import(module: str, runs: int = 9) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


if __name__ == "__main__":
    base = median_import("xarray")
    own = median_import("xdl4")
    print(f"import xarray: {base:.3f} s; import xdl4: {own:.3f} s "
          f"(xdl4's own share {own - base:+.3f} s)")
