"""xdl4.plot: every plot on every kind it applies to (headless Agg), the artists carry the
data's numbers, labels carry units, sky images have longitude increasing to the left, and
plots that do not apply raise KindError."""

import matplotlib
import numpy as np
import pytest
import xarray as xr
from astropy import units as u
from astropy.io import fits

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from astropy.visualization.wcsaxes import WCSAxes  # noqa: E402
from matplotlib.collections import PolyCollection, QuadMesh  # noqa: E402
from matplotlib.patches import StepPatch  # noqa: E402

import xdl4  # noqa: E402
from xdl4.models import Models, PointSpatialModel, PowerLaw, SkyModel  # noqa: E402
from xdl4.models.propagation import propagate  # noqa: E402
from xdl4.plot import KIND_PLOTS  # noqa: E402

CENTER = (83.63, 22.01)
ALL_PLOTS = ("image", "peek", "residuals", "fit", "masks", "psf", "edisp", "exposure",
             "sed", "stacking")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def kinds():
    """Small example datasets of every kind (1 deg maps of 0.1 deg pixels: fast)."""
    return {
        "map": xdl4.examples.map_dataset(0, width=1.0, binsz=0.1),
        "map_onoff": xdl4.examples.map_dataset(0, onoff=True, width=1.0, binsz=0.1),
        "spectrum": xdl4.examples.spectrum_dataset(0),
        "spectrum_onoff": xdl4.examples.spectrum_dataset(0, onoff=True),
        "flux_points": xdl4.examples.flux_points(0),
    }


def _models(kind):
    spatial = PointSpatialModel(lon_0=CENTER[0], lat_0=CENTER[1]) if kind.startswith("map") \
        else None
    return Models([SkyModel(PowerLaw(index=2.5, amplitude=3.8e-11), spatial, name="src")])


def _safe_sum(ds, da, sel=None):
    """A reco-energy variable summed over the safe (selected) bins; NaN where no such bin
    is safe."""
    safe = ds.mask_safe
    if sel is not None:
        safe = safe & xr.DataArray(sel, dims="energy")
    return da.where(safe, 0).sum("energy").where(safe.any("energy")).transpose(
        "lat", "lon").values


def _lon_left_right(ax, grid):
    """World longitudes at the left and right edges of a WCSAxes (central row)."""
    y = (grid.shape[0] - 1) / 2
    x0, x1 = ax.get_xlim()
    lon, _ = grid.pixel_to_world(np.array([x0, x1]), np.array([y, y]))
    return lon


def _assert_lon_left(ax, grid):
    left, right = _lon_left_right(ax, grid)
    assert ((left - right + 180) % 360 - 180) > 0, (left, right)


# -- the table and the typed error ------------------------------------------------------

@pytest.mark.parametrize("kind", xdl4.KINDS)
def test_plots_outside_the_table_raise_kind_error(kinds, kind):
    ds = kinds[kind]
    for name in ALL_PLOTS:
        if name in KIND_PLOTS[kind]["plots"]:
            continue
        func = getattr(ds.dl4.plot, name)
        args = (_models(kind),) if name in ("residuals", "fit", "stacking") else ()
        with pytest.raises(xdl4.KindError, match=f"plot.{name} is not defined for {kind}"):
            func(*args)


def test_every_kind_has_a_peek_and_the_namespace_is_bound(kinds):
    assert set(KIND_PLOTS) == set(xdl4.KINDS)
    for entry in KIND_PLOTS.values():
        assert "peek" in entry["plots"] and entry["peek"]
        assert set(entry["plots"]) <= set(ALL_PLOTS)
    assert "image" in repr(kinds["map"].dl4.plot)
    assert callable(xdl4.plot.spectrum) and callable(xdl4.plot.sed)


def test_matplotlib_is_imported_only_inside_functions():
    """No module of xdl4.plot (nor the accessor) imports matplotlib at import time."""
    import ast
    from pathlib import Path

    root = Path(xdl4.__file__).parent
    for path in [*sorted((root / "plot").glob("*.py")), root / "accessor.py",
                 root / "models" / "propagation.py"]:
        for node in ast.parse(path.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith(("matplotlib", "astropy.visualization"))
                           for n in names), (path.name, names)


def test_one_run_at_a_time(kinds):
    runs = xr.concat([kinds["spectrum"], kinds["spectrum"]], "obs")
    with pytest.raises(ValueError, match="select one"):
        runs.dl4.plot.peek()


# -- 1. sky images --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["map", "map_onoff"])
def test_image_counts_values_labels_and_longitude_to_the_left(kinds, kind):
    ds = kinds[kind]
    ax = ds.dl4.plot.image("counts")
    assert isinstance(ax, WCSAxes)
    np.testing.assert_array_equal(ax.images[0].get_array().filled(np.nan),
                                  _safe_sum(ds, ds.counts))
    assert ax.coords[0].get_axislabel() == "Right ascension (ICRS) [deg]"
    assert ax.coords[1].get_axislabel() == "Declination [deg]"
    assert ax.images[0].colorbar.ax.get_ylabel() == "Counts"
    _assert_lon_left(ax, ds.dl4.grid)
    # one energy bin, and a true-energy variable: its bin, with its unit on the colour bar
    ax = ds.dl4.plot.image("counts", energy="1.5 TeV")
    i = int(np.searchsorted(ds.dl4.energy_edges.value, 1.5)) - 1
    np.testing.assert_array_equal(ax.images[0].get_array().filled(np.nan),
                                  _safe_sum(ds, ds.counts, np.arange(ds.sizes["energy"]) == i))
    ax = ds.dl4.plot.image("exposure", energy=2.0)
    j = int(np.searchsorted(ds.dl4.energy_true_edges.value, 2.0)) - 1
    np.testing.assert_allclose(ax.images[0].get_array(), ds.exposure.isel(energy_true=j))
    assert "m^{2}" in ax.images[0].colorbar.ax.get_ylabel()


def test_image_longitude_left_for_any_grid(kinds):
    """A grid whose longitude grows with x is flipped; a galactic grid is labelled so."""
    base = xdl4.WcsGrid.create(CENTER, width=1.0, binsz=0.1)
    hdr = fits.Header.fromstring(base.header, sep="\n")
    hdr["CDELT1"] = 0.1
    flipped = xdl4.WcsGrid(hdr.tostring(sep="\n"), base.shape)
    galactic = xdl4.WcsGrid.create((184.56, -5.78), width=1.0, binsz=0.1, frame="galactic",
                                   proj="TAN")
    for grid in (flipped, galactic):
        ds = xdl4.create("map", [1, 10], [0.5, 20], grid=grid,
                         counts=np.arange(100.0).reshape(1, 10, 10))
        ax = ds.dl4.plot.image()
        _assert_lon_left(ax, grid)
        np.testing.assert_array_equal(ax.images[0].get_array(), ds.counts[0].values)
    assert ax.coords[0].get_axislabel() == "Galactic longitude [deg]"


def _disk_sum(image, r_pix, iy, ix):
    total = 0.0
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            if (x - ix) ** 2 + (y - iy) ** 2 <= r_pix**2:
                total += image[y, x]
    return total


@pytest.mark.parametrize("kind", ["map", "map_onoff"])
def test_image_excess_and_significance_in_a_top_hat(kinds, kind):
    ds = kinds[kind]
    radius = 0.25  # deg: 2.5 pixels
    n = np.nan_to_num(_safe_sum(ds, ds.counts))
    iy, ix = 5, 4
    n_on = _disk_sum(n, 2.5, iy, ix)
    if kind == "map":
        b = _disk_sum(np.nan_to_num(_safe_sum(ds, ds.background)), 2.5, iy, ix)
        ts = 2 * (n_on * np.log(n_on / b) - (n_on - b))
        excess = n_on - b
    else:
        n_off = _disk_sum(np.nan_to_num(_safe_sum(ds, ds.counts_off)), 2.5, iy, ix)
        alpha = 0.2  # acceptance / acceptance_off of the example
        excess = n_on - alpha * n_off
        # Li & Ma (1983), eq. 17
        ts = 2 * (n_on * np.log((1 + alpha) / alpha * n_on / (n_on + n_off))
                  + n_off * np.log((1 + alpha) * n_off / (n_on + n_off)))
    ax = ds.dl4.plot.image("sqrt_ts", smooth=radius)
    np.testing.assert_allclose(ax.images[0].get_array()[iy, ix], np.sign(excess) * np.sqrt(ts),
                               rtol=1e-9)
    assert "σ" in ax.images[0].colorbar.ax.get_ylabel()
    _assert_lon_left(ax, ds.dl4.grid)
    ax = ds.dl4.plot.image("excess", smooth=radius)
    np.testing.assert_allclose(ax.images[0].get_array()[iy, ix], excess, rtol=1e-9)


def test_smoothed_significance_is_the_excess_maps(kinds):
    """The smoothed sqrt_ts / excess images use the excess maps' (gammapy's) top-hat: at a
    radius whose circle passes through pixel centres (5 pixels), the same pixels."""
    ds = kinds["map"]
    radius = 5 * float(np.mean(ds.dl4.grid.binsz))
    ax = ds.dl4.plot.image("sqrt_ts", smooth=radius)
    edges = ds.dl4.energy_edges
    ref = ds.dl4.excess_map(radius, energy_edges=edges[[0, -1]])
    np.testing.assert_allclose(ax.images[0].get_array().filled(np.nan),
                               ref["sqrt_ts"].isel(energy=0).values, rtol=1e-9, atol=1e-12)
    plt.close("all")
    arcmin = f"{radius * 60} arcmin"  # an angle as gammapy users write it: the same image
    for angle in (arcmin, radius * u.deg):
        same = ds.dl4.plot.image("sqrt_ts", smooth=angle).images[0].get_array()
        # filled: assert_array_equal would skip masked (NaN) pixels of either image
        np.testing.assert_array_equal(same.filled(np.nan), ax.images[0].get_array().filled(np.nan))
        plt.close("all")


def test_a_point_region_is_its_nearest_pixel(kinds):
    """A point region selects the pixel nearest the point, as ds.dl4.to_region."""
    ds = kinds["map"]
    point = "icrs;point(83.63,22.01)"
    fig = ds.dl4.plot.residuals(_models("map"), region=point)
    assert isinstance(fig, plt.Figure)
    from xdl4.plot import _data

    region = ds.dl4.to_region(point)  # the safe bins of the pixel (0 elsewhere)
    safe = region.mask_safe.values.ravel()
    counts = _data.counts_spectrum(ds, region=point)["counts"]
    np.testing.assert_array_equal(counts[safe], region.counts.values.ravel()[safe])
    assert counts.sum() > 0


def test_a_run_selected_from_runs_is_titled_by_its_label(kinds):
    """A run taken with runs.isel(obs=i) keeps its name in the obs coordinate only."""
    runs = xr.concat([kinds["spectrum"].dl4.renamed(f"run{i}") for i in range(2)], "obs")
    run = runs.isel(obs=1)
    assert "name" not in run.attrs
    fig = run.dl4.plot.peek()
    assert fig._suptitle.get_text() == "run1 (spectrum)"


def test_image_of_a_dataarray_and_npred(kinds):
    ds = kinds["map"]
    models = _models("map")
    npred = ds.dl4.npred(models)
    ax = ds.dl4.plot.image(npred.rename("npred"))
    np.testing.assert_allclose(ax.images[0].get_array(), _safe_sum(ds, npred))
    ax = ds.dl4.plot.image("npred", models=models)
    np.testing.assert_allclose(ax.images[0].get_array(), _safe_sum(ds, npred))
    with pytest.raises(ValueError, match="what must be"):
        ds.dl4.plot.image("nonsense")
    with pytest.raises(ValueError, match="needs models"):
        ds.dl4.plot.image("npred")


# -- 2. peek ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", xdl4.KINDS)
def test_peek_every_kind(kinds, kind):
    ds = kinds[kind]
    fig = ds.dl4.plot.peek()
    assert isinstance(fig, plt.Figure)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == len(KIND_PLOTS[kind]["peek"])
    for ax in panels:
        if isinstance(ax, WCSAxes):
            _assert_lon_left(ax, ds.dl4.grid)
            assert "[deg]" in ax.coords[0].get_axislabel()
        else:
            assert "TeV" in ax.get_xlabel()
    if kind.startswith("spectrum"):  # counts as steps on the bin edges
        steps = [p for p in panels[0].patches if isinstance(p, StepPatch)]
        values, edges, _ = steps[0].get_data()
        np.testing.assert_array_equal(values, ds.counts.values)
        np.testing.assert_allclose(edges, ds.dl4.energy_edges.value)


# -- 3. fit diagnostics -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["map", "map_onoff"])
def test_residuals_map(kinds, kind):
    ds = kinds[kind]
    models = _models(kind)
    fig = ds.dl4.plot.residuals(models, region="icrs;circle(83.63,22.01,0.3)")
    sky_ax, spec_ax = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert isinstance(sky_ax, WCSAxes)
    _assert_lon_left(sky_ax, ds.dl4.grid)
    assert sky_ax.images[0].get_array().shape == ds.dl4.grid.shape
    # the spectral points: (counts - npred) / sqrt(npred) in the region, fitted bins only
    inside = xdl4.Region.parse("icrs;circle(83.63,22.01,0.3)").contains_pixels(
        ds.dl4.grid, *np.mgrid[:10, :10][::-1])
    w = xr.DataArray(inside, dims=("lat", "lon"))
    c = ds.counts.where(w, 0).sum(("lat", "lon")).values
    m = ds.dl4.npred(models).where(w, 0).sum(("lat", "lon")).values
    safe = ds.mask_safe.any(("lat", "lon")).values
    expected = np.where(safe, (c - m) / np.sqrt(m), np.nan)
    x, y = spec_ax.containers[0].lines[0].get_data()
    np.testing.assert_allclose(y, expected, rtol=1e-9)
    assert "TeV" in spec_ax.get_xlabel() and "√model" in spec_ax.get_ylabel()


def test_smoothed_residual_map_is_a_significance():
    """Smoothed (data - model) / sqrt(model) of a Poisson realisation of the model has
    unit variance, whatever the smoothing."""
    ds = xdl4.examples.map_dataset(0, width=3.0, binsz=0.05)
    models = _models("map")
    fake = ds.dl4.fake(models, seed=2)
    for smooth in (0.1, 0.2):
        fig = fake.dl4.plot.residuals(models, smooth=smooth)
        values = fig.axes[0].images[0].get_array()
        inner = np.asarray(values[15:45, 15:45])  # away from the map edges
        assert 0.75 < np.nanstd(inner) < 1.25, (smooth, np.nanstd(inner))
        plt.close(fig)
    as_text = fake.dl4.plot.residuals(models, smooth="12 arcmin").axes[0].images[0]
    np.testing.assert_array_equal(as_text.get_array().filled(np.nan),  # 12 arcmin = 0.2 deg
                                  values.filled(np.nan))
    perfect = ds.assign(counts=ds.dl4.npred(models))
    fig = perfect.dl4.plot.residuals(models)
    np.testing.assert_allclose(np.nan_to_num(fig.axes[0].images[0].get_array()), 0,
                               atol=1e-9)


@pytest.mark.parametrize("kind", ["spectrum", "spectrum_onoff"])
def test_residuals_and_fit_spectrum(kinds, kind):
    ds = kinds[kind]
    models = _models(kind)
    ax = ds.dl4.plot.residuals(models, method="diff")
    x, y = ax.containers[0].lines[0].get_data()
    expected = (ds.counts - ds.dl4.npred(models)).where(ds.mask_safe).values
    np.testing.assert_allclose(y, expected, rtol=1e-9)
    edges = ds.dl4.energy_edges.value
    np.testing.assert_allclose(x, np.sqrt(edges[:-1] * edges[1:]))
    fig = ds.dl4.plot.fit(models)
    spec_ax, res_ax = fig.axes
    step = next(p for p in spec_ax.patches if isinstance(p, StepPatch))
    values, step_edges, _ = step.get_data()
    np.testing.assert_allclose(values, ds.dl4.npred_signal(models).values)
    np.testing.assert_allclose(step_edges, edges)
    assert res_ax.get_xlabel() == "Energy [TeV]"
    assert "√model" in res_ax.get_ylabel()


def test_residuals_and_fit_flux_points(kinds):
    fp = kinds["flux_points"]
    models = _models("flux_points")
    ax = fp.dl4.plot.residuals(models)
    _, y = ax.containers[0].lines[0].get_data()
    np.testing.assert_allclose(y, fp.dl4.residuals(models, "diff/model").values)
    fig = fp.dl4.plot.fit(models)  # not fitted: no parameter errors, no band
    sed_ax, res_ax = fig.axes
    assert not any(isinstance(c, PolyCollection) for c in sed_ax.collections)
    result = xdl4.fit(fp, models)
    fig = fp.dl4.plot.fit(models, result=result)
    sed_ax, res_ax = fig.axes
    assert any(isinstance(c, PolyCollection) for c in sed_ax.collections)
    assert "E² dN/dE" in sed_ax.get_ylabel() and "cm^{-2}" in sed_ax.get_ylabel()
    assert res_ax.get_xlabel() == "Energy [TeV]" and "model" in res_ax.get_ylabel()


@pytest.mark.parametrize("kind", ["map", "map_onoff", "spectrum", "spectrum_onoff"])
def test_masks(kinds, kind):
    ds = kinds[kind].copy()
    ds["mask_fit"] = xr.ones_like(ds.mask_safe)
    ds["mask_fit"][-1] = False
    ax = ds.dl4.plot.masks()
    e = ds.dl4.energy_edges.value
    if kind.startswith("map"):
        _assert_lon_left(ax, ds.dl4.grid)
        safe = ds.mask_safe.values
        expected = np.where(safe.any(0), e[np.argmax(safe, axis=0)], np.nan)
        np.testing.assert_array_equal(ax.images[0].get_array().filled(np.nan), expected)
        assert "TeV" in ax.images[0].colorbar.ax.get_ylabel()
    else:  # unsafe bins shaded: the first safe edge is where the grey span ends
        spans = [p for p in ax.patches if p.get_label() == "outside safe mask"]
        first_safe = e[np.argmax(ds.mask_safe.values)]
        assert np.isclose(spans[0].get_x() + spans[0].get_width(), first_safe)
        assert any(p.get_label() == "outside fit mask" for p in ax.patches)


# -- 4. IRFs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["map", "map_onoff"])
def test_psf_containment_of_the_gaussian_example(kinds, kind):
    ds = kinds[kind]
    fig = ds.dl4.plot.psf()
    ax = fig.axes[0]
    e, r68 = ax.lines[0].get_data()
    sigma = xdl4.examples.psf_sigma_deg(e)
    # a 2D Gaussian holds 68 % within sigma sqrt(-2 ln 0.32)
    np.testing.assert_allclose(r68, sigma * np.sqrt(-2 * np.log(1 - 0.68)), rtol=0.03)
    assert ax.get_ylabel() == "Containment radius [deg]" and "TeV" in ax.get_xlabel()
    assert "[sr$^{-1}$]" in fig.axes[1].get_ylabel()
    # a position away from the centre is accepted (degrees or a SkyCoord)
    from astropy.coordinates import SkyCoord

    for position in (SkyCoord(83.8, 22.1, unit="deg"), (83.8, 22.1)):
        other = ds.dl4.plot.psf(position=position).axes[0].lines[0].get_data()
        np.testing.assert_allclose(other[1], r68, rtol=1e-9)  # the example's PSF is uniform


@pytest.mark.parametrize("kind", ["map", "map_onoff", "spectrum", "spectrum_onoff"])
def test_edisp_matrix_and_exposure(kinds, kind):
    ds = kinds[kind]
    fig = ds.dl4.plot.edisp()
    mesh = next(c for c in fig.axes[0].collections if isinstance(c, QuadMesh))
    kernel = ds.edisp.transpose("energy_true", "energy", ...).values
    if kernel.ndim == 4:
        kernel = kernel[..., 0, 0]  # the example's kernel is the same everywhere
    np.testing.assert_allclose(np.ma.filled(mesh.get_array(), 0), kernel.T)
    assert fig.axes[0].get_xlabel() == "True energy [TeV]"
    assert fig.axes[0].get_ylabel() == "Reconstructed energy [TeV]"
    expo, position = ds.exposure, None
    if "lat" in expo.dims:  # the pixel nearest the position
        position = tuple(float(v) for v in ds.dl4.grid.pixel_to_world(3.2, 5.9))
        expo = expo.isel(lat=6, lon=3)
    ax = ds.dl4.plot.exposure(position)
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(y, expo.values)
    np.testing.assert_allclose(x, ds.energy_true.values)
    assert ax.get_xlabel() == "True energy [TeV]" and "m^{2}" in ax.get_ylabel()


# -- 5. spectra and SEDs ----------------------------------------------------------------

def _band_width_at(collection, x):
    """(lower, upper) of a fill_between band at the node x."""
    verts = collection.get_paths()[0].vertices
    at = verts[np.isclose(verts[:, 0], x, rtol=1e-12)]
    return at[:, 1].min(), at[:, 1].max()


@pytest.mark.parametrize("sed_type", ["dnde", "e2dnde"])
def test_spectrum_band_is_the_propagated_error(sed_type):
    model = PowerLaw(index=2.4, amplitude=3e-11)
    cov = np.diag([0.05, 2e-12, 0.0]) ** 2
    cov[0, 1] = cov[1, 0] = 0.3 * 0.05 * 2e-12
    ax = xdl4.plot.spectrum(model, (0.5, 50), covariance=cov, sed_type=sed_type,
                            n_points=31, n_sigma=2)
    energies, value = ax.lines[-1].get_data()
    band = ax.collections[-1]
    for x in energies[[3, 15, 27]]:
        p = propagate(model, [x], sed_type, covariance=cov)
        lo, hi = _band_width_at(band, x)
        np.testing.assert_allclose(hi - lo, 4 * float(p["error"][0]), rtol=1e-9)
        np.testing.assert_allclose(value[np.isclose(energies, x)], p["value"], rtol=1e-12)
    assert ax.get_xlabel() == "Energy [TeV]"
    assert "cm^{-2}" in ax.get_ylabel()
    # integral flux above E; and no band without errors
    ax = xdl4.plot.spectrum(model, (1, 10), covariance=cov, sed_type="flux", n_points=5)
    x, y = ax.lines[-1].get_data()
    np.testing.assert_allclose(y, model.integral(x, 10.0), rtol=1e-9)
    assert "(>E)" in ax.get_ylabel()
    ax = xdl4.plot.spectrum(PowerLaw(index=2.5), (1, 10))
    assert not ax.collections


def test_sed_points_upper_limits_and_model_band(kinds):
    fp = kinds["flux_points"]
    models = _models("flux_points")
    result = xdl4.fit(fp, models)
    ax = fp.dl4.plot.sed(models, result=result)
    e = fp.energy.values
    det = ~fp.is_ul.values
    x, y = ax.containers[0].lines[0].get_data()
    np.testing.assert_allclose(x, e[det])
    np.testing.assert_allclose(y, (fp.dnde.values * e**2)[det])  # e2dnde by default
    uls = ax.containers[1]  # upper limits: arrows from the limit downwards
    assert uls.lines[1]  # the arrow heads
    tops = [max(seg[:, 1]) for seg in uls.lines[2][-1].get_segments()]
    np.testing.assert_allclose(tops, (fp.dnde_ul.values * e**2)[~det])
    band = next(c for c in ax.collections if isinstance(c, PolyCollection))
    energies, _ = ax.lines[-1].get_data()
    for x_ in energies[[5, 50, 90]]:
        p = propagate(models["src"], [x_], "e2dnde", result=result)
        lo, hi = _band_width_at(band, x_)
        np.testing.assert_allclose(hi - lo, 2 * float(p["error"][0]), rtol=1e-9)
    assert ax.get_xlabel() == "Energy [TeV]" and "TeV" in ax.get_ylabel()
    ax = fp.dl4.plot.sed(sed_type="dnde")
    _, y = ax.containers[0].lines[0].get_data()
    np.testing.assert_allclose(y, fp.dnde.values[det])


def test_sed_likelihood_profiles_as_colour_map():
    e_edges = np.array([1.0, 2.0, 4.0])
    norm_scan = np.linspace(0.2, 3.0, 15)
    stat_scan = np.stack([(norm_scan - 1.0) ** 2 / 0.1**2, (norm_scan - 1.2) ** 2 / 0.3**2])
    fp = xdl4.create_flux_points(e_edges, sed_type="likelihood", norm=[1.0, 1.2],
                                 norm_err=[0.1, 0.3], ref_dnde=[1e-11, 2e-12])
    fp["norm_scan"] = (("energy", "scan"), np.stack([norm_scan] * 2))
    fp["stat_scan"] = (("energy", "scan"), stat_scan)
    ax = fp.dl4.plot.sed(sed_type="dnde")
    mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
    assert "Δ stat" in mesh.colorbar.ax.get_ylabel()
    z = mesh.get_array()
    assert z.shape[1] == 2 and float(z.min()) >= 0
    y = mesh.get_coordinates()[:, 0, 1]  # the y edges
    yc = np.sqrt(y[:-1] * y[1:])
    step = y[1] / y[0]
    for j, best in enumerate([1.0 * 1e-11, 1.2 * 2e-12]):  # norm x ref_dnde
        assert 1 / step <= yc[int(np.argmin(z[:, j]))] / best <= step, j
    # blank beyond a bin's scan: the second bin was scanned up to 3 x 2e-12
    assert np.ma.getmaskarray(z)[yc > 3 * 2e-12 * step, 1].all()
    _, y = ax.containers[0].lines[0].get_data()
    np.testing.assert_allclose(y, [1e-11, 1.2 * 2e-12])


def test_light_curve_against_time():
    from pathlib import Path

    lc = xdl4.open_dataset(Path(__file__).parent / "data" / "lc_dnde.fits")
    ax = lc.dl4.plot.sed()
    from xdl4.axes import time_edges

    start, stop = time_edges(lc)
    mid = 0.5 * (start.mjd + stop.mjd)
    det = ~lc.is_ul.values[:, 0]
    x, y = ax.containers[0].lines[0].get_data()
    np.testing.assert_allclose(x, mid[det])
    np.testing.assert_allclose(y, lc.dnde.values[det, 0])
    assert ax.get_xlabel().startswith("Time [MJD")
    assert "cm^{-2}" in ax.get_ylabel()


# -- 6. stacking ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["map", "spectrum_onoff"])
def test_stacking_figure_conserves_npred(kinds, kind):
    make = (lambda s: xdl4.examples.map_dataset(s, width=1.0, binsz=0.1)) if kind == "map" \
        else (lambda s: xdl4.examples.spectrum_dataset(s, onoff=True))
    runs = xr.concat([make(s) for s in range(3)], "obs")
    models = _models(kind)
    fig = runs.dl4.plot.stacking(models)
    npred_ax = next(ax for ax in fig.axes if "per energy" in ax.get_title())
    steps = [p for p in npred_ax.patches if isinstance(p, StepPatch)]
    assert len(steps) == 4  # three runs and their sum
    per_run = []
    for i in range(3):
        run = runs.isel(obs=i)
        pred = run.dl4.npred_signal(models) if kind.endswith("onoff") else \
            run.dl4.npred(models)
        pred = pred.where(run.mask_safe, 0)
        per_run.append(pred.sum([d for d in pred.dims if d != "energy"]).values)
    total, edges, _ = steps[-1].get_data()
    np.testing.assert_allclose(total, np.sum(per_run, axis=0), rtol=1e-12)
    np.testing.assert_allclose(edges, runs.dl4.energy_edges.value)
    _, stacked = npred_ax.lines[0].get_data()
    np.testing.assert_allclose(stacked, total, rtol=1e-4)
    kernels = [ax for ax in fig.axes if ax.get_title().startswith("EDISP")]
    assert len(kernels) == 4 and kernels[-1].get_title() == "EDISP, stacked"
    with pytest.raises(ValueError, match="obs"):
        kinds[kind].dl4.plot.stacking(models)


# -- real data ------------------------------------------------------------------------------

def test_real_map_and_onoff_spectrum(data_dir):
    ds = xdl4.open_dataset(data_dir / "gammapy" / "map_dataset.fits.gz")
    models = xdl4.read_models(data_dir / "gammapy" / "map_dataset_models.yaml")
    fig = ds.dl4.plot.peek()
    counts_ax = fig.axes[0]
    np.testing.assert_array_equal(counts_ax.images[0].get_array().filled(np.nan),
                                  _safe_sum(ds, ds.counts))
    _assert_lon_left(counts_ax, ds.dl4.grid)
    ds.dl4.plot.residuals(models)
    spec = xdl4.open_dataset(data_dir / "gammapy" / "spectrum_onoff" / "pha_sonoff.fits")
    fig = spec.dl4.plot.peek()
    values, edges, _ = next(p for p in fig.axes[0].patches
                            if isinstance(p, StepPatch)).get_data()
    np.testing.assert_allclose(edges, spec.dl4.energy_edges.to_value("TeV"))
    np.testing.assert_array_equal(values, spec.counts.values)


def test_plain_xarray_plots_are_labelled(data_dir):
    """Variables carry long names and no empty units: xarray's own plots read "Counts",
    not "counts []"; axes are named; energies carry their unit (OGIP: keV, labelled so)."""
    import matplotlib.pyplot as plt

    ds = xdl4.open_dataset(data_dir / "gammapy" / "map_dataset.fits.gz")
    mesh = ds.counts.sum("energy", keep_attrs=True).plot()
    assert mesh.colorbar.ax.get_ylabel() == "Counts"
    plt.close("all")
    line = ds.exposure.isel(lat=30, lon=30).plot()[0]
    assert line.axes.get_xlabel() == "True energy [TeV]"
    assert line.axes.get_ylabel().startswith("Exposure [")
    plt.close("all")
    ogip = xdl4.open_dataset(data_dir / "gammapy" / "spectrum_onoff" / "pha_sonoff.fits")
    ax = ogip.counts.plot()[0].axes
    assert ax.get_xlabel().startswith("Reconstructed energy [") and ax.get_ylabel() == "Counts"
    plt.close("all")


def test_plain_xarray_recipes_of_the_plots_page(data_dir):
    """docs/plots.md: ``xincrease=False`` puts longitude increasing to the left (the lon
    coordinate is stored in pixel order), and a copy without the grid-mapping coordinates
    has a title without them."""
    import matplotlib.pyplot as plt

    ds = xdl4.open_dataset(data_dir / "gammapy" / "map_dataset.fits.gz")
    image = ds.counts.sum("energy", keep_attrs=True)
    assert image.lon.values[0] > image.lon.values[-1]  # CDELT1 < 0: pixel order
    left, right = image.plot(xincrease=False).axes.get_xlim()
    assert left > right
    plt.close("all")
    assert "spatial_ref" in image.plot().axes.get_title()  # xarray's title: see the page
    plt.close("all")
    title = image.drop_vars(["spatial_ref", "irf_spatial_ref"]).plot().axes.get_title()
    assert "spatial_ref" not in title
    plt.close("all")


def test_image_titles_give_the_energy_range_summed(kinds):
    """The title's range is that of the bins summed: the selected bins that are safe."""
    ds = kinds["map"]
    safe = ds.mask_safe.any(["lat", "lon"]).values
    low = ds.dl4.energy_edges.to_value("TeV")[np.flatnonzero(safe)[0]]
    assert low > 0.2  # the example's safe range starts above the axis
    title = ds.dl4.plot.image("counts").get_title()
    assert f"{low:.3g}–100 TeV (safe bins)" in title, title
    plt.close("all")
    assert "1–10 TeV" in ds.dl4.plot.image("counts", energy=(1, 10)).get_title()
    plt.close("all")
