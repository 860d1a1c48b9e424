"""Spatial models: surface brightness (sr-1) on the sphere and gammapy-style pixel integrals.

Internal units: angles in degrees. ``integrate_pixels(wcs, shape)`` returns the fraction of
the source flux per pixel exactly as gammapy 2.1's ``integrate_geom`` (pixel-centre value x
planar-triangle solid angle, oversampling f = min(ceil(pix / bin_size_min), 200) inside a
cutout of width 2 max(r_eval, pix); points: bilinear 4-pixel weights).
"""

from __future__ import annotations

import copy
import math
import os
from functools import lru_cache
from typing import Any, ClassVar

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.nddata.utils import NoOverlapError, overlap_slices
from astropy.wcs import WCS
from scipy.integrate import quad
from scipy.special import erf, gamma

from xdl4.errors import DL4FileNotFoundError, ModelError
from xdl4.files import check_readable
from xdl4.skymath import (
    _normalise_frame,
    convert_lonlat,
    frame_rotation,
    lonlat_to_xyz,
    pixel_grid,
    pixel_solid_angle,
    wcs_frame,
    xyz_to_lonlat,
)

from .core import Model, apply_numeric, get_model_class, par

__all__ = [
    "SpatialModel", "PointSpatialModel", "GaussianSpatialModel",
    "GeneralizedGaussianSpatialModel", "DiskSpatialModel", "ShellSpatialModel",
    "Shell2SpatialModel", "ConstantSpatialModel", "TemplateSpatialModel", "spatial_from_dict",
]

MAX_OVERSAMPLING = 200
_DEG2_PER_SR = (180.0 / math.pi) ** 2
_TINY = np.finfo(float).tiny


def _lon() -> Any:
    return par("lon_0", 0.0, "deg")


def _lat() -> Any:
    return par("lat_0", 0.0, "deg", min=-90.0, max=90.0)


def _e_phi() -> tuple:
    return (par("e", 0.0, min=0.0, max=1.0, frozen=True),
            par("phi", 0.0, "deg", min=-180.0, max=180.0, frozen=True))


def _sep_pa(v: np.ndarray, lon0: float, lat0: float, need_pa: bool):
    """(1 - cos sep, sep [rad], position angle [rad] or None) of unit vectors v (3, ...)."""
    l0, b0 = math.radians(lon0), math.radians(lat0)
    c0 = np.array([math.cos(b0) * math.cos(l0), math.cos(b0) * math.sin(l0), math.sin(b0)])
    d = v - c0.reshape((3,) + (1,) * (v.ndim - 1))
    chord2 = (d * d).sum(axis=0)
    one_minus_cos = 0.5 * chord2
    sep = 2.0 * np.arcsin(np.minimum(1.0, 0.5 * np.sqrt(chord2)))
    pa = None
    if need_pa:
        east = np.array([-math.sin(l0), math.cos(l0), 0.0])
        north = np.array([-math.sin(b0) * math.cos(l0), -math.sin(b0) * math.sin(l0),
                          math.cos(b0)])
        pa = np.arctan2(np.tensordot(east, v, axes=1), np.tensordot(north, v, axes=1))
    return one_minus_cos, sep, pa


def _sigma_eff(major: float, e: float, phi_rad: float, pa: np.ndarray):
    """gammapy's effective radius of an ellipse along position angle `pa` (same unit as major)."""
    minor = major * math.sqrt(1.0 - e**2)
    d_phi = phi_rad - pa
    den = np.sqrt((major * np.sin(d_phi)) ** 2 + (minor * np.cos(d_phi)) ** 2)
    return minor, major * minor / den


class SpatialModel(Model):
    """Base spatial model; subclasses implement ``_eval_xyz(v)`` on unit vectors (model frame)."""

    kind: ClassVar[str] = "spatial"
    is_point: ClassVar[bool] = False
    is_energy_dependent: ClassVar[bool] = False

    def __init__(self, frame: str = "icrs", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        object.__setattr__(self, "frame", _normalise_frame(frame))

    @property
    def position(self) -> tuple[float, float] | None:
        """(lon, lat) of the centre in degrees, in the model frame."""
        return (self.lon_0.canonical_value, self.lat_0.canonical_value)

    @property
    def evaluation_radius(self) -> float | None:
        """Radius (deg) outside which the model is negligible (gammapy's rule)."""
        return None

    @property
    def evaluation_bin_size_min(self) -> float | None:
        """Minimal pixel size (deg) needed for the pixel-centre rule (gammapy's rule)."""
        return None

    def _eval_xyz(self, v: np.ndarray, energy_tev: Any = None) -> np.ndarray:
        raise NotImplementedError

    def evaluate_lonlat(self, lon_deg: Any, lat_deg: Any, frame: str | None = None,
                        energy_tev: Any = None) -> np.ndarray:
        """Surface brightness (sr-1) at lon/lat (deg, in `frame`, default model frame)."""
        v = lonlat_to_xyz(lon_deg, lat_deg)
        if frame is not None and _normalise_frame(frame) != self.frame:
            v = np.tensordot(frame_rotation(frame, self.frame), v, axes=1)
        return self._eval_xyz(v, energy_tev)

    def __call__(self, lon: Any, lat: Any, energy: Any = None) -> Any:
        """Surface brightness (sr-1) at sky positions in the model frame."""
        if energy is None:
            return apply_numeric(self.evaluate_lonlat, (lon, lat), ("deg", "deg"), self.unit)
        return apply_numeric(lambda lo, la, e: self.evaluate_lonlat(lo, la, None, e),
                             (lon, lat, energy), ("deg", "deg", "TeV"), self.unit)

    unit: ClassVar[str] = "sr-1"

    def oversampling_factor(self, pixel_scale_deg: float) -> int:
        """gammapy's f_os = min(ceil(pix / bin_size_min), 200) (1 without bin_size_min)."""
        bmin = self.evaluation_bin_size_min
        if bmin is None:
            return 1
        if bmin <= 0:
            return MAX_OVERSAMPLING
        return int(min(math.ceil(pixel_scale_deg / bmin), MAX_OVERSAMPLING))

    def _position_pixel(self, wcs: WCS, frame: str) -> tuple[float, float]:
        lon, lat = convert_lonlat(*self.position, self.frame, frame)
        x, y = wcs.wcs_world2pix(np.atleast_1d(lon), np.atleast_1d(lat), 0)
        return float(x[0]), float(y[0])

    def integrate_pixels(self, wcs: WCS, shape: tuple[int, int], energy_tev: Any = None,
                         oversampling_factor: int | None = None,
                         dtype: Any = None) -> np.ndarray:
        """Fraction of the flux in each pixel of a (ny, nx) WCS image (gammapy's rule).

        Energy-dependent templates need `energy_tev` and return (n_energy, ny, nx).
        ``dtype``: the type oversampled pixel sums are held in before the solid angle
        multiplies them (float64 by default; gammapy stacks them in a float32 map).
        """
        grid = pixel_grid(wcs, shape)
        pix = float(np.max(grid.pixel_scales))
        sl = None
        radius = self.evaluation_radius
        if radius is not None:
            width = 2.0 * max(radius, pix)
            npix = np.clip(width / grid.pixel_scales, 1, None)  # (x, y)
            try:
                x0, y0 = self._position_pixel(wcs, grid.frame)
                small = (int(np.round(npix[1])), int(np.round(npix[0])))
                sl = overlap_slices(grid.shape, small, (y0, x0), mode="trim")[0]
            except (NoOverlapError, ValueError):
                oversampling_factor = 1
        f = self.oversampling_factor(pix) if oversampling_factor is None else oversampling_factor
        if f > 1 and sl is not None:
            v = grid.sub_xyz(sl, f, self.frame)
            vals = self._eval_xyz(v, energy_tev) / f**2
            ny, nx = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            vals = vals.reshape(vals.shape[:-2] + (ny, f, nx, f)).sum(axis=(-3, -1))
            if dtype is not None:
                vals = vals.astype(dtype)
            out = np.zeros(vals.shape[:-2] + grid.shape)
            out[..., sl[0], sl[1]] = vals
        else:
            out = self._eval_xyz(grid.xyz(self.frame), energy_tev)
        return out * grid.solid_angle

    def to_dict(self, full_output: bool = False) -> dict:
        d = {"type": self.tag[0], "frame": self.frame}
        d["parameters"] = self._params_to_list(full_output)
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> SpatialModel:
        where = where or cls.tag[0]
        frame = data.get("frame", "icrs")
        try:
            return cls(frame=frame, **cls._params_from_list(data.get("parameters"), where))
        except ValueError as exc:
            if str(exc).startswith(where):
                raise
            raise ModelError(f"{where}: {exc}") from None


class PointSpatialModel(SpatialModel):
    """Point source: bilinear, centroid-preserving weights on at most 4 pixels."""

    tag = ("PointSpatialModel", "point")
    is_point = True
    _defaults = (_lon(), _lat())

    @property
    def evaluation_radius(self) -> float:
        return 0.0

    @property
    def evaluation_bin_size_min(self) -> float:
        return 0.0

    def _eval_xyz(self, v, energy_tev=None):
        return np.zeros(v.shape[1:])  # a delta function has no finite surface brightness

    def integrate_pixels(self, wcs: WCS, shape: tuple[int, int], energy_tev: Any = None,
                         oversampling_factor: int | None = None,
                         dtype: Any = None) -> np.ndarray:
        """w[y, x] = max(0, 1-|x-x0|) max(0, 1-|y-y0|) (no solid angle; sums to 1 inside;
        always float64, as gammapy's)."""
        ny, nx = int(shape[0]), int(shape[1])
        out = np.zeros((ny, nx))
        x0, y0 = self._position_pixel(wcs, wcs_frame(wcs))
        if not (np.isfinite(x0) and np.isfinite(y0)):
            return out
        ix, iy = math.floor(x0), math.floor(y0)
        for x in (ix, ix + 1):
            for y in (iy, iy + 1):
                if 0 <= x < nx and 0 <= y < ny:
                    wx, wy = 1.0 - abs(x - x0), 1.0 - abs(y - y0)
                    if wx > 0 and wy > 0:
                        out[y, x] = wx * wy
        return out


class GaussianSpatialModel(SpatialModel):
    """Gaussian on the sphere: N exp(-0.5 (1 - cos sep) / (1 - cos sigma_eff))."""

    tag = ("GaussianSpatialModel", "gauss")
    _defaults = (_lon(), _lat(), par("sigma", 1.0, "deg", min=0.0), *_e_phi())

    @property
    def evaluation_radius(self) -> float:
        return 5.0 * self.sigma.canonical_value

    @property
    def evaluation_bin_size_min(self) -> float:
        return self.sigma.canonical_value / 3.0

    def _eval_xyz(self, v, energy_tev=None):
        lon0, lat0, sigma, e, phi = self._vals()
        s = math.radians(sigma)
        omc, _, pa = _sep_pa(v, lon0, lat0, need_pa=e != 0)
        if e == 0:
            a = 2.0 * math.sin(0.5 * s) ** 2
            norm = 1.0 / (4 * math.pi * a * (1.0 - math.exp(-1.0 / a)))
        else:
            minor, s_eff = _sigma_eff(s, e, math.radians(phi), pa)
            a = 2.0 * np.sin(0.5 * s_eff) ** 2
            norm = 1.0 / (2 * math.pi * s * minor)
        return norm * np.exp(-0.5 * omc / a)


class GeneralizedGaussianSpatialModel(SpatialModel):
    """norm exp(-(sep/r_eff)^(1/eta)), flat-sky normalisation as gammapy."""

    tag = ("GeneralizedGaussianSpatialModel", "gauss-general")
    _defaults = (_lon(), _lat(), par("r_0", 1.0, "deg"), par("eta", 0.5, min=0.01, max=1.0),
                 *_e_phi())

    @property
    def evaluation_radius(self) -> float:
        return self.r_0.canonical_value * (1 + 8 * self.eta.canonical_value)

    @property
    def evaluation_bin_size_min(self) -> float:
        return (self.r_0.canonical_value / (3 + 8 * self.eta.canonical_value)
                / (self.e.canonical_value + 1))

    def _eval_xyz(self, v, energy_tev=None):
        lon0, lat0, r0, eta, e, phi = self._vals()
        _, sep, pa = _sep_pa(v, lon0, lat0, need_pa=True)
        minor, r_eff = _sigma_eff(r0, e, math.radians(phi), pa)
        norm = _DEG2_PER_SR / (2 * math.pi * minor * r0 * eta * gamma(2 * eta))
        return norm * np.exp(-((np.degrees(sep) / r_eff) ** (1.0 / eta)))


@lru_cache(maxsize=256)
def _disk_norm(r0_rad: float, e: float) -> float:
    """1 / solid angle of the (elliptical) disk, gammapy's formula."""
    if e == 0:
        return 1.0 / (4 * math.pi * math.sin(0.5 * r0_rad) ** 2)
    minor = r0_rad * math.sqrt(1 - e**2)
    a, b = 1 / math.sin(r0_rad) ** 2, 1 / math.sin(minor) ** 2
    val = quad(lambda x: 1 - math.sqrt(1 - 1 / (b + (a - b) * math.cos(x) ** 2)), 0, math.pi)[0]
    return 1.0 / (2 * val)


class DiskSpatialModel(SpatialModel):
    """Uniform (elliptical) disk with gammapy's erf edge (95% -> 5% over edge_width r_0)."""

    tag = ("DiskSpatialModel", "disk")
    _defaults = (_lon(), _lat(), par("r_0", 1.0, "deg", min=0.0), *_e_phi(),
                 par("edge_width", 0.01, min=0.0, max=1.0, frozen=True))

    @property
    def evaluation_radius(self) -> float:
        return 1.1 * self.r_0.canonical_value * (1 + self.edge_width.canonical_value)

    @property
    def evaluation_bin_size_min(self) -> float:
        return self.r_0.canonical_value * (1 - self.edge_width.canonical_value) / 10.0

    def _eval_xyz(self, v, energy_tev=None):
        lon0, lat0, r0, e, phi, edge = self._vals()
        r = math.radians(r0)
        _, sep, pa = _sep_pa(v, lon0, lat0, need_pa=e != 0)
        r_eff = r if e == 0 else _sigma_eff(r, e, math.radians(phi), pa)[1]
        if edge > 0:
            inside = 0.5 * (1 - erf((sep - r_eff) / (r_eff * edge) * 2.326174307353347))
        else:
            inside = np.where(sep < r_eff, 1.0, np.where(sep == r_eff, 0.5, 0.0))
        return _disk_norm(r, e) * inside


def _shell_profile(sep_deg, r_in, r_out):
    """Projected uniform-shell profile, normalised in the flat-sky approximation (sr-1)."""
    norm = 3 / (2 * math.pi * (r_out**3 - r_in**3)) * _DEG2_PER_SR
    s2 = sep_deg**2
    with np.errstate(invalid="ignore"):
        val = np.sqrt(np.maximum(r_out**2 - s2, 0.0))
        val = val - np.where(sep_deg < r_in, np.sqrt(np.maximum(r_in**2 - s2, 0.0)), 0.0)
    return norm * np.where(sep_deg > r_out, 0.0, val)


class ShellSpatialModel(SpatialModel):
    """Shell with inner radius `radius` and thickness `width`."""

    tag = ("ShellSpatialModel", "shell")
    _defaults = (_lon(), _lat(), par("radius", 1.0, "deg"), par("width", 0.2, "deg"))

    @property
    def evaluation_radius(self) -> float:
        return self.radius.canonical_value + self.width.canonical_value

    @property
    def evaluation_bin_size_min(self) -> float:
        return self.width.canonical_value

    def _eval_xyz(self, v, energy_tev=None):
        lon0, lat0, radius, width = self._vals()
        sep = np.degrees(_sep_pa(v, lon0, lat0, False)[1])
        return _shell_profile(sep, radius, radius + width)


class Shell2SpatialModel(SpatialModel):
    """Shell with outer radius r_0 and relative width eta."""

    tag = ("Shell2SpatialModel", "shell2")
    _defaults = (_lon(), _lat(), par("r_0", 1.0, "deg"), par("eta", 0.2, min=0.02, max=1.0))

    @property
    def evaluation_radius(self) -> float:
        return self.r_0.canonical_value

    @property
    def evaluation_bin_size_min(self) -> float:
        return self.eta.canonical_value * self.r_0.canonical_value

    def _eval_xyz(self, v, energy_tev=None):
        lon0, lat0, r0, eta = self._vals()
        sep = np.degrees(_sep_pa(v, lon0, lat0, False)[1])
        return _shell_profile(sep, (1 - eta) * r0, r0)


class ConstantSpatialModel(SpatialModel):
    """Isotropic `value` (sr-1); written without frame and with ``parameters: []``."""

    tag = ("ConstantSpatialModel", "const")
    _defaults = (par("value", 1.0, "sr-1", frozen=True),)

    @property
    def position(self) -> None:
        return None

    def _eval_xyz(self, v, energy_tev=None):
        return np.full(v.shape[1:], self._vals()[0])

    def to_dict(self, full_output: bool = False) -> dict:
        return {"type": self.tag[0], "parameters": []}


# ---- template -----------------------------------------------------------------------------
def resolve_path(filename: str, base: str | os.PathLike | None = None) -> str:
    """Expand $ENV variables; relative names are taken relative to `base` if that file exists."""
    name = os.path.expandvars(str(filename))
    if base is not None and not os.path.isabs(name):
        cand = os.path.join(str(base), name)
        if os.path.exists(cand):
            return cand
    return name


def _read_energy_axis(hdul: fits.HDUList, header: fits.Header) -> tuple[np.ndarray, str, str]:
    """(coords TeV, 'nodes'|'edges', interp) of the first non-spatial axis of a GADF map; a
    Fermi-style map without BANDSHDU uses its ENERGIES (nodes) or EBOUNDS (edges) table,
    log-interpolated as gammapy does."""
    bands = header.get("BANDSHDU")
    if bands is not None and bands in hdul:
        hdu = hdul[bands]
        cols = [c.strip() for c in str(hdu.header.get("AXCOLS1", header.get("AXCOLS1")))
                .split(",")]
        fermi = hdu.name.upper() in ("ENERGIES", "EBOUNDS")  # Fermi-tools maps: log axes
        interp = str(hdu.header.get("INTERP1", "log" if fermi else "lin")).strip()
    elif "ENERGIES" in hdul:
        hdu, cols, interp = hdul["ENERGIES"], ["ENERGY"], "log"
    elif "EBOUNDS" in hdul:
        hdu, cols, interp = hdul["EBOUNDS"], ["E_MIN", "E_MAX"], "log"
    else:
        raise ModelError("3-D template map without a BANDS, ENERGIES or EBOUNDS HDU")

    def col(name):
        factor = u.Unit(hdu.columns[name].unit or "TeV").to("TeV")
        return np.unique(np.asarray(hdu.data[name], dtype=float)) * factor

    if len(cols) == 2:
        edges = np.append(col(cols[0]), col(cols[1])[-1])
        return edges, "edges", interp
    return col(cols[0]), "nodes", interp


class TemplateSpatialModel(SpatialModel):
    """Sky-map template (GADF/gammapy FITS map, optionally with an energy axis).

    Values are interpolated linearly in pixel coordinates on log values (as gammapy), zero
    outside the map. lon_0/lat_0 shift the map (planar offsets, as gammapy).
    """

    tag = ("TemplateSpatialModel", "template")
    _defaults = (par("lon_0", np.nan, "deg", frozen=True),
                 par("lat_0", np.nan, "deg", min=-90.0, max=90.0, frozen=True))

    def __init__(self, data: np.ndarray, wcs: WCS, unit: str = "sr-1", normalize: bool = True,
                 energy_axis: tuple[np.ndarray, str, str] | None = None,
                 filename: str | None = None, **kwargs: Any) -> None:
        frame = wcs_frame(wcs)
        ny, nx = data.shape[-2:]
        clon, clat = wcs.wcs_pix2world([(nx - 1) / 2.0], [(ny - 1) / 2.0], 0)
        center = (float(clon[0]), float(clat[0]))
        for name, c in zip(("lon_0", "lat_0"), center, strict=True):
            v = kwargs.get(name)
            if v is None or (hasattr(v, "value") and np.isnan(v.value)):
                kwargs[name] = c
        super().__init__(frame=frame, **kwargs)
        raw = np.asarray(data)
        # gammapy computes in the map's own dtype what the float32 replay redoes
        native = raw.dtype if raw.dtype.kind == "f" else np.dtype(float)
        data = np.where(np.isfinite(raw), raw, 0).astype(float)
        sum_ratio = None
        if normalize:
            omega = pixel_solid_angle(wcs, (ny, nx))
            s = data.sum(axis=(-2, -1), keepdims=True)
            if native != np.float64:  # float64's sum over gammapy's, in the map's dtype
                with np.errstate(divide="ignore", invalid="ignore"):
                    sum_ratio = np.nan_to_num(s / data.astype(native).sum(
                        axis=(-2, -1), keepdims=True).astype(float))
            data = np.divide(data, s, out=np.zeros_like(data), where=s != 0) / omega
            unit = "sr-1"
        if u.Unit(unit).is_equivalent(u.dimensionless_unscaled):
            unit = "sr-1"
        for k, v in dict(data=data, wcs=wcs, unit=unit, normalize=normalize,
                         energy_axis=energy_axis, filename=filename, map_center=center,
                         _logdata=np.log(np.clip(data, _TINY, None)), yaml_unit=None,
                         _native=native, _sum_ratio=sum_ratio,
                         _logdata_gammapy=None).items():
            object.__setattr__(self, k, v)
        if data.ndim == 3 and energy_axis is None:
            raise ModelError("3-D template needs an energy axis")

    @property
    def is_energy_dependent(self) -> bool:  # type: ignore[override]
        return self.data.ndim == 3

    @property
    def evaluation_radius(self) -> float:
        ny, nx = self.data.shape[-2:]
        scales = np.sqrt((np.asarray(self.wcs.pixel_scale_matrix) ** 2).sum(axis=0))
        return float(max(nx * scales[0], ny * scales[1]) / 2.0)

    @classmethod
    def read(cls, filename: str, normalize: bool = True, hdu: str | int | None = None,
             **kwargs: Any) -> TemplateSpatialModel:
        """Read a gammapy/GADF FITS map (image in PRIMARY or `hdu`, energy axis from BANDS).
        A missing file is a DL4FileNotFoundError, an unreadable one a ModelError naming it."""
        path = check_readable(os.path.expandvars(str(filename)))
        try:
            with fits.open(path) as hdul:
                h = hdul[hdu] if hdu is not None else next(x for x in hdul
                                                           if x.data is not None)
                data = np.asarray(h.data)  # its own dtype: gammapy computes in it
                wcs = WCS(h.header, naxis=2)
                axis = _read_energy_axis(hdul, h.header) if data.ndim == 3 else None
                unit = h.header.get("BUNIT", "") or ""
        except ModelError:
            raise
        except Exception as err:  # noqa: BLE001 - astropy, OS and format errors: typed
            raise ModelError(f"template {path.name}: cannot read it as a FITS map: "
                             f"{type(err).__name__}: {err}") from err
        return cls(data, wcs, unit=unit, normalize=normalize, energy_axis=axis,
                   filename=str(filename), **kwargs)

    def integrate_pixels(self, wcs: WCS, shape: tuple[int, int], energy_tev: Any = None,
                         oversampling_factor: int | None = None,
                         dtype: Any = None) -> np.ndarray:
        """As :meth:`SpatialModel.integrate_pixels`; with ``dtype`` (gammapy's working
        precision) the template's log values are gammapy's too: the log of the map in its
        own dtype (float32 files), or of the map over its sum in that dtype
        (``normalize``), instead of float64."""
        model = self
        if dtype is not None and self._native != np.float64:
            model = copy.copy(self)
            object.__setattr__(model, "_logdata", self._gammapy_logs())
        return SpatialModel.integrate_pixels(model, wcs, shape, energy_tev,
                                             oversampling_factor, dtype)

    def _gammapy_logs(self) -> np.ndarray:
        """gammapy's log values of a float32 map, made on first use: the log taken in
        float32, or (``normalize``) the map over its sum taken in float32."""
        if self._logdata_gammapy is None:
            if self._sum_ratio is not None:
                logs = np.log(np.clip(self.data * self._sum_ratio, _TINY, None))
            else:
                native = self._native
                logs = np.log(np.clip(self.data.astype(native), np.finfo(native).tiny,
                                      None)).astype(float)
            object.__setattr__(self, "_logdata_gammapy", logs)
        return self._logdata_gammapy

    def _energy_pix(self, energy_tev: Any) -> np.ndarray:
        coords, node_type, interp = self.energy_axis
        e = np.asarray(energy_tev, dtype=float)
        scale = np.log if interp == "log" else (np.sqrt if interp == "sqrt" else (lambda x: x))
        ref = np.arange(coords.size) - (0.5 if node_type == "edges" else 0.0)
        x, xp = scale(e), scale(coords)
        i = np.clip(np.searchsorted(xp, x) - 1, 0, xp.size - 2)
        return ref[i] + (x - xp[i]) / (xp[i + 1] - xp[i]) * (ref[i + 1] - ref[i])

    def _eval_xyz(self, v, energy_tev=None):
        lon0, lat0 = self._vals()
        lon, lat = xyz_to_lonlat(v)
        lon = lon - (lon0 - self.map_center[0])
        lat = lat - (lat0 - self.map_center[1])
        x, y = self.wcs.wcs_world2pix(lon, lat, 0)
        ny, nx = self.data.shape[-2:]
        if self.data.ndim == 3:
            if energy_tev is None:
                raise ModelError("energy-dependent template: energy_tev is required")
            ep = self._energy_pix(energy_tev).reshape((-1,) + (1,) * x.ndim)
            ne = self.data.shape[0]
            ie = np.clip(np.floor(ep), 0, ne - 2).astype(int)
            te = ep - ie
            lo = self._bilinear(self._logdata, x, y, ie)
            logval = lo * (1 - te) + self._bilinear(self._logdata, x, y, ie + 1) * te
            valid_e = (ep >= -0.5) & (ep < ne - 0.5)
        else:
            logval = self._bilinear(self._logdata, x, y, None)
            valid_e = True
        valid = (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5) & valid_e
        val = np.exp(logval)
        val = np.where(val - _TINY <= _TINY, 0.0, val)
        factor = u.Unit(self.unit).to("sr-1") if self.unit != "sr-1" and u.Unit(
            self.unit).is_equivalent("sr-1") else 1.0
        return np.where(valid & np.isfinite(val), val, 0.0) * factor

    @staticmethod
    def _bilinear(logdata, x, y, ie):
        """Bilinear interpolation (linear extrapolation at the border) of log values."""
        ny, nx = logdata.shape[-2:]
        ix = np.clip(np.floor(x), 0, max(nx - 2, 0)).astype(int)
        iy = np.clip(np.floor(y), 0, max(ny - 2, 0)).astype(int)
        tx, ty = x - ix, y - iy
        ix1, iy1 = np.minimum(ix + 1, nx - 1), np.minimum(iy + 1, ny - 1)

        def at(yy, xx):
            return logdata[yy, xx] if ie is None else logdata[ie, yy, xx]

        return (at(iy, ix) * (1 - tx) * (1 - ty) + at(iy, ix1) * tx * (1 - ty)
                + at(iy1, ix) * (1 - tx) * ty + at(iy1, ix1) * tx * ty)

    def to_dict(self, full_output: bool = False) -> dict:
        d = super().to_dict(full_output)
        d["filename"] = self.filename
        d["normalize"] = self.normalize
        d["unit"] = self.yaml_unit if self.yaml_unit is not None else self.unit
        return d

    @classmethod
    def from_dict(cls, data: dict, where: str = "", base_path: Any = None) -> SpatialModel:
        where = where or cls.tag[0]
        if "filename" not in data:
            raise ModelError(f"{where}: TemplateSpatialModel needs a 'filename'")
        path = resolve_path(data["filename"], base_path)
        if not os.path.exists(path):
            raise DL4FileNotFoundError(f"{where}: template file not found: "
                                       f"{data['filename']!r} -> {path}")
        pars = cls._params_from_list(data.get("parameters"), where)
        model = cls.read(path, normalize=bool(data.get("normalize", True)), **pars)
        object.__setattr__(model, "filename", str(data["filename"]))
        object.__setattr__(model, "yaml_unit", data.get("unit"))
        if data.get("unit") and not model.normalize:  # the YAML unit overrides the map's
            object.__setattr__(model, "unit", str(data["unit"]))
        return model


def spatial_from_dict(data: dict, where: str = "spatial", base_path: Any = None) -> SpatialModel:
    """Spatial model from its YAML dict (tag or alias in ``type``)."""
    if not isinstance(data, dict) or "type" not in data:
        raise ModelError(f"{where}: spatial model needs a 'type'")
    cls = get_model_class("spatial", data["type"], f"{where}: ")
    w = f"{where}[{data['type']}]"
    if cls is TemplateSpatialModel:
        return cls.from_dict(data, where=w, base_path=base_path)
    return cls.from_dict(data, where=w)
