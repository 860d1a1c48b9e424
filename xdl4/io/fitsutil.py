"""FITS building blocks shared by the GADF, OGIP and flux-point readers and writers.

One place per concept: safe opening with clear errors, the ``*_BANDS`` axis tables, WCS and
region map HDUs, FITS region tables, GTI, META_TABLE and PRIMARY metadata, and the
preservation of header cards xdl4 does not model (kept in attrs, written back verbatim).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import gzip
import io
import json
import mmap
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.wcs import WCS

from xdl4.axes import axis_coords, bound_values, node_coords
from xdl4.errors import DL4Error, DL4FileNotFoundError, DL4Warning, FormatError, UnitError
from xdl4.files import check_readable
from xdl4.schema import GTI, META_PREFIX, META_ROW, parse_unit
from xdl4.sky import FRAMES, Region, WcsGrid

CREATOR = "xdl4 0.1.0"
#: cards every writer regenerates; never kept as "extra" cards
STRUCTURAL = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|TFIELDS|XTENSION|EXTNAME|TTYPE\d+|"
    r"TFORM\d+|TUNIT\d+|TDIM\d+|TNULL\d+|TSCAL\d+|TZERO\d+|THEAP|CHECKSUM|DATASUM|"
    r"CREATOR|CREATED|BUNIT|META|WCSSHAPE|BANDSHDU|AXCOLS\d|INTERP\d|WCSAXES|CRPIX\d|"
    r"CDELT\d|CUNIT\d|CTYPE\d|CRVAL\d|LONPOLE|LATPOLE|RADESYS|EQUINOX|MJDREF[IF]?|"
    r"DATEREF|PC\d_\d|CD\d_\d|PV\d_\d+|CNAME\d|CROTA\d|MJD-OBS|DATE-OBS|TIMESYS)$"
)
DIM_OF_COL = {"E": "energy", "ENERGY": "energy", "THETA": "rad"}
COL_OF_DIM = {"energy": "ENERGY", "energy_true": "ENERGY_TRUE", "irf_energy_true": "ENERGY_TRUE",
              "rad": "RAD", "migra": "MIGRA"}


def fail(path, hdu: str | None, problem: str) -> FormatError:
    where = f"{Path(path).name}" + (f" [HDU {hdu}]" if hdu else "")
    return FormatError(f"{where}: {problem}")


# --------------------------------------------------------------------------------------
# the typed error contract of every reader

#: the HDU being read, to name it when something unexpected fails inside a reader
_CURRENT_HDU: contextvars.ContextVar[str | None] = contextvars.ContextVar("xdl4_hdu",
                                                                          default=None)


@contextlib.contextmanager
def reading(path: str | os.PathLike, hdu: str | None = None) -> Iterator[None]:
    """Turn any failure while reading ``path`` into a :class:`FormatError` naming the file
    and the HDU being read (errors xdl4 raises on purpose pass unchanged).

    >>> with reading("x.fits", "COUNTS"):
    ...     int("BITPIX")
    Traceback (most recent call last):
    ...
    xdl4.errors.FormatError: x.fits [HDU COUNTS]: cannot read: ValueError: invalid ...
    """
    token = _CURRENT_HDU.set(hdu)
    try:
        yield
    except UnitError as err:  # a unit written in the file: the file's problem
        raise fail(path, _CURRENT_HDU.get(), str(err)) from err
    except (DL4Error, DL4Warning):
        raise
    except FileNotFoundError as err:
        raise DL4FileNotFoundError(f"{path}: file not found ({err})") from err
    except (Exception, Warning) as err:  # noqa: BLE001 - re-raised, typed and named
        where = _CURRENT_HDU.get()
        raise fail(path, where, f"cannot read: {type(err).__name__}: {err}") from err
    finally:
        _CURRENT_HDU.reset(token)


def set_hdu(name: str | None) -> None:
    """Record the HDU being read (named by :func:`reading` if something fails)."""
    _CURRENT_HDU.set(name)


# --------------------------------------------------------------------------------------
# opening


def _read_gzip(path: Path) -> bytes:
    """The whole decompressed content (one decompression: astropy seeks back in gzip)."""
    with gzip.open(path, "rb") as f:
        return f.read()


@contextlib.contextmanager
def _raw_bytes(path: Path, data: bytes | None) -> Iterator[memoryview]:
    """The file's bytes for checksums: the decompressed content, or the file mapped."""
    if data is not None:
        yield memoryview(data)
        return
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        view = memoryview(m)
        try:
            yield view
        finally:
            view.release()


@contextlib.contextmanager
def open_fits(path: str | os.PathLike, verify: bool = True) -> Iterator[fits.HDUList]:
    """Open a FITS file (gzip too) with every HDU loaded; truncation, corruption and (with
    ``verify``) a CHECKSUM / DATASUM that does not match raise
    :class:`xdl4.errors.FormatError` naming the file (and the HDU)."""
    path = check_readable(path)
    data = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", fits.verify.VerifyWarning)
            warnings.filterwarnings("error", message=".*truncated.*")
            if path.name.endswith(".gz"):
                data = _read_gzip(path)
                hdul = fits.open(io.BytesIO(data), lazy_load_hdus=False)
            else:
                hdul = fits.open(path, memmap=True, lazy_load_hdus=False)
            if len(hdul) == 0:
                raise ValueError("no HDU")
    except DL4Error:
        raise
    except (Exception, Warning) as err:  # noqa: BLE001 - zlib, gzip, astropy, OS errors
        raise fail(path, None, f"not a readable FITS file (truncated or corrupt?): "
                   f"{type(err).__name__}: {err}") from err
    try:
        with reading(path):
            if verify and any("CHECKSUM" in h.header or "DATASUM" in h.header for h in hdul):
                with _raw_bytes(path, data) as raw:
                    verify_checksums(path, hdul, raw)
            hdul._xdl4_index = {  # name lookups in O(1) (astropy's .name property is slow)
                str(h.header.get("EXTNAME", "PRIMARY" if i == 0 else "")).strip().upper(): h
                for i, h in enumerate(hdul)}
        with reading(path):
            yield hdul
    finally:
        hdul.close()


# --------------------------------------------------------------------------------------
# FITS checksums (the ones' complement sums of the FITS checksum convention)


def _ones_sum(buf, start: int = 0) -> int:
    """32-bit ones' complement sum of ``buf`` (big-endian words; length a multiple of 4)."""
    total = int(np.frombuffer(buf, dtype=">u4").sum(dtype=np.uint64)) + start
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


_EXCLUDE = frozenset(range(0x3A, 0x41)) | frozenset(range(0x5B, 0x61))


def _encode_checksum(value: int) -> str:
    """The 16-character ASCII encoding of the complement of ``value`` (FITS convention):
    written in place of ``'0000000000000000'`` it makes the HDU sum to negative zero."""
    value = ~value & 0xFFFFFFFF
    asc = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        ch = [byte // 4 + 0x30] * 4
        ch[0] += byte % 4
        changed = True
        while changed:  # avoid ASCII punctuation, keeping the sum of each pair
            changed = False
            for j in (0, 2):
                if ch[j] in _EXCLUDE or ch[j + 1] in _EXCLUDE:
                    ch[j] += 1
                    ch[j + 1] -= 1
                    changed = True
        for j in range(4):
            asc[4 * j + i] = ch[j]
    return bytes(asc[15:] + asc[:15]).decode("ascii")


_ZERO_CHECKSUM = fits.Card("CHECKSUM", "0" * 16, "HDU checksum").image.encode("ascii")
_ZERO_DATASUM = fits.Card("DATASUM", "0", "data unit checksum").image.encode("ascii")


def add_checksum_cards(header: fits.Header) -> None:
    """Placeholders that :func:`stamp_checksums` fills once the bytes are known."""
    for key in ("CHECKSUM", "DATASUM"):
        header.remove(key, ignore_missing=True, remove_all=True)
    header.append(fits.Card.fromstring(_ZERO_CHECKSUM.decode()))
    header.append(fits.Card.fromstring(_ZERO_DATASUM.decode()))


def stamp_checksums(buf: bytearray) -> None:
    """Fill the CHECKSUM / DATASUM placeholders of every HDU of the serialised file."""
    view = memoryview(buf)
    for hdr, dat, end, _ in walk_hdus(io.BytesIO(buf)):
        cards = {bytes(buf[i:i + 8]): i for i in range(hdr, dat, 80)}
        if b"CHECKSUM" not in cards or b"DATASUM " not in cards:
            continue
        datasum = _ones_sum(view[dat:end])
        card = fits.Card("DATASUM", str(datasum), "data unit checksum").image.encode("ascii")
        i = cards[b"DATASUM "]
        buf[i:i + 80] = card
        i = cards[b"CHECKSUM"]
        buf[i:i + 80] = _ZERO_CHECKSUM
        total = _ones_sum(view[hdr:dat], datasum)
        value = _encode_checksum(total).encode("ascii")
        buf[i + 11:i + 27] = value


def verify_checksums(path, hdul: fits.HDUList, raw) -> None:
    """Check the CHECKSUM (whole HDU) and DATASUM (data) cards of every HDU that has them
    against the bytes read; a mismatch means corruption or an edit that did not update
    them."""
    for hdu in hdul:
        header = hdu.header
        has_sum, has_data = "CHECKSUM" in header, "DATASUM" in header
        if not (has_sum or has_data):
            continue
        info = hdu.fileinfo()
        hdr, dat, end = info["hdrLoc"], info["datLoc"], info["datLoc"] + info["datSpan"]
        if end > len(raw) or (end - hdr) % 4:
            raise fail(path, hdu.name, "truncated (the HDU runs past the end of the file)")
        if has_sum and _ones_sum(raw[hdr:end]) != 0xFFFFFFFF:
            raise fail(path, hdu.name, "CHECKSUM does not match the content: the file is "
                       "corrupt or was edited without updating CHECKSUM (read it anyway "
                       "with verify=False)")
        if has_data and not has_sum:
            expected = str(header["DATASUM"]).strip()
            if expected.isdigit() and int(expected) != _ones_sum(raw[dat:end]):
                raise fail(path, hdu.name, "DATASUM does not match the data: the file is "
                           "corrupt (read it anyway with verify=False)")


def walk_hdus(f) -> Iterator[tuple[int, int, int, dict[str, str]]]:
    """(header offset, data offset, end offset, {keyword: raw value}) of each HDU of an
    open binary FITS stream, read by walking the 2880-byte blocks without parsing or
    loading any data; stops at the end of the stream or at a header it cannot size."""
    offset = 0
    while True:
        cards: dict[str, str] = {}
        start = offset
        while True:
            block = f.read(2880)
            if len(block) < 2880:
                return
            offset += 2880
            text = block.decode("ascii", errors="replace")
            ended = False
            for i in range(0, 2880, 80):
                card = text[i:i + 80]
                key = card[:8].strip()
                if key == "END":
                    ended = True
                    break
                if card[8:10] == "= ":
                    cards[key] = card[10:].split("/")[0].strip().strip("'").strip()
            if ended:
                break
        try:
            naxis = [int(cards.get(f"NAXIS{i}", 0)) for i in range(1, int(cards["NAXIS"]) + 1)]
            size = abs(int(cards["BITPIX"])) // 8 * int(cards.get("GCOUNT", 1)) * (
                int(cards.get("PCOUNT", 0)) + (int(np.prod(naxis)) if naxis else 0))
        except (KeyError, ValueError):
            yield start, offset, offset, cards
            return
        span = -(-size // 2880) * 2880
        yield start, offset, offset + span, cards
        f.seek(span, os.SEEK_CUR)
        offset += span


def peek_headers(path: str | os.PathLike, n: int = 3) -> list[dict[str, str]]:
    """The first ``n`` HDU headers as {keyword: raw value}, read by walking the FITS blocks
    (gzip too) without parsing or loading any data: cheap format detection."""
    out: list[dict[str, str]] = []
    opener = gzip.open if Path(path).name.endswith(".gz") else open
    with opener(path, "rb") as f:
        for _, _, _, cards in walk_hdus(f):
            out.append(cards)
            if len(out) >= n:
                break
    return out


def get_data(path, hdu, columns: tuple[str, ...] = ()) -> np.ndarray | fits.FITS_rec:
    """The data of ``hdu``, raising a named error if the file is truncated there or the
    table lacks one of ``columns``."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*truncated.*")
            data = hdu.data
        if isinstance(data, np.ndarray) and data.size and not isinstance(data, fits.FITS_rec):
            np.asarray(data.reshape(-1)[-1])  # touch the end: truncated files fail here
    except (OSError, ValueError, EOFError, TypeError, IndexError, Warning) as err:
        raise fail(path, hdu.name, f"cannot read data (truncated or corrupt file?): {err}") \
            from err
    if data is None:
        raise fail(path, hdu.name, "HDU has no data")
    for col in columns:
        if col not in data.names:
            raise fail(path, hdu.name, f"missing column {col}")
    return data


def native(a: np.ndarray) -> np.ndarray:
    """A native-byte-order copy of ``a`` with the same dtype kind and size."""
    a = np.asarray(a)
    return a.astype(a.dtype.newbyteorder("="), copy=True)


def raw_hdu(hdu, data: bool = True) -> bytes:
    """The HDU's header (and data) blocks as stored: a content key for caches."""
    info = hdu.fileinfo()
    f = info["file"]
    f.seek(info["hdrLoc"])
    end = info["datLoc"] + info["datSpan"] if data else info["datLoc"]
    return f.read(end - info["hdrLoc"])


def cached_by_content(data: bool = True, copy_result: bool = True):
    """Cache ``func(path, hdu)`` by the HDU's raw header (and data) bytes: runs of one
    survey share their axis tables and grids. Mutable results are deep-copied out."""

    def decorate(func):
        cache: dict[bytes, object] = {}

        @functools.wraps(func)
        def wrapper(path, hdu):
            key = raw_hdu(hdu, data)
            if key not in cache:
                if len(cache) > 256:
                    cache.clear()
                cache[key] = func(path, hdu)
            return copy.deepcopy(cache[key]) if copy_result else cache[key]

        return wrapper

    return decorate


def find_hdu(hdul: fits.HDUList, name: str):
    index = getattr(hdul, "_xdl4_index", None)
    if index is not None:
        return index.get(name.upper())
    try:
        return hdul[name]
    except KeyError:
        return None


def check_unit(path, hdu: str, value: str | None) -> str:
    """The unit string as written (``""`` if none), validated with astropy."""
    text = "" if value is None else str(value).strip()
    try:
        parse_unit(text, "unit")
    except UnitError as err:
        raise fail(path, hdu, f"cannot parse unit {text!r}") from err
    return text


# --------------------------------------------------------------------------------------
# header cards xdl4 does not model


def extra_cards(header: fits.Header, keep: tuple[str, ...] = ()) -> str:
    """Non-structural cards of ``header`` as one string (empty if none)."""
    cards = [c for c in header.cards if c.keyword and c.keyword not in ("", "COMMENT", "HISTORY")
             and (c.keyword in keep or not STRUCTURAL.match(c.keyword))]
    return "\n".join(c.image for c in cards)


def add_cards(header: fits.Header, text: str | None) -> None:
    if text:
        for card in fits.Header.fromstring(text, sep="\n").cards:
            header.append(card)


def stamp(header: fits.Header, attrs: dict) -> None:
    """CREATOR/CREATED of the dataset's PRIMARY header on every HDU (as gammapy does)."""
    if "fits_primary_CREATOR" in attrs:
        header["CREATOR"] = attrs["fits_primary_CREATOR"]
    if "fits_primary_CREATED" in attrs:
        header["CREATED"] = attrs["fits_primary_CREATED"]


def primary_attrs(header: fits.Header, path) -> dict:
    """Dataset attrs from the PRIMARY header: ``name`` and ``fits_primary_<KEY>``."""
    attrs = {"name": str(header.get("NAME", "")).strip() or stem(path)}
    for card in header.cards:
        key = card.keyword
        if key in ("NAME", "", "COMMENT", "HISTORY", "CHECKSUM", "DATASUM") or \
                STRUCTURAL.match(key) and key not in ("CREATOR", "CREATED"):
            continue
        attrs[f"fits_primary_{key}"] = attr_value(card.value)
    return attrs


def primary_hdu(attrs: dict) -> fits.PrimaryHDU:
    hdu = fits.PrimaryHDU()
    hdu.header["NAME"] = str(attrs.get("name", ""))
    for key, value in attrs.items():
        if key.startswith("fits_primary_") and key not in ("fits_primary_CREATOR",
                                                           "fits_primary_CREATED"):
            hdu.header[key[len("fits_primary_"):]] = card_value(value)
    stamp(hdu.header, attrs)
    return hdu


def attr_value(value):
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, fits.card.Undefined) or value is None:
        return ""
    return value


def card_value(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def stem(path) -> str:
    name = Path(path).name
    for suffix in (".gz", ".fits", ".fit", ".ecsv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


# --------------------------------------------------------------------------------------
# BANDS tables


@dataclass
class Axis:
    """One non-spatial axis of a map HDU as stored in its ``*_BANDS`` table."""

    dim: str | None  # xarray dim; None for a squashed 1-bin axis (IRF exposure weights)
    col: str  # centre column name: ENERGY, ENERGY_TRUE, RAD, THETA, MIGRA...
    edges: bool  # AXCOLS = min,max (True) or the centre column alone (nodes)
    values: np.ndarray  # edges (n+1) or nodes (n), float64, in ``unit``
    unit: str = ""
    interp: str | None = "lin"
    dtype: str = "f8"
    file_values: np.ndarray | None = None  # values as written when the coord was converted
    extra: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.values.size - 1 if self.edges else self.values.size

    @property
    def cols(self) -> tuple[str, str]:
        return ("E_MIN", "E_MAX") if self.col == "ENERGY" else (f"{self.col}_MIN",
                                                                 f"{self.col}_MAX")

    def to_json(self) -> dict:
        out = {"dim": self.dim, "col": self.col, "edges": self.edges, "unit": self.unit,
               "interp": self.interp, "dtype": self.dtype}
        if self.dim is None:
            out["values"] = self.values.tolist()
        if self.file_values is not None:
            out["file_values"] = self.file_values.tolist()
        return out

    def coords(self) -> dict:
        """xarray coordinates of this axis (rad given in rad units becomes deg)."""
        values, unit = self.values, self.unit
        if self.dim == "rad" and unit == "rad":
            values, unit = np.rad2deg(values), "deg"
        interp = self.interp or "lin"
        if self.edges:
            return axis_coords(values, self.dim, unit, interp)
        return node_coords(values, self.dim, unit, interp)


@cached_by_content(data=True, copy_result=True)
def parse_bands(path, hdu) -> tuple[list[Axis], str | None]:
    """Axes (FITS order) of a ``*_BANDS`` table and the dtype of its CHANNEL column,
    rebuilt as gammapy does: AXCOLS + unique column values (row order irrelevant)."""
    header, data = hdu.header, get_data(path, hdu)
    names = [n.upper() for n in data.columns.names]
    axes = []
    for i in range(1, 6):
        axcols = header.get(f"AXCOLS{i}")
        if axcols is None:
            break
        cols = [c.strip().upper() for c in axcols.split(",")]
        missing = [c for c in cols if c not in names]
        if missing:
            raise fail(path, hdu.name, f"AXCOLS{i} names missing columns {missing}")
        column = data.columns[cols[0]]
        if column.format.startswith(("A",)) or "A" in str(column.format):
            raise fail(path, hdu.name, f"label axis {cols[0]} is not supported")
        unit = check_unit(path, hdu.name, column.unit)
        interp = header.get(f"INTERP{i}")
        if len(cols) == 2:
            lo, hi = np.unique(data[cols[0]]), np.unique(data[cols[1]])
            if cols[0].startswith("TIME"):
                raise fail(path, hdu.name, "time axes are not supported")
            values = np.append(lo, hi[-1]).astype(float)
            base = "ENERGY" if cols[0] == "E_MIN" else cols[0][: -len("_MIN")]
        elif len(cols) == 1:
            values = np.unique(data[cols[0]]).astype(float)
            base = cols[0]
        else:
            raise fail(path, hdu.name, f"AXCOLS{i}={axcols!r} must name one or two columns")
        dim = DIM_OF_COL.get(base, base.lower())
        dtype = np.dtype(data.dtype[cols[0]]).newbyteorder("=").str[1:]
        axes.append(Axis(dim, base, len(cols) == 2, values, unit, interp, dtype))
    channel = None
    if "CHANNEL" in names:
        channel = np.dtype(data.dtype["CHANNEL"]).newbyteorder("=").str[1:]
    return axes, channel


def bands_hdu(name: str, axes: list[Axis], channel: str | None) -> fits.BinTableHDU:
    """A ``*_BANDS`` table with first axis fastest (C order of the numpy shape)."""
    sizes = [ax.size for ax in axes]
    idx = np.indices(sizes[::-1]).reshape(len(sizes), -1)[::-1]  # FITS order, axis1 fastest
    cols = []
    if channel:
        cols.append(fits.Column("CHANNEL", format=fits_format(channel),
                                array=np.arange(idx.shape[1], dtype=channel)))
    for ax, i in zip(axes, idx, strict=True):
        vals = ax.file_values if ax.file_values is not None else ax.values
        fmt = fits_format(ax.dtype)
        if ax.edges:
            lo, hi = vals[:-1], vals[1:]
            centre = np.sqrt(lo * hi) if ax.interp == "log" else 0.5 * (lo + hi)
        else:
            centre = lo = hi = vals
        for cname, arr in zip((ax.col, *ax.cols), (centre, lo, hi), strict=True):
            cols.append(fits.Column(cname, format=fmt, unit=ax.unit or None,
                                    array=np.asarray(arr, dtype=ax.dtype)[i]))
    hdu = fits.BinTableHDU.from_columns(cols, name=f"{name}_BANDS")
    axes_header(hdu.header, axes)
    return hdu


def axes_header(header: fits.Header, axes: list[Axis]) -> None:
    for i, ax in enumerate(axes, start=1):
        header[f"AXCOLS{i}"] = ",".join(ax.cols) if ax.edges else ax.col
        if ax.interp is not None:
            header[f"INTERP{i}"] = ax.interp


def fits_format(dtype: str) -> str:
    return {"f4": "E", "f8": "D", "i2": "I", "i4": "J", "i8": "K", "b1": "L", "u1": "B"}[
        np.dtype(dtype).str[1:]]


def axes_from_json(text: str | None) -> tuple[list[Axis] | None, str | None]:
    if not text:
        return None, "i8"
    info = json.loads(text)
    axes = []
    for a in info["axes"]:
        fv = a.get("file_values")
        axes.append(Axis(a["dim"], a["col"], a["edges"], np.asarray(a.get("values", []), float),
                         a["unit"], a["interp"], a["dtype"],
                         None if fv is None else np.asarray(fv, float)))
    return axes, info.get("channel")


def axes_to_json(axes: list[Axis], channel: str | None) -> str:
    return json.dumps({"channel": channel, "axes": [a.to_json() for a in axes]})


def axis_from_coords(ds: xr.Dataset, dim: str, template: Axis | None) -> Axis:
    """An :class:`Axis` for writing ``dim`` of ``ds`` (file layout from ``template``)."""
    coord = ds[dim]
    bname = coord.attrs.get("bounds", f"{dim}_bounds")
    if bname in ds.variables:
        b = bound_values(ds, dim)
        values, edges = np.append(b[:, 0], b[-1, 1]), True
    else:
        values, edges = np.asarray(coord.values, float), False
    unit = str(coord.attrs.get("units", ""))
    interp = coord.attrs.get("interp", "log" if "energy" in dim else "lin")
    if template is None:
        return Axis(dim, COL_OF_DIM.get(dim, dim.upper()), edges, values, unit, interp, "f8")
    ax = Axis(dim, template.col, template.edges, values, unit, template.interp or interp,
              template.dtype)
    if template.unit != unit and dim == "rad" and template.unit == "rad":
        ax.values, ax.unit = np.deg2rad(values), "rad"
        if template.file_values is not None and template.file_values.size == values.size and \
                np.allclose(np.rad2deg(template.file_values), values, rtol=1e-12, atol=0):
            ax.file_values = template.file_values
    if template.interp is None:
        ax.interp = None
    return ax


# --------------------------------------------------------------------------------------
# sky grids


@cached_by_content(data=False, copy_result=False)  # a grid is immutable
def grid_from_header(path, hdu) -> WcsGrid:
    header = hdu.header
    if header.get("PIXTYPE", "").upper() == "HEALPIX":
        raise fail(path, hdu.name, "HEALPix maps are not supported by xdl4 (WCS and region "
                   "geometries only)")
    cards = tuple((k, header[k]) for k in header if WCS_KEYS.match(k))
    try:
        if "WCSSHAPE" in header:
            shape = tuple(int(v) for v in header["WCSSHAPE"].strip("()").split(",") if v)
            nx, ny = shape[0], shape[1]
        else:
            nx, ny = header["NAXIS1"], header["NAXIS2"]
        grid = _grid(cards, (ny, nx))
    except Exception as err:  # noqa: BLE001 - re-raised with the file and HDU named
        raise fail(path, hdu.name, f"invalid WCS: {err}") from err
    ctype = (str(header.get("CTYPE1", "")), str(header.get("CTYPE2", "")))
    if not ctype[0].startswith(CELESTIAL) or not ctype[1].startswith(CELESTIAL):
        raise fail(path, hdu.name, f"CTYPE1/CTYPE2 = {ctype[0]!r}/{ctype[1]!r}: not a "
                   "celestial grid xdl4 can represent (RA---/DEC-- or GLON-/GLAT- with a "
                   "projection code)")
    return grid


@functools.lru_cache(maxsize=64)
def _grid(cards: tuple, shape: tuple[int, int]) -> WcsGrid:
    """The grid of a set of WCS cards (cached: many runs share a handful of grids)."""
    return WcsGrid.from_wcs(_wcs(cards), shape)


#: the celestial axes a sky grid may have (xdl4's frames: icrs, galactic)
CELESTIAL = tuple(prefix for pair in FRAMES.values() for prefix in pair)
WCS_KEYS = re.compile(r"^(WCSAXES|CRPIX[12]|CDELT[12]|CUNIT[12]|CTYPE[12]|CRVAL[12]|LONPOLE|"
                      r"LATPOLE|RADESYS|EQUINOX|PC[12]_[12]|CD[12]_[12]|PV[12]_\d+|MJDREF[IF]?|"
                      r"DATEREF)$")


@functools.lru_cache(maxsize=64)
def _wcs(cards: tuple) -> WCS:
    header = fits.Header()
    header["NAXIS"] = 2
    for k, v in cards:
        header[k] = v
    return WCS(header, naxis=2, fix=False)


# --------------------------------------------------------------------------------------
# region tables


def parse_region_table(path, hdu) -> tuple[Region, str, str]:
    """(region, region string, WCS header) of a FITS region table (pixel coordinates
    of the WCS in the same header)."""
    data = get_data(path, hdu)
    grid = grid_from_header(path, hdu)
    scale = float(np.mean(np.abs(grid.wcs.wcs.get_cdelt())))
    shapes = []
    for row in data:
        shape = str(row["SHAPE"]).strip().lower()
        if shape.startswith("!"):
            raise fail(path, hdu.name, f"excluded region shapes ({shape}) are not supported")
        x, y = np.atleast_1d(row["X"]).astype(float), np.atleast_1d(row["Y"]).astype(float)
        r = np.atleast_1d(row["R"]).astype(float) * scale if "R" in data.names else []
        rot = float(row["ROTANG"]) if "ROTANG" in data.names else 0.0
        lon, lat = grid.pixel_to_world(x, y)
        if shape == "polygon":
            args = tuple(v for pair in zip(lon, lat, strict=True) for v in pair)
        elif shape == "circle":
            args = (lon[0], lat[0], r[0])
        elif shape == "point":
            args = (lon[0], lat[0])
        elif shape == "annulus":
            args = (lon[0], lat[0], r[0], r[1])
        elif shape in ("ellipse", "box", "rotbox"):
            shape = "box" if shape == "rotbox" else shape
            args = (lon[0], lat[0], r[0], r[1], rot)
        else:
            raise fail(path, hdu.name, f"unsupported region shape {shape!r}")
        shapes.append((shape, tuple(float(a) for a in args)))
    region = Region(grid.frame, tuple(shapes))
    header = fits.Header.fromstring(grid.header, sep="\n")
    header["WCSSHAPE"] = f"({grid.shape[1]},{grid.shape[0]})"
    return region, str(region), header.tostring(sep="\n", endcard=False, padding=False)


def region_attrs(path, hdu) -> dict:
    """Attrs describing a region HDU so that writing reproduces it exactly."""
    region, text, header = parse_region_table(path, hdu)
    data = get_data(path, hdu)
    cols = []
    for c in data.columns:
        arr = native(data[c.name])
        cols.append({"name": c.name, "format": c.format, "unit": c.unit or "",
                     "values": [v.decode() if isinstance(v, bytes) else v
                                for v in arr.tolist()]})
    return {"region": text, "frame": region.frame, "center_lon": region.center[0],
            "center_lat": region.center[1], "wcs_header": header,
            "fits_region_table": json.dumps({"region": text, "columns": cols})}


def region_hdu(name: str, attrs: dict) -> fits.BinTableHDU:
    """A FITS region table for the region described by ``attrs`` (as :func:`region_attrs`
    gives, or a region string alone: then a TAN WCS of 0.01 deg pixels is made)."""
    text = attrs["region"]
    stored = json.loads(attrs.get("fits_region_table", "null") or "null")
    header_text = attrs.get("wcs_header")
    if stored and stored["region"] == text and header_text:
        cols = [fits.Column(c["name"], format=c["format"], unit=c["unit"] or None,
                            array=_column_array(c)) for c in stored["columns"]]
        header = fits.Header.fromstring(header_text, sep="\n")
    else:
        region = Region.parse(text)
        if not header_text:
            cx, cy = region.center
            grid = WcsGrid.create((cx, cy), 1.0, 0.01, region.frame, "TAN")
            hdr = fits.Header.fromstring(grid.header, sep="\n")
            hdr["WCSSHAPE"] = "(100,100)"
            header_text = hdr.tostring(sep="\n", endcard=False, padding=False)
        header = fits.Header.fromstring(header_text, sep="\n")
        grid = WcsGrid(fits.Header({k: v for k, v in header.items() if k != "WCSSHAPE"})
                       .tostring(sep="\n"), (1, 1))
        cols = _region_columns(region, grid)
    hdu = fits.BinTableHDU.from_columns(cols, name=name)
    for card in header.cards:
        hdu.header.append(card)
    return hdu


def _column_array(c: dict) -> np.ndarray:
    if "A" in c["format"]:
        return np.array(c["values"], dtype=f"S{int(c['format'].rstrip('A') or 1)}")
    return np.array(c["values"], dtype=float)


def _region_columns(region: Region, grid: WcsGrid) -> list[fits.Column]:
    scale = float(np.mean(np.abs(grid.wcs.wcs.get_cdelt())))
    rows = []
    for shape, a in region.shapes:
        if shape == "polygon":
            raise FormatError("writing polygon regions is not supported")
        x, y = grid.world_to_pixel(a[0], a[1])
        radii = [0.0] if shape == "point" else [a[2]] if shape == "circle" else [a[2], a[3]]
        rot = a[4] if shape in ("ellipse", "box") else 0.0
        rows.append(("rotbox" if shape == "box" else shape, float(x), float(y),
                     [r / scale for r in radii], rot))
    nr = max(len(r[3]) for r in rows)
    width = max(len(r[0]) for r in rows)
    radius = np.array([r[3] + [0.0] * (nr - len(r[3])) for r in rows])
    return [fits.Column("SHAPE", format=f"{width}A", array=[r[0] for r in rows]),
            fits.Column("X", format="D", unit="pix", array=[r[1] for r in rows]),
            fits.Column("Y", format="D", unit="pix", array=[r[2] for r in rows]),
            fits.Column("R", format="D" if nr == 1 else f"{nr}D", unit="pix",
                        array=radius[:, 0] if nr == 1 else radius),
            fits.Column("ROTANG", format="D", unit="deg", array=[r[4] for r in rows])]


# --------------------------------------------------------------------------------------
# GTI and META_TABLE


def read_gti(path, hdu) -> dict:
    """``gti_start``/``gti_stop`` variables on the ``gti`` dim from a GTI HDU."""
    data, header = get_data(path, hdu), hdu.header
    for key in ("MJDREFI", "MJDREFF"):
        if key not in header:
            raise fail(path, hdu.name, f"GTI header lacks the mandatory {key}")
    attrs = {"mjdrefi": header["MJDREFI"], "mjdreff": header["MJDREFF"],
             "timesys": str(header.get("TIMESYS", "tt"))}
    if "TIMEUNIT" in header:
        attrs["timeunit"] = str(header["TIMEUNIT"])
    extra = extra_cards(header)
    out = {}
    for col, var in (("START", "gti_start"), ("STOP", "gti_stop")):
        if col not in data.names:
            raise fail(path, hdu.name, f"GTI table lacks column {col}")
        unit = data.columns[col].unit
        a = {"units": check_unit(path, hdu.name, unit) or "s", **attrs}
        if not unit:
            a["fits_tunit"] = ""
        if extra and var == "gti_start":
            a["fits_header"] = extra
        out[var] = xr.Variable(GTI, native(data[col]), a)
    return out


def gti_hdu(ds: xr.Dataset) -> fits.BinTableHDU:
    start, stop = ds["gti_start"], ds["gti_stop"]
    cols = []
    for col, var in (("START", start), ("STOP", stop)):
        unit = None if var.attrs.get("fits_tunit", None) == "" else var.attrs.get("units", "s")
        cols.append(fits.Column(col, format=fits_format(var.dtype.str[1:]), unit=unit,
                                array=np.asarray(var.values)))
    hdu = fits.BinTableHDU.from_columns(cols, name="GTI")
    stamp(hdu.header, ds.attrs)
    hdu.header["MJDREFI"] = card_value(start.attrs.get("mjdrefi", 51544))
    hdu.header["MJDREFF"] = card_value(start.attrs.get("mjdreff", 0.0))
    hdu.header["TIMESYS"] = start.attrs.get("timesys", "tt")
    if "timeunit" in start.attrs:
        hdu.header["TIMEUNIT"] = start.attrs["timeunit"]
    add_cards(hdu.header, start.attrs.get("fits_header"))
    return hdu


def read_meta_table(path, hdu) -> dict:
    data = get_data(path, hdu)
    out = {}
    for c in data.columns:
        arr = native(data[c.name])
        if arr.dtype.kind == "S":
            arr = arr.astype(str)
        attrs = {"fits_name": c.name, "fits_format": c.format}
        if c.dim:
            attrs["fits_dim"] = c.dim
        if c.unit:
            attrs["units"] = check_unit(path, hdu.name, c.unit)
        dims = (META_ROW,) + tuple(f"{META_PREFIX}{c.name.lower()}_dim{i}"
                                   for i in range(arr.ndim - 1))
        out[META_PREFIX + c.name.lower()] = xr.Variable(dims, arr, attrs)
    extra = extra_cards(hdu.header)
    if extra and out:
        next(iter(out.values())).attrs["fits_header"] = extra
    return out


def meta_table_hdu(ds: xr.Dataset) -> fits.BinTableHDU | None:
    names = [n for n in ds.data_vars if n.startswith(META_PREFIX) and META_ROW in ds[n].dims]
    if not names:
        return None
    cols, extra = [], None
    for n in names:
        v = ds[n]
        arr = np.asarray(v.values)
        fmt = v.attrs.get("fits_format")
        if arr.dtype.kind == "U":
            arr = arr.astype("S")
            fmt = fmt or f"{max(1, arr.dtype.itemsize) * (arr[0].size if arr.size else 1)}A"
        cols.append(fits.Column(v.attrs.get("fits_name", n[len(META_PREFIX):].upper()),
                                format=fmt or fits_format(arr.dtype.str[1:]),
                                unit=v.attrs.get("units") or None, array=arr,
                                dim=v.attrs.get("fits_dim")))
        extra = extra or v.attrs.get("fits_header")
    hdu = fits.BinTableHDU.from_columns(cols, name="META_TABLE")
    stamp(hdu.header, ds.attrs)
    add_cards(hdu.header, extra)
    return hdu


def fits_bytes(hdus: list, checksum: bool = True) -> bytearray:
    """The serialised FITS file of ``hdus`` (astropy verifies it), with CHECKSUM and
    DATASUM cards on every HDU when ``checksum``."""
    hdul = fits.HDUList(hdus)
    for hdu in hdul:
        if checksum:
            add_checksum_cards(hdu.header)
        else:
            for key in ("CHECKSUM", "DATASUM"):
                hdu.header.remove(key, ignore_missing=True, remove_all=True)
    out = io.BytesIO()
    hdul.writeto(out, output_verify="exception")
    buf = bytearray(out.getbuffer())
    if checksum:
        stamp_checksums(buf)
    return buf


def fits_writer(hdus: list, path, checksum: bool = True):
    """A writer ``tmp -> None`` of the FITS file ``path`` (gzip-compressed for ``.gz``),
    serialised once, now: errors come before any file is touched."""
    buf = fits_bytes(hdus, checksum)
    compress = str(path).endswith(".gz")

    def write(tmp) -> None:
        if compress:
            with gzip.open(tmp, "wb", compresslevel=9) as f:
                f.write(buf)
        else:
            with open(tmp, "wb") as f:
                f.write(buf)

    return write
