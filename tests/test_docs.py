"""The data-model page documents every variable of the registry."""

from pathlib import Path

import xdl4

DOCS = Path(__file__).parent.parent / "docs"


def test_data_model_page_lists_every_variable():
    text = (DOCS / "data-model.md").read_text()
    for name in xdl4.VARIABLES:
        assert f"`{name}`" in text, name
    for kind in xdl4.KINDS:
        assert f"`{kind}`" in text, kind
