"""The DL4 data contract, declared once: dimensions, variables and dataset kinds.

This module only declares (it imports nothing else of xdl4 but its errors). Validation
(:mod:`xdl4.validation`), the kinds' behaviour (:mod:`xdl4.kinds`), I/O and the reductions
(:mod:`xdl4.reduce`) read these declarations.

* :data:`VARIABLES`: every variable a DL4 dataset may carry, with its allowed dimensions,
  dtype, unit, meaning, and how it reduces over each kind of dimension
  (:data:`REDUCTIONS`): runs (``obs``, stacking), reco ``energy`` bins
  (``resample_energy``, ``to_image``), blocks of pixels (``downsample``) and the pixels of
  an on-region (``to_region``).
* :data:`KINDS`: one frozen :class:`Kind` record per dataset kind (statistic, required and
  optional variables, geometry, on/off, gammapy class name, OGIP-capable). A kind's
  behaviour is registered by its module in :mod:`xdl4.kinds`.

Dimension placeholders used in the declarations:

``SKY``
    the dataset's sky grid: ``("lat", "lon")`` for a WCS grid, ``()`` for a region.
``IRF_SKY``
    the grid of reduced IRFs: ``("irf_lat", "irf_lon")`` (coarse grid), the data grid,
    or ``()`` (region or a single position).
``IRF_ETRUE``
    ``energy_true`` (the exposure axis) or ``irf_energy_true`` (own nodes, e.g. Fermi PSF).

>>> VARIABLES["counts"].reduce["obs"], KINDS["map_onoff"].statistic
('sum_masked', 'wstat')
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from astropy import units as u

from xdl4.errors import ArgumentError, UnitError

ENERGY_DIMS = ("energy", "energy_true", "irf_energy_true")
BOUNDED_DIMS = ENERGY_DIMS + ("rad", "migra")
SKY_DIMS = ("lat", "lon")
#: prefixes of the pixel grids a dataset may hold: data, IRFs, and a PSF grid of its own
GRID_PREFIXES = ("", "irf_", "psf_")
OBS = "obs"
GTI = "gti"
BOUND = "bound"
META_ROW = "meta_row"
META_PREFIX = "meta_"
GRID_MAPPING = "spatial_ref"
REGION = "region"

SKY = "SKY"
IRF_SKY = "IRF_SKY"
IRF_ETRUE = "IRF_ETRUE"

#: the canonical order of dimensions: computations read arrays in this order (by name,
#: whatever order a variable is stored in); dims not listed keep their place at the end
DIM_ORDER = ("obs", "time", "energy_true", "irf_energy_true", "energy", "migra", "rad",
             "lat", "lon", "irf_lat", "irf_lon", "psf_lat", "psf_lon", GTI, BOUND)

#: the dimension families a variable declares a reduction for: runs (stacking), reco-energy
#: bins (resample_energy, to_image), blocks of data pixels (downsample), the pixels of an
#: on-region (to_region). A variable without the family's dims is kept as it is.
REDUCTIONS = ("obs", "energy", "pixels", "region")

#: the reduction rules (implemented in :mod:`xdl4.reduce`)
RULES = {
    "sum_masked": "sum of the values in the safe data range (non-finite values count 0)",
    "sum_if_present": "sum_masked, and a run without the variable contributes nothing",
    "mean": "plain mean (exposure over pixels, intensive quantities over energy bins)",
    "mean_masked": "mean over the safe data range (0 where nothing is safe)",
    "mean_weighted": "exposure-weighted mean, each term masked on its own grid (IRFs)",
    "any": "logical OR",
    "drop": "dropped",
    "nearest": "the IRF pixel nearest the region centre",
    "acceptance_off_merged": "the acceptance_off whose alpha keeps the summed OFF "
                             "background alpha x counts_off (0 where there are no OFF counts)",
    "acceptance_off_stacked": "acceptance_off_merged, with the OFF-weighted mean alpha where "
                              "the stacked OFF counts are 0 (gammapy's stacking)",
    "concat": "concatenation (good-time intervals: their union)",
}


@dataclass(frozen=True)
class Variable:
    """Declaration of one DL4 variable: its dims, dtype (``"float"``, ``"number"``: float
    or int, ``"bool"``), the unit its stored unit must convert to (None: not checked), how
    it reduces over each family of :data:`REDUCTIONS`, and its meaning."""

    name: str
    dims: tuple[tuple[str, ...], ...]
    dtype: str
    unit: str | None
    reduce: Mapping[str, str]
    doc: str
    long_name: str
    nonnegative: bool = False
    finite: bool = False
    #: how the data grid's safe mask is sampled at the IRF pixel centres of the variable
    #: when stacking: gammapy's nearest pixel (PSF), or "linear" (EDISP: interpolated
    #: above 0, i.e. any touching safe pixel)
    irf_mask: str = "nearest"

    def __post_init__(self):
        unknown = {r for r in self.reduce.values() if r not in RULES}
        bad = set(self.reduce) - set(REDUCTIONS)
        if unknown or bad:
            raise ArgumentError(f"variable {self.name!r}: unknown reduction rules {unknown or ''} "
                             f"{'or families ' + str(bad) if bad else ''}")
        if self.irf_mask not in ("nearest", "linear"):
            raise ArgumentError(f"variable {self.name!r}: irf_mask must be 'nearest' or "
                             f"'linear', not {self.irf_mask!r}")
        object.__setattr__(self, "reduce", MappingProxyType(dict(self.reduce)))


def _counts_like(name: str, doc: str, long_name: str) -> Variable:
    return Variable(name, (("energy", SKY),), "number", "", dict.fromkeys(REDUCTIONS,
                    "sum_masked"), doc, long_name, nonnegative=True, finite=True)


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in [
        _counts_like("counts", "observed counts per reco-energy bin and pixel", "Counts"),
        _counts_like("background", "predicted background counts", "Background counts"),
        Variable("exposure", (("energy_true", SKY),), "number", "cm2 s",
                 {"obs": "sum_masked", "pixels": "mean", "region": "mean"},
                 "exposure (effective area x livetime) per true-energy bin", "Exposure",
                 nonnegative=True, finite=True),
        Variable("psf", ((IRF_ETRUE, "rad", IRF_SKY), ("energy", "rad", IRF_SKY)), "float",
                 "sr-1", {"obs": "mean_weighted", "energy": "mean", "region": "drop"},
                 "PSF density vs offset rad (true or reco energy)", "PSF density",
                 nonnegative=True, finite=True),
        Variable("psf_exposure", ((IRF_ETRUE, IRF_SKY), ("energy", IRF_SKY)), "number",
                 "cm2 s", {"obs": "sum_masked", "energy": "mean", "region": "drop"},
                 "exposure weighting the PSF when stacking", "PSF exposure",
                 nonnegative=True, finite=True),
        Variable("edisp", (("energy_true", "energy", IRF_SKY), ("energy_true", "migra", IRF_SKY)),
                 "float", "", {"obs": "mean_weighted", "energy": "sum_masked",
                               "region": "nearest"},
                 "energy dispersion: kernel P(reco bin | true bin) or migration density",
                 "Energy dispersion", nonnegative=True, finite=True, irf_mask="linear"),
        Variable("edisp_exposure", (("energy_true", IRF_SKY),), "number", "cm2 s",
                 {"obs": "sum_masked", "region": "nearest"},
                 "exposure weighting the EDISP when stacking", "EDISP exposure",
                 nonnegative=True, finite=True, irf_mask="linear"),
        Variable("mask_safe", (("energy", SKY),), "bool", None,
                 dict.fromkeys(REDUCTIONS, "any"), "safe data range", "Safe data range"),
        Variable("mask_fit", (("energy", SKY),), "bool", None,
                 {"obs": "drop", "energy": "any", "pixels": "any", "region": "any"},
                 "bins used in fits", "Fit mask"),
        _counts_like("counts_off", "counts in the OFF measurement", "OFF counts"),
        Variable("acceptance", (("energy", SKY),), "number", "",
                 {"obs": "sum_masked", "energy": "sum_masked", "pixels": "mean",
                  "region": "mean_masked"},
                 "ON acceptance (alpha = acceptance / acceptance_off)", "ON acceptance",
                 nonnegative=True, finite=True),
        Variable("acceptance_off", (("energy", SKY),), "number", "",
                 {"obs": "acceptance_off_stacked", "energy": "acceptance_off_merged",
                  "pixels": "acceptance_off_merged", "region": "acceptance_off_merged"},
                 "OFF acceptance", "OFF acceptance", nonnegative=True, finite=True),
        Variable("livetime", ((),), "number", "s", {"obs": "sum_if_present"},
                 "observation livetime", "Livetime", nonnegative=True),
        Variable("gti_start", ((GTI,),), "number", "s", {"obs": "concat"},
                 "start of good-time intervals, seconds since MJDREFI+MJDREFF (attrs)",
                 "GTI start"),
        Variable("gti_stop", ((GTI,),), "number", "s", {"obs": "concat"},
                 "stop of good-time intervals", "GTI stop"),
    ]
}

#: SED quantities of flux points and their units (gammapy's defaults)
SED_TYPES = {
    "dnde": "cm-2 s-1 TeV-1",
    "e2dnde": "erg cm-2 s-1",
    "flux": "cm-2 s-1",
    "eflux": "erg cm-2 s-1",
    "likelihood": "",
}

_IRFS = ("psf", "psf_exposure", "edisp", "edisp_exposure")
_RUN = ("mask_safe", "mask_fit", "livetime", "gti_start", "gti_stop")
_ONOFF = ("counts", "exposure", "counts_off", "acceptance", "acceptance_off")


@dataclass(frozen=True)
class Kind:
    """Declaration of one dataset kind (``attrs["dl4_kind"]``).

    ``geometry``: ``"map"`` (a WCS pixel grid, or a region), ``"region"`` (an on-region,
    no pixels) or ``"points"`` (flux points); ``onoff``: the background is measured in an
    OFF region (WStat); ``ogip``: writable as OGIP PHA/ARF/RMF/BKG; ``region_kind``: the
    kind a map of this kind reduces to in an on-region (``to_region``). ``required`` and
    ``optional`` name the variables of :data:`VARIABLES` the kind holds (flux points hold
    their SED columns instead, checked by their kind module).
    """

    name: str
    statistic: str
    geometry: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    onoff: bool = False
    gammapy_class: str = ""
    ogip: bool = False
    region_kind: str | None = None
    doc: str = ""
    variables: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self):
        if self.geometry not in ("map", "region", "points"):
            raise ArgumentError(f"kind {self.name!r}: geometry must be map, region or points")
        object.__setattr__(self, "variables", frozenset(self.required + self.optional))


#: the registered kinds by name (built-in ones below; :func:`xdl4.kinds.register` adds)
KINDS: dict[str, Kind] = {
    k.name: k
    for k in [
        Kind("map", "cash", "map", ("counts", "exposure"), ("background", *_IRFS, *_RUN),
             gammapy_class="MapDataset", region_kind="spectrum",
             doc="counts cube with background (cash)"),
        Kind("map_onoff", "wstat", "map", _ONOFF, (*_IRFS, *_RUN), onoff=True,
             gammapy_class="MapDatasetOnOff", region_kind="spectrum_onoff",
             doc="counts cube with OFF counts (wstat)"),
        Kind("spectrum", "cash", "region", ("counts", "exposure"),
             ("background", *_IRFS, *_RUN), gammapy_class="SpectrumDataset", ogip=True,
             doc="region spectrum with background (cash); OGIP without its background"),
        Kind("spectrum_onoff", "wstat", "region", _ONOFF, (*_IRFS, *_RUN), onoff=True,
             gammapy_class="SpectrumDatasetOnOff", ogip=True,
             doc="region spectrum with OFF counts (wstat), OGIP"),
        Kind("flux_points", "chi2", "points", (), (), gammapy_class="FluxPointsDataset",
             doc="flux points / light curves (chi2, distrib, profile)"),
    ]
}


def variables_table() -> str:
    """The markdown table of :data:`VARIABLES` shown in ``docs/data-model.md`` (a test
    checks that the page holds it): dims, dtype, unit, the reduction per family, meaning.

    >>> variables_table().splitlines()[0].startswith("| variable | dims |")
    True
    """
    head = ["variable", "dims", "dtype", "unit", *REDUCTIONS, "kinds", "meaning"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    dtypes = {"float": "float", "number": "float or int", "bool": "bool"}
    for v in VARIABLES.values():
        dims = " or ".join("(" + ", ".join(d) + ")" for d in v.dims)
        kinds = ", ".join(k.name for k in KINDS.values() if v.name in k.variables)
        unit = "—" if v.unit is None else (v.unit or "1")
        rows.append("| " + " | ".join([f"`{v.name}`", dims, dtypes[v.dtype], unit,
                                       *(v.reduce.get(f, "kept") for f in REDUCTIONS),
                                       kinds, v.doc.replace("|", "\\|")]) + " |")
    return "\n".join(rows) + "\n"


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


def allowed_dims(var: Variable, dims: Mapping) -> list[tuple[str, ...]]:
    """All dimension tuples ``var`` may have in a dataset with ``dims`` (a ``Dataset`` or
    its ``.dims``), each also with a leading ``obs``."""
    sky = SKY_DIMS if "lat" in dims else ()
    irf_skies = [(f"{p}lat", f"{p}lon") for p in GRID_PREFIXES[1:] if f"{p}lat" in dims]
    irf_skies = irf_skies or [sky]
    out = []
    for pattern in var.dims:
        for d in _expand(pattern, sky, irf_skies, ("energy_true", "irf_energy_true")):
            out += [d, (OBS,) + d]
    return out


def canonical_dims(dims) -> tuple[str, ...]:
    """``dims`` in the canonical order :data:`DIM_ORDER` (unknown dims last, in order).

    >>> canonical_dims(("lon", "energy", "lat"))
    ('energy', 'lat', 'lon')
    """
    rank = {d: i for i, d in enumerate(DIM_ORDER)}
    return tuple(sorted(dims, key=lambda d: rank.get(d, len(rank))))


def canonical(ds):
    """``ds`` (Dataset or DataArray) with every variable's dims in the canonical order
    (views, no copy when already ordered): what computations read by position.

    >>> import xarray as xr, numpy as np
    >>> canonical(xr.DataArray(np.zeros((2, 3)), dims=("lon", "lat"))).dims
    ('lat', 'lon')
    """
    if hasattr(ds, "data_vars"):
        if all(v.dims == canonical_dims(v.dims) for v in ds.variables.values()):
            return ds
        return ds.map(canonical, keep_attrs=True).assign_coords(
            {k: canonical(v) for k, v in ds.coords.items() if v.ndim > 1})
    return ds if ds.dims == canonical_dims(ds.dims) else ds.transpose(*canonical_dims(ds.dims))


def parse_unit(value: str | None, what: str) -> u.UnitBase:
    """Parse a CF/FITS unit string, raising a clear error naming ``what``."""
    if value is None or str(value).strip() in ("", "1"):
        return u.dimensionless_unscaled
    try:
        return _parse_unit(str(value))
    except ValueError as err:  # readers re-raise it as a FormatError naming the file
        raise UnitError(f"{what}: cannot parse unit {value!r}") from err


def unit_factor(units: str | None, unit: str | None, what: str) -> float:
    """The factor from ``units`` (a ``units`` attribute) to ``unit``; a
    :class:`~xdl4.errors.UnitError` naming ``what`` if either cannot be parsed or there is
    no such factor.

    >>> unit_factor("m2 s", "cm2 s", "exposure")
    10000.0
    """
    try:
        return parse_unit(units, what).to(parse_unit(unit, what))
    except u.UnitConversionError as err:
        raise UnitError(f"{what}: unit {units!r} cannot be converted to {unit!r}") from err


@functools.lru_cache(maxsize=512)
def _parse_unit(text: str) -> u.UnitBase:
    """The unit of ``text`` (FITS syntax first, then astropy's generic one); cached: files
    and datasets repeat a handful of unit strings."""
    try:
        return u.Unit(text, format="fits")
    except ValueError:
        return u.Unit(text)
