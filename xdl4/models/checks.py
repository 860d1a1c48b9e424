"""Checks a fit runs before it starts: parameters it can start from, bins it can fit.

The fit driver calls :func:`check_fit_start` once, after the models are routed to the
datasets and before the minimiser is built (see ``docs/reliability.md``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr

from xdl4.errors import FitError, ModelError

__all__ = ["check_fit_start", "count_fit_bins"]


def _datasets(datasets: Any) -> list[xr.Dataset]:
    if isinstance(datasets, xr.Dataset):
        return [datasets]
    if isinstance(datasets, xr.DataTree):
        return [node.to_dataset() for node in datasets.subtree if node.has_data]
    return list(datasets)


def count_fit_bins(datasets: xr.Dataset | xr.DataTree | Iterable[xr.Dataset]) -> int:
    """The number of bins entering the likelihood: ``mask_safe & mask_fit`` (each all True
    when absent) over every run and dataset. For flux points these are the points the
    masks keep (the evaluator also drops points without a value).

    >>> import xdl4
    >>> ds = xdl4.examples.spectrum_dataset()
    >>> count_fit_bins(ds) == int(ds.mask_safe.sum())
    True
    >>> count_fit_bins(ds.assign(mask_fit=ds.mask_safe & False))
    0
    """
    total = 0
    for ds in _datasets(datasets):
        masks = [ds[m] for m in ("mask_safe", "mask_fit") if m in ds.data_vars]
        if not masks:
            like = ds["counts"] if "counts" in ds.data_vars else None
            if like is None:  # flux points: one bin per point
                dims = [d for d in ("time", "energy") if d in ds.dims]
                total += int(np.prod([ds.sizes[d] for d in dims])) if dims else 0
            else:
                total += int(like.size)
            continue
        mask = masks[0]
        for other in masks[1:]:
            mask = mask & other
        total += int(mask.sum())
    return total


def check_fit_start(models: Any, datasets: Any = None) -> None:
    """Refuse a fit that cannot start well, naming what is wrong.

    * a free parameter whose start value is NaN or infinite, or outside ``[min, max]``
      (the minimiser would silently move it onto the bound), or with ``min > max``:
      :class:`xdl4.ModelError` listing every such parameter;
    * ``datasets`` given and no bin left to fit (``mask_safe & mask_fit`` empty
      everywhere): :class:`xdl4.FitError`.

    >>> from xdl4.models import Models, PowerLaw, SkyModel
    >>> m = Models([SkyModel(PowerLaw(index=5.0), name="src")])
    >>> m.parameters["src.index"].min, m.parameters["src.index"].max = 1.0, 4.0
    >>> check_fit_start(m)
    Traceback (most recent call last):
    ...
    xdl4.errors.ModelError: cannot start the fit: parameter 'src.index' start value 5 is ...
    """
    problems = []
    for label, p in models.parameters.unique():
        if p.frozen:
            continue
        lo, hi = p.bounds()
        if not math.isfinite(p.value):
            problems.append(f"parameter {label!r} start value is {p.value}")
        elif lo > hi:
            problems.append(f"parameter {label!r} has min {lo:g} > max {hi:g}")
        elif p.value < lo or p.value > hi:
            problems.append(f"parameter {label!r} start value {p.value:g} is outside its "
                            f"bounds [{lo:g}, {hi:g}]")
    if problems:
        raise ModelError("cannot start the fit: " + "; ".join(problems))
    if datasets is not None and count_fit_bins(datasets) == 0:
        names = [str(ds.attrs.get("name", "?")) for ds in _datasets(datasets)]
        raise FitError(f"no bin left to fit: mask_safe & mask_fit select no bin in "
                       f"datasets {names}")
