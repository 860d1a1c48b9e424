"""GADF dataset files (gammapy's MapDataset / MapDatasetOnOff / SpectrumDataset(OnOff) FITS).

Mapping (see ``docs/formats.md``): each map HDU + ``_BANDS`` (+ ``_REGION``) becomes one
variable; the BANDS axes become coordinates; WCS images keep their sky grid (``lat, lon``;
IRF maps on ``irf_lat, irf_lon``, a PSF on a third grid on ``psf_lat, psf_lon``); region maps
drop the 1x1 spatial dims and the region goes into the scalar ``region`` coordinate. What
xdl4 does not model (extra header cards, META, BANDS column types, squashed IRF-exposure
axes, region pixel tables) is kept in ``fits_*`` attrs so that writing reproduces the file.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from astropy import units as u
from astropy.io import fits

from xdl4.errors import DL4Warning, FormatError
from xdl4.files import atomic_write, check_overwrite
from xdl4.io import fitsutil as fu
from xdl4.io.fitsutil import Axis, fail
from xdl4.kinds import validate
from xdl4.schema import REGION
from xdl4.sky import WcsGrid, tag_grids
from xdl4.validation import dataset_name, kind_record, labelled

#: HDU name -> variable, in gammapy 2.1's writing order (on/off extras come after GTI)
HDU_VARS = {"COUNTS": "counts", "EXPOSURE": "exposure", "BACKGROUND": "background",
            "EDISP": "edisp", "EDISP_EXPOSURE": "edisp_exposure", "PSF": "psf",
            "PSF_EXPOSURE": "psf_exposure", "MASK_SAFE": "mask_safe", "MASK_FIT": "mask_fit"}
ONOFF_HDU_VARS = {"COUNTS_OFF": "counts_off", "ACCEPTANCE": "acceptance",
                  "ACCEPTANCE_OFF": "acceptance_off"}
IRF_VARS = ("edisp", "edisp_exposure", "psf", "psf_exposure")
SQUASHED = ("edisp_exposure", "psf_exposure")
SKY_PREFIXES = ("", "irf_", "psf_")
DIM_RANK = {"energy_true": 0, "irf_energy_true": 0, "energy": 1, "migra": 1, "rad": 2}


# --------------------------------------------------------------------------------------
# reading


class _Reader:
    """State of one file read: coordinates found so far, variables, the grids."""

    def __init__(self, path, hdul: fits.HDUList):
        self.path, self.hdul = path, hdul
        self.coords: dict = {}
        self.data: dict = {}
        self.grids: dict = {}
        self.region: dict | None = None
        self.is_region: bool | None = None

    def axis_dim(self, ax: Axis, var: str) -> str:
        """Dimension name of ``ax`` in ``var``, checked against the coordinates so far."""
        dim = ax.dim
        if var == "exposure" and dim == "energy":
            dim = "energy_true"  # old files
        candidates = [dim] + (["irf_energy_true"] if var in IRF_VARS and dim == "energy_true"
                              and var.startswith("psf") else [])
        for d in candidates:
            ax.dim = d
            new = ax.coords()
            if d not in self.coords:
                self.coords.update(new)
                return d
            if _same_axis(self.coords, new, d):
                return d
        raise fail(self.path, var.upper(), f"axis {dim!r} does not match the {dim} axis of "
                   "the other maps (inconsistent shapes or bins)")

    def sky(self, hdu, var: str) -> tuple[str, ...]:
        if isinstance(hdu, fits.BinTableHDU):
            return ()
        grid = fu.grid_from_header(self.path, hdu)
        prefixes = ["irf_", "psf_"] if var.startswith("psf") else ["irf_"] \
            if var in IRF_VARS else [""]
        for prefix in prefixes:
            if prefix not in self.grids:
                self.grids[prefix] = grid
                self.coords.update(grid.coords(prefix))
            known = self.grids[prefix]
            if grid.shape == known.shape and grid.pixel_offset_in(known) == (0, 0):
                return (f"{prefix}lat", f"{prefix}lon")
        raise fail(self.path, hdu.name, "sky grid differs from the grid of the other maps "
                   f"(shape {grid.shape} vs {self.grids[prefixes[-1]].shape})")

    def read_map(self, hdu, var: str) -> None:
        path, name = self.path, hdu.name
        fu.set_hdu(name)
        if hdu.header.get("PIXTYPE", "").upper() == "HEALPIX":
            fu.grid_from_header(path, hdu)  # raises the HEALPix error
        is_region = isinstance(hdu, fits.BinTableHDU)
        if self.is_region is None:
            self.is_region = is_region
        bname = f"{name}_BANDS" if is_region else hdu.header.get("BANDSHDU", f"{name}_BANDS")
        bands = fu.find_hdu(self.hdul, bname)
        if bands is None:
            if is_region or hdu.header.get("NAXIS", 0) > 2:
                raise fail(path, name, f"missing required HDU {bname!r} describing its axes")
            axes, channel, bands_extra = [], None, ""
        else:
            axes, channel = fu.parse_bands(path, bands)
            bands_extra = fu.extra_cards(bands.header)
        sky_dims = self.sky(hdu, var)
        arr = fu.native(self._array(hdu, axes, is_region))
        attrs: dict = {}
        if var in SQUASHED:
            if not axes or axes[0].size != 1:
                raise fail(path, name, "IRF exposure needs a first axis squashed to one bin")
            axes[0].dim = None
            arr = arr.reshape(arr.shape[: len(axes) - 1] + arr.shape[len(axes):])
        dims = tuple(self.axis_dim(ax, var) for ax in axes[::-1] if ax.dim is not None)
        attrs["fits_axes"] = fu.axes_to_json(axes, channel)
        if var.startswith("mask"):
            attrs["fits_dtype"] = arr.dtype.str[1:]
            arr = arr != 0
        else:
            unit = hdu.header.get("BUNIT") if not is_region else hdu.columns["DATA"].unit
            attrs = {"units": fu.check_unit(path, name, unit), **attrs}
        meta = hdu.header.get("META")
        if meta and meta != "{}":
            attrs["fits_meta"] = meta
            self._livetime(meta, name)
        extra = fu.extra_cards(hdu.header, keep=("TIMESYS", "MJDREFI", "MJDREFF")
                               if is_region else ())
        if extra:
            attrs["fits_header"] = extra
        if bands_extra:
            attrs["fits_bands_header"] = bands_extra
        if is_region:
            self._region(var, name, attrs)
        self.data[var] = xr.Variable(dims + sky_dims, arr, attrs)

    def _array(self, hdu, axes: list[Axis], is_region: bool) -> np.ndarray:
        shape = tuple(ax.size for ax in axes[::-1])
        if is_region:
            table = fu.get_data(self.path, hdu)
            if "DATA" not in table.names:
                raise fail(self.path, hdu.name, "region map table has no DATA column")
            arr = table["DATA"]
            if arr.size != int(np.prod(shape)):
                raise fail(self.path, hdu.name, f"DATA holds {arr.size} values; its BANDS "
                           f"axes need {int(np.prod(shape))} (shape {shape})")
            return np.asarray(arr).reshape(shape)
        arr = fu.get_data(self.path, hdu)
        grid = fu.grid_from_header(self.path, hdu)
        if arr.shape != shape + grid.shape:
            raise fail(self.path, hdu.name, f"data shape {arr.shape} does not match the "
                       f"BANDS axes and WCS shape {shape + grid.shape}")
        return arr

    def _livetime(self, meta: str, name: str) -> None:
        try:
            value = json.loads(meta).get("livetime")
        except json.JSONDecodeError as err:
            raise fail(self.path, name, f"META is not valid JSON: {err}") from err
        if value is not None and "livetime" not in self.data:
            q = u.Quantity(value)
            self.data["livetime"] = xr.Variable((), q.value, {"units": q.unit.to_string("fits")})

    def _region(self, var: str, name: str, attrs: dict) -> None:
        hdu = fu.find_hdu(self.hdul, f"{name}_REGION")
        if hdu is None:
            if self.region is not None:
                attrs["fits_region"] = ""
            return
        reg = fu.region_attrs(self.path, hdu)
        extra = fu.extra_cards(hdu.header, keep=())
        if extra:
            reg["fits_header"] = extra
        if self.region is None:
            self.region = reg
        elif reg != self.region:
            attrs["fits_region"] = json.dumps(reg)


def _same_axis(coords: dict, new: dict, dim: str) -> bool:
    a, b = coords[dim], new[dim]
    if a.attrs.get("units") != b.attrs.get("units") or a.shape != b.shape:
        return False
    bname = f"{dim}_bounds"
    if (bname in coords) != (bname in new):
        return False
    x, y = (coords[bname], new[bname]) if bname in new else (a, b)
    return bool(np.allclose(x.values, y.values, rtol=1e-6, atol=0))


def read_gadf(path: str | os.PathLike, verify: bool = True) -> xr.Dataset:
    """Read a gammapy GADF dataset file (map or region flavour, on/off too) into xdl4.

    Missing optional HDUs are simply absent; a file without ``COUNTS`` is an error; HDUs
    xdl4 does not read are named in a :class:`xdl4.DL4Warning` (and in the attr
    ``fits_unread_hdus``). ``verify=False`` skips the CHECKSUM / DATASUM checks.
    """
    with fu.open_fits(path, verify) as hdul:
        names = [h.name.upper() for h in hdul]
        if "COUNTS" not in names:
            raise fail(path, None, "missing required HDU 'COUNTS' (not a GADF dataset file; "
                       f"HDUs: {names})")
        r = _Reader(path, hdul)
        attrs = fu.primary_attrs(hdul[0].header, path)
        for hname, var in {**HDU_VARS, **ONOFF_HDU_VARS}.items():
            if hname in names:
                r.read_map(fu.find_hdu(hdul, hname), var)
        if "GTI" in names:
            fu.set_hdu("GTI")
            r.data.update(fu.read_gti(path, fu.find_hdu(hdul, "GTI")))
            r.coords["gti"] = xr.Variable("gti", np.arange(r.data["gti_start"].size))
        if "META_TABLE" in names:
            fu.set_hdu("META_TABLE")
            r.data.update(fu.read_meta_table(path, fu.find_hdu(hdul, "META_TABLE")))
        fu.set_hdu(None)
        known = set(HDU_VARS) | set(ONOFF_HDU_VARS) | {"PRIMARY", "GTI", "META_TABLE"}
        consumed = known | {f"{n}_{s}" for n in known for s in ("BANDS", "REGION")}
        unread = [n for n in names if n not in consumed]
        onoff = "counts_off" in r.data
        if r.is_region:
            kind = "spectrum_onoff" if onoff else "spectrum"
            if r.region is not None:
                r.coords[REGION] = xr.Variable((), np.int32(0), r.region)
        else:
            kind = "map_onoff" if onoff else "map"
        if onoff and "background" in r.data:
            attrs["fits_background"] = "kept as variable 'fits_background'"
            r.data["fits_background"] = r.data.pop("background")
        if unread:
            attrs["fits_unread_hdus"] = ",".join(unread)
            warnings.warn(f"{Path(path).name}: HDUs {unread} are not part of a GADF dataset "
                          "file; xdl4 does not read them (they are not written back)",
                          DL4Warning, stacklevel=3)
        return labelled(tag_grids(xr.Dataset(r.data, coords=r.coords,
                                             attrs={"dl4_kind": kind, **attrs})))


# --------------------------------------------------------------------------------------
# writing


def _prefix(dims: tuple[str, ...]) -> str | None:
    for p in SKY_PREFIXES:
        if f"{p}lat" in dims:
            return p
    return None


def _squashed_axis(ds: xr.Dataset, var: str, template: Axis | None) -> Axis:
    if template is not None:
        return template
    if var == "edisp_exposure":
        dim = "migra" if "edisp" in ds and "migra" in ds["edisp"].dims else "energy"
    else:
        dim = "rad"
    ax = fu.axis_from_coords(ds, dim, None)
    if ax.edges:
        ax.values = ax.values[[0, -1]]
    else:
        ax.values, ax.edges = ax.values[[0, -1]], True
    ax.dim = None
    return ax


def map_hdus(ds: xr.Dataset, var: str, hdu_name: str) -> list:
    """The HDUs (data, BANDS, REGION) of one map variable."""
    da = ds[var]
    if "obs" in da.dims:
        raise FormatError(f"{var}: cannot write a dataset with an 'obs' dim to GADF; write "
                         "one run at a time (ds.isel(obs=i))")
    prefix = _prefix(da.dims)
    sky = (f"{prefix}lat", f"{prefix}lon") if prefix is not None else ()
    nonsky = sorted((d for d in da.dims if d not in sky), key=lambda d: DIM_RANK.get(d, 9))
    da = da.transpose(*nonsky, *sky)
    templates, channel = fu.axes_from_json(da.attrs.get("fits_axes"))
    by_dim = {t.dim: t for t in templates or []}
    axes = [fu.axis_from_coords(ds, d, by_dim.get(d)) for d in nonsky[::-1]]
    arr = np.asarray(da.values)
    if var in SQUASHED:
        axes.insert(0, _squashed_axis(ds, var, by_dim.get(None)))
        arr = np.expand_dims(arr, len(nonsky))
    if var.startswith("mask"):
        arr = arr.astype(da.attrs.get("fits_dtype", "b1" if prefix is None else "i8"))
    attrs = dict(da.attrs)
    meta = json.loads(attrs.get("fits_meta", "{}"))
    if "livetime" in ds and ("livetime" in meta or (var == "exposure" and not meta)):
        meta["livetime"] = f"{float(ds['livetime'].values)!r} {ds['livetime'].attrs['units']}"
        attrs["fits_meta"] = json.dumps(meta)
    if prefix is None:
        hdu = _region_data_hdu(hdu_name, arr, attrs)
    else:
        hdu = _image_hdu(hdu_name, arr, attrs, WcsGrid.from_dataset(ds, prefix))
    fu.axes_header(hdu.header, axes)
    fu.add_cards(hdu.header, attrs.get("fits_header"))
    fu.stamp(hdu.header, ds.attrs)
    bands = fu.bands_hdu(hdu_name, axes, channel)
    fu.add_cards(bands.header, attrs.get("fits_bands_header"))
    fu.stamp(bands.header, ds.attrs)
    out = [hdu, bands]
    if prefix is None:
        reg = attrs.get("fits_region")
        if reg is None and REGION in ds.coords and "region" in ds[REGION].attrs:
            reg = ds[REGION].attrs
        elif reg:
            reg = json.loads(reg)
        if reg:
            rhdu = fu.region_hdu(f"{hdu_name}_REGION", reg)
            fu.add_cards(rhdu.header, reg.get("fits_header"))
            fu.stamp(rhdu.header, ds.attrs)
            out.append(rhdu)
    return out


def _image_hdu(name: str, arr: np.ndarray, attrs: dict, grid) -> fits.ImageHDU:
    header = fits.Header.fromstring(grid.header, sep="\n")
    hdu = fits.ImageHDU(data=arr, header=header, name=name)
    ny, nx = grid.shape
    hdu.header["WCSSHAPE"] = "(" + ",".join(str(n) for n in (nx, ny, *arr.shape[-3::-1])) + ")"
    hdu.header["BANDSHDU"] = f"{name}_BANDS"
    hdu.header["META"] = attrs.get("fits_meta", "{}")
    hdu.header["BUNIT"] = attrs.get("units", "")
    return hdu


def _region_data_hdu(name: str, arr: np.ndarray, attrs: dict) -> fits.BinTableHDU:
    arr = arr.reshape(arr.shape + (1, 1))
    cell = arr.shape[1:] if arr.ndim > 1 else ()
    n = int(np.prod(cell))
    kind = fu.fits_format(arr.dtype.str[1:])
    col = fits.Column("DATA", format=f"{n}{kind}" if n > 1 else kind,
                      unit=attrs.get("units") or None, dim="(" + ",".join(
                          str(s) for s in cell[::-1]) + ")", array=arr)
    channel = fits.Column("CHANNEL", format="I", array=np.arange(arr.shape[0], dtype="i2"))
    hdu = fits.BinTableHDU.from_columns([channel, col], name=name)
    if "fits_meta" in attrs:
        hdu.header["META"] = attrs["fits_meta"]
    return hdu


def gadf_writer(ds: xr.Dataset, path: str | os.PathLike, checksum: bool = True):
    """The checked writer ``tmp -> None`` of ``ds`` as a GADF file (flux points: their
    FITS table): validated and serialised now, before any file is touched."""
    ds = ds.assign_attrs(name=dataset_name(ds))  # a run keeps its name as its obs label
    if kind_record(validate(ds)).geometry == "points":
        from xdl4.io.flux_points import flux_points_writer

        return flux_points_writer(ds, path, checksum)
    hdus: list = [fu.primary_hdu(ds.attrs)]
    for hname, var in HDU_VARS.items():
        if var == "background" and "fits_background" in ds:
            hdus += map_hdus(ds, "fits_background", hname)
        elif var in ds:
            hdus += map_hdus(ds, var, hname)
    if "gti_start" in ds:
        hdus.append(fu.gti_hdu(ds))
    meta = fu.meta_table_hdu(ds)
    if meta is not None:
        hdus.append(meta)
    for hname, var in ONOFF_HDU_VARS.items():
        if var in ds:
            hdus += map_hdus(ds, var, hname)
    return fu.fits_writer(hdus, path, checksum)


def to_gadf(ds: xr.Dataset, path: str | os.PathLike, overwrite: bool = False,
            checksum: bool = True) -> Path:
    """Write ``ds`` as gammapy 2.1 writes it (GADF map/region dataset file; flux points go
    to :func:`xdl4.io.flux_points.to_flux_points_fits`). Atomic; never overwrites unless
    ``overwrite``; ``checksum`` writes CHECKSUM / DATASUM cards in every HDU."""
    check_overwrite(path, overwrite)
    return atomic_write(path, gadf_writer(ds, path, checksum), overwrite)
