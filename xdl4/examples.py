"""Built-in example datasets of every kind, made deterministically from a seed.

Analytic IRFs of a CTA-like instrument: an effective area rising steeply above a threshold,
a radial acceptance, an energy-dependent Gaussian PSF, a Gaussian energy dispersion in
ln E and a smooth power-law background. The sky holds a Crab-like point source
(power law, index 2.5) at the centre. No downloads.

>>> import xdl4
>>> ds = xdl4.examples.map_dataset(seed=1)
>>> ds.dl4.validate() is ds
True
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.special import ndtr

from xdl4.constructors import create
from xdl4.kinds.flux_points import create_flux_points
from xdl4.sky import Region, WcsGrid
from xdl4.skymath import pixel_solid_angle_exact, separation

CENTER = (83.63, 22.01)
POINTING = (83.63, 21.51)
LIVETIME = 3600.0  # s
SOURCE = {"index": 2.5, "amplitude": 3.8e-11, "reference": 1.0}  # cm-2 s-1 TeV-1 at 1 TeV
ENERGY_EDGES = np.geomspace(0.1, 100, 13)
ENERGY_TRUE_EDGES = np.geomspace(0.05, 200, 25)


def aeff_cm2(energy_tev) -> np.ndarray:
    """Effective area (cm2): 3e9 cm2 x threshold turn-on x slow rise."""
    e = np.asarray(energy_tev, float)
    return 3e9 * np.exp(-((0.08 / e) ** 1.5)) * (e / 1.0) ** 0.1


def acceptance(offset_deg) -> np.ndarray:
    """Radial acceptance (1 at the pointing)."""
    return np.exp(-0.5 * (np.asarray(offset_deg) / 2.5) ** 2)


def psf_sigma_deg(energy_tev) -> np.ndarray:
    return np.clip(0.1 * np.asarray(energy_tev, float) ** -0.3, 0.03, 0.2)


def psf_density(rad_deg, energy_tev) -> np.ndarray:
    """Gaussian PSF per steradian, normalised on the tangent plane."""
    s = np.radians(psf_sigma_deg(energy_tev))
    r = np.radians(np.asarray(rad_deg, float))
    return np.exp(-0.5 * (r / s) ** 2) / (2 * np.pi * s**2)


def edisp_kernel(energy_true_edges, energy_edges, resolution: float = 0.1) -> np.ndarray:
    """P(reco bin r | true bin t) for a Gaussian in ln(E_reco / E_true) at bin centres."""
    et = np.sqrt(energy_true_edges[:-1] * energy_true_edges[1:])
    z = (np.log(energy_edges)[None, :] - np.log(et)[:, None]) / resolution
    return np.diff(ndtr(z), axis=1)


def pl_integral(e_lo, e_hi, index=SOURCE["index"], amplitude=SOURCE["amplitude"],
                reference=SOURCE["reference"]) -> np.ndarray:
    g = 1.0 - index
    return amplitude * reference / g * ((e_hi / reference) ** g - (e_lo / reference) ** g)


def background_rate(energy_edges) -> np.ndarray:
    """Background counts per second per sr per reco bin."""
    lo, hi = energy_edges[:-1], energy_edges[1:]
    return 40.0 * (lo ** -1.7 - hi ** -1.7)


def map_dataset(seed: int = 0, onoff: bool = False, width: float = 3.0,
                binsz: float = 0.05, name: str | None = None) -> xr.Dataset:
    """A 1 h map dataset (cash) of a point source, or its on/off version (alpha 0.2)."""
    rng = np.random.default_rng(seed)
    grid = WcsGrid.create(CENTER, width=width, binsz=binsz)
    lon, lat = grid.sky_coords()
    offset = separation(lon, lat, *POINTING)
    et_edges, e_edges = ENERGY_TRUE_EDGES, ENERGY_EDGES
    et = np.sqrt(et_edges[:-1] * et_edges[1:])
    exposure = aeff_cm2(et)[:, None, None] * acceptance(offset)[None] * LIVETIME
    omega = pixel_solid_angle_exact(grid.wcs, grid.shape)
    sep = separation(lon, lat, *CENTER)
    psf_img = psf_density(sep[None], et[:, None, None]) * omega[None]
    psf_img /= psf_img.sum(axis=(1, 2), keepdims=True)
    npred_true = pl_integral(et_edges[:-1], et_edges[1:])[:, None, None] * exposure * psf_img
    kernel = edisp_kernel(et_edges, e_edges)
    signal = np.einsum("tyx,tr->ryx", npred_true, kernel)
    bkg = background_rate(e_edges)[:, None, None] * omega[None] * LIVETIME * acceptance(
        offset)[None]
    mask_safe = np.broadcast_to((e_edges[:-1] >= 0.3)[:, None, None], signal.shape)

    ds = create("map_onoff" if onoff else "map", e_edges, et_edges, grid=grid,
                name=name or ("example-onoff" if onoff else "example"),
                exposure=exposure * 1e-4, mask_safe=mask_safe, livetime=LIVETIME,
                gti=[(0.0, LIVETIME)], counts=rng.poisson(signal + bkg).astype(float))
    _fill_irfs(ds, grid)
    return _fill_background(ds, bkg, rng, alpha=0.2 if onoff else None)


def _fill_background(ds: xr.Dataset, bkg: np.ndarray, rng, alpha: float | None
                     ) -> xr.Dataset:
    """The background as a variable, or (``alpha``) as Poisson OFF counts."""
    if alpha is None:
        ds["background"][:] = bkg
        return ds
    ds["counts_off"][:] = rng.poisson(bkg / alpha).astype(float)
    ds["acceptance"][:] = 1.0
    ds["acceptance_off"][:] = 1.0 / alpha
    return ds


def _fill_irfs(ds: xr.Dataset, grid: WcsGrid) -> None:
    """PSF, EDISP and their exposure weights on the IRF grid (or the region centre)."""
    et_edges = ds.dl4.energy_true_edges.to_value("TeV")
    et = np.sqrt(et_edges[:-1] * et_edges[1:])
    kernel = edisp_kernel(et_edges, ds.dl4.energy_edges.to_value("TeV"))
    sky_dims = [d for d in ds["edisp"].dims if d not in ("energy_true", "energy")]
    if sky_dims:
        irf = ds.dl4.irf_grid
        ilon, ilat = irf.sky_coords()
        irf_expo = aeff_cm2(et)[:, None, None] * acceptance(
            separation(ilon, ilat, *POINTING))[None] * LIVETIME * 1e-4
    else:
        irf_expo = aeff_cm2(et) * acceptance(separation(*CENTER, *POINTING)) * LIVETIME * 1e-4
    extra = (None,) * len(sky_dims)
    ds["edisp"][:] = np.broadcast_to(kernel[(...,) + extra], ds["edisp"].shape)
    ds["edisp_exposure"][:] = irf_expo
    if "psf" in ds:
        rad = ds["rad"].values
        ds["psf"][:] = np.broadcast_to(psf_density(rad[None, :], et[:, None])[(...,) + extra],
                                       ds["psf"].shape)
        ds["psf_exposure"][:] = irf_expo


def spectrum_dataset(seed: int = 0, onoff: bool = False, radius: float = 0.2,
                     name: str | None = None) -> xr.Dataset:
    """A 1 h spectrum (region circle of ``radius`` deg, containment-corrected exposure),
    or its on/off version with alpha 0.25."""
    rng = np.random.default_rng(seed)
    region = Region.parse(f"icrs;circle({CENTER[0]},{CENTER[1]},{radius})")
    et_edges, e_edges = ENERGY_TRUE_EDGES, ENERGY_EDGES
    et = np.sqrt(et_edges[:-1] * et_edges[1:])
    containment = 1 - np.exp(-0.5 * (radius / psf_sigma_deg(et)) ** 2)
    exposure = aeff_cm2(et) * acceptance(separation(*CENTER, *POINTING)) * LIVETIME
    signal = (pl_integral(et_edges[:-1], et_edges[1:]) * exposure * containment) @ \
        edisp_kernel(et_edges, e_edges)
    omega = 2 * np.pi * (1 - np.cos(np.radians(radius)))
    bkg = background_rate(e_edges) * omega * LIVETIME
    ds = create("spectrum_onoff" if onoff else "spectrum", e_edges, et_edges, region=region,
                name=name or ("example-spectrum-onoff" if onoff else "example-spectrum"),
                exposure=exposure * containment * 1e-4, livetime=LIVETIME,
                gti=[(0.0, LIVETIME)], mask_safe=e_edges[:-1] >= 0.3,
                counts=rng.poisson(signal + bkg).astype(float))
    _fill_irfs(ds, None)
    return _fill_background(ds, bkg, rng, alpha=0.25 if onoff else None)


def flux_points(seed: int = 0) -> xr.Dataset:
    """Eight dnde flux points of the example source with 8 % errors, the last an UL."""
    rng = np.random.default_rng(seed)
    e_edges = np.geomspace(0.3, 30, 9)
    e_ref = np.sqrt(e_edges[:-1] * e_edges[1:])
    dnde = SOURCE["amplitude"] * (e_ref / SOURCE["reference"]) ** -SOURCE["index"]
    err = 0.08 * dnde
    obs = dnde + rng.normal(0, 1, dnde.size) * err
    is_ul = np.zeros(dnde.size, bool)
    is_ul[-1] = True
    return create_flux_points(e_edges, sed_type="dnde", name="example-flux-points",
                              dnde=obs, dnde_err=err, dnde_ul=np.where(is_ul, 2 * dnde, np.nan),
                              is_ul=is_ul)


def all_kinds(seed: int = 0) -> dict[str, xr.Dataset]:
    """One example dataset of every kind, keyed by kind."""
    return {
        "map": map_dataset(seed),
        "map_onoff": map_dataset(seed, onoff=True),
        "spectrum": spectrum_dataset(seed),
        "spectrum_onoff": spectrum_dataset(seed, onoff=True),
        "flux_points": flux_points(seed),
    }
