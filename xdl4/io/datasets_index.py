"""gammapy's datasets YAML index <-> an ``xarray.DataTree`` with one node per dataset."""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path

import xarray as xr
import yaml

from xdl4.errors import DL4FileNotFoundError, DL4ValidationError, FormatError
from xdl4.files import check_overwrite, write_all
from xdl4.schema import Kind
from xdl4.validation import dataset_name, kind_record, with_name

YAML_STYLE = {"sort_keys": False, "indent": 4, "width": 80, "default_flow_style": False}


def _resolve(folder: Path, filename: str) -> Path:
    path = Path(os.path.expandvars(filename))
    return folder / path if (folder / path).exists() else path


def _index_entries(path: Path) -> list[dict]:
    """The checked ``datasets`` entries of an index file."""
    if not path.is_file():
        raise DL4FileNotFoundError(f"{path}: file not found")
    try:
        content = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as err:
        raise FormatError(f"{path.name}: not valid YAML: {err}") from err
    if not isinstance(content, dict) or not isinstance(content.get("datasets"), list):
        raise FormatError(f"{path.name}: no 'datasets' list (not a gammapy datasets index)")
    names = set()
    for i, entry in enumerate(content["datasets"]):
        if not isinstance(entry, dict):
            raise FormatError(f"{path.name}: datasets entry {i} is not a mapping: {entry!r}")
        for key in ("name", "filename"):
            if key not in entry:
                raise FormatError(f"{path.name}: dataset entry {entry} lacks {key!r}")
        name = str(entry["name"])
        if name in names:
            raise FormatError(f"{path.name}: dataset name {name!r} appears twice")
        names.add(name)
    return content["datasets"]


def open_datasets(path: str | os.PathLike) -> xr.DataTree:
    """Read a datasets index (``datasets: - name, type, filename``); file names are
    resolved from the YAML's folder, ``$VARS`` expanded; the YAML ``name`` wins. Errors
    name the index and the entry (:class:`xdl4.FormatError`,
    :class:`xdl4.DL4FileNotFoundError`)."""
    from xdl4.io.backends import open_dataset

    path = Path(path)
    nodes = {}
    for entry in _index_entries(path):
        name = str(entry["name"])
        file = _resolve(path.parent, str(entry["filename"]))
        if not file.is_file():
            raise DL4FileNotFoundError(f"{path.name}: dataset {name!r}: file "
                                       f"{entry['filename']!r} not found ({file})")
        ds = with_name(open_dataset(file), name)
        if entry.get("type") == "SpectrumDatasetOnOff" and "mask_fit" in ds:
            ds = ds.drop_vars("mask_fit")  # as gammapy: not part of SpectrumDatasetOnOff I/O
        nodes[name] = ds
    return xr.DataTree.from_dict({f"/{n}": ds for n, ds in nodes.items()})


def dataset_filename(name: str, record: Kind) -> str:
    """gammapy's file name for a dataset of kind ``record`` in an index (formats.md 5.1)."""
    name = name.replace(" ", "_")
    return f"pha_obs{name}.fits" if record.ogip and record.onoff else f"{name}.fits"


def write_datasets(tree: xr.DataTree, path: str | os.PathLike, overwrite: bool = False,
                   checksum: bool = True) -> Path:
    """Write every dataset of ``tree`` (GADF files beside the YAML) and the index with
    gammapy's checksum line, all or nothing: every dataset is validated and serialised
    first, then the files and the index are committed together
    (:func:`xdl4.files.write_all`); ``checksum`` writes FITS CHECKSUM / DATASUM cards."""
    from xdl4.io.gadf import gadf_writer

    path = Path(path)
    check_overwrite(path, overwrite)
    entries, items, files = [], [], {}
    for node in tree.subtree:
        if not node.has_data:
            continue
        ds = node.to_dataset()
        name = dataset_name(ds) or str(node.name)
        try:
            record = kind_record(ds)
        except DL4ValidationError:
            raise FormatError(f"{path.name}: dataset {name!r} has no known dl4_kind "
                              f"({ds.attrs.get('dl4_kind')!r})") from None
        filename = dataset_filename(name, record)
        if filename in files:
            raise FormatError(f"{path.name}: datasets {files[filename]!r} and {name!r} would "
                              f"both be written to {filename!r} (dataset names must differ)")
        files[filename] = name
        fpath = check_overwrite(path.parent / filename, overwrite)
        try:
            writer = gadf_writer(ds.assign_attrs(name=name), fpath, checksum)
        except DL4ValidationError as err:
            raise DL4ValidationError(err.problems, f"{name} ({filename})") from err
        entries.append({"name": name, "type": record.gammapy_class, "filename": filename})
        items.append((fpath, writer))
    text = yaml.safe_dump({"datasets": entries}, **YAML_STYLE)
    text += yaml.safe_dump({"metadata": {"creator": "xdl4 0.1.0",
                                         "date": datetime.datetime.now().isoformat(),
                                         "origin": None}}, **YAML_STYLE)
    text += f"checksum: {hashlib.md5(text.encode()).hexdigest()}\n"
    items.append((path, lambda tmp: tmp.write_text(text)))
    write_all(items, overwrite)
    return path
