"""gammapy's datasets YAML index <-> an ``xarray.DataTree`` with one node per dataset."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
from pathlib import Path

import xarray as xr
import yaml

from xdl4.errors import DL4FileNotFoundError, DL4ValidationError, FormatError
from xdl4.files import check_overwrite, check_readable, write_all
from xdl4.schema import Kind
from xdl4.validation import dataset_name, kind_record, with_name

YAML_STYLE = {"sort_keys": False, "indent": 4, "width": 80, "default_flow_style": False}


def _resolve(folder: Path, filename: str) -> Path:
    path = Path(os.path.expandvars(filename))
    return folder / path if (folder / path).exists() else path


def _index_entries(path: Path) -> list[dict]:
    """The checked ``datasets`` entries of an index file."""
    check_readable(path)
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
    :class:`xdl4.DL4FileNotFoundError`).

    >>> import os, tempfile, xarray as xr, xdl4
    >>> tree = xr.DataTree.from_dict({"run1": xdl4.examples.spectrum_dataset(name="run1")})
    >>> index = xdl4.write_datasets(tree, os.path.join(tempfile.mkdtemp(), "index.yaml"))
    >>> tree = xdl4.open_datasets(index)
    >>> sorted(tree.children), tree["run1"].to_dataset().dl4.kind
    (['run1'], 'spectrum')
    """
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
        group = str(entry.get("group") or "").strip("/")  # the tree level xdl4 wrote
        nodes[f"/{group}/{name}" if group else f"/{name}"] = ds
    return xr.DataTree.from_dict(nodes)


#: file names longer than this (bytes) are shortened (file systems allow 255)
FILENAME_MAX = 200


def dataset_filename(name: str, record: Kind) -> str:
    """gammapy's file name for a dataset of kind ``record`` in an index (formats.md 5.1);
    a name too long for a file name is cut and given a hash of the whole name.

    >>> import xdl4
    >>> cash_map = xdl4.kinds.get("map").record
    >>> dataset_filename("run 1", cash_map), len(dataset_filename("x" * 300, cash_map))
    ('run_1.fits', 156)
    """
    name = name.replace(" ", "_").replace("/", "_")
    prefix = "pha_obs" if record.ogip and record.onoff else ""
    if len(f"{prefix}{name}.fits".encode()) > FILENAME_MAX:
        name = f"{name.encode()[:140].decode(errors='ignore')}-" \
               f"{hashlib.md5(name.encode()).hexdigest()[:10]}"
    return f"{prefix}{name}.fits"


def write_datasets(tree: xr.DataTree, path: str | os.PathLike, overwrite: bool = False,
                   checksum: bool = True) -> Path:
    """Write every dataset of ``tree`` (GADF files beside the YAML; a dataset deeper in
    the tree in the sub-folders of its levels, e.g. ``hess/run1.fits``, its level kept
    as the entry's ``group`` so that :func:`open_datasets` reads back the same tree) and
    the index with gammapy's checksum line, all or nothing: every dataset is validated
    and serialised first, then the files and the index are committed together
    (:func:`xdl4.files.write_all`). Missing folders are created (and removed again if
    the write fails). ``checksum`` writes FITS CHECKSUM / DATASUM cards.

    >>> import os, tempfile, xarray as xr, xdl4
    >>> tree = xr.DataTree.from_dict({"/hess/a": xdl4.examples.spectrum_dataset(0),
    ...                               "/lat/b": xdl4.examples.spectrum_dataset(1)})
    >>> index = write_datasets(tree, os.path.join(tempfile.mkdtemp(), "new", "index.yaml"))
    >>> sorted(open_datasets(index).children)
    ['hess', 'lat']
    """
    from xdl4.io.gadf import gadf_writer

    path = Path(path)
    created = _missing_folders(path.parent)
    if not created:  # (a folder to create holds no file to overwrite)
        check_overwrite(path, overwrite)
    entries, items, files = [], [], {}
    for node in tree.subtree:
        if not node.has_data:
            continue
        ds = node.to_dataset()
        group = "/".join(node.relative_to(tree).split("/")[:-1]) if node is not tree else ""
        # a node is written under its node name, so that open_datasets reads back the
        # same tree; a dataset at the root keeps its own name
        name = (dataset_name(ds) or str(node.name or "dataset")) if node is tree else \
            str(node.name)
        try:
            record = kind_record(ds)
        except DL4ValidationError:
            raise FormatError(f"{path.name}: dataset {name!r} has no known dl4_kind "
                              f"({ds.attrs.get('dl4_kind')!r})") from None
        filename = dataset_filename(name, record)
        if group:
            filename = f"{group}/{filename}"
            created += _missing_folders(path.parent / group)
        if filename in files:
            raise FormatError(f"{path.name}: datasets {files[filename]!r} and {name!r} would "
                              f"both be written to {filename!r} (dataset names must differ)")
        files[filename] = name
        fpath = path.parent / filename
        if fpath.parent.exists():
            check_overwrite(fpath, overwrite)
        try:
            writer = gadf_writer(ds.assign_attrs(name=name), fpath, checksum)
        except DL4ValidationError as err:
            raise DL4ValidationError(err.problems, f"{name} ({filename})") from err
        entry = {"name": name, "type": record.gammapy_class, "filename": filename}
        entries.append({**entry, "group": group} if group else entry)
        items.append((fpath, writer))
    text = yaml.safe_dump({"datasets": entries}, **YAML_STYLE)
    text += yaml.safe_dump({"metadata": {"creator": "xdl4 0.1.0",
                                         "date": datetime.datetime.now().isoformat(),
                                         "origin": None}}, **YAML_STYLE)
    text += f"checksum: {hashlib.md5(text.encode()).hexdigest()}\n"
    items.append((path, lambda tmp: tmp.write_text(text)))
    try:
        for folder in created:
            folder.mkdir(parents=True, exist_ok=True)
        write_all(items, overwrite)
    except BaseException:
        for folder in reversed(created):  # all or nothing: no empty folders left either
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return path


def _missing_folders(folder: Path) -> list[Path]:
    """The folders of ``folder`` that do not exist yet, outermost first."""
    missing = []
    while not folder.exists():
        missing.insert(0, folder)
        folder = folder.parent
    return missing
