import os
from pathlib import Path

import pytest

import xdl4


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real-data folder (env XDL4_DATA); tests needing it skip without it."""
    path = os.environ.get("XDL4_DATA")
    if not path:
        pytest.skip("XDL4_DATA is not set: real-data tests need the shared gammapy files")
    path = Path(path)
    if not path.is_dir():
        pytest.skip(f"XDL4_DATA={path} is not a folder")
    return path


@pytest.fixture(scope="session")
def reference(data_dir):
    import json

    ref = data_dir.parent / "reference" / "gammapy_reference.json"
    if not ref.exists():
        pytest.skip(f"no reference numbers at {ref}")
    return json.loads(ref.read_text())


@pytest.fixture(scope="session")
def examples():
    return xdl4.examples.all_kinds(seed=0)
