"""The DL4 data contract in one place: kinds, dimensions, variables and validation.

Every variable a DL4 dataset may carry is declared once in :data:`VARIABLES` with its
allowed dimensions, dtype kind, physical unit and stacking rule. Validation, the
data-model documentation, I/O and stacking all read this registry.

Dimension placeholders used in the declarations:

``SKY``
    the dataset's sky grid: ``("lat", "lon")`` for a WCS grid, ``()`` for a region.
``IRF_SKY``
    the grid of reduced IRFs: ``("irf_lat", "irf_lon")`` (coarse grid), the data grid,
    or ``()`` (region or a single position).
``IRF_ETRUE``
    ``energy_true`` (the exposure axis) or ``irf_energy_true`` (own nodes, e.g. Fermi PSF).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from astropy import units as u

from xdl4.errors import DL4ValidationError

KINDS = ("map", "map_onoff", "spectrum", "spectrum_onoff", "flux_points")
STAT_TYPES = {
    "map": "cash",
    "map_onoff": "wstat",
    "spectrum": "cash",
    "spectrum_onoff": "wstat",
    "flux_points": "chi2",
}
ONOFF_KINDS = ("map_onoff", "spectrum_onoff")
REGION_KINDS = ("spectrum", "spectrum_onoff")

ENERGY_DIMS = ("energy", "energy_true", "irf_energy_true")
BOUNDED_DIMS = ENERGY_DIMS + ("rad", "migra")
SKY_DIMS = ("lat", "lon")
IRF_SKY_DIMS = ("irf_lat", "irf_lon")
#: prefixes of the pixel grids a dataset may hold: data, IRFs, and a PSF grid of its own
GRID_PREFIXES = ("", "irf_", "psf_")
OBS = "obs"
GTI = "gti"
BOUND = "bound"
META_ROW = "meta_row"
META_PREFIX = "meta_"
GRID_MAPPING = "spatial_ref"
IRF_GRID_MAPPING = "irf_spatial_ref"
REGION = "region"

SKY = "SKY"
IRF_SKY = "IRF_SKY"
IRF_ETRUE = "IRF_ETRUE"


@dataclass(frozen=True)
class Variable:
    """Declaration of one DL4 variable."""

    name: str
    dims: tuple[tuple[str, ...], ...]
    dtype: str  # "float", "number" (float or int), "bool"
    unit: str | None  # a unit the stored unit must convert to; None: no unit check
    stack: str  # the stacking rule, see xdl4.stack
    doc: str
    nonnegative: bool = False
    finite: bool = False
    kinds: tuple[str, ...] = field(default=KINDS[:4])


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in [
        Variable("counts", (("energy", SKY),), "number", "", "sum_masked",
                 "observed counts per reco-energy bin and pixel", True, True),
        Variable("background", (("energy", SKY),), "number", "", "sum_masked",
                 "predicted background counts", True, True, ("map", "spectrum")),
        Variable("exposure", (("energy_true", SKY),), "number", "cm2 s", "sum_exposure",
                 "exposure (effective area x livetime) per true-energy bin", True, True),
        Variable("psf", ((IRF_ETRUE, "rad", IRF_SKY), ("energy", "rad", IRF_SKY)), "float",
                 "sr-1", "mean_psf", "PSF density vs offset rad (true or reco energy)",
                 True, True, ("map", "map_onoff", "spectrum", "spectrum_onoff")),
        Variable("psf_exposure", ((IRF_ETRUE, IRF_SKY), ("energy", IRF_SKY)), "number",
                 "cm2 s", "sum_exposure", "exposure weighting the PSF when stacking", True, True),
        Variable("edisp", (("energy_true", "energy", IRF_SKY), ("energy_true", "migra", IRF_SKY)),
                 "float", "", "mean_edisp",
                 "energy dispersion: kernel P(reco bin | true bin) or migration density",
                 True, True),
        Variable("edisp_exposure", (("energy_true", IRF_SKY),), "number", "cm2 s",
                 "sum_exposure", "exposure weighting the EDISP when stacking", True, True),
        Variable("mask_safe", (("energy", SKY),), "bool", None, "or", "safe data range"),
        Variable("mask_fit", (("energy", SKY),), "bool", None, "drop", "bins used in fits"),
        Variable("counts_off", (("energy", SKY),), "number", "", "sum_masked",
                 "counts in the OFF measurement", True, True, ONOFF_KINDS),
        Variable("acceptance", (("energy", SKY),), "number", "", "onoff",
                 "ON acceptance (alpha = acceptance / acceptance_off)", True, True, ONOFF_KINDS),
        Variable("acceptance_off", (("energy", SKY),), "number", "", "onoff",
                 "OFF acceptance", True, True, ONOFF_KINDS),
        Variable("livetime", ((),), "number", "s", "sum", "observation livetime", True),
        Variable("gti_start", ((GTI,),), "number", "s", "concat",
                 "start of good-time intervals, seconds since MJDREFI+MJDREFF (attrs)"),
        Variable("gti_stop", ((GTI,),), "number", "s", "concat", "stop of good-time intervals"),
    ]
}

REQUIRED = {
    "map": ("counts", "exposure"),
    "map_onoff": ("counts", "exposure", "counts_off", "acceptance", "acceptance_off"),
    "spectrum": ("counts", "exposure"),
    "spectrum_onoff": ("counts", "exposure", "counts_off", "acceptance", "acceptance_off"),
    "flux_points": (),
}

#: SED quantities of flux points and their units (gammapy's defaults)
SED_TYPES = {
    "dnde": "cm-2 s-1 TeV-1",
    "e2dnde": "erg cm-2 s-1",
    "flux": "cm-2 s-1",
    "eflux": "erg cm-2 s-1",
    "likelihood": "",
}


def _expand(dims: tuple[str, ...], sky: tuple[str, ...], irf_skies, etrues) -> list[tuple]:
    out: list[tuple] = [()]
    for d in dims:
        if d == SKY:
            choices = [sky]
        elif d == IRF_SKY:
            choices = irf_skies
        elif d == IRF_ETRUE:
            choices = [(e,) for e in etrues]
        else:
            choices = [(d,)]
        out = [o + c for o in out for c in choices]
    return out


def allowed_dims(var: Variable, ds: xr.Dataset) -> list[tuple[str, ...]]:
    """All dimension tuples ``var`` may have in ``ds`` (an optional leading ``obs``)."""
    sky = SKY_DIMS if "lat" in ds.dims else ()
    irf_skies = [(f"{p}lat", f"{p}lon") for p in GRID_PREFIXES[1:] if f"{p}lat" in ds.dims]
    irf_skies = irf_skies or [sky]
    out = []
    for pattern in var.dims:
        for dims in _expand(pattern, sky, irf_skies, ("energy_true", "irf_energy_true")):
            out += [dims, (OBS,) + dims]
    return out


def parse_unit(value: str | None, what: str) -> u.UnitBase:
    """Parse a CF/FITS unit string, raising a clear error naming ``what``."""
    if value is None or str(value).strip() in ("", "1"):
        return u.dimensionless_unscaled
    try:
        return _parse_unit(str(value))
    except ValueError as err:
        raise ValueError(f"{what}: cannot parse unit {value!r}") from err


@functools.lru_cache(maxsize=512)
def _parse_unit(text: str) -> u.UnitBase:
    """The unit of ``text`` (FITS syntax first, then astropy's generic one); cached: files
    and datasets repeat a handful of unit strings."""
    try:
        return u.Unit(text, format="fits")
    except ValueError:
        return u.Unit(text)


def kind_of(ds: xr.Dataset) -> str:
    kind = ds.attrs.get("dl4_kind")
    if kind not in KINDS:
        raise DL4ValidationError(
            [f"attrs['dl4_kind'] is {kind!r}; expected one of {', '.join(KINDS)}"],
            ds.attrs.get("name"),
        )
    return kind


def _check_bounds(ds: xr.Dataset, dim: str, problems: list[str],
                  contiguous: bool = True) -> None:
    if dim not in ds.coords:
        problems.append(f"dimension {dim!r} has no coordinate")
        return
    bname = ds[dim].attrs.get("bounds", f"{dim}_bounds")
    if bname not in ds.variables:
        if dim in ENERGY_DIMS and dim != "irf_energy_true":
            problems.append(f"energy axis {dim!r} has no bounds variable {bname!r}")
        return
    b = ds[bname]
    if b.dims != (dim, BOUND) and b.dims != (OBS, dim, BOUND):
        problems.append(f"bounds {bname!r} has dims {b.dims}; expected ({dim!r}, 'bound')")
        return
    lo, hi = np.asarray(b.isel({BOUND: 0})), np.asarray(b.isel({BOUND: 1}))
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        problems.append(f"{dim} bounds contain NaN or infinity")
    elif np.any(hi <= lo) or np.any(lo[..., 1:] < lo[..., :-1]):
        problems.append(f"{dim} bounds are not increasing (each bin needs lo < hi, "
                        "bins in increasing order)")
    elif contiguous and lo.shape[-1] > 1 and not np.allclose(lo[..., 1:], hi[..., :-1],
                                                             rtol=1e-6, atol=0):
        problems.append(f"{dim} bins are not contiguous")
    if dim in ENERGY_DIMS:
        try:
            unit = parse_unit(b.attrs.get("units", ds[dim].attrs.get("units")), f"{dim} bounds")
            if not unit.is_equivalent(u.TeV):
                problems.append(f"{dim} bounds unit {unit} is not an energy")
        except ValueError as err:
            problems.append(str(err))


def validate(ds: xr.Dataset) -> xr.Dataset:
    """Check ``ds`` against the DL4 contract; raise :class:`DL4ValidationError` listing
    every problem, or return ``ds`` unchanged.

    >>> import xdl4
    >>> ds = xdl4.examples.map_dataset()
    >>> ds.dl4.validate() is ds
    True
    """
    name = ds.attrs.get("name")
    kind = kind_of(ds)
    if kind == "flux_points":
        from xdl4.kinds.flux_points import validate_flux_points

        problems = validate_flux_points(ds)
        if problems:
            raise DL4ValidationError(problems, name)
        return ds
    problems: list[str] = []
    for req in REQUIRED[kind]:
        if req not in ds.data_vars:
            problems.append(f"missing required variable {req!r} for kind {kind!r}")
    for dim in BOUNDED_DIMS:
        if dim in ds.dims:
            _check_bounds(ds, dim, problems)
    from xdl4.sky import check_sky

    problems += check_sky(ds, kind)
    for vname, var in VARIABLES.items():
        if vname not in ds.data_vars:
            continue
        da = ds[vname]
        if kind not in var.kinds:
            problems.append(f"variable {vname!r} does not belong to kind {kind!r}")
            continue
        allowed = allowed_dims(var, ds)
        if da.dims not in allowed:
            problems.append(f"{vname} has dims {da.dims}; expected one of "
                            f"{', '.join(map(str, allowed[::2]))}")
            continue
        if var.dtype == "bool":
            if da.dtype != bool:
                problems.append(f"{vname} must be boolean, got dtype {da.dtype}")
            continue
        if not (np.issubdtype(da.dtype, np.floating) or
                (var.dtype == "number" and np.issubdtype(da.dtype, np.integer))):
            problems.append(f"{vname} must be {'float' if var.dtype == 'float' else 'numeric'}, "
                            f"got dtype {da.dtype}")
            continue
        if var.unit is not None:
            try:
                unit = parse_unit(da.attrs.get("units"), vname)
                if not unit.is_equivalent(parse_unit(var.unit, vname)):
                    problems.append(f"{vname} has unit {da.attrs.get('units')!r}, "
                                    f"not convertible to {var.unit or 'dimensionless'!r}")
            except ValueError as err:
                problems.append(str(err))
        if da.chunks is not None:  # never compute lazily loaded data during validation
            continue
        values = np.asarray(da.values)
        if var.finite and np.issubdtype(values.dtype, np.floating) and np.isnan(values).any():
            problems.append(f"{vname} contains NaN")
        elif var.nonnegative and (values < 0).any():
            problems.append(f"{vname} has negative values (min {values.min():g})")
    if ("gti_start" in ds) != ("gti_stop" in ds):
        problems.append("gti_start and gti_stop must both be present")
    if problems:
        raise DL4ValidationError(problems, name)
    return ds
