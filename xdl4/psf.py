"""PSF kernels on the data grid, built from a PSF map at any sky position.

gammapy's recipe (semantics 1.4), with its truncation radius taken at the right energy:

* the PSF profile at a position: bilinear in the IRF-grid pixel coordinates (linear
  extrapolation beyond the outer pixel centres), linear in ln E between energy nodes;
* R_j = 0.999-containment radius of profile j (rectangle sums at rad edges, linear
  interpolation, the nearest of gammapy's candidates: its rad axis upsampled 20x, bin
  centres for an axis with edges); r68_j likewise;
* kernel image j: an n_j x n_j pixel square (n_j = odd(2 R_j / pix)) at the centre of an
  N x N image (N from max R_j), each pixel the sum of f_j x f_j sub-pixel samples
  (f_j = min(ceil(12 / (2 r68_j / pix)), 4)) of the profile at their separation from the
  kernel centre, normalised to sum 1.

The kernel is linear in the profile, so the sub-pixel sampling is precomputed once as a
sparse matrix B (kernel pixels x rad nodes, a few nodes per pixel) per (n_j, f_j): a
kernel at a new position costs one sparse product per energy. That is what makes moving
a source cheap; the matrices are kept in a cache bounded in bytes.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Any

import numpy as np

from xdl4.cache import BoundedCache
from xdl4.skymath import separation

CONTAINMENT_MAX = 0.999
#: bound of the KernelBuilders' shared cache of sparse sampling matrices (bytes)
SAMPLING_CACHE_BYTES = 64 * 2**20


def round_up_to_odd(x: float) -> int:
    return int(2 * math.floor(math.ceil(x) / 2) + 1)


def rad_edges(nodes: np.ndarray) -> np.ndarray:
    """Edges between rad nodes: midpoints, the outer two extrapolated by half a step."""
    mid = 0.5 * (nodes[1:] + nodes[:-1])
    return np.concatenate([[nodes[0] - (mid[0] - nodes[0])], mid,
                           [nodes[-1] + (nodes[-1] - mid[-1])]])


def containment(profiles: np.ndarray, nodes_deg: np.ndarray, radius_deg) -> np.ndarray:
    """Containment fraction of PSF profiles (..., n_rad) [sr-1] within radii (k,) or a
    scalar, shared by all profiles: shape (..., k) or (...)."""
    e = np.radians(rad_edges(nodes_deg))
    r = np.radians(nodes_deg)
    cum = np.concatenate([np.zeros(profiles.shape[:-1] + (1,)),
                          np.cumsum(profiles * np.diff(e) * 2 * np.pi * r, axis=-1)], axis=-1)
    radius = np.radians(np.asarray(radius_deg, float))
    i, t = segments(e, np.clip(radius, e[0], e[-1]))  # constant beyond the outer edges
    return cum[..., i] * (1 - t) + cum[..., i + 1] * t


def radius_candidates(nodes_deg: np.ndarray, edges_deg: np.ndarray | None = None,
                      factor: int = 20) -> np.ndarray:
    """The radii gammapy searches for a containment radius: its rad axis upsampled
    ``factor`` times, then the axis centres. A rad axis with bin edges (GADF PSF maps:
    ``rad_bounds``) gives the centres of the finer bins (half a fine step off the nodes);
    one of nodes only (Fermi) the finer nodes, from the first to the last node."""
    if edges_deg is None:
        n = nodes_deg.size
        return np.interp(np.linspace(0, n - 1, (n - 1) * factor + 1), np.arange(n), nodes_deg)
    nbin = edges_deg.size - 1
    fine = np.interp(np.linspace(0, nbin, nbin * factor + 1), np.arange(nbin + 1), edges_deg)
    return 0.5 * (fine[1:] + fine[:-1])


def containment_radius(profiles: np.ndarray, nodes_deg: np.ndarray, fraction: float,
                       edges_deg: np.ndarray | None = None) -> np.ndarray:
    """Radius (deg) enclosing ``fraction`` for each profile (..., n_rad): the nearest of
    gammapy's candidates (:func:`radius_candidates`; ``edges_deg``: the rad bin edges, when
    the axis has them). The candidates matter: a kernel's size jumps where the radius
    crosses a pixel boundary, and gammapy's grid decides on which side it lands."""
    cand = radius_candidates(nodes_deg, edges_deg)
    c = containment(profiles, nodes_deg, cand)
    return cand[np.argmin(np.abs(c - fraction), axis=-1)]


class KernelBuilder:
    """Builds normalised PSF kernels (n_energy, N, N) on a pixel grid of size ``pix`` deg.

    ``center`` (lon, lat) is where gammapy centres the kernel geometry (the map centre;
    a CAR grid of the data frame).
    """

    def __init__(self, nodes_deg: np.ndarray, pix: float, center: tuple[float, float],
                 edges_deg: np.ndarray | None = None):
        self.nodes = np.asarray(nodes_deg, float)
        self.edges = None if edges_deg is None else np.asarray(edges_deg, float)
        self.pix = float(pix)
        self.center = (float(center[0]), float(center[1]))
        self._key = (self.nodes.tobytes(), None if self.edges is None else
                     self.edges.tobytes(), self.pix, self.center)

    @property
    def cache(self):
        """Sparse sampling matrices per (rad nodes, pixel size, centre, n_j, f_j), shared
        by the builders of datasets on the same grid, bounded in bytes."""
        return SAMPLING_CACHE

    def _sampling(self, small: int, factor: int):
        """Sparse matrix (small*small, n_rad): the pixels of an n_j = ``small`` kernel image
        from a profile, each the sum of its ``factor`` x ``factor`` sub-pixel samples
        (linear interpolation in rad between the two nodes around each sample, linear
        extrapolation, as gammapy's interpolator). A pixel depends on a few nodes only:
        a few entries per row instead of n_rad (the dense matrix of the wide-PSF case was
        23 MB per energy)."""
        return self.cache.get_or_build(self._key + (small, factor),
                                       lambda: self._build_sampling(small, factor))

    def _build_sampling(self, small: int, factor: int):
        from astropy.wcs import WCS
        from scipy.sparse import csr_matrix

        n_sub = small * factor
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---CAR", "DEC--CAR"]
        w.wcs.crval = self.center
        w.wcs.cdelt = [-self.pix / factor, self.pix / factor]
        w.wcs.crpix = [(n_sub + 1) / 2, (n_sub + 1) / 2]
        y, x = np.mgrid[:n_sub, :n_sub]
        lon, lat = w.wcs_pix2world(x.ravel(), y.ravel(), 0)
        rad = separation(lon, lat, *self.center)
        # linear interpolation weights on the nodes (extrapolating at both ends)
        idx, t = rad_weights(rad, self.nodes, self.edges)
        row = ((y // factor) * small + x // factor).ravel()
        matrix = csr_matrix((np.concatenate([1 - t, t]),
                             (np.concatenate([row, row]), np.concatenate([idx, idx + 1]))),
                            shape=(small * small, self.nodes.size))
        matrix.sum_duplicates()
        return matrix

    def kernels(self, profiles: np.ndarray, node_profiles: np.ndarray | None = None,
                dtype: Any = np.float64, unit_scale: float = 1.0) -> np.ndarray:
        """Normalised kernels (n_energy, N, N) from profiles (n_energy, n_rad) [sr-1].

        The truncation radius of image j is the 0.999-containment radius of PSF-map node j
        (``node_profiles``, default ``profiles``), as gammapy does: when the PSF map has
        more energy nodes than the data has bins, that radius is larger than the one of
        bin j and keeps more of the PSF tail.

        ``dtype=np.float32``: gammapy's kernels to the bit: the pixel values in the PSF
        map's own unit (the profiles' sr-1 times ``unit_scale``) rounded into a float32
        map, then normalised in float32.
        """
        if np.dtype(dtype) == np.float32:
            raw = self._raw_kernels(profiles, node_profiles) * unit_scale
            kern = raw.astype(np.float32)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.nan_to_num(kern / kern.sum(axis=(1, 2), keepdims=True))
        raw = self._raw_kernels(profiles, node_profiles)
        total = raw.sum(axis=(1, 2), keepdims=True)
        return np.divide(raw, total, out=raw, where=total > 0)

    def _raw_kernels(self, profiles: np.ndarray, node_profiles: np.ndarray | None
                     ) -> np.ndarray:
        """The kernels before normalisation (n_energy, N, N) [sr-1]: each pixel the sum of
        its sub-pixel samples."""
        profiles = np.clip(profiles, 0, None)
        nodes = profiles if node_profiles is None else np.clip(node_profiles, 0, None)
        r_nodes = containment_radius(nodes, self.nodes, CONTAINMENT_MAX, self.edges)
        r_max = r_nodes[np.minimum(np.arange(len(profiles)), len(r_nodes) - 1)]
        r68 = containment_radius(profiles, self.nodes, 0.68, self.edges)
        big = round_up_to_odd(2 * r_max.max() / self.pix)
        out = np.empty((len(profiles), big, big))
        for j, prof in enumerate(profiles):
            small = min(round_up_to_odd(2 * r_max[j] / self.pix), big)
            factor = int(min(math.ceil(12 / max(2 * r68[j] / self.pix, 1e-12)), 4))
            k = np.clip(self._sampling(small, factor) @ prof, 0, None)
            o = (big - small) // 2
            out[j] = 0.0
            out[j, o:o + small, o:o + small] = k.reshape(small, small)
        return out


def rad_weights(rad: np.ndarray, nodes: np.ndarray, edges: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation on the rad nodes at ``rad`` (deg), extrapolated at both ends:
    (index of the lower node, weight of the upper one). With bin ``edges``, as gammapy
    interpolates an axis with edges: linear in the pixel coordinate, which the edges
    map piecewise linearly (the same as linear between the centres on a uniform axis;
    edges stored in float32 are not quite uniform, which moves the weights by ~1e-7).

    >>> idx, t = rad_weights(np.array([0.02]), np.array([0.005, 0.015, 0.025]))
    >>> int(idx[0]), round(float(t[0]), 12)
    (1, 0.5)
    """
    if edges is None:
        return segments(nodes, rad)
    seg, t = segments(edges, rad)
    pix = seg + t - 0.5
    idx = np.clip(np.floor(pix).astype(int), 0, nodes.size - 2)
    return idx, pix - idx


def segments(xp: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation on increasing nodes ``xp`` at ``x``: (index of the lower node
    of each segment, fraction of the way to the upper one); the end segments extend
    beyond the nodes (linear extrapolation)."""
    i = np.clip(np.searchsorted(xp, x) - 1, 0, xp.size - 2)
    return i, (x - xp[i]) / (xp[i + 1] - xp[i])


SAMPLING_CACHE = BoundedCache(SAMPLING_CACHE_BYTES)
#: footprints of recent kernel arrays (a few ints each; weak references to the arrays)
_FOOTPRINTS = BoundedCache(2**20, max_items=256)


def bilinear_weights(x: float, y: float, nx: int, ny: int) -> list[tuple[int, int, float]]:
    """(iy, ix, weight) of the bilinear interpolation (linear extrapolation) at pixel
    coordinates (x, y) on an (ny, nx) grid of nodes."""
    def axis(v: float, n: int) -> list[tuple[int, float]]:
        if n == 1:
            return [(0, 1.0)]
        i = int(np.clip(math.floor(v), 0, n - 2))
        t = v - i
        return [(i, 1 - t), (i + 1, t)]

    return [(iy, ix, wy * wx) for iy, wy in axis(y, ny) for ix, wx in axis(x, nx)]


def interp_log_energy(values: np.ndarray, nodes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Linear interpolation (with extrapolation) in ln E along axis 0."""
    if nodes.size == targets.size and np.allclose(nodes, targets, rtol=1e-9):
        return values
    if nodes.size == 1:
        return np.repeat(values, targets.size, axis=0)
    i, t = segments(np.log(nodes), np.log(targets))
    t = t[(slice(None),) + (None,) * (values.ndim - 1)]
    return values[i] * (1 - t) + values[i + 1] * t


def region_fraction(profiles: np.ndarray, nodes_deg: np.ndarray, radius: float,
                    offset: float) -> np.ndarray:
    """Fraction of each PSF profile (n_energy, n_rad) falling in a circle of ``radius`` deg
    when the source is ``offset`` deg from its centre. At offset 0 it is gammapy's
    containment(radius); beyond, that value times the ratio of fine-grid integrals of the
    PSF over the overlap arcs (continuous in the offset, 0 once the PSF is outside)."""
    base = containment(profiles, nodes_deg, radius)
    if offset <= 0:
        return base
    r = np.linspace(0, nodes_deg[-1], 4001)[1:]
    dens = np.stack([np.interp(r, nodes_deg, p) for p in profiles]) * r
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = (r**2 + offset**2 - radius**2) / (2 * r * offset)
    arc = np.where(r <= radius - offset, 1.0, np.arccos(np.clip(cos, -1, 1)) / np.pi)
    arc = np.where(r >= radius + offset, 0.0, arc)
    inside = (r <= radius).astype(float)
    num, den = (dens * arc).sum(axis=1), (dens * inside).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, base * num / den, 0.0)


# -- applying kernels ----------------------------------------------------------------------

def convolve(images: np.ndarray, kernels: np.ndarray, fft_cache=None) -> np.ndarray:
    """Per-energy 'same' convolution of images ((h, w) or (n, h, w)) with odd kernels
    (n, N, N); stamps the kernel directly for a few non-zero pixels, else float64 FFT
    clipped at 0. ``fft_cache`` (an :class:`xdl4.cache.BoundedCache`, or a dict) keeps
    the kernels' transforms between calls."""
    n = kernels.shape[0]
    ny, nx = images.shape[-2:]
    nz = np.argwhere(images != 0 if images.ndim == 2 else np.any(images != 0, axis=0))
    if len(nz) <= 16:
        values = np.broadcast_to(images, (n, ny, nx))[:, nz[:, 0], nz[:, 1]]
        return stamp(values, nz, kernels, (ny, nx))
    key = (id(kernels), images.shape[-2:])
    entry = None if fft_cache is None else fft_cache.get(key)
    if entry is None or entry[0]() is not kernels:
        # a weak reference: the id is only trusted while those kernels live
        entry = (weakref.ref(kernels), _kernel_groups(kernels, ny, nx))
        if fft_cache is not None:
            _put(fft_cache, key, entry, sum(g[3].nbytes for g in entry[1]))
    out = np.empty((n, ny, nx))
    for planes, small, shape, kfft in entry[1]:
        # planes whose kernel is small get a smaller (cheaper) transform; same result
        from scipy.fft import irfft2, rfft2

        img = images if images.ndim == 2 else images[planes]
        full = irfft2(rfft2(img, shape) * kfft, shape)
        hs = small // 2
        out[planes] = full[..., hs:hs + ny, hs:hs + nx]
    return np.clip(out, 0, None)


def stamp(values: np.ndarray, coords: np.ndarray, kernels: np.ndarray,
          shape: tuple[int, int]) -> np.ndarray:
    """Kernels (n, N, N) centred on a few pixels ``coords`` (k, 2: row, column) with
    amplitudes ``values`` (n, k), summed on an (n, *shape) image (kernel parts beyond it
    are dropped): a 'same' convolution of an image that is zero elsewhere. Runs of energy
    planes with much smaller kernel footprints (high energies) are stamped over their own
    footprint only (remembered per kernel array)."""
    n = kernels.shape[0]
    ny, nx = shape
    h = kernels.shape[-1] // 2
    out = np.zeros((n, ny, nx))
    for lo, hi, e in footprint_runs(kernels):
        k = kernels[lo:hi]
        tmp = None
        for i, (y, x) in enumerate(coords):
            y0, y1 = max(y - e, 0), min(y + e + 1, ny)
            x0, x1 = max(x - e, 0), min(x + e + 1, nx)
            if y0 < y1 and x0 < x1:
                src = k[:, y0 - y + h:y1 - y + h, x0 - x + h:x1 - x + h]
                if tmp is None:  # the first stamp lands on zeros: written in place
                    np.multiply(values[lo:hi, i, None, None], src,
                                out=out[lo:hi, y0:y1, x0:x1])
                    tmp = scratch((hi - lo, 2 * e + 1, 2 * e + 1))
                    continue
                t = np.multiply(values[lo:hi, i, None, None], src,
                                out=tmp[:, :y1 - y0, :x1 - x0])
                out[lo:hi, y0:y1, x0:x1] += t
    return out


_SCRATCH = threading.local()


def scratch(shape: tuple[int, ...]) -> np.ndarray:
    """A reusable float64 work array of ``shape`` (contents undefined): one buffer per
    thread, grown to the largest size asked for (one kernel set: 1.2 MB in the wide-PSF
    case). Temporaries of that size allocated and freed at every evaluation make the C
    allocator return memory to the system and fault it back in (~30% of an evaluation
    on the test machine)."""
    size = math.prod(shape)
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < size:
        buf = _SCRATCH.buf = np.empty(size)
    return buf[:size].reshape(shape)


def _put(cache, key, value, size: int) -> None:
    """Store in a BoundedCache (or a plain dict)."""
    if isinstance(cache, BoundedCache):
        cache.put(key, value, size=size)
    else:
        cache[key] = value


def footprint_runs(kernels: np.ndarray, runs: list | None = None) -> list:
    """Runs of energy planes of a kernel array stamped together (:func:`plane_runs`),
    remembered per array (weakly: a small cache keyed by id); ``runs`` registers known
    ones."""
    key = id(kernels)
    entry = _FOOTPRINTS.get(key)
    if entry is None or entry[0]() is not kernels:
        runs = plane_runs(extents(kernels)) if runs is None else runs
        entry = (weakref.ref(kernels), runs)
        _FOOTPRINTS.put(key, entry, size=0)
    return entry[1]


def extents(kernels: np.ndarray) -> np.ndarray:
    """Half-width of the non-zero footprint of each kernel plane (n, N, N)."""
    big = kernels.shape[-1]
    h = big // 2
    out = np.zeros(len(kernels), int)
    for mask in (kernels.any(axis=2), kernels.any(axis=1)):  # (n, N) rows, columns
        first = mask.argmax(axis=1)
        last = big - 1 - mask[:, ::-1].argmax(axis=1)
        e = np.maximum(h - first, last - h)
        out = np.maximum(out, np.where(mask.any(axis=1), e, 0))
    return out


def plane_runs(extents: np.ndarray) -> list[tuple[int, int, int]]:
    """(first, stop, half-width) of runs of consecutive planes stamped together: a new
    run starts where the footprint shrinks below 70% of the run's (fewer, larger copies
    for small kernels; little wasted work on zeros for wide ones)."""
    runs: list[list[int]] = []
    for j, e in enumerate(int(v) for v in extents):
        if runs and (e <= runs[-1][2] and (e + 1) ** 2 >= 0.5 * (runs[-1][2] + 1) ** 2
                     or max(e, runs[-1][2]) < 8):
            runs[-1][1], runs[-1][2] = j + 1, max(runs[-1][2], e)
        else:
            runs.append([j, j + 1, e])
    return [tuple(r) for r in runs]


def _kernel_groups(kernels: np.ndarray, ny: int, nx: int) -> list:
    """Energy planes grouped by the odd size of their non-zero kernel footprint, each with
    the FFT of its trimmed kernels on the smallest fast transform shape."""
    from scipy.fft import next_fast_len, rfft2

    big = kernels.shape[-1]
    h = big // 2
    extent = extents(kernels)
    groups = []
    for e in np.unique(extent):
        planes = np.flatnonzero(extent == e)
        small = 2 * int(e) + 1
        trimmed = kernels[planes][:, h - e:h + e + 1, h - e:h + e + 1]
        # circular convolution of length >= n + e is exact on the 'same' output window
        # (what wraps around lands before it): smaller than the linear n + 2e
        shape = (next_fast_len(ny + int(e), real=True), next_fast_len(nx + int(e), real=True))
        groups.append((planes, small, shape, rfft2(trimmed, shape)))
    return groups
