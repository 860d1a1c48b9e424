"""Constructors: empty datasets of each kind, or datasets from existing arrays."""

from __future__ import annotations

import numpy as np
import xarray as xr
from astropy import units as u

from xdl4.axes import as_quantity, axis_coords
from xdl4.errors import ArgumentError, KindError
from xdl4.kinds import validate
from xdl4.schema import GTI, KINDS, REGION, VARIABLES, allowed_dims
from xdl4.sky import Region, WcsGrid, tag_grids
from xdl4.validation import as_run, labelled

DEFAULT_RAD_EDGES = np.linspace(0.0, 0.66, 67)
DEFAULT_UNITS = {"exposure": "m2 s", "psf_exposure": "m2 s", "edisp_exposure": "m2 s",
                 "psf": "sr-1", "livetime": "s", "gti_start": "s", "gti_stop": "s"}


def _units_of(name: str) -> str:
    if name in DEFAULT_UNITS:
        return DEFAULT_UNITS[name]
    unit = VARIABLES[name].unit
    return "" if unit in (None, "") else unit


def _to_variable(name: str, value, dims: tuple[str, ...], shape: tuple[int, ...],
                 dtype) -> xr.Variable:
    attrs = {}
    if VARIABLES[name].unit is not None:
        attrs["units"] = _units_of(name)
    if isinstance(value, u.Quantity):
        attrs["units"] = value.unit.to_string("fits")
        value = value.value
    if isinstance(value, xr.DataArray):
        attrs.update(value.attrs)
        value = value.transpose(*dims).data if set(value.dims) == set(dims) else value.data
    value = np.asarray(value) if not hasattr(value, "chunks") else value
    if np.ndim(value) == 0 or value.shape != shape:
        try:
            value = np.broadcast_to(value, shape).copy()
        except ValueError as err:
            raise ArgumentError(f"{name}: array of shape {np.shape(value)} does not fit the "
                             f"dims {dims} of shape {shape}") from err
    if VARIABLES[name].dtype == "bool":
        value = value.astype(bool)
    elif not np.issubdtype(value.dtype, np.number):
        raise ArgumentError(f"{name}: expected numbers, got dtype {value.dtype}")
    elif np.issubdtype(value.dtype, np.floating) or VARIABLES[name].dtype == "float":
        value = value.astype(dtype)
    return xr.Variable(dims, value, attrs)


def create(
    kind: str,
    energy_edges,
    energy_true_edges=None,
    *,
    grid: WcsGrid | None = None,
    region: Region | str | None = None,
    binsz_irf: float | None = 0.2,
    rad_edges=None,
    migra_edges=None,
    reco_psf: bool = False,
    psf: bool | None = None,
    name: str = "dataset",
    dtype=np.float64,
    gti=None,
    gti_reference=(51544, 0.0, "utc"),
    **data,
) -> xr.Dataset:
    """Build a DL4 dataset of ``kind``, the counterpart of gammapy's ``*.create``.

    Without ``data`` every variable is zero and ``mask_safe`` is all False (an empty dataset,
    ready to be stacked onto). Arrays passed by name (``counts=...``, ``exposure=...``, ...,
    numpy, Quantity or DataArray; scalars broadcast) fill the variables; then ``mask_safe``
    defaults to all True.

    Parameters: ``energy_edges`` (reco) and ``energy_true_edges`` (default: the reco edges)
    as Quantities or TeV numbers; ``grid`` a :class:`~xdl4.sky.WcsGrid` for map kinds;
    ``region`` (a :class:`~xdl4.sky.Region` or its string) for spectrum kinds; IRFs on a
    coarse grid of ``binsz_irf`` deg (``None``: the data grid); ``rad_edges`` (deg) for the
    PSF; ``migra_edges`` for a migration EDISP instead of a kernel; ``reco_psf`` to give
    the PSF in reco energy; ``psf`` to force a PSF on/off (default: on for map kinds).

    >>> import xdl4
    >>> grid = xdl4.WcsGrid.create((83.63, 22.01), width=2.0, binsz=0.1)
    >>> ds = xdl4.create("map", [0.1, 1, 10], [0.05, 0.5, 5, 50], grid=grid)
    >>> dict(ds.counts.sizes)
    {'energy': 2, 'lat': 20, 'lon': 20}
    """
    record = KINDS.get(kind)
    if record is None or "counts" not in record.required:
        counts_kinds = [k for k, r in KINDS.items() if "counts" in r.required]
        raise KindError(f"create builds the counts kinds {counts_kinds}, not {kind!r} (flux "
                        "points: xdl4.create_flux_points)")
    unknown = set(data) - set(VARIABLES)
    if unknown:
        raise ArgumentError(f"unknown DL4 variables {sorted(unknown)}; known: {sorted(VARIABLES)}")
    energy_true_edges = energy_edges if energy_true_edges is None else energy_true_edges
    coords = {**axis_coords(as_quantity(energy_edges).value, "energy", "TeV"),
              **axis_coords(as_quantity(energy_true_edges).value, "energy_true", "TeV")}
    if record.geometry == "region" or grid is None:
        if record.geometry != "region" and region is None:
            raise ArgumentError(f"kind {kind!r} needs a sky grid (grid=WcsGrid...) or a region")
        if region is not None:
            region = Region.parse(region) if isinstance(region, str) else region
            coords[REGION] = region.to_coord()
        psf = bool(psf)
    else:
        coords.update(grid.coords())
        if binsz_irf is not None:
            irf_grid = WcsGrid.create(grid.center, (grid.shape[1] * grid.binsz[0],
                                                    grid.shape[0] * grid.binsz[1]),
                                      binsz_irf, grid.frame, grid.projection)
            coords.update(irf_grid.coords("irf_"))
        psf = True if psf is None else psf
    if psf:
        coords.update(axis_coords(DEFAULT_RAD_EDGES if rad_edges is None else rad_edges,
                                  "rad", "deg"))
    if migra_edges is not None:
        coords.update(axis_coords(migra_edges, "migra", ""))
    if gti is not None:
        gti = np.asarray(gti, dtype=float).reshape(-1, 2)
        data.setdefault("gti_start", gti[:, 0])
        data.setdefault("gti_stop", gti[:, 1])
        coords_gti = {GTI: np.arange(len(gti))}
    else:
        coords_gti = {}

    ds = xr.Dataset(coords={**coords, **coords_gti},
                    attrs={"dl4_kind": kind, "name": str(name)})
    wanted = ["counts", "exposure", "mask_safe"]
    wanted += ["counts_off", "acceptance", "acceptance_off"] if record.onoff \
        else ["background"]
    wanted += ["edisp", "edisp_exposure"] + (["psf", "psf_exposure"] if psf else [])
    wanted += [k for k in data if k not in wanted]
    fill = {"mask_safe": bool(data)}
    for vname in wanted:
        dims = _pick_dims(vname, ds, reco_psf, migra_edges is not None)
        shape = tuple(ds.sizes[d] for d in dims)
        value = data.get(vname, fill.get(vname, 0.0))
        ds[vname] = _to_variable(vname, value, dims, shape, dtype)
        if vname in ("gti_start", "gti_stop"):
            ds[vname].attrs.update(dict(zip(("mjdrefi", "mjdreff", "timesys"), gti_reference,
                                            strict=True)))
    if "edisp" not in data and "energy" in ds["edisp"].dims:
        ds["edisp"] = (ds["edisp"] + _diagonal_kernel(ds)).assign_attrs(ds["edisp"].attrs)
    return validate(as_run(labelled(tag_grids(ds))))


def _pick_dims(vname: str, ds: xr.Dataset, reco_psf: bool, migra: bool) -> tuple[str, ...]:
    options = allowed_dims(VARIABLES[vname], ds.dims)
    options = [d for d in options if "obs" not in d and "irf_energy_true" not in d]
    if vname in ("psf", "psf_exposure"):
        options = [d for d in options if ("energy" in d) == reco_psf]
    if vname == "edisp":
        options = [d for d in options if ("migra" in d) == migra]
    for d in options:
        if all(x in ds.dims or x in ds.coords for x in d):
            return d
    raise ArgumentError(f"cannot place {vname!r}: none of its dims {options} exist")


def _diagonal_kernel(ds: xr.Dataset) -> xr.DataArray:
    """gammapy's default kernel: fraction of each true bin's linear width in each reco bin."""
    from xdl4.axes import edges
    from xdl4.edisp import overlap_kernel

    kernel = overlap_kernel(edges(ds, "energy_true").to_value("TeV"),
                            edges(ds, "energy").to_value("TeV"))
    return xr.DataArray(kernel, dims=("energy_true", "energy"))
