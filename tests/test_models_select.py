"""Models.freeze / unfreeze / select with gammapy 2.1's semantics, and the parameter tables
of Models / Parameters / ModelsParameters (text and HTML)."""

import numpy as np
import pytest

from xdl4.models import (
    FoVBackgroundModel,
    GaussianSpatialModel,
    LogParabola,
    Models,
    PointSpatialModel,
    PowerLaw,
    SkyModel,
)
from xdl4.models.temporal import ExpDecayTemporalModel


def make_models() -> Models:
    a = SkyModel(PowerLaw(), PointSpatialModel(lon_0=83.6, lat_0=22.0), name="a")
    b = SkyModel(LogParabola(), name="b", datasets_names=["d2"])
    c = SkyModel(PowerLaw() + PowerLaw(), name="c")
    return Models([a, b, c, FoVBackgroundModel("d")])


def frozen(models: Models) -> dict:
    return {lab: p.frozen for lab, p in models.parameters.items()}


FROZEN_BY_DEFAULT = {"a.reference", "b.reference", "c.model1.reference",
                     "c.model2.reference", "d-bkg.tilt", "d-bkg.reference"}


def test_freeze_all_and_unfreeze_restores_defaults():
    # the flags gammapy 2.1 gives for the same models (compound components aside: gammapy
    # leaves them frozen after unfreeze(), xdl4 restores their components' defaults)
    ms = make_models()
    ms.freeze()
    assert all(frozen(ms).values())
    ms.unfreeze()
    assert {lab for lab, fz in frozen(ms).items() if fz} == FROZEN_BY_DEFAULT


def test_freeze_and_unfreeze_by_model_type():
    ms = make_models()
    ms.freeze("spectral")
    fz = frozen(ms)
    assert not fz["a.lon_0"] and not fz["a.lat_0"]  # spatial untouched
    assert fz["a.index"] and fz["b.alpha"] and fz["c.model2.index"] and fz["d-bkg.norm"]
    ms.unfreeze("spatial")  # nothing to restore: spectral stays frozen
    assert frozen(ms) == fz
    ms.freeze("spatial")
    assert frozen(ms)["a.lon_0"]
    ms.unfreeze("spectral")
    fz = frozen(ms)
    assert not fz["a.index"] and fz["a.reference"] and not fz["d-bkg.norm"] and fz["d-bkg.tilt"]
    assert fz["a.lon_0"]  # spatial still frozen
    # background models have no spatial part to freeze; models without a spatial or
    # temporal component are skipped (gammapy 2.1 raises AttributeError there)
    ms.freeze("temporal")
    assert frozen(ms) == fz


def test_temporal_and_linked_parameters():
    decay = ExpDecayTemporalModel(t0=0.05)
    src = SkyModel(PowerLaw(), GaussianSpatialModel(), temporal=decay, name="flare")
    other = SkyModel(PowerLaw(), name="other")
    other.spectral.index = src.spectral.index  # linked: one object
    ms = Models([src, other])
    ms.freeze("temporal")
    assert ms.parameters["flare.t0"].frozen and not ms.parameters["flare.index"].frozen
    ms.unfreeze("temporal")
    assert not ms.parameters["flare.t0"].frozen and ms.parameters["flare.t_ref"].frozen
    ms.select(name_substring="other").freeze("spectral")
    assert ms.parameters["flare.index"].frozen  # the shared object
    with pytest.raises(ValueError, match="model_type must be one of"):
        ms.freeze("spatiall")


def test_select_as_gammapy():
    ms = make_models()
    assert ms.select(tag="pl", model_type="spectral").names == ["a"]
    assert ms.select(tag="PowerLawSpectralModel", model_type="spectral").names == ["a"]
    assert ms.select(tag="SkyModel").names == ["a", "b", "c"]
    assert ms.select(tag=["fov-bkg", "sky-model"]).names == ["a", "b", "c", "d-bkg"]
    assert ms.select(tag="point", model_type="spatial").names == ["a"]
    assert ms.select(datasets_names="d").names == ["a", "c", "d-bkg"]
    assert ms.select(datasets_names=["d2"]).names == ["a", "b", "c"]
    assert ms.select(name_substring="bkg").names == ["d-bkg"]
    assert ms.select(name_substring="a", datasets_names="d2").names == ["a"]
    assert ms.select(frozen=True).names == []
    ms.freeze("spectral")
    assert ms.select(frozen=True).names == ["b", "c", "d-bkg"]
    assert ms.select(frozen=False).names == ["a"]
    sel = ms.select(name_substring="c")
    assert isinstance(sel, Models) and sel[0] is ms["c"] and len(sel) == 1


def test_select_keeps_the_covariance_block():
    ms = make_models()
    n = len(ms.parameters)
    ms.covariance = np.arange(n * n, dtype=float).reshape(n, n)
    sel = ms.select(name_substring="b")  # b and d-bkg
    assert sel.names == ["b", "d-bkg"]
    idx = [i for i, lab in enumerate(ms.parameters.keys()) if lab.startswith(("b.", "d-"))]
    np.testing.assert_array_equal(sel.covariance, ms.covariance[np.ix_(idx, idx)])
    assert ms.select(tag="nothing").covariance.shape == (0, 0)


# -- parameter tables ------------------------------------------------------------------------

def test_models_repr_text_and_html():
    ms = make_models()
    ms.parameters["a.index"].value = 2.345678
    ms.parameters["a.index"].error = 0.0123
    ms["b"].spectral.alpha = ms["a"].spectral.index  # a link: labelled b.index
    text = repr(ms)
    assert text.startswith("Models: 4 models, ")
    lines = text.splitlines()
    header = next(li for li in lines if li.split()[:2] == ["name", "value"])
    assert header.split() == ["name", "value", "error", "unit", "min", "max", "frozen", "linked"]
    row = next(li for li in lines if li.split()[0] == "a.index").split()
    assert row[:3] == ["a.index", "2.34568", "0.0123"] and row[-1] == "b.index"
    assert "PointSpatialModel" in text and "d2" in text and "FoVBackgroundModel" in text
    ref = next(li for li in lines if li.split()[0] == "a.reference").split()
    assert ref == ["a.reference", "1", "0", "TeV", "nan", "nan", "True"]
    html = ms._repr_html_()
    assert html.count("<table") == 2 and "<th>linked</th>" in html
    assert "<td style=\"text-align:left\">a.index</td>" in html
    assert ">2.34568<" in html and ">b.index<" in html and "cm-2 s-1 TeV-1" in html


def test_html_is_escaped():
    ms = Models([SkyModel(PowerLaw(), name="<b>x&y</b>")])
    html = ms._repr_html_()
    assert "<b>x&y</b>" not in html and "&lt;b&gt;x&amp;y&lt;/b&gt;" in html


def test_parameters_reprs():
    pl = PowerLaw(index=2.5)
    pl.amplitude.min = 0.0
    text = repr(pl.parameters)
    assert text.startswith("Parameters: 3 parameters, 2 free")
    assert text.splitlines()[2].split() == ["index", "2.5", "0", "nan", "nan", "False"]
    assert text.splitlines()[3].split()[3:6] == ["cm-2", "s-1", "TeV-1"]
    assert text.splitlines()[3].split()[6] == "0"  # amplitude min
    assert "<td style=\"text-align:right\">2.5</td>" in pl.parameters._repr_html_()
    mp = make_models().parameters
    assert repr(mp).startswith("ModelsParameters: 18 parameters, 12 free")
    assert "d-bkg.norm" in repr(mp) and "<th>frozen</th>" in mp._repr_html_()
    assert repr(Models([])) == "Models: 0 models, 0 free parameters"


def test_models_copy_is_deep_and_keeps_links():
    from xdl4.models import Models, PowerLaw, SkyModel

    a, b = SkyModel(PowerLaw(), name="a"), SkyModel(PowerLaw(), name="b")
    b.spectral.index = a.spectral.index  # linked
    models = Models([a, b], covariance=np.eye(6))
    other = models.copy()
    def unlinked(m):  # link labels are new for new parameters (as gammapy's)
        return str(m.to_dict(full_output=True)).replace(
            m["a"].spectral.index.link_label or "", "LINK")

    assert unlinked(other) == unlinked(models)
    assert other["a"].spectral.index is other["b"].spectral.index  # still linked
    other["a"].spectral.index.value = 3.3
    assert models["a"].spectral.index.value != 3.3 and other["b"].spectral.index.value == 3.3
    np.testing.assert_array_equal(other.covariance, models.covariance)
    assert other.covariance is not models.covariance
