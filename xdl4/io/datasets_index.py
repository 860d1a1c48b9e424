"""gammapy's datasets YAML index <-> an ``xarray.DataTree`` with one node per dataset."""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path

import xarray as xr
import yaml

from xdl4.io.util import atomic_write, check_overwrite
from xdl4.schema import Kind
from xdl4.validation import dataset_name, kind_record, with_name

YAML_STYLE = {"sort_keys": False, "indent": 4, "width": 80, "default_flow_style": False}


def _resolve(folder: Path, filename: str) -> Path:
    path = Path(os.path.expandvars(filename))
    return folder / path if (folder / path).exists() else path


def open_datasets(path: str | os.PathLike) -> xr.DataTree:
    """Read a datasets index (``datasets: - name, type, filename``); file names are
    resolved from the YAML's folder, ``$VARS`` expanded; the YAML ``name`` wins."""
    from xdl4.io.backends import open_dataset

    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path.name}: not valid YAML: {err}") from err
    if not isinstance(content, dict) or not isinstance(content.get("datasets"), list):
        raise ValueError(f"{path.name}: no 'datasets' list (not a gammapy datasets index)")
    nodes = {}
    for entry in content["datasets"]:
        for key in ("name", "filename"):
            if key not in entry:
                raise ValueError(f"{path.name}: dataset entry {entry} lacks {key!r}")
        name = str(entry["name"])
        if name in nodes:
            raise ValueError(f"{path.name}: dataset name {name!r} appears twice")
        ds = open_dataset(_resolve(path.parent, str(entry["filename"])))
        ds = with_name(ds, name)
        if entry.get("type") == "SpectrumDatasetOnOff" and "mask_fit" in ds:
            ds = ds.drop_vars("mask_fit")  # as gammapy: not part of SpectrumDatasetOnOff I/O
        nodes[name] = ds
    return xr.DataTree.from_dict({f"/{n}": ds for n, ds in nodes.items()})


def dataset_filename(name: str, record: Kind) -> str:
    """gammapy's file name for a dataset of kind ``record`` in an index (formats.md 5.1)."""
    name = name.replace(" ", "_")
    return f"pha_obs{name}.fits" if record.ogip and record.onoff else f"{name}.fits"


def write_datasets(tree: xr.DataTree, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write every dataset of ``tree`` (GADF files beside the YAML) and the index with
    gammapy's checksum line."""
    from xdl4.io.gadf import to_gadf

    path = Path(path)
    check_overwrite(path, overwrite)
    entries, items = [], []
    for node in tree.subtree:
        if not node.has_data:
            continue
        ds = node.to_dataset()
        name = dataset_name(ds) or str(node.name)
        record = kind_record(ds)
        filename = dataset_filename(name, record)
        check_overwrite(path.parent / filename, overwrite)
        entries.append({"name": name, "type": record.gammapy_class, "filename": filename})
        items.append((ds.assign_attrs(name=name), path.parent / filename))
    for ds, fpath in items:
        to_gadf(ds, fpath, overwrite=overwrite)
    text = yaml.safe_dump({"datasets": entries}, **YAML_STYLE)
    text += yaml.safe_dump({"metadata": {"creator": "xdl4 0.1.0",
                                         "date": datetime.datetime.now().isoformat(),
                                         "origin": None}}, **YAML_STYLE)
    text += f"checksum: {hashlib.md5(text.encode()).hexdigest()}\n"
    atomic_write(path, lambda tmp: tmp.write_text(text), overwrite=overwrite)
    return path
