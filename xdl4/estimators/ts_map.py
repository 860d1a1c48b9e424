"""TS maps (gammapy's ``TSMapEstimator``): a test source fitted at every pixel at once.

The test source's counts template (the kernel: ``kernel_model`` at the map centre, with
the exposure of the valid pixel nearest the centre, the PSF and the EDISP there,
normalised to 1 in each reco-energy bin) is scaled at each pixel by the reco exposure
of the pixels it covers; summed over the energy group (the kernel averaged over the
masked energies, as gammapy does), the Cash statistic of a pixel's norm is

    stat_p(x) = sum over the kernel footprint q of cash(C_q, B_q + x K_p(q) E_q)

with C the counts, B the predicted counts of ``models`` (the background) and E the reco
exposure. All pixels are solved together: the footprints of a block of pixels are
strided views of the padded images, and the norms come from safeguarded Newton steps on
the derivative of all pixels' statistics at once (gammapy runs a brentq per pixel, to
1% in the norm); errors and upper limits are vectorised root searches. Large maps are
cut into blocks of pixels (``block_size``), optionally computed as dask tasks
(``chunks``).

>>> import xdl4
>>> ds = xdl4.examples.map_dataset()
>>> ts = ds.dl4.ts_map()
>>> sorted(k for k in ("ts", "sqrt_ts", "norm", "norm_err", "niter") if k in ts)
['niter', 'norm', 'norm_err', 'sqrt_ts', 'ts']
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdl4.errors import KindError
from xdl4.skymath import degrees

from ._core import Evaluator, cash, convolve_kernels, evaluator, is_onoff
from ._maps import groups_of, map_output, model_json, reco_exposure
from .flux_points import parse_selection, reference_fluxes, sqrt_ts
from .profile import TRUNCATION, _group_sum, best_fit, crossing

OPTIONAL = ("errn-errp", "ul")


class PatchProfile:
    """Cash statistic of each pixel's norm over its kernel footprint: dense (pixels,
    entries) arrays of counts ``n``, background ``b`` and template ``s`` (the interface of
    :class:`xdl4.estimators.profile.NormProfile`, so the same solvers run on it).

    The derivative is gammapy's root function (Stewart 2009): entries without counts add
    their template whatever the predicted counts; the statistic floors them at 1e-25.
    Evaluations of many pixels only visit the entries with counts (kept flat, row by
    row): the others enter through the sums of ``b`` and ``s``.
    """

    #: the solvers may evaluate a subset of rows (the pixels still iterating)
    takes_rows = True

    def __init__(self, n: np.ndarray, b: np.ndarray, s: np.ndarray):
        on = s > 0
        # entries outside the template (off the map, masked) are neutral constants: b = 1
        b = np.where(on, b, 1.0)
        self.n, self.b, self.s = n, b, s
        npix, width = n.shape
        self.n_groups = npix
        self.s_sum = s.sum(axis=1)
        self.b_sum = b.sum(axis=1)
        self.active = self.s_sum > 0
        flat = np.flatnonzero(n > 0)  # row-major: the entries with counts, row by row
        self._row = ri = flat // width
        count = np.bincount(ri, minlength=npix)
        self._starts = np.concatenate([[0], np.cumsum(count)[:-1]])
        self._nonempty = count > 0
        self._n, self._b, self._s = (a.ravel().take(flat) for a in (n, b, s))
        self._ns = self._n * self._s
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.divide(b, s, out=np.full(s.shape, np.inf), where=on)
            #: largest norm at which the template predicts zero counts everywhere
            self._plateau = -ratio.min(axis=1, initial=np.inf)
            # the entry with counts predicting zero first (lowest b/s): edge of the domain
            rf = ratio.ravel().take(flat)
            r_min = np.full(npix, np.inf)
            if rf.size:
                r_min[self._nonempty] = np.minimum.reduceat(rf, self._starts[self._nonempty])
            first = np.flatnonzero(rf == r_min[ri])
            _, at = np.unique(ri[first], return_index=True)
            c_min = np.ones(npix)
            c_min[ri[first[at]]] = self._n[first[at]]
            self.x_dom = -r_min
            # Stewart's bracket of the root of the derivative (gammapy's norm_bounds): at
            # c_min / S - r_min the derivative is <= 0, at C / S - r_min >= 0
            r0 = np.where(np.isfinite(r_min), r_min, 1e14)
            total = np.sum(n, axis=1, where=on)
            self._bracket = (c_min / self.s_sum - r0, total / self.s_sum - r0)

    def bracket(self) -> tuple[np.ndarray, np.ndarray]:
        return self._bracket

    def plateau_edge(self) -> np.ndarray:
        return self._plateau

    def _rsum(self, v: np.ndarray) -> np.ndarray:
        """Per-row sums of values on the flat entries with counts."""
        return _group_sum(v, self._starts, self._nonempty, self.n_groups)

    def _dense(self, rows):
        return self.n[rows], self.b[rows], self.s[rows]

    def _all(self, x, rows) -> np.ndarray | None:
        """Norms of all rows when most rows are asked for (flat path), else None."""
        if rows is None:
            return x
        if len(rows) > self.n_groups // 4:
            full = np.zeros(self.n_groups)
            full[rows] = x
            return full
        return None

    def stat(self, x, rows=None) -> np.ndarray:
        x = np.asarray(x, float)
        if x.ndim == 2:
            return np.stack([self.stat(x[:, j], rows) for j in range(x.shape[1])], axis=1)
        xa = self._all(x, rows)
        if xa is None:
            n, b, s = self._dense(rows)
            mu = np.maximum(b + x[:, None] * s, TRUNCATION)
            return 2 * (mu.sum(axis=1) - (n * np.log(mu)).sum(axis=1))
        mu = np.maximum(self._b + xa[self._row] * self._s, TRUNCATION)
        logs = self._rsum(self._n * np.log(mu))
        linear = self.b_sum + xa * self.s_sum
        low = np.flatnonzero(~(xa > self._plateau))  # some predictions floored at 1e-25
        if low.size:
            n, b, s = self._dense(low)
            linear[low] = np.maximum(b + xa[low, None] * s, TRUNCATION).sum(axis=1)
        out = 2 * (linear - logs)
        return out if rows is None else out[rows]

    def derivatives(self, x, rows=None) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, float)
        xa = self._all(x, rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            if xa is None:
                n, b, s = self._dense(rows)
                inv = 1.0 / (b + x[:, None] * s)
                t = n * s * inv
                d1 = 2 * (self.s_sum[rows] - t.sum(axis=1))
                t *= inv
                t *= s
                return d1, 2 * t.sum(axis=1)
            inv = 1.0 / (self._b + xa[self._row] * self._s)
            t = self._ns * inv
            d1 = 2 * (self.s_sum - self._rsum(t))
            t *= inv
            t *= self._s
            d2 = 2 * self._rsum(t)
        if rows is None:
            return d1, d2
        return d1[rows], d2[rows]

    def curvature(self, x) -> np.ndarray:
        """d2 stat / dx2 without the entries where the prediction is exactly 0 (gammapy's
        norm error: sqrt(2 / curvature))."""
        mu = self._b + np.asarray(x, float)[self._row] * self._s
        mu2 = mu * mu
        t = np.divide(self._ns * self._s, mu2, out=np.zeros_like(mu2), where=mu2 != 0)
        return 2 * self._rsum(t)


def _nearest_valid_pixel(ev: Evaluator, lon: float, lat: float) -> tuple[int, int]:
    """The pixel with exposure nearest (lon, lat) (gammapy's ``mask_nearest_position``)."""
    from xdl4.skymath import separation

    glon, glat = ev.grid.sky_coords()
    sep = separation(glon, glat, lon, lat)
    sep = np.where((ev.exposure > 0).any(axis=0), sep, np.inf)
    iy, ix = np.unravel_index(np.argmin(sep), sep.shape)
    return int(iy), int(ix)


def kernel_images(ev: Evaluator, kernel_model, box: int) -> np.ndarray:
    """The test source's counts template per reco-energy bin, each normalised to 1 (odd
    square, at most ``box`` pixels wide): ``kernel_model`` at the map centre folded with
    the exposure of the nearest valid pixel, the PSF and the EDISP at the centre."""
    from xdl4.skymath import convert_lonlat

    grid = ev.grid
    lon, lat = grid.center
    iy, ix = _nearest_valid_pixel(ev, lon, lat)
    flux = kernel_model.spectral.integral_bins(ev.e_true) * ev.exposure[:, iy, ix]
    edisp = ev.edisp_matrix(lon, lat)
    weights = edisp * flux[:, None]  # (true, reco)
    spatial = kernel_model.spatial
    if spatial is not None and not getattr(spatial, "is_point", False):
        from xdl4.sky import WcsGrid

        model = spatial.copy()
        mlon, mlat = convert_lonlat(lon, lat, grid.frame, model.frame)
        model.lon_0.value, model.lat_0.value = float(mlon), float(mlat)
        kgrid = WcsGrid.create((lon, lat), box * max(grid.binsz), max(grid.binsz),
                               frame=grid.frame, proj=grid.projection)
        image = model.integrate_pixels(kgrid.wcs, kgrid.shape)
    else:
        image = np.zeros((box, box))
        image[box // 2, box // 2] = 1.0
    if ev.psf_axis == "energy_true":
        psf = ev.psf_kernels(lon, lat)
        true = convolve_kernels(image, psf)  # (true, box, box)
        out = np.einsum("tr,tyx->ryx", weights, true)
    else:
        out = np.broadcast_to(image, (weights.shape[1],) + image.shape) * weights.sum(0)[
            :, None, None]
        if ev.psf_axis == "energy":
            out = convolve_kernels(out, ev.psf_kernels(lon, lat))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = out / out.sum(axis=(1, 2), keepdims=True)
    return np.where(np.isfinite(out), out, 0.0)


def _trim(kernels: np.ndarray) -> np.ndarray:
    """Kernels cut to the smallest centred odd square holding every non-zero value."""
    h = kernels.shape[-1] // 2
    nz = np.argwhere(kernels.any(axis=0))
    e = int(np.abs(nz - h).max()) if nz.size else 0
    return kernels[:, h - e:h + e + 1, h - e:h + e + 1]


def _solve_block(pos, c, b, x, w, kern, sum_over):
    """Fit the pixels ``pos`` (P, 2) from padded images c, b, x (E', Y, X) and padded
    mask weights w (E, Y, X), kernels kern (E, k, k): gathers each pixel's footprint
    (where the kernel is non-zero) with one ``take`` per image."""
    k = kern.shape[-1]
    width = c.shape[-1]
    keep = kern.any(axis=0).ravel()
    dy, dx = np.divmod(np.flatnonzero(keep), k)
    idx = (pos[:, 0] * width + pos[:, 1])[:, None] + (dy * width + dx)[None, :]
    kf = kern.reshape(kern.shape[0], -1)[:, keep]  # (E, F)

    def gather(img):  # (E', Y, X) -> (E', P, F)
        out = np.empty((img.shape[0],) + idx.shape)
        for plane, o in zip(img, out, strict=True):
            np.take(plane.ravel(), idx, out=o)
        return out

    n, bb, xp = gather(c), gather(b), gather(x)
    if sum_over:
        # the kernel averaged over the energies masked in at each footprint pixel
        wf = w.reshape(w.shape[0], -1)
        cols = wf[:, wf.any(axis=0)]
        if cols.shape[1] == 0 or (cols == cols[:, :1]).all():  # one mask everywhere: one
            on = cols[:, 0] > 0 if cols.shape[1] else np.ones(w.shape[0], bool)  # kernel
            model = kf[on].mean(axis=0) * xp[0]
        else:
            wp = gather(w)  # (E, P, F)
            with np.errstate(invalid="ignore", divide="ignore"):
                k2 = np.einsum("epf,ef->pf", wp, kf) / wp.sum(axis=0)
            model = np.where(np.isfinite(k2), k2, 0.0) * xp[0]
        n, bb = n[0], bb[0]
    else:
        model = kf[:, None, :] * xp
        n, bb, model = (np.moveaxis(a, 0, 1).reshape(len(pos), -1) for a in (n, bb, model))
    prof = PatchProfile(n, bb, model)
    norm, success, niter = best_fit(prof, bracket=prof.bracket(), trusted=True)
    return prof, norm, success, niter, -prof.plateau_edge(), prof.s_sum


def ts_map(ds: xr.Dataset, kernel_model=None, models=None, *, kernel_width=None,
           n_sigma: float = 1.0, n_sigma_ul: float = 2.0, threshold: float | None = None,
           selection_optional=None, energy_edges=None, sum_over_energy_groups: bool = True,
           block_size: int | None = None, chunks: int | None = None) -> xr.Dataset:
    """TS map of a test source (gammapy's ``TSMapEstimator``) on a ``map`` dataset.

    ``kernel_model``: a SkyModel (point or extended, with a spectrum); default gammapy's
    point source with a power law of index 2 (amplitude 1e-12 cm-2 s-1 TeV-1 at 1 TeV).
    ``models``: the predicted counts taken as background (e.g. the FoV background model,
    or all known sources to look for new ones). ``kernel_width``: the footprint around
    each pixel (default: the map's width, as gammapy). ``threshold``: pixels whose TS at
    the norm of a first linear estimate is not above it keep that estimate
    (``niter`` 0). ``selection_optional``: None (default, as gammapy), "all", or among
    ``errn-errp``, ``ul``. ``energy_edges``: energy groups (default one). ``block_size``:
    pixels per vectorised block (memory bound); ``chunks``: pixels per dask task.

    Returns a Dataset on (energy group, lat, lon): ``ts``, ``sqrt_ts`` (negative where
    the norm is not positive), ``norm``, ``norm_err`` (x ``n_sigma``), ``niter``,
    ``npred``, ``npred_excess``, ``stat``, ``stat_null``, ``success``, optional
    ``norm_errn``, ``norm_errp``, ``norm_ul``, and ``flux`` (norm x the kernel model's
    flux in the group) with its errors. NaN where no TS is computed.
    """

    from xdl4.models import PointSpatialModel, PowerLawSpectralModel, SkyModel
    from xdl4.psf import round_up_to_odd

    from ._maps import correlate

    if "lat" not in ds.dims or is_onoff(ds):
        raise KindError(f"ts_map is not defined for {ds.dl4.kind} datasets (TS maps need a "
                        "cash map dataset)")
    selection = parse_selection(selection_optional, OPTIONAL)
    if kernel_model is None:
        kernel_model = SkyModel(PowerLawSpectralModel(index=2.0), PointSpatialModel(),
                                name="ts-kernel")
    ev = evaluator(ds)
    grid = ev.grid
    binsz = max(grid.binsz)
    if kernel_width is None:
        # gammapy: the model's evaluation cutout, PSF width + 2 (r_eval + 0.1 deg)
        radius = getattr(kernel_model.spatial, "evaluation_radius", 0.0)
        if radius is None:
            width = max(grid.shape) * binsz
        else:
            lon, lat = grid.center
            psf = ev.psf_kernels(lon, lat).shape[-1] * binsz if ev.psf_axis else 0.0
            width = psf + 2 * (radius + 0.1)
        box = round_up_to_odd(width / binsz)
    else:
        width = degrees(kernel_width)
        box = round_up_to_odd(width / binsz)
    kernels = _trim(kernel_images(ev, kernel_model, box))
    group, e_min, e_max = groups_of(ds, energy_edges)
    ng = e_min.size
    npred = ev.npred(models)
    mask = ev.mask & np.isfinite(npred)
    expo = reco_exposure(ev, kernel_model.spectral)
    names = ["ts", "norm", "norm_err", "niter", "npred", "npred_excess", "stat", "stat_null",
             "success"] + [f"norm_{k}" for k in ("errn", "errp", "ul")
                           if (k == "ul" and "ul" in selection)
                           or (k != "ul" and "errn-errp" in selection)]
    out = {name: np.full((ng,) + grid.shape, np.nan) for name in names}
    full = np.ones((box, box), bool)
    k = kernels.shape[-1]
    h = k // 2
    for g in range(ng):
        sel = group == g
        m = mask[sel]
        c3, b3, x3 = ev.counts[sel] * m, npred[sel] * m, expo[sel] * m
        kern = kernels[sel]
        if sum_over_energy_groups:
            c, b, x = c3.sum(0)[None], b3.sum(0)[None], x3.sum(0)[None]
        else:
            c, b, x = c3, b3, x3
        pos = np.argwhere(m.any(axis=0) & (b.sum(axis=0) > 0))
        if pos.size == 0:
            continue
        # the full footprint (box x box): counts, background and their Cash term
        box_c = correlate(c.sum(0), full)
        box_b = correlate(b.sum(0), full)
        box_stat = correlate(cash(c, b).sum(0), full)
        pad = [(0, 0), (h, h), (h, h)]
        cpad, bpad, xpad = (np.pad(a, pad) for a in (c, b, x))
        wpad = np.pad(m.astype(float), pad)
        guess = None
        if threshold is not None:
            guess = _norm_guess(ev.counts[sel], npred[sel], expo[sel], m, kernels[sel],
                                kernel_model.spectral, ev.e_reco[np.append(sel, False)],
                                ev.e_reco[np.append(False, sel)])
        size = block_size or max(1, int(2 ** 21 // (k * k * c.shape[0])))
        if chunks:
            size = min(size, int(chunks))
        blocks = [pos[i:i + size] for i in range(0, len(pos), size)]

        def run(block, cpad=cpad, bpad=bpad, xpad=xpad, wpad=wpad, kern=kern, box_c=box_c,
                box_b=box_b, box_stat=box_stat, guess=guess):
            return _block_results(block, cpad, bpad, xpad, wpad, kern,
                                  sum_over_energy_groups, selection, n_sigma, n_sigma_ul,
                                  threshold, box_c, box_b, box_stat, guess)

        if chunks:
            import dask

            results = dask.compute(*[dask.delayed(run)(bl) for bl in blocks])
        else:
            results = [run(bl) for bl in blocks]
        for bl, res in zip(blocks, results, strict=True):
            for name, values in res.items():
                out[name][g, bl[:, 0], bl[:, 1]] = values
    out["sqrt_ts"] = sqrt_ts(out["ts"], out["norm"])
    ref = reference_fluxes(kernel_model.spectral, e_min, e_max)["ref_flux"][:, None, None]
    variables = {name: (out[name], "") for name in
                 ["ts", "sqrt_ts", "norm", "norm_err", "norm_errn", "norm_errp", "norm_ul",
                  "niter", "npred", "npred_excess", "stat", "stat_null", "success"]
                 if name in out}
    for name in ("norm", "norm_err", "norm_errn", "norm_errp", "norm_ul"):
        if name in out:
            variables[name.replace("norm", "flux")] = (out[name] * ref, "cm-2 s-1")
    variables["niter"] = (out["niter"], None)
    variables["success"] = (np.where(np.isnan(out["success"]), False,
                                     out["success"]).astype(bool), None)
    attrs = {"estimator": "ts_map", "name": ds.attrs.get("name", ""), "n_sigma": float(n_sigma),
             "n_sigma_ul": float(n_sigma_ul), "sed_type": "likelihood",
             "kernel_width_pix": int(box), "reference_model": model_json(kernel_model)}
    return map_output(ds, variables, e_min, e_max, attrs)


def _block_results(pos, cpad, bpad, xpad, wpad, kern, sum_over, selection, n_sigma, n_sigma_ul,
                   threshold, box_c, box_b, box_stat, guess) -> dict:
    prof, norm, success, niter, neg_min_total, s_sum = _solve_block(
        pos, cpad, bpad, xpad, wpad, kern, sum_over)
    norm_min_total = -neg_min_total
    iy, ix = pos[:, 0], pos[:, 1]
    no_counts = (box_c[iy, ix] <= 0) | (s_sum <= 0)
    norm = np.where(no_counts, norm_min_total, np.maximum(norm, norm_min_total))
    niter = np.where(no_counts, 0, niter)
    success = np.where(no_counts, True, success)
    if threshold is not None:
        guess = guess[iy, ix]
        ts_guess = prof.stat(np.zeros(len(pos))) - prof.stat(guess)
        low = ~(ts_guess > threshold)
        norm = np.where(low, guess, norm)
        niter = np.where(low, 0, niter)
        success = np.where(low, True, success)
    stat0 = prof.stat(np.zeros(len(pos)))
    stat = prof.stat(norm)
    d2 = prof.curvature(norm)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.sqrt(2.0 / d2)
    res = {"norm": norm, "norm_err": err * n_sigma, "niter": niter, "success": success,
           "ts": stat0 - stat, "stat": box_stat[iy, ix] + stat - stat0,
           "stat_null": box_stat[iy, ix], "npred": box_b[iy, ix] + norm * s_sum,
           "npred_excess": norm * s_sum}
    tol = 1e-7  # relative precision of the roots (gammapy's TS map: 1e-2)
    if "errn-errp" in selection:
        res["norm_errp"] = crossing(prof, norm, stat, n_sigma ** 2, +1, err * n_sigma,
                                    tol) - norm
        res["norm_errn"] = norm - crossing(prof, norm, stat, n_sigma ** 2, -1,
                                           err * n_sigma, tol)
    if "ul" in selection:
        res["norm_ul"] = crossing(prof, norm, stat, n_sigma_ul ** 2, +1, err * n_sigma_ul,
                                  tol)
    return res


def _norm_guess(counts, npred, expo, mask, kernels, spectral, e_lo, e_hi) -> np.ndarray:
    """gammapy's first linear estimate of the norm (its ``estimate_flux_default``): the
    excess flux (counts - npred) / normalised reco exposure, correlated with
    kernel / sum(kernel^2) in each energy bin, masked, summed over energy, divided by the
    model's flux over the group."""
    from ._maps import convolve_same

    ref_bins = spectral._integral_exact(e_lo, e_hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        flux = np.nan_to_num((counts - npred) / (expo / ref_bins[:, None, None]))
    kn = kernels / np.sum(kernels ** 2)
    conv = convolve_same(flux, kn)
    total = spectral._integral_exact(e_lo[:1], e_hi[-1:])[0]
    return (conv * mask).sum(axis=0) / total
