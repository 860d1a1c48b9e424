"""Binned axes as xarray coordinates: bin centres plus CF bounds variables."""

from __future__ import annotations

import numpy as np
import xarray as xr
from astropy import units as u

from xdl4.errors import ArgumentError
from xdl4.schema import BOUND, canonical_dims, parse_unit

LOG_DIMS = ("energy", "energy_true", "irf_energy_true")


def as_quantity(value, unit: str | u.UnitBase = "TeV") -> u.Quantity:
    """Turn a Quantity, a string like ``"0.5 TeV"`` or a plain number (in ``unit``) into a
    Quantity of ``unit``.

    >>> float(as_quantity("500 GeV").to_value("TeV"))
    0.5
    >>> as_quantity(["500 GeV", "10 TeV"]).value.tolist()
    [0.5, 10.0]
    """
    if isinstance(value, str):
        value = u.Quantity(value)
    elif isinstance(value, list | tuple) and any(isinstance(v, str | u.Quantity)
                                                 for v in value):  # ["1 TeV", "10 TeV"]
        if not all(isinstance(v, str | u.Quantity) for v in value):
            raise ArgumentError(f"give every value a unit or none: {value!r}")
        value = u.Quantity([u.Quantity(v) if isinstance(v, str) else v for v in value])
    if isinstance(value, u.Quantity):
        return value.to(unit)
    return u.Quantity(np.asarray(value, dtype=float), unit)


def axis_coords(edges, dim: str, unit: str | None = None, interp: str | None = None) -> dict:
    """Coordinates for a binned axis: the centre coordinate ``dim`` (geometric mean for log
    axes, as gammapy's ``MapAxis.center``) and its CF bounds ``{dim}_bounds``.

    >>> c = axis_coords([1, 10, 100], "energy", "TeV")
    >>> c["energy"].values.round(3).tolist(), c["energy"].attrs["bounds"]
    ([3.162, 31.623], 'energy_bounds')
    """
    if isinstance(edges, u.Quantity):
        unit = unit or edges.unit.to_string("fits")
        edges = edges.to_value(unit)
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2:
        raise ArgumentError(f"{dim} edges must be a 1D sequence of at least two values")
    if not np.all(np.diff(edges) > 0):
        raise ArgumentError(f"{dim} edges must be strictly increasing, got {edges}")
    interp = interp or ("log" if dim in LOG_DIMS else "lin")
    lo, hi = edges[:-1], edges[1:]
    centre = np.sqrt(lo * hi) if interp == "log" else 0.5 * (lo + hi)
    unit = "" if unit is None else str(unit)
    bname = f"{dim}_bounds"
    attrs = {"units": unit, "bounds": bname, "interp": interp}
    return {
        dim: xr.Variable(dim, centre, attrs),
        # CF bounds inherit the units of their coordinate (as xarray writes and reads them)
        bname: xr.Variable((dim, BOUND), np.stack([lo, hi], axis=1)),
    }


def node_coords(nodes, dim: str, unit: str = "", interp: str = "lin") -> dict:
    """Coordinates for an axis given by node values only (no bins, e.g. PSF rad nodes)."""
    return {dim: xr.Variable(dim, np.asarray(nodes, dtype=float),
                             {"units": unit, "interp": interp})}


def time_coords(time_min, time_max, unit: str = "d", mjdrefi: int = 0, mjdreff: float = 0.0,
                timesys: str = "tt") -> dict:
    """Coordinates for time bins (bins may have gaps): the bin midpoints ``time`` and CF
    bounds ``time_bounds``, numbers in ``unit`` since MJD ``mjdrefi + mjdreff`` in the scale
    ``timesys`` (attrs of both, as for GTIs). Time objects are converted to that reference.

    >>> c = time_coords([55197.0, 55198.0], [55197.5, 55199.0])
    >>> c["time"].values.tolist(), c["time_bounds"].attrs["timesys"]
    ([55197.25, 55198.5], 'tt')
    """
    from astropy.time import Time

    ref = Time(mjdrefi, mjdreff, format="mjd", scale=timesys.lower())
    lo, hi = ((t - ref).to_value(unit) if isinstance(t, Time) else np.asarray(t, float)
              for t in (time_min, time_max))
    lo, hi = np.atleast_1d(lo), np.atleast_1d(hi)
    attrs = {"units": unit, "mjdrefi": mjdrefi, "mjdreff": mjdreff, "timesys": timesys}
    return {
        "time": xr.Variable("time", 0.5 * (lo + hi), {**attrs, "bounds": "time_bounds"}),
        "time_bounds": xr.Variable(("time", BOUND), np.stack([lo, hi], axis=1),
                                   {k: v for k, v in attrs.items() if k != "units"}),
    }


def reference_time(attrs: dict, default_mjdrefi: float = 0):
    """The time reference of GTIs or time bins: MJD ``mjdrefi + mjdreff`` in the scale
    ``timesys`` (attrs, as the FITS keywords), as gammapy builds it.

    >>> reference_time({"mjdrefi": 51544, "mjdreff": 0.5, "timesys": "tt"}).mjd
    np.float64(51544.5)
    """
    from astropy.time import Time

    return Time(float(attrs.get("mjdrefi", default_mjdrefi)), float(attrs.get("mjdreff", 0.0)),
                format="mjd", scale=str(attrs.get("timesys", "tt")).lower())


def time_edges(ds: xr.Dataset) -> tuple:
    """Start and stop of each time bin as absolute Times, built as gammapy builds them:
    MJD ``mjdrefi + mjdreff`` in ``timesys`` plus the bounds in their unit.

    >>> ds = xr.Dataset(coords=time_coords([55197.0], [55197.5]))
    >>> [t.mjd.tolist() for t in time_edges(ds)]
    [[55197.0], [55197.5]]
    """
    b = ds[ds["time"].attrs.get("bounds", "time_bounds")]
    a = {**ds["time"].attrs, **b.attrs}
    ref = reference_time(a)
    unit = parse_unit(a.get("units", "d"), "time bounds")
    values = bound_values(ds, "time")
    return ref + u.Quantity(values[:, 0], unit), ref + u.Quantity(values[:, 1], unit)


def edges(ds: xr.Dataset | xr.DataArray, dim: str = "energy") -> u.Quantity:
    """Bin edges of ``dim`` as a Quantity, from its bounds variable.

    >>> import xdl4
    >>> xdl4.examples.spectrum_dataset().dl4.energy_edges[:2]
    <Quantity [0.1       , 0.17782794] TeV>
    """
    b = bounds(ds, dim)
    return np.append(b[:, 0], b[-1, 1])


def bounds_units(ds: xr.Dataset | xr.DataArray, dim: str) -> str | None:
    """The units of the bounds of ``dim``: their own ``units``, else (CF: bounds inherit
    them) the coordinate's."""
    bname = ds[dim].attrs.get("bounds", f"{dim}_bounds")
    return ds[bname].attrs.get("units", ds[dim].attrs.get("units"))


def bound_values(ds: xr.Dataset | xr.DataArray, dim: str = "energy") -> np.ndarray:
    """The bounds variable of axis ``dim`` as floats, (n, 2) (or (obs, n, 2)) whatever the
    order its dims are stored in (a transposed dataset reads the same).

    >>> import xdl4
    >>> ds = xdl4.examples.spectrum_dataset()
    >>> (bound_values(ds.transpose("bound", ...)) == bound_values(ds)).all()
    np.True_
    """
    b = ds[ds[dim].attrs.get("bounds", f"{dim}_bounds")]
    return np.asarray(b.transpose(*canonical_dims(b.dims)).values, dtype=float)


def has_bounds(ds: xr.Dataset | xr.DataArray, dim: str) -> bool:
    """Whether axis ``dim`` has a bounds variable (CF ``bounds``, else ``{dim}_bounds``).

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset()
    >>> has_bounds(ds, "rad"), has_bounds(ds, "lat")
    (True, False)
    """
    bname = ds[dim].attrs.get("bounds", f"{dim}_bounds")
    return bname in ds.coords or bname in getattr(ds, "data_vars", {})


def bounds(ds: xr.Dataset | xr.DataArray, dim: str = "energy") -> u.Quantity:
    """The (n, 2) lower / upper bin bounds of axis ``dim`` with their units.

    >>> import xdl4
    >>> bounds(xdl4.examples.spectrum_dataset(), "energy")[0]
    <Quantity [0.1       , 0.17782794] TeV>
    """
    if not has_bounds(ds, dim):
        bname = ds[dim].attrs.get("bounds", f"{dim}_bounds")
        raise KeyError(f"axis {dim!r} has no bounds variable {bname!r}")
    b = bound_values(ds, dim)
    if b.ndim != 2:
        raise ArgumentError(f"bounds of {dim!r} vary along other dims ({ds[bname].dims})")
    return u.Quantity(b, parse_unit(bounds_units(ds, dim), f"{dim} bounds"))


def energy_mask(ds: xr.Dataset, energy_min=None, energy_max=None,
                dim: str = "energy") -> xr.DataArray:
    """Boolean mask of the ``dim`` bins lying fully inside [energy_min, energy_max]."""
    e = edges(ds, dim).to_value("TeV")
    lo, hi = e[:-1], e[1:]
    emin = -np.inf if energy_min is None else as_quantity(energy_min).value
    emax = np.inf if energy_max is None else as_quantity(energy_max).value
    # tolerance so that a limit equal to an edge written with rounding still counts as inside
    tol = 1e-9
    inside = (lo >= emin * (1 - tol)) & (hi <= emax * (1 + tol))
    return xr.DataArray(inside, dims=dim, coords={dim: ds[dim]}, name="energy_mask")


def group_edges(old: np.ndarray, new: np.ndarray, dim: str) -> np.ndarray:
    """Map each old bin to the index of the new bin containing it. New edges must be a
    subset of the old edges (up to 1e-6 relative); bins outside the new range get -1."""
    idx = np.searchsorted(old, new)
    idx = np.clip(idx, 0, old.size - 1)
    near = np.where(np.abs(old[idx - 1] - new) < np.abs(old[idx] - new), idx - 1, idx)
    if not np.allclose(old[near], new, rtol=1e-6, atol=0):
        raise ArgumentError(f"new {dim} edges {new} are not a subset of the existing edges {old}")
    group = np.full(old.size - 1, -1)
    for i, (a, b) in enumerate(zip(near[:-1], near[1:], strict=True)):
        group[a:b] = i
    return group
