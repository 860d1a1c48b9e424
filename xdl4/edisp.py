"""Energy-dispersion kernels: P(reco bin | true bin) matrices from a migration density or
from the binning alone (gammapy's "no EDISP" kernel).

>>> import numpy as np
>>> overlap_kernel(np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 4.0])).tolist()
[[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import numpy as np

#: kernel entries below this are set to 0, as gammapy does for migration-based EDISP
MIGRA_KERNEL_THRESHOLD = 1e-8


def overlap_kernel(true_edges: np.ndarray, reco_edges: np.ndarray) -> np.ndarray:
    """gammapy's "no EDISP" kernel: the fraction of the linear width of each true bin that
    lies in each reco bin (the identity when the binnings match)."""
    lo = np.maximum(true_edges[:-1, None], reco_edges[None, :-1])
    hi = np.minimum(true_edges[1:, None], reco_edges[None, 1:])
    return np.clip(hi - lo, 0, None) / np.diff(true_edges)[:, None]


def migra_to_kernel(values: np.ndarray, migra_edges: np.ndarray, e_true: np.ndarray,
                    e_reco: np.ndarray) -> np.ndarray:
    """EDISP kernel (n_true, n_reco) from a migration density (n_true, n_migra): the
    cumulative migra integral at mu = reco edge / true-bin centre, differenced."""
    cum = np.concatenate([np.zeros((values.shape[0], 1)),
                          np.cumsum(values * np.diff(migra_edges), axis=1)], axis=1)
    centre = np.sqrt(e_true[:-1] * e_true[1:])
    out = np.empty((values.shape[0], e_reco.size - 1))
    for t in range(values.shape[0]):
        c = np.interp(e_reco / centre[t], migra_edges, cum[t])
        out[t] = np.diff(c)
    out = np.clip(out, 0, None)
    return np.where(out < MIGRA_KERNEL_THRESHOLD, 0.0, out)
