"""The kind registry: each dataset kind is a declared record plus the operations its
module registers.

A kind's record (:class:`xdl4.schema.Kind`) says what the kind *is* (statistic, variables,
geometry, on/off, gammapy class); its :class:`KindBehaviour` says what it *does*: a table
of operations, each a plain function ``f(ds, *args, **kwargs)``. The accessor looks the
dataset's kind up here and calls the operation; an operation a kind does not register
raises one typed error, :class:`~xdl4.errors.KindError`
("npred is not defined for flux_points datasets").

The built-in kinds register in :mod:`xdl4.kinds.counts` (map, map_onoff, spectrum,
spectrum_onoff) and :mod:`xdl4.kinds.flux_points`. A new kind registers the same way from
outside the package (see ``docs/architecture.md``)::

    xdl4.kinds.register(Kind("my_kind", "cash", "region", ("counts",)), {"info": my_info})

>>> import xdl4
>>> xdl4.kinds.get("flux_points").defines("npred")
False
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import xarray as xr

from xdl4.errors import DL4ValidationError, KindError
from xdl4.schema import KINDS, Kind
from xdl4.validation import dataset_name, kind_record, variable_problems

#: the operations a kind may define, and what each does (the accessor's methods)
OPERATIONS: dict[str, str] = {
    "problems": "kind-specific validation: a list of problems (default: the variables')",
    "info": "summary numbers (gammapy's info_dict)",
    "npred": "predicted counts",
    "npred_signal": "predicted source counts",
    "npred_background": "predicted background counts",
    "stat_array": "the statistic per bin",
    "stat_sum": "the statistic summed over the fit mask",
    "residuals": "data minus model (or scaled)",
    "fake": "random realisations under models",
    "likelihood_terms": "the terms of a joint likelihood, one per dataset or run",
    "stack": "stacking (pairwise, or over runs)",
    "to_masked": "the safe mask applied",
    "resample_energy": "reco-energy bins merged",
    "to_image": "all reco-energy bins merged",
    "downsample": "pixels merged",
    "cutout": "a part of the sky grid",
    "pad": "pixels added around the sky grid",
    "to_region": "a map reduced to a region spectrum",
}


class KindBehaviour:
    """A kind's record and its registered operations."""

    def __init__(self, record: Kind, operations: Mapping[str, Callable],
                 plots: Mapping[str, tuple[str, ...]] | None = None):
        self.record = record
        self.operations: dict[str, Callable] = dict(operations)
        #: the plots of :mod:`xdl4.plot` that apply (``"plots"``) and the panels ``peek``
        #: draws (``"peek"``): names, the plot package holds the drawing
        self.plots: dict[str, tuple[str, ...]] = {"plots": (), "peek": (), **(plots or {})}

    @property
    def name(self) -> str:
        return self.record.name

    def defines(self, operation: str) -> bool:
        """Whether this kind registers ``operation``."""
        return operation in self.operations

    def get(self, operation: str) -> Callable:
        """The function of ``operation``; :class:`~xdl4.errors.KindError` if undefined."""
        try:
            return self.operations[operation]
        except KeyError:
            raise KindError(f"{operation} is not defined for {self.name} datasets") from None

    def call(self, operation: str, ds: xr.Dataset, *args: Any, **kwargs: Any) -> Any:
        return self.get(operation)(ds, *args, **kwargs)

    def problems(self, ds: xr.Dataset) -> list[str]:
        check = self.operations.get("problems")
        return check(ds) if check is not None else variable_problems(ds, self.record)

    def validate(self, ds: xr.Dataset) -> xr.Dataset:
        problems = self.problems(ds)
        if problems:
            raise DL4ValidationError(problems, dataset_name(ds))
        return ds

    def __repr__(self) -> str:
        return f"<KindBehaviour {self.name!r}: {', '.join(sorted(self.operations))}>"


_REGISTRY: dict[str, KindBehaviour] = {}


def register(record: Kind, operations: Mapping[str, Callable], *,
             plots: Mapping[str, tuple[str, ...]] | None = None,
             replace: bool = False) -> KindBehaviour:
    """Register a kind: its record (added to :data:`xdl4.schema.KINDS`), its operations
    (names of :data:`OPERATIONS`, or new ones) and the plots of :mod:`xdl4.plot` that apply
    (``{"plots": names, "peek": panel names}``). ``replace`` allows re-registering a name.

    >>> from xdl4.schema import Kind
    >>> toy = register(Kind("toy", "cash", "region", ("counts",)),
    ...                {"info": lambda ds: {"n": int(ds.counts.sum())}})
    >>> toy.defines("info"), toy.defines("npred")
    (True, False)
    >>> unregister("toy")
    """
    if not replace and (record.name in _REGISTRY or record.name in KINDS and
                        KINDS[record.name] is not record):
        raise KindError(f"kind {record.name!r} is registered already (replace=True to "
                        "replace it)")
    KINDS[record.name] = record
    behaviour = _REGISTRY[record.name] = KindBehaviour(record, operations, plots)
    return behaviour


def unregister(name: str) -> None:
    """Remove a kind registered with :func:`register`."""
    _REGISTRY.pop(name, None)
    KINDS.pop(name, None)


def add_operations(name: str, operations: Mapping[str, Callable]) -> None:
    """Register more operations for the kind ``name`` (e.g. plots, by the plot package)."""
    get(name).operations.update(operations)


def registered() -> list[str]:
    """The names of the registered kinds."""
    return list(_REGISTRY)


def get(name: str) -> KindBehaviour:
    """The behaviour of the kind ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KindError(f"no behaviour registered for kind {name!r} (registered: "
                        f"{', '.join(_REGISTRY)})") from None


def of(ds: xr.Dataset) -> KindBehaviour:
    """The behaviour of the kind of ``ds`` (``attrs["dl4_kind"]``)."""
    return get(kind_record(ds).name)


def validate(ds: xr.Dataset) -> xr.Dataset:
    """Check ``ds`` against the DL4 contract; raise :class:`~xdl4.errors.DL4ValidationError`
    listing every problem, or return ``ds`` unchanged.

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset()
    >>> xdl4.validate(ds) is ds
    True
    """
    return of(ds).validate(ds)
