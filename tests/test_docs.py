"""The docs: the data-model page documents every variable of the registry; the plots
page's figures are made by docs/make_plots.py."""

import importlib.util
import re
from pathlib import Path

import pytest

import xdl4

DOCS = Path(__file__).parent.parent / "docs"


def test_data_model_page_lists_every_variable():
    text = (DOCS / "data-model.md").read_text()
    for name in xdl4.VARIABLES:
        assert f"`{name}`" in text, name
    for kind in xdl4.KINDS:
        assert f"`{kind}`" in text, kind


def test_plots_page_figures_are_made_by_its_script(data_dir, tmp_path):
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("make_plots", DOCS / "make_plots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = module.make(tmp_path, data_dir)
    assert all(p.parent == tmp_path and p.stat().st_size > 5000 for p in made)
    shown = set(re.findall(r"\(images/([\w-]+\.png)\)", (DOCS / "plots.md").read_text()))
    assert shown == {p.name for p in made}
    assert shown == {p.name for p in (DOCS / "images").glob("*.png")}  # committed ones
