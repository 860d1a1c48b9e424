"""stat_sum timings on gammapy's map_dataset with its three models (targets: <= 1 ms after
a spectral change, <= 3 ms after moving the point source, <= 3 ms after resizing the
Gaussian). Needs XDL4_DATA. Medians of many evaluations."""

import os
import statistics
import sys
import time
from pathlib import Path

from xdl4.kinds.counts import evaluator as Evaluator
from xdl4.testing import reference_case


def timings_ms(ev, models, change, n=1000) -> list[float]:
    times = []
    for i in range(n):
        change(i)
        t0 = time.perf_counter()
        ev.stat_sum(models)
        times.append(1e3 * (time.perf_counter() - t0))
    return times


def main() -> None:
    data = Path(os.environ.get("XDL4_DATA", "../shared/data"))
    if not data.exists():
        sys.exit("set XDL4_DATA to the shared data folder")
    ds, models = reference_case(data, "map_dataset")
    p = models.parameters
    ev = Evaluator(ds)
    ev.stat_sum(models)
    cases = {
        "spectral change (point.index)": lambda i: setattr(p["point.index"], "value",
                                                           2.3 + 1e-4 * (i % 7)),
        "point source moved (lon_0)": lambda i: setattr(p["point.lon_0"], "value",
                                                        83.63 + 1e-3 * (i % 7)),
        "Gaussian resized (sigma)": lambda i: setattr(p["gauss.sigma"], "value",
                                                      0.25 + 1e-3 * (i % 7)),
    }
    for name, change in cases.items():
        t = timings_ms(ev, models, change)
        batches = [statistics.median(t[i:i + 200]) for i in range(0, len(t), 200)]
        print(f"{name:32s} {statistics.median(t):7.3f} ms (median of {len(t)}; "
              f"batches of 200: {min(batches):.3f} - {max(batches):.3f} ms)")
    t0 = time.perf_counter()
    Evaluator(ds).stat_sum(models)
    print(f"{'first evaluation (cold caches)':32s} {1e3 * (time.perf_counter() - t0):7.1f} ms")


if __name__ == "__main__":
    main()
