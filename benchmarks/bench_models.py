"""Benchmark the model hot paths (plain script: prints median timings).

Run: python benchmarks/bench_models.py
"""

from __future__ import annotations

import time

import numpy as np
from astropy.wcs import WCS

from xdl4.models import GaussianSpatialModel, LogParabolaSpectralModel


def median_time(fn, repeat: int = 200) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    lp = LogParabolaSpectralModel(amplitude=1e-11, reference=1.0, alpha=2.1, beta=0.15)
    edges = np.geomspace(0.1, 100.0, 101)
    centers = np.sqrt(edges[:-1] * edges[1:])
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---CAR", "DEC--CAR"]
    wcs.wcs.crval, wcs.wcs.cdelt, wcs.wcs.crpix = [83.6, 22.0], [-0.02, 0.02], [100.5, 100.5]
    gauss = GaussianSpatialModel(lon_0=83.7, lat_0=22.1, sigma=0.3)
    gauss_os = GaussianSpatialModel(lon_0=83.7, lat_0=22.1, sigma=0.05)
    gauss_gal = GaussianSpatialModel(lon_0=184.6, lat_0=-5.8, sigma=0.3, frame="galactic")
    lon, lat = np.meshgrid(np.linspace(82, 85, 200), np.linspace(20.5, 23.5, 200))

    def moving_gauss():  # a new position every call: no cutout cache hit
        gauss_os.lon_0.value += 1e-4
        return gauss_os.integrate_pixels(wcs, (200, 200))

    cases = [
        ("LogParabola evaluate, 100 energies", lambda: lp.evaluate_numpy(centers)),
        ("LogParabola integral_bins, 100 bins (gammapy trapezoid)",
         lambda: lp.integral_bins(edges)),
        ("LogParabola exact integral, 100 bins", lambda: lp.integral(edges[:-1], edges[1:])),
        ("Gaussian evaluate_lonlat, 200x200", lambda: gauss.evaluate_lonlat(lon, lat)),
        ("Gaussian integrate_pixels 200x200 (f_os=1)",
         lambda: gauss.integrate_pixels(wcs, (200, 200))),
        ("Gaussian integrate_pixels 200x200, galactic model on icrs map",
         lambda: gauss_gal.integrate_pixels(wcs, (200, 200))),
        ("Gaussian sigma=0.05 integrate_pixels 200x200 (f_os=2, moving)", moving_gauss),
    ]
    for label, fn in cases:
        print(f"{label:68s} {median_time(fn) * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
