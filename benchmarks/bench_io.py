"""I/O benchmark: read/write of gammapy's map dataset (GADF) and an OGIP spectrum vs NetCDF.

    XDL4_DATA=/work/shared/data python benchmarks/bench_io.py
Prints the median of several runs (seconds).
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

from xdl4.io.backends import open_dataset
from xdl4.io.gadf import to_gadf
from xdl4.io.netcdf import open_netcdf, to_netcdf
from xdl4.io.ogip import to_ogip


def median_time(fn, repeat: int = 7) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    data = Path(os.environ.get("XDL4_DATA", "/work/shared/data"))
    tmp = Path(tempfile.mkdtemp())
    cases = {"map_dataset (GADF .fits.gz)": (data / "gammapy/map_dataset.fits.gz", to_gadf,
                                             "map.fits.gz"),
             "OGIP spectrum (PHA+ARF+RMF+BKG)": (data / "gammapy/spectrum_onoff/pha_sonoff.fits",
                                                 to_ogip, "pha.fits")}
    for label, (src, writer, out) in cases.items():
        ds = open_dataset(src)
        r = median_time(lambda src=src: open_dataset(src))
        w = median_time(lambda ds=ds, writer=writer, out=out: writer(ds, tmp / out,
                                                                     overwrite=True))
        to_netcdf(ds, tmp / "x.nc", overwrite=True)
        rn = median_time(lambda: open_netcdf(tmp / "x.nc").load())
        wn = median_time(lambda ds=ds: to_netcdf(ds, tmp / "x.nc", overwrite=True))
        print(f"{label:35s} read {r:.4f} s  write {w:.4f} s | NetCDF read {rn:.4f} s  "
              f"write {wn:.4f} s")


if __name__ == "__main__":
    main()
