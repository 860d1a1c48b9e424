"""IRF maps at a source position: nearest (gammapy) and bilinear (smooth) lookups."""

import numpy as np
import pytest

import xdl4
from xdl4.examples import edisp_kernel, psf_density
from xdl4.irf import mix, node_weights
from xdl4.kinds.counts import evaluator as Evaluator
from xdl4.models import Models, PointSpatialModel, PowerLaw, SkyModel


def varying_irfs(ds):
    """``ds`` with a PSF and an EDISP that change from one IRF pixel to the next (width
    +-20%, energy bias up to 8%), as real IRFs change with the offset."""
    ny, nx = ds.sizes["irf_lat"], ds.sizes["irf_lon"]
    et_edges = ds.dl4.energy_true_edges.to_value("TeV")
    e_edges = ds.dl4.energy_edges.to_value("TeV")
    et = np.sqrt(et_edges[:-1] * et_edges[1:])
    rad = ds["rad"].values
    psf = np.empty(ds["psf"].shape)
    edisp = np.empty(ds["edisp"].shape)
    for iy in range(ny):
        for ix in range(nx):
            f = 0.8 + 0.4 * (ix + 2 * iy) / (nx + 2 * ny)
            # a PSF of width f x sigma(E): density at rad of the nominal one at rad / f
            psf[:, :, iy, ix] = psf_density(rad[None, :] / f, et[:, None]) / f**2
            edisp[:, :, iy, ix] = edisp_kernel(et_edges * (1 + 0.08 * (f - 0.8)), e_edges)
    return ds.assign(psf=(ds["psf"].dims, psf, ds["psf"].attrs),
                     edisp=(ds["edisp"].dims, edisp, ds["edisp"].attrs))


def point(lon, lat, index=2.5, amplitude=3.8e-11):
    return Models([SkyModel(PowerLaw(index=index, amplitude=amplitude),
                            PointSpatialModel(lon_0=lon, lat_0=lat, frame="icrs"), name="src")])


@pytest.fixture(scope="module")
def corner_ds():
    """A 0.8 deg map (16 x 16 pixels) on a 4 x 4 IRF grid: its centre is an IRF corner."""
    return varying_irfs(xdl4.examples.map_dataset(0, width=0.8, binsz=0.05))


def test_node_weights():
    assert node_weights(1.5, 1.5, 4, 4, "nearest") == ((1, 1, 1.0),)  # tie: lower pixel
    w = node_weights(1.5, 1.25, 4, 4, "bilinear")
    assert sorted((iy, ix) for iy, ix, _ in w) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert sum(x for *_, x in w) == pytest.approx(1.0)
    assert node_weights(2.0, 1.0, 4, 4, "bilinear") == ((1, 2, 1.0),)  # on a centre
    # clamped beyond the outer pixel centres: weights stay in [0, 1]
    assert node_weights(-3.0, 5.0, 4, 4, "bilinear") == ((3, 0, 1.0),)
    assert node_weights(0.3, 0.0, 1, 1, "bilinear") == ((0, 0, 1.0),)
    with pytest.raises(ValueError, match="irf_interpolation"):
        Evaluator(xdl4.examples.spectrum_dataset(), irf_interpolation="cubic")


def test_mix_centres_kernels_of_different_sizes():
    a, b = np.zeros((2, 3, 3)), np.zeros((2, 5, 5))
    a[:, 1, 1], b[:, 2, 2] = 1.0, 1.0
    out = mix(((0, 0, 0.25), (0, 1, 0.75)), lambda iy, ix: (a, b)[ix])
    assert out.shape == (2, 5, 5) and out[0, 2, 2] == 1.0 and out.sum() == 2.0


@pytest.mark.parametrize("axis", ["lon", "lat"])
def test_npred_is_continuous_across_an_irf_pixel_boundary(corner_ds, axis):
    """Scan the source across the IRF-pixel boundary at x = 1.5 (or y) in steps of 1e-6
    deg: bilinear mode has no jump (every step within twice the mean slope), gammapy's
    nearest lookup jumps (its EDISP switches pixel there)."""
    ds = corner_ds
    irf = ds.dl4.irf_grid
    lon_b, lat_b = (float(v) for v in irf.pixel_to_world(1.5, 1.5))
    off = (0.0, 0.013) if axis == "lon" else (0.017, 0.0)  # away from the data-pixel grid
    steps = np.arange(-30, 31) * 1e-6
    jumps = {}
    for mode in ("bilinear", "nearest"):
        ev = Evaluator(ds, irf_interpolation=mode)
        models = point(lon_b + off[0], lat_b + off[1])
        par = models.parameters[f"src.{axis}_0"]
        base = par.value
        stats, totals = [], []
        for d in steps:
            par.value = base + d
            stats.append(ev.stat_sum(models))
            totals.append(ev.npred_signal(models).sum())
        diffs = np.abs(np.diff(stats))
        slope = abs(stats[-1] - stats[0]) / (len(steps) - 1)
        jumps[mode] = diffs.max() / max(slope, 1e-12)
        if mode == "bilinear":
            assert diffs.max() <= 2 * slope + 1e-9, (mode, diffs.max(), slope)
            np.testing.assert_array_less(np.abs(np.diff(totals)), 1e-6 * totals[0])
        x, y = irf.world_to_pixel(base + steps[[0, -1]] if axis == "lon" else lon_b + off[0],
                                  lat_b + off[1] if axis == "lon" else base + steps[[0, -1]])
        crossed = x if axis == "lon" else y
        assert crossed.min() < 1.5 < crossed.max()  # the scan crosses the boundary
    assert jumps["nearest"] > 20 * jumps["bilinear"]  # the test sees a jump when there is one


def test_bilinear_mode_takes_node_kernels_at_pixel_centres(corner_ds):
    """At an IRF pixel centre both lookups use that pixel: bilinear = gammapy's kernel
    built there (exactly), and its EDISP."""
    ev_b = Evaluator(corner_ds, irf_interpolation="bilinear")
    ev_n = Evaluator(corner_ds, irf_interpolation="nearest")
    lon, lat = (float(v) for v in corner_ds.dl4.irf_grid.pixel_to_world(2.0, 1.0))
    # (the pixel -> world -> pixel round trip leaves ~1e-10 of a neighbour's weight)
    np.testing.assert_allclose(ev_b.edisp_matrix(lon, lat), ev_n.edisp_matrix(lon, lat),
                               rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(ev_b.psf_kernels(lon, lat), ev_n.psf_kernels(lon, lat),
                               rtol=1e-9, atol=1e-15)
    # between pixels: a kernel normalised per energy, between the neighbours' widths
    lon, lat = (float(v) for v in corner_ds.dl4.irf_grid.pixel_to_world(1.5, 1.5))
    k = ev_b.psf_kernels(lon, lat)
    np.testing.assert_allclose(k.sum(axis=(1, 2)), 1.0, rtol=1e-12)
    assert k.min() >= 0


def test_nearest_is_the_evaluation_default_and_bilinear_the_fit_default(corner_ds):
    from xdl4.fitting import Likelihood

    models = point(83.63, 22.01)
    assert Evaluator(corner_ds).irf_interpolation == "nearest"
    assert xdl4.kinds.counts.stat_sum(corner_ds, models) == Evaluator(
        corner_ds, "nearest").stat_sum(models)
    lik = Likelihood(corner_ds, models)
    assert lik.irf_interpolation == "bilinear"
    assert lik.stat() == pytest.approx(Evaluator(corner_ds, "bilinear").stat_sum(models),
                                       rel=1e-12)
    assert xdl4.kinds.counts.stat_sum(corner_ds, models, irf_interpolation="bilinear") == \
        pytest.approx(lik.stat(), rel=1e-12)
    with pytest.raises(ValueError, match="irf_interpolation"):
        xdl4.fit(lik, None, irf_interpolation="nearest")


def test_caches_are_bounded(corner_ds):
    from xdl4 import forward

    ev = Evaluator(corner_ds, irf_interpolation="bilinear")
    models = point(83.63, 22.01)
    par = models.parameters["src.lon_0"]
    for k in range(40):
        par.value = 83.63 + 1e-3 * k
        ev.stat_sum(models)
    sizes = ev.cache_nbytes()
    assert len(ev._kernels) <= 8
    assert sizes["psf_kernels_peak"] <= forward.KERNEL_CACHE_BYTES
    assert sizes["psf_node_kernels"] <= forward.NODE_KERNEL_CACHE_BYTES
    assert sizes["psf_node_kernels"] > 0 and sizes["edisp_nodes"] > 0


def test_sparse_kernel_sampling_equals_the_dense_recipe():
    """The sparse sampling matrices give the kernels of the dense (kernel pixels x rad
    nodes) recipe they replaced, to 1e-12 (nearest-mode numbers unchanged)."""
    from astropy.wcs import WCS

    from xdl4.psf import CONTAINMENT_MAX, containment_radius, round_up_to_odd
    from xdl4.skymath import separation

    ds = varying_irfs(xdl4.examples.map_dataset(0, width=0.8, binsz=0.05))
    ev = Evaluator(ds, irf_interpolation="nearest")
    kb = ev.kernel_builder
    prof = ev.psf_profiles(83.66, 22.03)
    kern = ev.psf_kernels(83.66, 22.03)

    def dense(big, small, factor):
        n_sub = small * factor
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---CAR", "DEC--CAR"]
        w.wcs.crval = kb.center
        w.wcs.cdelt = [-kb.pix / factor, kb.pix / factor]
        w.wcs.crpix = [(n_sub + 1) / 2, (n_sub + 1) / 2]
        y, x = np.mgrid[:n_sub, :n_sub]
        rad = separation(*w.wcs_pix2world(x.ravel(), y.ravel(), 0), *kb.center)
        idx = np.clip(np.searchsorted(kb.nodes, rad) - 1, 0, kb.nodes.size - 2)
        t = (rad - kb.nodes[idx]) / (kb.nodes[idx + 1] - kb.nodes[idx])
        m = np.zeros((rad.size, kb.nodes.size))
        m[np.arange(rad.size), idx] = 1 - t
        m[np.arange(rad.size), idx + 1] += t
        m = m.reshape(small, factor, small, factor, -1).sum(axis=(1, 3))
        out = np.zeros((big, big, kb.nodes.size))
        o = (big - small) // 2
        out[o:o + small, o:o + small] = m
        return out.reshape(big * big, -1)

    r_max = containment_radius(prof, kb.nodes, CONTAINMENT_MAX)
    r68 = containment_radius(prof, kb.nodes, 0.68)
    big = round_up_to_odd(2 * r_max.max() / kb.pix)
    assert kern.shape[-1] == big
    for j in range(len(prof)):
        small = min(round_up_to_odd(2 * r_max[j] / kb.pix), big)
        factor = int(min(np.ceil(12 / max(2 * r68[j] / kb.pix, 1e-12)), 4))
        k = np.clip(dense(big, small, factor) @ prof[j], 0, None)
        np.testing.assert_allclose(kern[j].ravel(), k / k.sum(), rtol=1e-12, atol=1e-15)
