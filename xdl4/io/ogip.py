"""OGIP spectra: PHA (``SPECTRUM`` + ``EBOUNDS`` [+ ``REGION``, ``GTI``]) with companion ARF,
RMF and BKG files, as gammapy 2.1 reads and writes them (``format="ogip"``).

Mapping: ``counts`` = COUNTS in the stored dtype (int32 for gammapy files; xdl4 writes the
dtype of the variable, so float counts stay float), ``mask_safe`` = QUALITY == 0,
``acceptance`` = BACKSCAL, ``livetime`` = EXPOSURE, ``exposure`` = SPECRESP x EXPOSURE,
``counts_off``/``acceptance_off`` from the BKG file, ``edisp(energy_true, energy)`` from the
sparse RMF (F_CHAN 0-based whatever TLMIN4 says). AREASCAL columns, unknown keywords and
the column types are kept in ``fits_*`` attrs.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from astropy import units as u
from astropy.io import fits

from xdl4.axes import axis_coords, bound_values, bounds_units
from xdl4.errors import DL4FileNotFoundError, DL4Warning, FormatError, KindError
from xdl4.files import check_overwrite, write_all
from xdl4.io import fitsutil as fu
from xdl4.io.fitsutil import fail
from xdl4.kinds import validate
from xdl4.schema import REGION
from xdl4.validation import dataset_name, kind_record, labelled

OGIP_KEYS = re.compile(
    r"^(TELESCOP|INSTRUME|FILTER|EXPOSURE|CORRFILE|CORRSCAL|ANCRFILE|BACKFILE|RESPFILE|"
    r"HDUCLAS\d|HDUCLASS|HDUVERS|POISSERR|CHANTYPE|DETCHANS|GROUPING|AREASCAL|BACKSCAL|"
    r"QUALITY|OBS_ID|NUMGRP|NUMELT|TLMIN\d|TLMAX\d|EXTNAME)$")


def _extra(header: fits.Header) -> str:
    text = fu.extra_cards(header)
    cards = [c for c in text.split("\n") if c and not OGIP_KEYS.match(c[:8].strip())]
    return "\n".join(cards)


def companion_paths(path: str | os.PathLike) -> dict[str, Path]:
    """gammapy's companion names: ``X.fits`` -> ``X_arf.fits``, ``X_bkg.fits``, ``X_rmf.fits``
    (the suffixes are kept whole, e.g. ``.fits.gz``)."""
    path = Path(path)
    name = path.name
    i = name.find(".")
    base, suffix = (name[:i], name[i:]) if i > 0 else (name, "")
    return {k: path.with_name(f"{base}_{k}{suffix}") for k in ("arf", "bkg", "rmf")}


def _resolve(pha: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() or (p.exists() and not (pha.parent / p).exists()) \
        else pha.parent / p


def _companion(pha: Path, header: fits.Header, key: str) -> Path:
    """The companion file named by the PHA's ``key`` card (ANCRFILE, BACKFILE, RESPFILE),
    resolved from the PHA folder; a clear error naming the card if it does not exist."""
    name = str(header[key]).strip()
    path = _resolve(pha, name)
    if not path.is_file():
        raise DL4FileNotFoundError(f"{pha.name} [HDU SPECTRUM]: {key} = {name!r} names a "
                                   f"file that does not exist ({path})")
    return path


def _spectrum_hdu(path, hdul):
    for hdu in hdul[1:]:
        if hdu.name == "SPECTRUM" or hdu.header.get("HDUCLAS1", "").strip() == "SPECTRUM":
            return hdu
    raise fail(path, None, "missing required HDU 'SPECTRUM' (not an OGIP PHA file)")


def _ebounds(path, hdul) -> dict:
    hdu = fu.find_hdu(hdul, "EBOUNDS")
    if hdu is None:
        raise fail(path, None, "missing required HDU 'EBOUNDS'")
    fu.set_hdu("EBOUNDS")
    return _parse_ebounds(path, hdu)


@fu.cached_by_content(data=True, copy_result=True)  # runs share their channel bins
def _parse_ebounds(path, hdu) -> dict:
    d = fu.get_data(path, hdu, ("E_MIN", "E_MAX"))
    unit = fu.check_unit(path, "EBOUNDS", d.columns["E_MIN"].unit)
    edges = np.append(d["E_MIN"], d["E_MAX"][-1]).astype(float)
    return axis_coords(edges, "energy", unit, "log")


#: SPECTRUM columns xdl4 reads; others (STAT_ERR, SYS_ERR, GROUPING...) are not kept
PHA_COLUMNS = ("CHANNEL", "COUNTS", "QUALITY", "BACKSCAL", "AREASCAL")


def _read_pha(path, verify: bool = True) -> tuple[fits.Header, dict, dict, dict]:
    """(SPECTRUM header, columns, energy coords, other parts) of a PHA or BKG file."""
    with fu.open_fits(path, verify) as hdul:
        hdu = _spectrum_hdu(path, hdul)
        fu.set_hdu(hdu.name)
        d = fu.get_data(path, hdu, ("COUNTS",))
        other = [c for c in d.names if c.upper() not in PHA_COLUMNS]
        if other:
            warnings.warn(f"{Path(path).name} [HDU {hdu.name}]: columns {other} are not "
                          "represented by xdl4 (not read, not written back)", DL4Warning,
                          stacklevel=4)
        energy = _ebounds(path, hdul)
        fu.set_hdu(hdu.name)
        n = energy["energy"].size
        if len(d) != n:
            raise fail(path, hdu.name, f"{len(d)} channels but EBOUNDS has {n} bins")
        cols = {c: fu.native(d[c]) for c in ("COUNTS", "QUALITY", "BACKSCAL", "AREASCAL")
                if c in d.names}
        parts: dict = {"primary": fu.primary_attrs(hdul[0].header, path),
                       "channel": fu.native(d["CHANNEL"]) if "CHANNEL" in d.names else None}
        if fu.find_hdu(hdul, "REGION") is not None:
            parts["region"] = fu.region_attrs(path, hdul["REGION"])
        if fu.find_hdu(hdul, "GTI") is not None:
            parts["gti"] = fu.read_gti(path, hdul["GTI"])
        return hdu.header.copy(), cols, energy, parts


def _column_or_key(cols: dict, header, key: str, n: int, default):
    if key in cols:
        return cols[key], True
    return np.full(n, header.get(key, default)), False


def read_ogip(path: str | os.PathLike, verify: bool = True) -> xr.Dataset:
    """Read an OGIP PHA file with its ARF, RMF and BKG companions (found through the
    ANCRFILE/RESPFILE/BACKFILE keywords, relative to the PHA folder). Companions that do
    not exist or whose energy bins differ from the PHA's are errors naming the file and
    the card; ``verify=False`` skips the CHECKSUM / DATASUM checks."""
    path = Path(path)
    with fu.reading(path, "SPECTRUM"):
        return _read_ogip(path, verify)


def _read_ogip(path: Path, verify: bool) -> xr.Dataset:
    header, cols, coords, parts = _read_pha(path, verify)
    n = coords["energy"].size
    name = str(header.get("OBS_ID", "")).strip() or parts["primary"]["name"]
    attrs = {**parts["primary"], "name": name}
    data: dict = {}
    counts_attrs = {"units": ""}
    extra = _extra(header)
    if extra:
        counts_attrs["fits_header"] = extra
    areascal, is_col = _column_or_key(cols, header, "AREASCAL", n, 1)
    if is_col or np.any(areascal != 1):
        counts_attrs["fits_areascal"] = np.asarray(areascal, float)
    data["counts"] = xr.Variable("energy", cols["COUNTS"], counts_attrs)
    quality, _ = _column_or_key(cols, header, "QUALITY", n, 0)
    data["mask_safe"] = xr.Variable("energy", np.asarray(quality) == 0,
                                    {"fits_dtype": np.asarray(quality).dtype.str[1:]})
    if "EXPOSURE" not in header:
        raise fail(path, "SPECTRUM", "missing EXPOSURE keyword (livetime)")
    livetime = float(header["EXPOSURE"])
    data["livetime"] = xr.Variable((), livetime, {"units": "s"})
    backscal, _ = _column_or_key(cols, header, "BACKSCAL", n, 1.0)
    onoff = bool(str(header.get("BACKFILE", "")).strip() not in ("", "none", "NONE"))
    if onoff:
        bkg = _companion(path, header, "BACKFILE")
        bheader, bcols, bcoords, _ = _read_pha(bkg, verify)
        if not np.array_equal(bcoords["energy_bounds"].values, coords["energy_bounds"].values):
            raise fail(bkg, "EBOUNDS", "energy bins differ from those of the PHA file")
        bextra = _extra(bheader)
        data["counts_off"] = xr.Variable("energy", bcols["COUNTS"],
                                         {"units": "", **({"fits_header": bextra}
                                                          if bextra else {})})
        boff, _ = _column_or_key(bcols, bheader, "BACKSCAL", n, 1.0)
        data["acceptance"] = xr.Variable("energy", np.asarray(backscal), {"units": ""})
        data["acceptance_off"] = xr.Variable("energy", np.asarray(boff), {"units": ""})
    else:
        counts_attrs["fits_backscal"] = np.asarray(backscal, float)
    if not str(header.get("ANCRFILE", "")).strip():
        raise fail(path, "SPECTRUM", "no ANCRFILE: an OGIP dataset needs its ARF")
    arf = _companion(path, header, "ANCRFILE")
    etrue, specresp, arf_unit = _read_arf(arf, verify)
    coords.update(etrue)
    unit = (fu.parse_unit(arf_unit, arf.name) * u.s).to_string("fits") if arf_unit else "s"
    data["exposure"] = xr.Variable("energy_true", specresp * livetime,
                                   {"units": unit, "fits_specresp_unit": arf_unit})
    resp = str(header.get("RESPFILE", "")).strip()
    if resp and resp.lower() != "none":
        rmf = _companion(path, header, "RESPFILE")
        data["edisp"] = _read_rmf(rmf, coords, verify)
    if "region" in parts:
        coords[REGION] = xr.Variable((), np.int32(0), parts["region"])
    if "gti" in parts:
        data.update(parts["gti"])
        coords["gti"] = xr.Variable("gti", np.arange(data["gti_start"].size))
    kind = "spectrum_onoff" if onoff else "spectrum"
    return labelled(xr.Dataset(data, coords=coords, attrs={"dl4_kind": kind, **attrs}))


def _read_arf(path, verify: bool = True) -> tuple[dict, np.ndarray, str]:
    with fu.open_fits(path, verify) as hdul:
        hdu = fu.find_hdu(hdul, "SPECRESP")
        if hdu is None:
            raise fail(path, None, "missing required HDU 'SPECRESP' (not an ARF)")
        fu.set_hdu(hdu.name)
        d = fu.get_data(path, hdu, ("ENERG_LO", "ENERG_HI", "SPECRESP"))
        eunit = fu.check_unit(path, hdu.name, d.columns["ENERG_LO"].unit)
        edges = np.append(d["ENERG_LO"], d["ENERG_HI"][-1]).astype(float)
        unit = fu.check_unit(path, hdu.name, d.columns["SPECRESP"].unit)
        return axis_coords(edges, "energy_true", eunit, "log"), fu.native(d["SPECRESP"]), unit


def _read_rmf(path, coords: dict, verify: bool = True) -> xr.Variable:
    with fu.open_fits(path, verify) as hdul:
        hdu = fu.find_hdu(hdul, "MATRIX") or fu.find_hdu(hdul, "SPECRESP MATRIX")
        if hdu is None:
            raise fail(path, None, "missing required HDU 'MATRIX' (not an RMF)")
        if fu.find_hdu(hdul, "EBOUNDS") is not None:
            rmf_coords = _ebounds(path, hdul)
            reco, ref = rmf_coords["energy_bounds"], coords["energy_bounds"]
            # CF bounds inherit the units of their coordinate
            scale = fu.parse_unit(rmf_coords["energy"].attrs.get("units"),
                                  f"{Path(path).name} [HDU EBOUNDS]").to(
                fu.parse_unit(coords["energy"].attrs.get("units"), "PHA EBOUNDS"))
            if reco.shape != ref.shape or not np.allclose(
                    reco.values * scale, ref.values, rtol=1e-5, atol=0):
                raise fail(path, "EBOUNDS", "reconstructed-energy bins differ from those of "
                           "the PHA file's EBOUNDS (a response for another spectrum?)")
        fu.set_hdu(hdu.name)
        d = fu.get_data(path, hdu, ("ENERG_LO", "ENERG_HI", "N_GRP", "F_CHAN", "N_CHAN", "MATRIX"))
        etrue = np.append(d["ENERG_LO"], d["ENERG_HI"][-1]).astype(float)
        ref = coords["energy_true_bounds"].values
        if etrue.size != ref.shape[0] + 1 or not np.allclose(
                etrue, np.append(ref[:, 0], ref[-1, 1]), rtol=1e-5):
            raise fail(path, hdu.name, "true-energy bins differ from those of the ARF")
        n_reco = coords["energy"].size
        n_true = len(d)
        dtype = np.dtype(d.columns["MATRIX"].dtype.base if hasattr(
            d.columns["MATRIX"], "dtype") else "f4")
        kernel = np.zeros((n_true, n_reco), dtype=np.float32 if dtype.kind != "f" else
                          dtype.newbyteorder("="))
        ngrp, fch, nch, mat = d["N_GRP"], d["F_CHAN"], d["N_CHAN"], d["MATRIX"]
        for i in range(n_true):
            f, w, m = (np.atleast_1d(x[i]) for x in (fch, nch, mat))
            pos = 0
            for k in range(int(ngrp[i])):
                lo, width = int(f[k]), int(w[k])
                if lo + width > n_reco or pos + width > m.size:
                    raise fail(path, hdu.name, f"row {i}: group {k} runs past the "
                               f"{n_reco} channels or the MATRIX values")
                kernel[i, lo:lo + width] = m[pos:pos + width]
                pos += width
        attrs = {"units": ""}
        extra = _extra(hdu.header)
        if extra:
            attrs["fits_header"] = extra
        return xr.Variable(("energy_true", "energy"), kernel, attrs)


# --------------------------------------------------------------------------------------
# writing


def divide_exact(total: np.ndarray, factor: float) -> np.ndarray:
    """``total / factor``, nudged by an ulp where needed so that ``result * factor``
    reproduces ``total`` bit for bit (keeps OGIP read -> write -> read identical)."""
    out = np.asarray(total, float) / factor
    for _ in range(4):
        bad = out * factor != total
        if not bad.any():
            break
        direction = np.where(out[bad] * factor < total[bad], np.inf, -np.inf)
        out[bad] = np.nextafter(out[bad], direction)
    return out


def sparse_rows(kernel: np.ndarray) -> tuple[list, list, list, list]:
    """OGIP sparse rows: per true-energy row the runs of non-zero channels
    (N_GRP, F_CHAN, N_CHAN, MATRIX); all-zero rows as N_GRP=1, F_CHAN=[0], N_CHAN=[0]."""
    ngrp, fchan, nchan, matrix = [], [], [], []
    for row in kernel:
        nz = np.flatnonzero(row)
        if nz.size == 0:
            ngrp.append(1), fchan.append([0]), nchan.append([0]), matrix.append([])
            continue
        breaks = np.flatnonzero(np.diff(nz) > 1)
        starts = np.r_[nz[0], nz[breaks + 1]]
        stops = np.r_[nz[breaks], nz[-1]] + 1
        ngrp.append(len(starts))
        fchan.append(starts.tolist())
        nchan.append((stops - starts).tolist())
        matrix.append(row[nz].tolist())
    return ngrp, fchan, nchan, matrix


def _ebounds_hdu(ds: xr.Dataset) -> fits.BinTableHDU:
    b = bound_values(ds, "energy")
    unit = bounds_units(ds, "energy")
    hdu = fits.BinTableHDU.from_columns([
        fits.Column("CHANNEL", "I", array=np.arange(len(b), dtype="i2")),
        fits.Column("E_MIN", "D", unit=unit, array=b[:, 0]),
        fits.Column("E_MAX", "D", unit=unit, array=b[:, 1])], name="EBOUNDS")
    for k, v in (("TELESCOP", "DUMMY"), ("INSTRUME", "DUMMY"), ("FILTER", "None"),
                 ("CHANTYPE", "PHA"), ("DETCHANS", len(b)), ("HDUCLASS", "OGIP"),
                 ("HDUCLAS1", "RESPONSE"), ("HDUCLAS2", "EBOUNDS"), ("HDUVERS", "1.2.0")):
        hdu.header[k] = v
    fu.stamp(hdu.header, ds.attrs)
    return hdu


def _pha_hdu(ds: xr.Dataset, counts: str, backscal: str | None, names: dict,
             bkg: bool) -> fits.BinTableHDU:
    c = np.asarray(ds[counts].values)
    n = c.size
    mask = np.asarray(ds["mask_safe"].values) if "mask_safe" in ds else np.ones(n, bool)
    qdtype = ds["mask_safe"].attrs.get("fits_dtype", "b1") if "mask_safe" in ds else "b1"
    cols = [fits.Column("CHANNEL", "I", array=np.arange(n, dtype="i2")),
            fits.Column("COUNTS", fu.fits_format(c.dtype.str[1:]), array=c),
            fits.Column("QUALITY", fu.fits_format(qdtype), array=(~mask).astype(qdtype))]
    if backscal is not None:
        b = np.asarray(ds[backscal].values)
        cols.append(fits.Column("BACKSCAL", fu.fits_format(b.dtype.str[1:]), array=b))
    areascal = ds["counts"].attrs.get("fits_areascal")
    if areascal is not None:
        cols.append(fits.Column("AREASCAL", "D", array=np.asarray(areascal, float)))
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    h = hdu.header
    for k, v in (("TELESCOP", "unknown"), ("INSTRUME", "unknown"), ("FILTER", "None"),
                 ("EXPOSURE", float(ds["livetime"].values)), ("CORRFILE", ""),
                 ("CORRSCAL", ""), ("ANCRFILE", names["arf"]), ("HDUCLASS", "OGIP"),
                 ("HDUCLAS1", "SPECTRUM"), ("HDUVERS", "1.2.1"), ("POISSERR", True),
                 ("CHANTYPE", "PHA"), ("DETCHANS", n), ("GROUPING", 0)):
        h[k] = v
    if areascal is None:
        h["AREASCAL"] = 1
    if backscal is None:
        b = ds["counts"].attrs.get("fits_backscal")
        h["BACKSCAL"] = float(np.asarray(b).ravel()[0]) if b is not None else 1.0
    h["HDUCLAS2"] = "BKG" if bkg else "TOTAL"
    h["HDUCLAS3"], h["HDUCLAS4"] = "COUNT", "TYPE:1"
    h["OBS_ID"] = str(ds.attrs.get("name", ""))
    if "bkg" in names:
        h["BACKFILE"] = names["bkg"]
    if "rmf" in names:
        h["RESPFILE"] = names["rmf"]
    fu.add_cards(h, ds[counts].attrs.get("fits_header"))
    fu.stamp(h, ds.attrs)
    return hdu


def _arf_hdu(ds: xr.Dataset) -> fits.BinTableHDU:
    b = bound_values(ds, "energy_true")
    eunit = bounds_units(ds, "energy_true")
    expo = ds["exposure"]
    livetime = float(ds["livetime"].values)
    unit = expo.attrs.get("fits_specresp_unit")
    if unit is None:
        unit = (fu.parse_unit(expo.attrs.get("units"), "exposure")
                / fu.parse_unit(ds["livetime"].attrs.get("units", "s"), "livetime"))
        unit = unit.to_string("fits")
    specresp = divide_exact(np.asarray(expo.values, float), livetime)
    hdu = fits.BinTableHDU.from_columns([
        fits.Column("ENERG_LO", "D", unit=eunit, array=b[:, 0]),
        fits.Column("ENERG_HI", "D", unit=eunit, array=b[:, 1]),
        fits.Column("SPECRESP", "D", unit=unit or None, array=specresp)], name="SPECRESP")
    for k, v in (("TELESCOP", "unknown"), ("INSTRUME", "unknown"), ("FILTER", "None"),
                 ("HDUCLASS", "OGIP"), ("HDUCLAS1", "RESPONSE"), ("HDUCLAS2", "SPECRESP"),
                 ("HDUVERS", "1.1.0")):
        hdu.header[k] = v
    fu.stamp(hdu.header, ds.attrs)
    return hdu


def _rmf_hdu(ds: xr.Dataset) -> fits.BinTableHDU:
    edisp = ds["edisp"]
    if set(edisp.dims) != {"energy_true", "energy"}:
        raise FormatError(f"OGIP RMF needs an edisp kernel on (energy_true, energy); got dims "
                         f"{edisp.dims} (convert a migration edisp or take one position first)")
    kernel = np.asarray(edisp.transpose("energy_true", "energy").values, dtype=np.float32)
    b = bound_values(ds, "energy_true")
    eunit = bounds_units(ds, "energy_true")
    ngrp, fchan, nchan, matrix = sparse_rows(kernel)
    cols = [fits.Column("ENERG_LO", "E", unit=eunit, array=b[:, 0].astype("f4")),
            fits.Column("ENERG_HI", "E", unit=eunit, array=b[:, 1].astype("f4")),
            fits.Column("N_GRP", "I", array=np.asarray(ngrp, "i2")),
            fits.Column("F_CHAN", f"PI({max(map(len, fchan))})",
                        array=[np.asarray(x, "i2") for x in fchan]),
            fits.Column("N_CHAN", f"PI({max(map(len, nchan))})",
                        array=[np.asarray(x, "i2") for x in nchan]),
            fits.Column("MATRIX", f"PE({max(1, max(map(len, matrix)))})",
                        array=[np.asarray(x, "f4") for x in matrix])]
    hdu = fits.BinTableHDU.from_columns(cols, name="MATRIX")
    h = hdu.header
    for k, v in (("CHANTYPE", "PHA"), ("HDUCLASS", "OGIP"), ("HDUCLAS1", "RESPONSE"),
                 ("HDUCLAS2", "RSP_MATRIX"), ("DETCHANS", kernel.shape[1]),
                 ("NUMGRP", int(np.sum(ngrp))), ("NUMELT", int(sum(map(len, matrix)))),
                 ("TLMIN4", 0)):
        h[k] = v
    fu.add_cards(h, edisp.attrs.get("fits_header"))
    fu.stamp(h, ds.attrs)
    return hdu


def to_ogip(ds: xr.Dataset, path: str | os.PathLike, overwrite: bool = False,
            checksum: bool = True) -> list[Path]:
    """Write a spectrum dataset as OGIP: ``X.fits`` (PHA), ``X_arf.fits``, ``X_bkg.fits``
    (on/off) and ``X_rmf.fits`` (if edisp), companion names relative in the headers.

    All or nothing: every file is built and checked first, then all are committed
    together (see :func:`xdl4.files.write_all`); nothing is overwritten unless
    ``overwrite``. ``checksum`` writes CHECKSUM / DATASUM cards in every HDU.
    """
    ds = ds.assign_attrs(name=dataset_name(ds))  # a run keeps its name as its obs label
    record = kind_record(validate(ds))
    if not record.ogip:
        raise KindError(f"to_ogip is not defined for {record.name} datasets (OGIP holds "
                        "region spectra: reduce a map with ds.dl4.to_region first)")
    if "livetime" not in ds:
        raise FormatError("OGIP needs the livetime (EXPOSURE keyword): ds has no 'livetime'")
    if not record.onoff and "background" in ds:
        raise FormatError("OGIP holds on/off spectra (gammapy's SpectrumDatasetOnOff): a cash "
                         "spectrum's background would be lost; write it with to_gadf or "
                         "to_netcdf (or drop the background first)")
    path = Path(path)
    paths = {"pha": path, **companion_paths(path)}
    if not record.onoff:
        paths.pop("bkg")
    if "edisp" not in ds:
        paths.pop("rmf")
    for p in paths.values():
        check_overwrite(p, overwrite)
    names = {k: p.name for k, p in paths.items() if k != "pha"}
    prim = fu.primary_hdu(ds.attrs)
    region = []
    if REGION in ds.coords and "region" in ds[REGION].attrs:
        region = [fu.region_hdu("REGION", ds[REGION].attrs)]
        fu.stamp(region[0].header, ds.attrs)
    onoff = record.onoff
    pha = [prim, _pha_hdu(ds, "counts", "acceptance" if onoff else None, names, False),
           _ebounds_hdu(ds), *region]
    if "gti_start" in ds:
        pha.append(fu.gti_hdu(ds))
    files = {"pha": pha, "arf": [fu.primary_hdu(ds.attrs), _arf_hdu(ds)]}
    if onoff:
        files["bkg"] = [fu.primary_hdu(ds.attrs),
                        _pha_hdu(ds, "counts_off", "acceptance_off", names, True),
                        _ebounds_hdu(ds), *region]
    if "rmf" in paths:
        files["rmf"] = [fu.primary_hdu(ds.attrs), _rmf_hdu(ds), _ebounds_hdu(ds)]
    return write_all([(paths[k], fu.fits_writer(hdus, paths[k], checksum))
                      for k, hdus in files.items()], overwrite)
