"""Stack many runs from files in bounded memory, locally or on a dask cluster.

Each run is read, turned into its partial terms (:func:`xdl4.reduce.chunk`) and folded into
an accumulator (:func:`xdl4.stack.merge`); accumulators of the partitions are combined in a
tree (``dask.bag.fold``), then :func:`xdl4.reduce.finalize` builds the stacked dataset.
At most a few runs and one accumulator per worker thread are in memory at any time,
whatever the number of runs.

>>> import os, tempfile, xdl4
>>> from xdl4.streaming import stack_files
>>> tmp = tempfile.mkdtemp()
>>> paths = [os.path.join(tmp, f"run{i}.nc") for i in range(3)]
>>> for i, p in enumerate(paths):
...     xdl4.examples.spectrum_dataset(seed=i).dl4.to_netcdf(p)
>>> float(stack_files(paths, progress=False).livetime)
10800.0
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from xdl4.errors import RunReadError, StackError
from xdl4.io.util import check_overwrite
from xdl4.kinds.counts import with_background_model
from xdl4.models.routing import ModelsLike
from xdl4.reduce import chunk, finalize
from xdl4.stack import merge

FORMATS = ("netcdf", "gadf")
_NETCDF_LOCK = threading.Lock()  # the netCDF-C/HDF5 libraries are not thread-safe


def run_terms(path: str | os.PathLike, chunks=None, models: ModelsLike = None) -> xr.Dataset:
    """The partial terms of the run in ``path``, in memory (read lazily with ``chunks``);
    with ``models`` its FoV background model is baked in first (as gammapy stacks)."""
    import xdl4
    from xdl4.io.backends import detect_format

    try:
        lock = _NETCDF_LOCK if detect_format(path) == "netcdf" else contextlib.nullcontext()
        with lock, xdl4.open_dataset(path, chunks=chunks) as ds:
            if chunks is None:
                ds = ds.load()  # one read per variable (lazy NetCDF reads on every access)
            return chunk(with_background_model(ds, models)).compute(scheduler="synchronous")
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise RunReadError(f"cannot stack run {os.fspath(path)!r}: "
                           f"{type(err).__name__}: {err}") from err


def _fold(acc: xr.Dataset, terms: xr.Dataset) -> xr.Dataset:
    try:
        return merge(acc, terms, inplace=True)  # acc is private to this fold
    except StackError as err:
        names = terms.attrs.get("name", "?")
        raise StackError(f"cannot stack run {names!r} onto {acc.attrs.get('name', '?')!r}: "
                         f"{err}") from err


def stack_files(
    paths: Sequence[str | os.PathLike],
    *,
    chunks=None,
    client=None,
    progress: bool = True,
    output: str | os.PathLike | None = None,
    format: str = "netcdf",
    overwrite: bool = False,
    name: str = "stacked",
    npartitions: int | None = None,
    scheduler: str = "processes",
    models=None,
) -> xr.Dataset:
    """Stack the runs in ``paths`` (GADF, OGIP or NetCDF; any mix) in bounded memory.

    ``chunks`` is passed to :func:`xdl4.open_dataset` for each run; with a
    ``dask.distributed`` ``client`` the runs are read and folded on its workers; ``progress``
    shows a progress bar. Locally the runs are split into contiguous partitions folded by
    forked worker processes (``scheduler="processes"``, one per core; the per-run work
    holds the GIL, so threads do not help); ``"synchronous"`` folds in this process. With
    ``output`` the result
    is also written (``format`` "netcdf" or "gadf") atomically: nothing is left behind
    when a run fails, and an existing file is kept unless ``overwrite``. A run that
    cannot be read raises :class:`RunReadError` naming it. With ``models`` each run's FoV
    background model is baked into its background first (gammapy stacks
    ``npred_background()``). Returns the stacked dataset (in memory).
    """
    import dask.bag as db

    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("stack_files needs at least one run")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if output is not None:
        check_overwrite(output, overwrite)  # fail before the work, not after
    read = functools.partial(run_terms, chunks=chunks, models=models)
    workers = _n_workers(client)
    nparts = npartitions or max(1, min(len(paths), 2 * workers))
    if client is None and scheduler == "processes" and workers > 1 and \
            "fork" in mp.get_all_start_methods() and len(paths) > 1:
        # one contiguous partition per worker: fewest results to send back and fold
        forked_parts = npartitions or max(1, min(len(paths) - 1, workers))
        terms = _fold_forked(paths, read, workers, forked_parts, progress)
        return _finish(terms, name, output, format, overwrite)
    bag = db.from_sequence(paths, npartitions=nparts).map(read)
    terms = bag.fold(_fold, _fold, split_every=4)
    if client is not None:
        future = client.compute(terms)
        if progress:
            from distributed import progress as dprogress

            dprogress(future)
        terms = future.result()
    else:
        bar = _progress_bar() if progress else contextlib.nullcontext()
        with bar:
            terms = terms.compute(scheduler=scheduler, num_workers=workers)
    return _finish(terms, name, output, format, overwrite)


def _finish(terms: xr.Dataset, name: str, output, format: str, overwrite: bool) -> xr.Dataset:
    out = finalize(terms).assign_attrs(name=name)
    if output is not None:
        write(out, output, format=format, overwrite=overwrite)
    return out


def _fold_partition(paths: list[str], read) -> xr.Dataset:
    return functools.reduce(_fold, (read(p) for p in paths))


def _fold_forked(paths: list[str], read, workers: int, nparts: int,
                 progress: bool) -> xr.Dataset:
    """Fold contiguous partitions of ``paths`` in forked processes, then fold their results
    in order. The first run is read here first: the workers inherit its imports and warm
    caches (axis tables, grids), which is what makes forking cheap."""
    acc = read(paths[0])
    bounds = 1 + np.linspace(0, len(paths) - 1, nparts + 1).astype(int)
    parts = [paths[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    with mp.get_context("fork").Pool(workers) as pool:
        results = pool.imap(functools.partial(_fold_partition, read=read), parts)
        for i, terms in enumerate(results, 1):
            acc = _fold(acc, terms)
            if progress:
                print(f"\rstacked {bounds[i]}/{len(paths)} runs", end="", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    return acc


def write(ds: xr.Dataset, path: str | os.PathLike, format: str = "netcdf",
          overwrite: bool = False) -> Path:
    """Write a stacked dataset atomically as NetCDF or GADF FITS."""
    if format == "netcdf":
        from xdl4.io.netcdf import to_netcdf

        to_netcdf(ds, path, overwrite=overwrite)
    elif format == "gadf":
        from xdl4.io.gadf import to_gadf

        to_gadf(ds, path, overwrite=overwrite)
    else:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    return Path(path)


def _n_workers(client) -> int:
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    return max(1, min(8, os.cpu_count() or 1))


def _progress_bar():
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=1.0)
