"""Merging reco-energy bins: the ``energy`` reduction of :mod:`xdl4.reduce`, each variable
by its declared rule (gammapy's)."""

from __future__ import annotations

import xarray as xr

from xdl4.axes import as_quantity, axis_coords, edges, group_edges
from xdl4.reduce import EnergyGroups, reduce


def resample_energy(ds: xr.Dataset, energy_edges) -> xr.Dataset:
    """Merge reco-energy bins into ``energy_edges`` (a subset of the current edges).

    Counts, background and counts_off become sums of value x mask_safe; masks are OR-ed;
    EDISP kernels are summed over merged reco bins with the safe mask applied; on/off
    acceptances keep the summed background alpha x counts_off; true-energy quantities
    (exposure, PSF in true energy) are unchanged; other reco-energy quantities (a PSF in
    reco energy) are averaged. The rules are those declared per variable
    (``xdl4.VARIABLES[name].reduce["energy"]``).

    >>> import xdl4
    >>> ds = xdl4.examples.spectrum_dataset()
    >>> ds.dl4.resample_energy(ds.dl4.energy_edges[::2]).sizes["energy"]
    6
    """
    old = edges(ds, "energy")
    new = as_quantity(energy_edges, old.unit).value
    group = group_edges(old.value, new, "energy")
    out = reduce(ds, EnergyGroups(group, new.size - 1))
    return out.assign_coords(axis_coords(new, "energy", old.unit.to_string("fits")))


def to_image(ds: xr.Dataset) -> xr.Dataset:
    """Merge all reco-energy bins into one (masks respected); true energy is kept."""
    e = edges(ds, "energy")
    return resample_energy(ds, e[[0, -1]])


__all__ = ["resample_energy", "to_image"]
