"""Helpers shared by the map estimators: energy groups of a map, disk correlation, reco
exposure, the output map dataset."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from xdl4.errors import ArgumentError

from ._core import Evaluator
from .flux_points import energy_groups


def groups_of(ds: xr.Dataset, energy_edges) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group of each reco bin, e_min, e_max): one group over all bins by default (gammapy
    squashes the energy axis), else ``energy_edges`` snapped to the dataset edges."""
    e = ds.dl4.energy_edges.to_value("TeV")
    if energy_edges is None:
        return np.zeros(e.size - 1, int), e[:1], e[-1:]
    group, e_min, e_max, empty = energy_groups(e, energy_edges)
    if np.any(empty):
        raise ArgumentError(f"energy_edges {energy_edges} leave an energy bin without data bins")
    return group, e_min, e_max


def group_sum(values: np.ndarray, group: np.ndarray, n_groups: int,
              weights: np.ndarray | None = None) -> np.ndarray:
    """Sum over the reco bins (first axis) of each group, optionally weighted."""
    v = values if weights is None else values * weights
    out = np.zeros((n_groups,) + v.shape[1:])
    for g in range(n_groups):
        out[g] = v[group == g].sum(axis=0)
    return out


def group_any(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.zeros((n_groups,) + values.shape[1:], bool)
    for g in range(n_groups):
        out[g] = values[group == g].any(axis=0)
    return out


def tophat(radius_deg: float, binsz: float) -> np.ndarray:
    """gammapy's correlation kernel: astropy's ``Tophat2DKernel`` of radius
    ``radius_deg / binsz`` pixels, scaled to 1 inside (pixel centres within the radius)."""
    from astropy.convolution import Tophat2DKernel

    k = Tophat2DKernel(radius_deg / binsz).array
    return (k / k.max()) > 0.5


def correlate(images: np.ndarray, kernel: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Sum of ``images`` (..., ny, nx) over the footprint ``kernel`` (odd, symmetric) around
    each pixel, zero outside the map ('same' convolution), exactly: one cumulative sum per
    kernel row, so integer counts stay integers and empty regions exact zeros. Summed in
    float64, returned in ``dtype``."""
    images = np.asarray(images, float)
    ny, nx = images.shape[-2:]
    h = kernel.shape[0] // 2
    pad = [(0, 0)] * (images.ndim - 2) + [(h, h), (h + 1, h)]
    padded = np.pad(images, pad)
    csum = np.cumsum(padded, axis=-1)  # csum[..., j] = sum of padded[..., :j + 1]
    out = np.zeros(images.shape)
    for dy in range(-h, h + 1):
        cols = np.flatnonzero(kernel[dy + h])
        if cols.size == 0:
            continue
        lo, hi = cols[0] - h, cols[-1] - h  # contiguous run of columns (a disk row)
        rows = csum[..., h + dy:h + dy + ny, :]
        # padded column index of image column x is x + h + 1
        out += rows[..., hi + h + 1:hi + h + 1 + nx] - rows[..., lo + h:lo + h + nx]
    return out.astype(dtype, copy=False)


def convolve_same(images: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Per-plane 'same' convolution of images (n, h, w) with odd kernels (n, k, k) by FFT
    in float64 (no clipping: the images may be negative)."""
    from scipy.fft import irfft2, next_fast_len, rfft2

    n, h, w = images.shape
    k = kernels.shape[-1]
    shape = (next_fast_len(h + k - 1, real=True), next_fast_len(w + k - 1, real=True))
    full = irfft2(rfft2(images, shape) * rfft2(kernels, shape), shape)
    c = k // 2
    return full[:, c:c + h, c:c + w]


def reco_exposure(ev: Evaluator, spectral) -> np.ndarray:
    """Predicted counts per reco bin and pixel of a source with ``spectral`` and a flux of
    one spectrum per pixel (gammapy's ``estimate_exposure_reco_energy(normalize=False)``):
    exposure x spectral integral over true bins, folded with the EDISP kernel at the
    centre of the IRF map."""
    grid = getattr(ev, "edisp_grid", None)
    if ev.edisp_values is not None and grid is not None:
        edisp = ev.edisp_matrix(*grid.center)
    else:
        edisp = ev.edisp_matrix(None, None)
    flux = spectral.integral_bins(ev.e_true)
    exp = ev.exposure.reshape(ev.exposure.shape[0], -1)
    out = np.einsum("tr,tp->rp", edisp * flux[:, None], exp)
    return out.reshape((edisp.shape[1],) + ev.exposure.shape[1:])


def map_output(ds: xr.Dataset, variables: dict, e_min, e_max, attrs: dict) -> xr.Dataset:
    """A map of estimator quantities on the data grid with an ``energy`` axis of groups."""
    from xdl4.axes import axis_coords

    coords = axis_coords(np.append(e_min, e_max[-1]), "energy", "TeV")
    for name, c in ds.coords.items():
        if set(c.dims) <= {"lat", "lon"}:
            coords[name] = c.variable
    dims = ("energy", "lat", "lon")
    data = {}
    for name, (values, unit) in variables.items():
        data[name] = xr.Variable(dims, np.asarray(values),
                                 {} if unit is None else {"units": unit})
    return xr.Dataset(data, coords=coords, attrs=attrs)


def model_json(model) -> str:
    return json.dumps(model.to_dict(full_output=True), default=float)
