"""What the estimators take from the rest of xdl4, in one module.

Every internal the estimators use is imported here and nowhere else in the package, so
that moving ``forward.py`` / ``fitting.py`` into their new homes changes one file:

* ``xdl4.validation.datasets_in`` (datasets of a list / DataTree, named as in fits);
* ``xdl4.fitting.Likelihood`` and its ``terms``: the prepared per-run evaluators of a
  dataset, a list, a DataTree or runs along ``obs``, with their sources and background
  model bound (the kinds' ``likelihood_terms``), and ``xdl4.fitting.fit``;
* ``xdl4.psf.convolve`` (PSF kernels applied to images, float64);
* the counts kinds' evaluators (:func:`xdl4.kinds.counts.evaluator`, a
  :class:`xdl4.forward.Evaluator`): ``npred_signal(models, names)``,
  ``npred_background``, ``counts``, ``mask``, ``alpha``, ``counts_off``, ``psf_kernels``,
  ``edisp_matrix``, ``exposure``, ``e_true``, ``e_reco``;
* ``xdl4.stats``: ``TRUNCATION``, ``cash``, ``cash_ts``, ``sqrt_ts``, ``wstat``,
  ``wstat_background``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from xdl4 import masks
from xdl4.errors import FitError, KindError, ModelError
from xdl4.fitting import Likelihood, fit
from xdl4.forward import Evaluator
from xdl4.kinds.counts import WStatEvaluator, evaluator
from xdl4.models.routing import as_models, is_background
from xdl4.psf import convolve as convolve_kernels
from xdl4.stats import TRUNCATION, cash, cash_ts, sqrt_ts, wstat, wstat_background
from xdl4.validation import datasets_in, kind_record, run_labels

__all__ = ["TRUNCATION", "Block", "Evaluator", "FitError", "Likelihood", "cash", "cash_ts",
           "convolve_kernels", "datasets_in", "evaluator", "fit", "is_onoff", "masks",
           "run_blocks", "run_labels", "snap_edges", "source_model", "sqrt_ts", "wstat",
           "wstat_background"]


def is_onoff(ds: xr.Dataset) -> bool:
    """Whether the background of ``ds`` is measured in an OFF region (its kind's record)."""
    return kind_record(ds).onoff


def source_model(models, source):
    """The sky model ``source`` (name or index among the sky models) of ``models``."""
    from xdl4.models import Models

    models = models if isinstance(models, Models) else Models(as_models(models))
    sky = [m for m in models if not is_background(m)]
    if isinstance(source, int | np.integer):
        try:
            return sky[int(source)]
        except IndexError:
            raise ModelError(f"source index {source} out of range: {len(sky)} sky model(s)") \
                from None
    for m in sky:
        if m.name == source:
            return m
    raise ModelError(f"no sky model named {source!r} (sky models: {[m.name for m in sky]})")


@dataclass
class Block:
    """One prepared evaluator's arrays, runs first: (runs, energy, pixels).

    ``b`` is everything but the source for cash (other sources + background, never
    negative in total), ``o`` the other sources' signal for wstat; ``s`` the source's
    predicted counts at its current parameters (norm 1).
    """

    stat: str
    labels: list[str]
    counts: np.ndarray
    mask: np.ndarray
    s: np.ndarray
    b: np.ndarray | None = None
    o: np.ndarray | None = None
    n_off: np.ndarray | None = None
    alpha: np.ndarray | None = None
    datasets: list = field(default_factory=list)
    e_reco: np.ndarray | None = None


def _as_runs(a: np.ndarray, lead: bool, n_energy: int) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if not lead:
        a = a[None]
    return a.reshape(a.shape[0], n_energy, -1)


def run_blocks(data, models, source_name: str, irf_interpolation: str | None = None
               ) -> list[Block]:
    """The per-run arrays of every dataset in ``data`` (dataset, list, DataTree, runs along
    ``obs``) with the models bound as in a fit."""
    lik = Likelihood(data, models, irf_interpolation)
    blocks = []
    for term in lik.terms:
        if not isinstance(term, Evaluator):
            raise KindError(f"dataset {term.label!r}: estimators take counts datasets, "
                            "not flux points")
        lead = bool(term.lead)
        ne = term.e_reco.size - 1
        names = [m.name for m in term.sources(None)]
        others = [n for n in names if n != source_name]
        s = _as_runs(term.npred_signal(None, [source_name]), lead, ne)
        o = _as_runs(term.npred_signal(None, others), lead, ne)
        counts = _as_runs(term.counts, lead, ne)
        mask = _as_runs(term.mask, lead, ne).astype(bool)
        ds = term.ds
        labels = run_labels(ds) if lead else [term.label]  # as the fit labels the runs
        dsets = [ds.isel(obs=i) for i in range(ds.sizes["obs"])] if lead else [ds]
        blk = Block("wstat" if isinstance(term, WStatEvaluator) else "cash", labels, counts,
                    mask, s, datasets=dsets, e_reco=term.e_reco)
        if blk.stat == "wstat":
            blk.o = o
            blk.n_off = _as_runs(term.counts_off, lead, ne)
            blk.alpha = _as_runs(term.alpha, lead, ne)
        else:
            blk.b = o + _as_runs(term.npred_background(None), lead, ne)
        blocks.append(blk)
    return blocks


def snap_edges(edges: np.ndarray, requested: np.ndarray) -> np.ndarray:
    """Indices of the dataset ``edges`` nearest (in log energy) to each ``requested`` edge,
    as gammapy's ``MapAxis.group_table`` picks them (clipped to the axis; a requested bin
    whose two edges snap to the same edge is empty)."""
    edges = np.asarray(edges, float)
    req = np.asarray(requested, float)
    # pixel coordinate of an edge: edges sit at -0.5, 0.5, ..., n - 0.5
    pix = np.interp(np.log(req), np.log(edges), np.arange(edges.size) - 0.5)
    return np.round(pix + 0.5).astype(int)


def gti_range(ds: xr.Dataset):
    """(start, stop) of a run's GTIs as astropy Times (:func:`xdl4.gti.good_times`; None
    without GTIs)."""
    from xdl4.gti import good_times

    gti = good_times(ds)
    return None if gti is None or len(gti.start) == 0 else (gti.start, gti.stop)
