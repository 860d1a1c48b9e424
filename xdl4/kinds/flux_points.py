"""Flux points: one row per energy bin, SED quantities as variables on ``energy``.

Layout: coordinate ``energy`` = the reference energy ``e_ref`` (TeV) with optional CF bounds
``energy_bounds`` (e_min, e_max); attrs ``dl4_kind="flux_points"``, ``sed_type`` (dnde,
e2dnde, flux, eflux, likelihood) and optionally ``ul_conf``; variables named as gammapy's
columns (``dnde``, ``dnde_err``, ``dnde_errn``, ``dnde_errp``, ``dnde_ul``, ``is_ul``, ``ts``,
``sqrt_ts``, ``norm``..., ``ref_dnde``, ``ref_flux``, ``ref_eflux``); likelihood scans as
``norm_scan(energy, scan)`` and ``stat_scan(energy, scan)``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdl4.axes import axis_coords
from xdl4.schema import SED_TYPES, parse_unit

REQUIRED = {
    "dnde": ("dnde",),
    "e2dnde": ("e2dnde",),
    "flux": ("flux",),
    "eflux": ("eflux",),
    "likelihood": ("norm", "ref_dnde"),
}
NEEDS_BOUNDS = ("flux", "eflux", "likelihood")
QUANTITY_UNITS = {**SED_TYPES, "norm": "", "ref_dnde": SED_TYPES["dnde"],
                  "ref_flux": SED_TYPES["flux"], "ref_eflux": SED_TYPES["eflux"]}
SUFFIXES = ("", "_err", "_errn", "_errp", "_ul", "_sensitivity")


def validate_flux_points(ds: xr.Dataset) -> list[str]:
    problems = []
    if "energy" not in ds.dims or "energy" not in ds.coords:
        return ["flux points need an 'energy' dimension with reference energies"]
    sed = ds.attrs.get("sed_type")
    if sed not in REQUIRED:
        return [f"attrs['sed_type'] is {sed!r}; expected one of {list(REQUIRED)}"]
    for col in REQUIRED[sed]:
        if col not in ds.data_vars:
            problems.append(f"flux points of sed_type {sed!r} need variable {col!r}")
    if sed in NEEDS_BOUNDS and "energy_bounds" not in ds.coords:
        problems.append(f"flux points of sed_type {sed!r} need energy bounds (e_min, e_max)")
    e = np.asarray(ds["energy"].values)
    if e.size > 1 and np.any(np.diff(e) <= 0):
        problems.append("flux point energies are not increasing")
    for q, unit in QUANTITY_UNITS.items():
        for suffix in SUFFIXES:
            name = q + suffix
            if name not in ds.data_vars:
                continue
            try:
                got = parse_unit(ds[name].attrs.get("units"), name)
                if not got.is_equivalent(parse_unit(unit, name)):
                    problems.append(f"{name} has unit {got}, not convertible to "
                                    f"{unit or 'dimensionless'}")
            except ValueError as err:
                problems.append(str(err))
            if suffix in ("_err", "_errn", "_errp") and ds[name].chunks is None and \
                    np.any(ds[name].values < 0):
                problems.append(f"{name} has negative errors")
    for name in ("is_ul", "mask_safe", "mask_fit"):
        if name in ds and ds[name].dtype != bool:
            problems.append(f"{name} must be boolean, got dtype {ds[name].dtype}")
    return problems


def create_flux_points(energy_edges=None, *, energy_ref=None, sed_type: str = "dnde",
                       name: str = "flux_points", units: dict | None = None,
                       **columns) -> xr.Dataset:
    """Flux points from arrays. ``energy_edges`` (TeV, n+1 values) or ``energy_ref``;
    columns by gammapy's names in gammapy's default units unless ``units`` says otherwise.

    >>> fp = create_flux_points([1, 2, 4], dnde=[1e-11, 2e-12], dnde_err=[1e-12, 3e-13])
    >>> fp.dl4.kind, fp.sizes["energy"]
    ('flux_points', 2)
    """
    from xdl4.schema import validate

    coords: dict = {}
    if energy_edges is not None:
        coords = axis_coords(np.asarray(energy_edges, float), "energy", "TeV")
        if energy_ref is not None:
            coords["energy"] = xr.Variable("energy", np.asarray(energy_ref, float),
                                           coords["energy"].attrs)
    elif energy_ref is not None:
        coords = {"energy": xr.Variable("energy", np.asarray(energy_ref, float),
                                        {"units": "TeV"})}
    else:
        raise ValueError("give energy_edges or energy_ref")
    units = units or {}
    data = {}
    for col, values in columns.items():
        values = np.asarray(values)
        base = next((q for q in QUANTITY_UNITS if col in (q + s for s in SUFFIXES)), None)
        attrs = {}
        if base is not None:
            attrs["units"] = units.get(col, QUANTITY_UNITS[base])
        dims = ("energy",) if values.ndim == 1 else ("energy", f"{col}_dim")
        data[col] = xr.Variable(dims, values, attrs)
    ds = xr.Dataset(data, coords=coords, attrs={"dl4_kind": "flux_points", "name": name,
                                                "sed_type": sed_type})
    return validate(ds)
