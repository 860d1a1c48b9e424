"""Scale benchmark of ``xdl4.stack_files``: N copies of ``gammapy/stack/run0.fits.gz``
(distinct obs ids) on disk as GADF FITS and NetCDF; each N runs in a fresh subprocess that
reports wall time and peak resident memory (ru_maxrss).

    python benchmarks/bench_stack.py                     # N = 16, 64, 256 (needs XDL4_DATA)
    python benchmarks/bench_stack.py --n 16 64
    python benchmarks/bench_stack.py --dask      # also lazily opened runs reduced by dask
    python benchmarks/bench_stack.py --dir /tmp/runs --compare /work/gp/.venv-gammapy/bin/python
        # xdl4 (GADF) and gammapy 2.1's streaming loop on the same files, interleaved
    /work/gp/.venv-gammapy/bin/python benchmarks/bench_stack.py --gammapy DIR N
        # by hand, in a gammapy 2.1 env: the streaming gammapy loop alone

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


def make_runs(folder: Path, n: int) -> dict[str, list[Path]]:
    """``n`` copies of run0 with obs ids 1000.. as GADF (uncompressed) and NetCDF."""
    from astropy.io import fits

    import xdl4

    src = Path(os.environ["XDL4_DATA"]) / "gammapy" / "stack" / "run0.fits.gz"
    base = xdl4.open_dataset(src)
    hdul = fits.open(src)
    hdul.readall()
    out: dict[str, list[Path]] = {"gadf": [], "netcdf": []}
    for i in range(n):
        obs_id = 1000 + i
        gadf, nc = folder / f"run{obs_id}.fits", folder / f"run{obs_id}.nc"
        if not gadf.exists():
            hdul["META_TABLE"].data["OBS_ID"][:] = obs_id
            hdul[0].header["NAME"] = f"run{obs_id}"
            hdul.writeto(gadf)
        if not nc.exists():
            ds = base.assign(meta_obs_id=("meta_row", [obs_id])).assign_attrs(name=f"run{obs_id}")
            ds.dl4.to_netcdf(nc)
        out["gadf"].append(gadf)
        out["netcdf"].append(nc)
    return out


def _child(fmt: str, paths: list[str]) -> None:
    # imports outside the clock, as for gammapy's loop (its import is not timed either);
    # xarray imports dask.array lazily on first use (0.9 s here)
    import dask.array  # noqa: F401

    import xdl4.io.backends  # noqa: F401
    import xdl4.io.gadf  # noqa: F401
    import xdl4.io.netcdf  # noqa: F401
    from xdl4.streaming import stack_files

    t0 = time.perf_counter()
    if fmt == "dask":  # the xarray way: lazily opened runs along obs, reduced by dask
        import xarray as xr

        import xdl4

        runs = xr.concat([xdl4.open_dataset(p, chunks={}) for p in paths], "obs",
                         coords="minimal", compat="override")
        out = runs.dl4.stack(dim="obs").compute()
    else:
        out = stack_files(paths, progress=False)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    # the forked workers that fold the partitions: the largest one's peak
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"format": fmt, "n": len(paths), "wall_s": wall, "peak_rss_mib": rss,
                      "worker_rss_mib": workers, "livetime_s": float(out.livetime)}))


def _gammapy(folder: str, n: int) -> None:
    from gammapy.datasets import MapDataset

    files = sorted(Path(folder).glob("run*.fits"))[:n]
    t0 = time.perf_counter()
    stacked = MapDataset.read(files[0]).to_masked(name="stacked")
    for f in files[1:]:
        stacked.stack(MapDataset.read(f))
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"format": "gammapy-loop", "n": len(files), "wall_s": wall,
                      "peak_rss_mib": rss}))


def _run(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _compare(gammapy_python: str, gadf: list[Path], ns: list[int], repeat: int) -> None:
    """xdl4 then gammapy, alternately, ``repeat`` pairs per N: the ratio of each pair."""
    print(f"{'N':>5s} {'xdl4 s':>8s} {'gammapy s':>10s} {'ratio':>6s} {'xdl4 MiB':>9s} "
          f"{'gammapy MiB':>11s}")
    for n in ns:
        files = [str(p) for p in gadf[:n]]
        folder = str(gadf[0].parent)
        for _ in range(repeat):
            ours = _run([sys.executable, __file__, "--child", "gadf", *files])
            theirs = _run([gammapy_python, __file__, "--gammapy", folder, str(n)])
            print(f"{n:5d} {ours['wall_s']:8.2f} {theirs['wall_s']:10.2f} "
                  f"{theirs['wall_s'] / ours['wall_s']:6.1f} {ours['peak_rss_mib']:9.0f} "
                  f"{theirs['peak_rss_mib']:11.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--dir", help="folder for the run files (default: a temp dir)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--gammapy", nargs=2, metavar=("DIR", "N"))
    parser.add_argument("--compare", metavar="GAMMAPY_PYTHON",
                        help="interpreter of a gammapy 2.1 env: time xdl4 and gammapy's loop "
                        "alternately on the same GADF files (this VM's speed drifts)")
    parser.add_argument("--repeat", type=int, default=3, help="pairs per N with --compare")
    parser.add_argument("--dask", action="store_true",
                        help="also time xdl4.open_dataset(chunks={}) runs reduced by dask")
    args = parser.parse_args()
    if args.child:
        return _child(args.child[0], args.child[1:])
    if args.gammapy:
        return _gammapy(args.gammapy[0], int(args.gammapy[1]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir or tmp)
        folder.mkdir(exist_ok=True)
        runs = make_runs(folder, max(args.n))
        print(f"runs in {folder}")
        if args.compare:
            return _compare(args.compare, runs["gadf"], args.n, args.repeat)
        print(f"{'format':8s} {'N':>5s} {'wall s':>8s} {'main MiB':>9s} {'worker MiB':>10s} "
              f"{'s/run':>7s}")
        for fmt in ("gadf", "netcdf") + (("dask",) if args.dask else ()):
            for n in args.n:
                files = runs["gadf" if fmt == "dask" else fmt][:n]
                res = _run([sys.executable, __file__, "--child", fmt, *map(str, files)])
                print(f"{fmt:8s} {n:5d} {res['wall_s']:8.2f} {res['peak_rss_mib']:9.0f} "
                      f"{res['worker_rss_mib']:10.0f} {res['wall_s'] / n:7.3f}", flush=True)


if __name__ == "__main__":
    main()
