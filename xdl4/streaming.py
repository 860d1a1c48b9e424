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
>>> for i, p in enumerate(paths):  # distinct names: a run given twice is refused
...     xdl4.examples.spectrum_dataset(seed=i).assign_attrs(name=f"run{i}").dl4.to_netcdf(p)
>>> float(stack_files(paths, progress=False).livetime)
10800.0
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from xdl4.errors import RunReadError, StackError
from xdl4.files import check_overwrite
from xdl4.kinds.counts import with_background_model
from xdl4.models.routing import ModelsLike
from xdl4.reduce import chunk, finalize
from xdl4.stack import merge
from xdl4.validation import dataset_name

FORMATS = ("netcdf", "gadf")
_NETCDF_LOCK = threading.Lock()  # the netCDF-C/HDF5 libraries are not thread-safe
#: attrs of partial terms: the (name, path) of every run folded in, to refuse duplicates
RUNS = "_xdl4_runs"
SCHEDULERS = ("processes", "synchronous", "threads")


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
            name = dataset_name(ds)
            terms = chunk(with_background_model(ds, models)).compute(scheduler="synchronous")
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise RunReadError(f"cannot stack run {os.fspath(path)!r}: "
                           f"{type(err).__name__}: {err}") from err
    terms.attrs[RUNS] = {name or os.fspath(path): os.fspath(path)}  # run name -> file
    return terms


def _fold(acc: xr.Dataset, terms: xr.Dataset, allow_duplicates: bool = False) -> xr.Dataset:
    runs = acc.attrs.get(RUNS, {})  # acc is private to this fold: updated in place
    new = terms.attrs.get(RUNS, {})
    if not allow_duplicates:  # only the new runs are looked up: linear in the runs
        for name, path in new.items():
            if name in runs:
                raise StackError(f"runs {runs[name]!r} and {path!r} are both named {name!r}: "
                                 "a run stacked twice would be counted twice (pass "
                                 "allow_duplicates=True if they are different runs)")
    try:
        out = merge(acc, terms, inplace=True)  # acc is private to this fold
    except StackError as err:
        raise StackError(f"cannot stack {_files(new)} onto {_files(runs)}: {err}") from err
    runs.update(new)
    out.attrs[RUNS] = runs
    return out


def _files(runs: dict[str, str], shown: int = 3) -> str:
    """The files of ``runs`` (name -> path) for a message: a few, then how many more."""
    names = [os.path.basename(path) for path in runs.values()]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more if names else "the runs so far"


def check_runs(paths, output=None, allow_duplicates: bool = False) -> list[str]:
    """The run paths as strings, checked before any work: a list (not one path), not
    empty, every file present, no file given twice (same file through another path or a
    link included, unless ``allow_duplicates``) and not the ``output``."""
    if isinstance(paths, str | bytes | os.PathLike):
        raise StackError(f"stack_files takes a list of run files, got one path {paths!r} "
                         "(pass [path])")
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise StackError("stack_files needs at least one run")
    seen: dict[tuple[int, int], str] = {}
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise RunReadError(f"cannot stack run {p!r}: file not found") from None
        except OSError as err:
            raise RunReadError(f"cannot stack run {p!r}: {err}") from err
        key = (st.st_dev, st.st_ino)
        if key in seen and not allow_duplicates:
            raise StackError(f"run file {p!r} is given twice (also as {seen[key]!r}): it "
                             "would be counted twice (pass allow_duplicates=True to stack "
                             "it twice on purpose)")
        seen.setdefault(key, p)
        if output is not None and os.path.exists(output) and os.path.samefile(p, output):
            raise StackError(f"the output {os.fspath(output)!r} is one of the runs")
    return paths


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
    allow_duplicates: bool = False,
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

    A run given twice (the same file, or two runs with the same dataset name) raises
    :class:`xdl4.StackError` before it is counted twice, unless ``allow_duplicates``.
    One run and many take the same path; worker processes are forked, never spawned, so
    a script without an ``if __name__ == "__main__":`` guard is never re-run (where fork
    is not available the runs are folded in this process).

    >>> import os, tempfile, xdl4
    >>> paths = [os.path.join(tempfile.mkdtemp(), f"run{i}.nc") for i in range(2)]
    >>> for i, p in enumerate(paths):
    ...     xdl4.examples.spectrum_dataset(i, name=f"run{i}").dl4.to_netcdf(p)
    >>> stacked = xdl4.stack_files(paths, progress=False, scheduler="synchronous")
    >>> stacked.dl4.name, float(stacked.livetime)
    ('stacked', 7200.0)
    """
    import dask.bag as db

    if format not in FORMATS:
        raise StackError(f"format must be one of {FORMATS}, got {format!r}")
    if scheduler not in SCHEDULERS:
        raise StackError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
    paths = check_runs(paths, output, allow_duplicates)
    if output is not None:
        check_overwrite(output, overwrite)  # fail before the work, not after
    read = functools.partial(run_terms, chunks=chunks, models=models)
    fold = functools.partial(_fold, allow_duplicates=allow_duplicates)
    workers = _n_workers(client)
    nparts = npartitions or max(1, min(len(paths), 2 * workers))
    if client is None and scheduler in ("processes", "synchronous"):
        forked = scheduler == "processes" and "fork" in mp.get_all_start_methods()
        # one contiguous partition per worker: fewest results to send back and fold
        forked_parts = npartitions or max(1, min(len(paths) - 1, workers))
        terms = _fold_local(paths, read, fold, workers if forked else 1, forked_parts,
                            progress)
        return _finish(terms, name, output, format, overwrite)
    bag = db.from_sequence(paths, npartitions=nparts).map(read)
    terms = bag.fold(fold, fold, split_every=4)
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
    terms.attrs.pop(RUNS, None)
    out = finalize(terms).assign_attrs(name=name)
    if output is not None:
        write(out, output, format=format, overwrite=overwrite)
    return out


def _fold_partition(paths: list[str], read, fold) -> xr.Dataset:
    return functools.reduce(fold, (read(p) for p in paths))


def _fold_local(paths: list[str], read, fold, workers: int, nparts: int,
                progress: bool) -> xr.Dataset:
    """Fold the runs on this machine, one run or many: the first run is read here, the
    others in contiguous partitions folded by forked processes (``workers > 1``; they
    inherit its imports and warm caches, which is what makes forking cheap) or here, then
    the partitions' results are folded in order."""
    acc = read(paths[0])
    bounds = 1 + np.linspace(0, len(paths) - 1, nparts + 1).astype(int)
    parts = [paths[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    work = functools.partial(_fold_partition, read=read, fold=fold)
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(parts) > 1:  # ^C: the pool is terminated, workers stay quiet
            pool = mp.get_context("fork").Pool(workers, initializer=_ignore_sigint)
            results = stack.enter_context(pool).imap(work, parts)
        else:
            results = map(work, parts)
        if progress and parts:
            stack.callback(print, file=sys.stderr)  # end the progress line, also on errors
        for i, terms in enumerate(results, 1):
            acc = fold(acc, terms)
            if progress:
                print(f"\rstacked {bounds[i]}/{len(paths)} runs", end="", file=sys.stderr)
    return acc


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
        raise StackError(f"format must be one of {FORMATS}, got {format!r}")
    return Path(path)


def _n_workers(client) -> int:
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    return max(1, min(8, os.cpu_count() or 1))


def _progress_bar():
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=1.0)
