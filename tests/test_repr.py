"""Summaries in notebooks: the ``ds.dl4`` repr (text and HTML) on every kind, on runs along
``obs``, on lazy data and on datasets of unknown kind; ``xdl4.summary`` of many datasets."""

import re

import dask
import numpy as np
import pytest
import xarray as xr

import xdl4
from xdl4.schema import Kind
from xdl4.validation import with_name


@pytest.fixture(scope="module")
def kinds():
    return xdl4.examples.all_kinds(seed=0)


def rows(text: str) -> dict:
    """The ``field  value`` rows of a text summary."""
    out = {}
    for line in text.splitlines()[1:]:
        m = re.match(r"  (\S+(?: \S+)?)\s{2,}(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def cells(html: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", html, flags=re.S)


# -- one dataset ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["map", "map_onoff", "spectrum", "spectrum_onoff",
                                  "flux_points"])
def test_every_kind_text_and_html(kinds, kind):
    ds = kinds[kind]
    info = ds.dl4.info()
    text = repr(ds.dl4)
    stat = xdl4.KINDS[kind].statistic
    assert text.splitlines()[0] == f"<xdl4 {kind} dataset {ds.dl4.name!r} ({stat})>"
    r = rows(text)
    html = ds.dl4._repr_html_()
    assert html.startswith("<div><b>") and html.endswith("</div>")
    assert f"{kind} dataset &#x27;{ds.dl4.name}&#x27; ({stat})" in html
    td = cells(html)
    for field, value in r.items():  # the HTML holds the same rows
        assert field in td and value in [c.replace("&#x27;", "'") for c in td]
    if kind == "flux_points":
        assert r["energy"] == "0.3 – 30 TeV (8 bins)"
        assert (r["sed_type"], r["n_points"], r["n_ul"]) == ("dnde", "8", "1")
        return
    assert r["energy"] == "0.1 – 100 TeV (12 bins)"
    assert r["energy_true"] == "0.05 – 200 TeV (24 bins)"
    assert r["energy safe"] == "0.3162 – 100 TeV"
    assert r["counts"] == f"{info['counts']:.0f}" == ("3889" if "map" in kind else "1160")
    assert r["excess"] == f"{info['excess']:.6g}"
    assert r["sqrt_ts"] == f"{info['sqrt_ts']:.6g}"
    assert r["livetime"] == "3600 s"
    unit = ds.exposure.attrs["units"]
    assert r["exposure_min"] == f"{info['exposure_min']:.6g} {unit}" and unit  # with its unit
    if kind.startswith("map"):
        assert r["grid"] == ("60 x 60 pixels of 0.05 deg, icrs CAR, centre "
                             "(83.6300, 22.0100)")
        assert r["irf grid"] == "15 x 15 pixels"
    else:
        assert r["region"] == "icrs;circle(83.63,22.01,0.2)"
    if kind.endswith("onoff"):
        assert r["alpha"] == f"{info['alpha']:.6g}" and "counts_off" in r
    else:
        assert r["background"] == f"{info['background']:.6g}"


def test_cutout_grid_centre_and_fit_range(kinds):
    ds = kinds["map"].dl4.cutout((83.63, 22.01), 1.0)
    ds["mask_fit"] = ds["mask_safe"] & (ds["energy"] < 10)
    r = rows(repr(ds.dl4))
    assert r["grid"].startswith("20 x 20 pixels of 0.05 deg, icrs CAR, centre (83.6")
    assert r["energy fit"] == "0.3162 – 10 TeV"


def test_light_curve(kinds):
    lc = xdl4.open_dataset(__import__("pathlib").Path(__file__).parent / "data" / "lc_dnde.fits")
    r = rows(repr(lc.dl4))
    assert r["time"] == "MJD 55197.00000 – 55201.50000 tt (5 bins)"
    assert r["n_time_bins"] == "5" and r["n_points"] == "10" and r["n_ul"] == "1"


def test_html_escapes(kinds):
    ds = with_name(kinds["spectrum"], "<script>x</script>")
    assert "<script>" not in ds.dl4._repr_html_()
    assert "&lt;script&gt;x&lt;/script&gt;" in ds.dl4._repr_html_()


# -- never raises ------------------------------------------------------------------------------

@pytest.mark.parametrize("attrs", [{"dl4_kind": "nope"}, {"dl4_kind": None}, {}])
def test_unknown_or_invalid_kind(kinds, attrs):
    ds = with_name(kinds["spectrum"], "odd")
    ds.attrs = {"name": "odd", **{k: v for k, v in attrs.items() if v is not None}}
    text = repr(ds.dl4)
    assert text.startswith("<xdl4 dataset 'odd' of unknown kind>")
    r = rows(text)
    assert r["problem"].startswith("DL4ValidationError")
    assert r["dims"] == "energy: 12, bound: 2, energy_true: 24, gti: 1"
    assert r["variables"].startswith("counts, exposure")
    html = xr.Dataset().dl4._repr_html_()
    assert "of unknown kind" in html and "DL4ValidationError" in html


def test_a_kind_whose_info_fails_or_is_missing():
    ds = xdl4.create("spectrum", [1, 10], counts=[5.0], exposure=[1e12])
    ds = ds.drop_vars([v for v in ds.data_vars if v not in ("counts", "exposure")]
                      ).assign_attrs(dl4_kind="toy_repr", name="t")

    def boom(ds, models=None):
        raise RuntimeError("no info today")

    try:
        xdl4.kinds.register(Kind("toy_repr", "cash", "region", ("counts", "exposure")),
                            {"info": boom})
        r = rows(repr(ds.dl4))
        assert r["energy"] == "1 – 10 TeV (1 bins)"
        assert r["info"] == "not available (RuntimeError: no info today)"
        xdl4.kinds.register(Kind("toy_repr", "cash", "region", ("counts", "exposure")), {},
                            replace=True)
        assert "KindError: info is not defined for toy_repr" in repr(ds.dl4)
        assert "info is not defined" in ds.dl4._repr_html_()
    finally:
        xdl4.kinds.unregister("toy_repr")


# -- runs along obs ------------------------------------------------------------------------------

def _runs(kinds, n, **coords):
    one = kinds["spectrum_onoff"].drop_vars("obs")  # runs without names
    runs = xr.concat([one] * n, "obs")
    return runs.assign_coords(**coords) if coords else runs


def test_runs_with_coordinates_and_no_per_run_info(kinds, monkeypatch):
    runs = _runs(kinds, 3, obs=["r1", "r2", "r3"], obs_id=("obs", [11, 12, 13]),
                 zenith=("obs", [10.5, 20.0, 30.25]))
    behaviour = xdl4.kinds.get("spectrum_onoff")
    monkeypatch.setitem(behaviour.operations, "info", lambda *a, **k: 1 / 0)  # never called
    text = repr(runs.dl4)
    r = rows(text)
    assert r["runs"] == "3: r1, r2, r3"
    assert r["counts"] == "3480 (all runs, safe mask)" and r["livetime"] == "10800 s (all runs)"
    lines = text.splitlines()
    i = lines.index("  run coordinates:")
    assert [li.split() for li in lines[i + 1:i + 5]] == [
        ["obs", "obs_id", "zenith"], ["r1", "11", "10.5"], ["r2", "12", "20"],
        ["r3", "13", "30.25"]]
    html = runs.dl4._repr_html_()
    assert "<caption>runs (3)</caption>" in html and "<th>zenith</th>" in html
    assert '<td style="text-align:right">30.25</td>' in html


def test_many_runs_are_counted_not_listed(kinds):
    runs = _runs(kinds, 12, obs=[f"run{i}" for i in range(12)])
    text = repr(runs.dl4)
    assert rows(text)["runs"] == ("12: run0, run1, run2, run3, run4, run5, run6, run7, run8, "
                                  "run9, ... (2 more)")
    assert "<caption>runs (12, first 10 shown)</caption>" not in runs.dl4._repr_html_()
    runs = runs.assign_coords(livetime_run=("obs", np.arange(12.0)))
    assert "    ... (2 more runs)" in repr(runs.dl4)
    assert "<caption>runs (12, first 10 shown)</caption>" in runs.dl4._repr_html_()
    assert rows(repr(_runs(kinds, 2).dl4))["runs"] == "2 (no obs coordinate)"
    assert text.splitlines()[0] == "<xdl4 spectrum_onoff dataset (wstat, 12 runs)>"
    unnamed = kinds["map"].drop_vars("obs").assign_attrs(name="")
    assert repr(unnamed.dl4).splitlines()[0] == "<xdl4 map dataset (cash)>"


class NoCompute:
    def __call__(self, dsk, keys, **kwargs):
        raise AssertionError("a repr computed dask data")


def test_lazy_data_is_not_computed(kinds, tmp_path):
    kinds["map"].dl4.to_netcdf(tmp_path / "map.nc")
    for name in ("a", "b"):
        with_name(kinds["spectrum_onoff"], name).dl4.to_netcdf(tmp_path / f"{name}.nc")
    lazy = xdl4.open_dataset(tmp_path / "map.nc", chunks={})
    runs = xr.concat([xdl4.open_dataset(tmp_path / f"{n}.nc", chunks={}) for n in "ab"],
                     "obs")
    with dask.config.set(scheduler=NoCompute()):
        r = rows(repr(lazy.dl4))
        html = lazy.dl4._repr_html_() + runs.dl4._repr_html_()
        rr = rows(repr(runs.dl4))
    assert r["info"].startswith("lazy (dask") and r["energy safe"] == "lazy: not computed"
    assert r["grid"].startswith("60 x 60 pixels of 0.05 deg, icrs CAR")
    assert rr["runs"] == "2: a, b" and "counts" not in rr
    assert "lazy (dask" in html
    # a small file read lazily without dask: read for its summary
    on_disk = xr.open_dataset(tmp_path / "a.nc")
    assert rows(repr(on_disk.dl4))["counts"] == "1160"


# -- xdl4.summary ------------------------------------------------------------------------------

def test_summary_of_a_list_and_a_datatree(kinds):
    datasets = list(kinds.values())
    table = xdl4.summary(datasets)
    assert table.sizes == {"dataset": 5}
    assert table["dataset"].values.tolist() == [d.dl4.name for d in datasets]
    assert table["kind"].values.tolist() == list(kinds)
    for i, ds in enumerate(datasets):
        info = ds.dl4.info()
        for key in ("counts", "background", "excess", "sqrt_ts", "livetime", "n_fit_bins"):
            np.testing.assert_equal(table[key].values[i], float(info.get(key, np.nan)))
        assert table["stat_type"].values[i] == info["stat_type"]
    assert table["livetime"].attrs["units"] == "s"
    text = repr(table)
    assert "Dimensions:     (dataset: 5)" in text and "sqrt_ts" in text
    assert "sqrt_ts" in table._repr_html_()
    tree = xr.DataTree.from_dict({"/hess/a": kinds["spectrum"], "/hess/b": kinds["map"],
                                  "/lat": kinds["flux_points"]})
    t2 = xdl4.summary(tree)
    assert t2["dataset"].values.tolist() == ["lat", "hess/a", "hess/b"]  # the tree's order
    assert t2["counts"].values[1:].tolist() == [table["counts"].values[2],
                                                table["counts"].values[0]]


def test_summary_of_runs(kinds):
    runs = _runs(kinds, 3, obs=["r1", "r2", "r3"])
    table = xdl4.summary(runs)
    assert table.sizes == {"obs": 3} and table["obs"].values.tolist() == ["r1", "r2", "r3"]
    info = kinds["spectrum_onoff"].dl4.info()
    np.testing.assert_array_equal(table["sqrt_ts"].values, [info["sqrt_ts"]] * 3)
    assert xdl4.summary(_runs(kinds, 2))["obs"].values.tolist() == ["run[0]", "run[1]"]
    assert xdl4.summary(kinds["map"])["dataset"].values.tolist() == ["example"]
    with pytest.raises(TypeError, match="summary takes"):
        xdl4.summary([runs])


def test_notebook_display_uses_the_html_reprs(kinds):
    """What a notebook cell shows: IPython's display formatter picks every HTML repr."""
    pytest.importorskip("IPython")
    from IPython.core.formatters import DisplayFormatter

    from xdl4.models import Models, PowerLaw, SkyModel

    models = Models([SkyModel(PowerLaw(index=2.0, amplitude=1e-11), name="src")])
    result = xdl4.fit(kinds["spectrum_onoff"], models)
    formatter = DisplayFormatter()
    for obj, needle in [(kinds["map"].dl4, "map dataset"), (models, "Models: 1 models"),
                        (models.parameters, "ModelsParameters"), (result, "FitResult"),
                        (xdl4.summary(list(kinds.values())), "xr-wrap")]:
        data, _ = formatter.format(obj)
        assert needle in data["text/html"], type(obj)
        assert data["text/plain"] == repr(obj)


def test_region_line_is_rounded_for_reading(data_dir):
    """The summary shows the on-region to 6 digits; the dataset keeps it exactly."""
    ds = xdl4.open_dataset(data_dir / "gammapy" / "spectrum_onoff" / "pha_sonoff.fits")
    assert "icrs;circle(83.63,22.01,0.15)" in repr(ds.dl4)
    assert str(ds.dl4.region) == "icrs;circle(83.63,22.01,0.14999999999666613)"
