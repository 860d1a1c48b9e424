"""Catalogue, MODELS category: problems in a models YAML raise ``xdl4.ModelError`` naming
the component and the parameter (missing parameters and values outside the bounds warn);
``xdl4.models.check_fit_start`` refuses a fit that would start outside the bounds or with
no bin left to fit."""

import numpy as np
import pytest
import xarray as xr

import xdl4
from xdl4 import DL4FileNotFoundError, DL4Warning, FitError, ModelError
from xdl4.models import Models, PowerLaw, SkyModel, check_fit_start, count_fit_bins

PL = """components:
- name: src
  type: SkyModel
  spectral:
    type: PowerLawSpectralModel
    parameters:
{params}
"""
FULL = [("index", "value: 2.0"), ("amplitude", "value: 1.0e-12\n      unit: cm-2 s-1 TeV-1"),
        ("reference", "value: 1.0\n      unit: TeV")]


def _yaml(tmp_path, params=FULL, text=None):
    body = "\n".join(f"    - name: {n}\n      {rest}" for n, rest in params)
    path = tmp_path / "m.yaml"
    path.write_text(text if text is not None else PL.format(params=body))
    return path


def test_full_yaml_reads_quietly(tmp_path, recwarn):
    assert xdl4.read_models(_yaml(tmp_path)).parameters["src.index"].value == 2.0
    assert not [w for w in recwarn if issubclass(w.category, DL4Warning)]


def test_duplicate_parameter(tmp_path):
    with pytest.raises(ModelError, match=r"m\.yaml.*parameter 'index' appears twice"):
        xdl4.read_models(_yaml(tmp_path, [*FULL, ("index", "value: 3.0")]))


def test_unknown_parameter(tmp_path):
    with pytest.raises(ModelError, match="unknown parameter 'indx'"):
        xdl4.read_models(_yaml(tmp_path, [*FULL, ("indx", "value: 3.0")]))


def test_missing_parameter_warns(tmp_path):
    with pytest.warns(DL4Warning, match=r"\['amplitude'\] not given.*default"):
        m = xdl4.read_models(_yaml(tmp_path, [FULL[0], FULL[2]]))
    assert m.parameters["src.amplitude"].value == PowerLaw().amplitude.value


def test_min_greater_than_max(tmp_path):
    with pytest.raises(ModelError, match="parameter 'index' has min 4 > max 1"):
        xdl4.read_models(_yaml(tmp_path, [("index", "value: 2.0\n      min: 4\n      max: 1"),
                                          *FULL[1:]]))


def test_value_outside_bounds_warns(tmp_path):
    with pytest.warns(DL4Warning, match="parameter 'index' value 5 is outside its bounds"):
        xdl4.read_models(_yaml(tmp_path, [("index", "value: 5.0\n      min: 1\n      max: 4"),
                                          *FULL[1:]]))


def test_value_not_a_number(tmp_path):
    with pytest.raises(ModelError, match="value of parameter 'index' is not a number"):
        xdl4.read_models(_yaml(tmp_path, [("index", "value: two"), *FULL[1:]]))


def test_unknown_parameter_field(tmp_path):
    with pytest.raises(ModelError, match="unknown field 'valeu'"):
        xdl4.read_models(_yaml(tmp_path, [("index", "valeu: 2.0"), *FULL[1:]]))


def test_bad_unit(tmp_path):
    with pytest.raises(ModelError, match="amplitude"):
        xdl4.read_models(_yaml(tmp_path, [FULL[0], ("amplitude", "value: 1\n      unit: deg"),
                                          FULL[2]]))


def test_parameters_not_a_list(tmp_path):
    text = PL.format(params="").replace("parameters:\n", "parameters: 3\n")
    with pytest.raises(ModelError, match="'parameters' must be a list"):
        xdl4.read_models(_yaml(tmp_path, text=text))


def test_parameter_entry_without_name(tmp_path):
    with pytest.raises(ModelError, match="without a 'name'"):
        xdl4.read_models(_yaml(tmp_path, text=PL.format(params="    - value: 2.0")))


@pytest.mark.parametrize("text, match", [
    ("components: [\n", "not valid YAML"),
    ("- a\n- b\n", "'components' list"),
    ("components:\n- name: a\n", "component 0 has no 'type'"),
    ("components:\n- name: a\n  type: NoSuchModel\n", "unknown sky model type 'NoSuchModel'"),
    ("components:\n- name: a\n  type: SkyModel\n  spectral:\n    type: Nope\n", "Nope"),
])
def test_yaml_structure_errors(tmp_path, text, match):
    with pytest.raises(ModelError, match=match):
        xdl4.read_models(_yaml(tmp_path, text=text))


def test_duplicate_model_names(tmp_path):
    body = "\n".join(f"    - name: {n}\n      {rest}" for n, rest in FULL)
    one = PL.format(params=body).split("\n", 1)[1]
    with pytest.raises(ModelError, match="unique.*src"):
        xdl4.read_models(_yaml(tmp_path, text="components:\n" + one + one))


@pytest.mark.parametrize("content", [None, b"SIMPLE  = garbage"])
def test_template_file_missing_or_corrupt(tmp_path, content):
    if content is not None:
        (tmp_path / "t.fits").write_bytes(content)
    text = ("components:\n- name: d\n  type: SkyModel\n  spectral:\n"
            "    type: PowerLawNormSpectralModel\n  spatial:\n"
            "    type: TemplateSpatialModel\n    frame: icrs\n    filename: t.fits\n")
    with pytest.raises((ModelError, DL4FileNotFoundError),
                       match=r"m\.yaml: models YAML: component 0 \(d\)"):
        xdl4.read_models(_yaml(tmp_path, text=text))


def test_missing_models_file(tmp_path):
    with pytest.raises(DL4FileNotFoundError, match="nope.yaml"):
        xdl4.read_models(tmp_path / "nope.yaml")


def test_covariance_file_missing_or_wrong(tmp_path):
    path = _yaml(tmp_path)
    path.write_text(path.read_text() + "covariance: m_covariance.dat\n")
    with pytest.raises(DL4FileNotFoundError, match="covariance"):
        xdl4.read_models(path)
    (tmp_path / "m_covariance.dat").write_text("| Parameters | 0 |\n| a | 1.0 |\n")
    with pytest.raises(ModelError, match="covariance"):
        xdl4.read_models(path)


# --------------------------------------------------------------------------------------
# fit start


def _models(index=2.0, lo=1.0, hi=4.0):
    m = Models([SkyModel(PowerLaw(index=index), name="src")])
    p = m.parameters["src.index"]
    p.min, p.max = lo, hi
    return m


def test_start_outside_bounds_refused():
    with pytest.raises(ModelError, match=r"'src\.index' start value 5 is outside its bounds"):
        check_fit_start(_models(index=5.0))


def test_start_nan_refused():
    with pytest.raises(ModelError, match="'src.index' start value is nan"):
        check_fit_start(_models(index=np.nan))


def test_min_above_max_refused():
    with pytest.raises(ModelError, match="min 4 > max 1"):
        check_fit_start(_models(lo=4.0, hi=1.0))


def test_frozen_outside_bounds_is_fine():
    m = _models(index=5.0)
    m.parameters["src.index"].frozen = True
    check_fit_start(m)


def test_every_problem_listed():
    m = _models(index=5.0)
    m.parameters["src.amplitude"].value = np.inf
    with pytest.raises(ModelError, match="src.index.*; parameter 'src.amplitude'"):
        check_fit_start(m)


def test_no_bin_left_to_fit():
    ds = xdl4.examples.spectrum_dataset().assign_attrs(name="s")
    none = ds.assign(mask_fit=~ds.mask_safe)
    with pytest.raises(FitError, match=r"no bin left to fit.*\['s'\]"):
        check_fit_start(_models(), [none])
    check_fit_start(_models(), ds)
    tree = xr.DataTree.from_dict({"/a": none, "/b": ds})
    assert count_fit_bins(tree) == int(ds.mask_safe.sum())
    assert count_fit_bins(ds.drop_vars("mask_safe")) == ds.counts.size


def test_template_readers_called_directly_give_typed_errors(tmp_path):
    from xdl4.models import TemplateSpatialModel
    from xdl4.models.temporal import LightCurveTemplateTemporalModel

    (tmp_path / "junk.fits").write_bytes(b"not a FITS file")
    for read, what in ((TemplateSpatialModel.read, "template"),
                       (LightCurveTemplateTemporalModel.read, "light curve")):
        with pytest.raises(DL4FileNotFoundError, match="nope.fits"):
            read(tmp_path / "nope.fits")
        with pytest.raises(ModelError, match=f"{what} junk.fits: cannot read"):
            read(tmp_path / "junk.fits")
