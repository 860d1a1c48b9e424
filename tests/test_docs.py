"""The docs: every python example of README.md and docs/ runs; the data-model page documents
every variable of the registry; the plots page's figures are made by docs/make_plots.py."""

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


#: a ```python block of README.md or docs/*.md (its indent, its code)
BLOCK = re.compile(r"([ \t]*)```python\n(.*?)\n[ \t]*```", re.S)
PAGES = [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", [p for p in PAGES if "```python" in p.read_text()],
                         ids=lambda p: p.name)
def test_code_blocks_run_from_the_shared_data_folder(page, data_dir, tmp_path, monkeypatch):
    """Every example of the README and the docs runs top to bottom (one namespace per
    page) from a folder laid out as the shared data (what the pages say to run them
    from); files they write land in a scratch copy."""
    pytest.importorskip("matplotlib")
    import textwrap

    import matplotlib.pyplot as plt

    for entry in data_dir.iterdir():
        (tmp_path / entry.name).symlink_to(entry)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = BLOCK.findall(page.read_text())
    assert blocks
    for i, (indent, code) in enumerate(blocks):
        source = textwrap.dedent(indent + code)
        exec(compile(source, f"{page.name}, python block {i}", "exec"), namespace)
    plt.close("all")
