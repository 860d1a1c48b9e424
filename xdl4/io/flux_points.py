"""Flux-point tables (gammapy's ``gadf-sed`` format): FITS (``FLUXPOINTS`` HDU, or the first
unnamed table of older files) and ECSV, every SED type.

Layout: see :mod:`xdl4.kinds.flux_points`. ``e_ref`` -> coordinate ``energy``, ``e_min`` /
``e_max`` -> ``energy_bounds`` (bins need not be contiguous); every other column -> a
variable with its unit string and stored dtype; vector columns on ``(energy, scan)`` for
``*_scan``, ``(energy, dataset)`` for per-dataset columns (``counts``, ``npred``...);
table meta ``SED_TYPE`` / ``UL_CONF`` -> attrs ``sed_type`` / ``ul_conf``, other meta keys
-> ``fits_meta_<KEY>``. A GTI HDU is read as ``gti_start``/``gti_stop``.

Light curves (gammapy's ``format="lightcurve"``): one row per time bin, columns
``time_min`` / ``time_max`` (numbers in ``TIMEUNIT``, default d, since MJD ``MJDREFI +
MJDREFF`` in ``TIMESYS``, default utc; gammapy writes MJD with a zero reference) ->
``time_bounds`` with those keys as attrs; energy columns are arrays, equal in every row;
variables on ``(time, energy, ...)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.table import Table

from xdl4.axes import bound_values, bounds_units, time_coords
from xdl4.errors import FormatError
from xdl4.files import atomic_write, check_overwrite, check_readable
from xdl4.io import fitsutil as fu
from xdl4.io.fitsutil import fail
from xdl4.kinds import validate
from xdl4.kinds.flux_points import REQUIRED, TIME, point_dims
from xdl4.schema import BOUND, parse_unit

PER_DATASET = ("counts", "npred", "npred_excess")
ENERGY_COLS = ("e_ref", "e_min", "e_max")
TIME_COLS = ("time_min", "time_max")
#: light-curve time reference keys (gammapy's defaults when absent) -> attrs of ``time``
TIME_META = {"MJDREFI": 0, "MJDREFF": 0.0, "TIMESYS": "utc", "TIMEUNIT": "d"}


#: the columns that make each SED type, in the order gammapy 2.1 tries them
SED_COLUMNS = {
    "dnde": ("e_ref", "dnde"), "e2dnde": ("e_ref", "e2dnde"),
    "flux": ("e_min", "e_max", "flux"), "eflux": ("e_min", "e_max", "eflux"),
    "likelihood": ("e_min", "e_max", "e_ref", "ref_dnde", "ref_flux", "ref_eflux", "norm"),
}


def _guess_sed_type(names) -> str:
    """The SED type of a table without ``SED_TYPE``, as gammapy guesses it.

    >>> _guess_sed_type(["e_ref", "e_min", "e_max", "dnde", "norm", "ref_dnde",
    ...                  "ref_flux", "ref_eflux"])
    'dnde'
    """
    for sed, cols in SED_COLUMNS.items():
        if all(c in names for c in cols):
            return sed
    raise FormatError("cannot tell the SED type: no column set of "
                     + ", ".join(f"{k} {list(v)}" for k, v in SED_COLUMNS.items()))


def _vector_dim(name: str) -> str:
    if name.endswith("_scan"):
        return "scan"
    if name in PER_DATASET:
        return "dataset"
    return f"{name}_dim"


def table_to_dataset(table: Table, path, gti: dict | None = None,
                     units: dict | None = None) -> xr.Dataset:
    """Flux points from an astropy Table in gammapy's format (``units``: the unit strings
    as written in the file, kept verbatim)."""
    names = list(table.colnames)
    meta = {str(k).upper(): v for k, v in table.meta.items()}
    try:
        sed = str(meta.pop("SED_TYPE", "")).strip() or _guess_sed_type(names)
    except ValueError as err:
        raise fail(path, None, str(err)) from err
    if sed not in REQUIRED:
        raise fail(path, None, f"unknown SED_TYPE {sed!r}")
    attrs: dict = {"dl4_kind": "flux_points", "name": fu.stem(path), "sed_type": sed}
    if "UL_CONF" in meta:
        attrs["ul_conf"] = float(meta.pop("UL_CONF"))
    coords: dict = {}
    lead = ("energy",)
    if "time_min" in names:
        lead = (TIME, "energy")
        coords.update(_time_coords(table, path, {k: meta.pop(k, v) for k, v in
                                                 TIME_META.items()}))
    for k, v in meta.items():
        if k not in ("EXTNAME", "CHECKSUM", "DATASUM") and not isinstance(v, dict | list):
            attrs[f"fits_meta_{k}"] = fu.attr_value(v)

    def col(name):
        c = table[name]
        if units is not None:
            unit = units.get(name) or ""
        else:
            unit = "" if c.unit is None else c.unit.to_string("fits")
        fu.check_unit(path, "FLUXPOINTS", unit)
        values = fu.native(np.asarray(c))
        if len(lead) == 2 and values.ndim == 1:
            values = values[:, None]  # one energy bin
        if len(lead) == 2 and name in ENERGY_COLS:  # one energy axis for all time bins
            if not np.array_equal(values, np.broadcast_to(values[:1], values.shape)):
                raise fail(path, "FLUXPOINTS", f"light-curve column {name!r} differs "
                           "between time bins (xdl4 needs one energy axis)")
            values = values[0]
        return values, unit

    if "e_min" in names and "e_max" in names:
        lo, unit = col("e_min")
        hi, _ = col("e_max")
        ref, ref_unit = col("e_ref") if "e_ref" in names else (np.sqrt(lo * hi), unit)
        coords["energy"] = xr.Variable("energy", ref, {"units": ref_unit,
                                                       "bounds": "energy_bounds"})
        # CF bounds inherit their coordinate's units unless they differ
        coords["energy_bounds"] = xr.Variable(("energy", BOUND), np.stack([lo, hi], 1),
                                              {"units": unit} if unit != ref_unit else {})
        if "e_ref" not in names:
            attrs["fits_no_e_ref"] = 1
    elif "e_ref" in names:
        ref, unit = col("e_ref")
        coords["energy"] = xr.Variable("energy", ref, {"units": unit})
    else:
        raise fail(path, None, "flux points need e_ref or e_min/e_max columns")
    data = {}
    n_energy = coords["energy"].size
    for name in names:
        if name in ENERGY_COLS + TIME_COLS:
            continue
        values, unit = col(name)
        if values.dtype.kind == "S":
            values = values.astype(str)
        if len(lead) == 2 and values.shape[1] != n_energy:
            raise fail(path, "FLUXPOINTS", f"column {name!r} has {values.shape[1]} values per "
                       f"time bin, not one per energy bin ({n_energy})")
        dims = lead + tuple(_vector_dim(name) if i == 0 else f"{name}_dim{i}"
                            for i in range(values.ndim - len(lead)))
        a = {} if values.dtype == bool else {"units": unit}
        data[name] = xr.Variable(dims, values, a)
    data.update(gti or {})
    if gti:
        coords["gti"] = xr.Variable("gti", np.arange(gti["gti_start"].size))
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _time_coords(table: Table, path, meta: dict) -> dict:
    """``time`` / ``time_bounds`` from a light-curve table's time columns and reference."""
    for name in TIME_COLS:
        if name not in table.colnames:
            raise fail(path, "FLUXPOINTS", f"light curve lacks column {name!r}")
        if table[name].ndim != 1:
            raise fail(path, "FLUXPOINTS", f"light-curve column {name!r} must hold one "
                       "number per row")
    lo, hi = (np.asarray(table[c], dtype=float) for c in TIME_COLS)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)):
        raise fail(path, "FLUXPOINTS", "light-curve time bins need finite "
                   "time_min < time_max")
    from astropy.time import Time

    unit, scale = str(meta["TIMEUNIT"]), str(meta["TIMESYS"])
    try:
        ok = parse_unit(unit, "TIMEUNIT").is_equivalent("s")
        ref = [float(meta[k]) for k in ("MJDREFI", "MJDREFF")]
    except (TypeError, ValueError):
        ok = False
    if not ok or scale.lower() not in Time.SCALES or not np.all(np.isfinite(ref)):
        raise fail(path, "FLUXPOINTS", f"bad light-curve time reference: TIMEUNIT {unit!r}, "
                   f"TIMESYS {scale!r}, MJDREFI {meta['MJDREFI']!r}, MJDREFF "
                   f"{meta['MJDREFF']!r}")
    return time_coords(lo, hi, unit, fu.attr_value(meta["MJDREFI"]),
                       fu.attr_value(meta["MJDREFF"]), scale)


def read_flux_points(path: str | os.PathLike, verify: bool = True) -> xr.Dataset:
    """Read a gammapy flux-point file (FITS or ECSV); ``verify=False`` skips the CHECKSUM
    / DATASUM checks of a FITS file."""
    path = Path(path)
    with fu.reading(path, "FLUXPOINTS"):
        return _read_flux_points(path, verify)


def _read_flux_points(path: Path, verify: bool) -> xr.Dataset:
    if ".ecsv" in path.suffixes:
        check_readable(path)
        try:
            table = Table.read(path, format="ascii.ecsv")
        except Exception as err:  # noqa: BLE001 - re-raised with the file named
            raise fail(path, None, f"not a readable ECSV table: {err}") from err
        return table_to_dataset(table, path)
    with fu.open_fits(path, verify) as hdul:
        hdu = fu.find_hdu(hdul, "FLUXPOINTS")
        if hdu is None:
            hdu = next((h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)
                        and not h.name.strip()), None)
        if hdu is None:
            raise fail(path, None, "missing required HDU 'FLUXPOINTS' (or an unnamed table)")
        fu.get_data(path, hdu)
        table = Table.read(hdu)
        units = {c.name: c.unit for c in hdu.columns}
        extra = fu.extra_cards(hdu.header)
        fu.set_hdu("GTI")
        gti = fu.read_gti(path, hdul["GTI"]) if fu.find_hdu(hdul, "GTI") is not None else None
        primary = fu.primary_attrs(hdul[0].header, path)
    ds = table_to_dataset(table, path, gti, units)
    ds.attrs.update(primary)
    if not hdu.name.strip():
        ds.attrs["fits_extname"] = ""
    meta = {str(k).upper() for k in table.meta}  # kept as attrs already: not twice
    cards = [c for c in extra.split("\n")
             if c and fits.Card.fromstring(c).keyword.upper() not in meta]
    if cards:
        ds.attrs["fits_header"] = "\n".join(cards)
    return ds


def dataset_to_table(ds: xr.Dataset) -> Table:
    """The gammapy flux-point table of ``ds``."""
    table = Table()
    e = ds["energy"]
    lead = point_dims(ds)
    rows = (ds.sizes[TIME], 1) if TIME in ds.dims else None  # light curve: one row per bin

    def energy_column(name, values, unit):
        table[name] = values if rows is None else np.tile(values, rows)
        table[name].unit = unit or None

    if rows is not None:
        b = bound_values(ds, TIME)
        table["time_min"], table["time_max"] = b[:, 0], b[:, 1]
    if not ds.attrs.get("fits_no_e_ref"):
        energy_column("e_ref", np.asarray(e.values), e.attrs.get("units"))
    if "energy_bounds" in ds.coords:
        b = bound_values(ds, "energy")
        for i, name in enumerate(("e_min", "e_max")):
            energy_column(name, b[:, i], bounds_units(ds, "energy"))
    for name, da in ds.data_vars.items():
        if name.startswith("gti_"):
            continue
        if not set(lead) <= set(da.dims):
            raise FormatError(f"flux-point variable {name!r} has dims {da.dims}, not {lead}")
        table[name] = np.asarray(da.transpose(*lead, ...).values)
        if "units" in da.attrs:
            table[name].unit = da.attrs["units"] or ""
    if rows is not None:
        attrs = {**ds[TIME].attrs, **ds["time_bounds"].attrs}
        table.meta.update({k: attrs.get(k.lower(), v) for k, v in TIME_META.items()})
        table.meta["TIMEUNIT"] = attrs.get("units", "d")
    table.meta["SED_TYPE"] = ds.attrs["sed_type"]
    if "ul_conf" in ds.attrs:
        table.meta["UL_CONF"] = ds.attrs["ul_conf"]
    for k, v in ds.attrs.items():
        if k.startswith("fits_meta_"):
            table.meta[k[len("fits_meta_"):]] = v
    return table


def _unit_of(ds: xr.Dataset, name: str) -> str | None:
    if name in TIME_COLS:  # gammapy writes none: TIMEUNIT applies
        return None
    if name in ENERGY_COLS:
        return ds["energy"].attrs.get("units") if name == "e_ref" else \
            bounds_units(ds, "energy")
    return ds[name].attrs.get("units")


def flux_points_writer(ds: xr.Dataset, path: str | os.PathLike, checksum: bool = True):
    """The checked writer ``tmp -> None`` of flux points to ``path`` (FITS, or ECSV for
    ``.ecsv``): everything that can fail fails now, before any file is touched."""
    validate(ds)
    table = dataset_to_table(ds)
    if ".ecsv" in Path(path).suffixes:
        return lambda tmp: table.write(tmp, format="ascii.ecsv", overwrite=True)
    hdu = fits.table_to_hdu(table)
    hdu.name = ds.attrs.get("fits_extname", "FLUXPOINTS")
    for name in table.colnames:  # unit strings verbatim
        hdu.columns[name].unit = _unit_of(ds, name)
    fu.add_cards(hdu.header, ds.attrs.get("fits_header"))
    hdus = [fu.primary_hdu(ds.attrs), hdu]
    if "gti_start" in ds:
        hdus.append(fu.gti_hdu(ds))
    return fu.fits_writer(hdus, path, checksum)


def to_flux_points_fits(ds: xr.Dataset, path: str | os.PathLike,
                        overwrite: bool = False, checksum: bool = True) -> Path:
    """Write flux points as gammapy does: PRIMARY, ``FLUXPOINTS`` table (+ ``GTI``);
    ``.ecsv`` paths are written as ECSV. Atomic; ``checksum`` writes CHECKSUM / DATASUM
    cards in every HDU (FITS only)."""
    check_overwrite(path, overwrite)
    return atomic_write(path, flux_points_writer(ds, path, checksum), overwrite)
