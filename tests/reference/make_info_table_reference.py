"""gammapy 2.1's Datasets.info_table (per run and cumulative) on the shared stack runs:
the reference numbers of tests/test_runs.py. Run by hand with the gammapy environment:

    /work/.venv-gammapy/bin/python tests/reference/make_info_table_reference.py $XDL4_DATA

It writes tests/reference/info_table_gammapy.json (never imported by the tests' code).
"""

import json
import sys
from pathlib import Path

import numpy as np
from gammapy.datasets import (
    Datasets,
    MapDataset,
    MapDatasetOnOff,
    SpectrumDataset,
    SpectrumDatasetOnOff,
)
from gammapy.modeling.models import Models

data = Path(sys.argv[1])
stack = data / "gammapy" / "stack"
out = {}


def table_rows(table):
    rows = [{name: str(table[name].unit or "") for name in table.colnames}]  # units first
    for row in table:
        d = {}
        for name in table.colnames:
            v = row[name]
            if isinstance(v, bytes | str | np.str_):
                d[name] = str(v)
            else:
                d[name] = float(v)
        rows.append(d)
    return rows


maps = Datasets([MapDataset.read(stack / f"run{i}.fits.gz", name=f"run{i}") for i in range(3)])
out["maps"] = table_rows(maps.info_table())
out["maps_cumulative"] = table_rows(maps.info_table(cumulative=True))
models = Models.read(data / "gammapy" / "map_dataset_models.yaml")
names = [m.name for m in models if "bkg" not in m.name]
srcs = Models([m for m in models if m.name in names])
for d in maps:
    d.models = srcs.copy()
out["maps_models"] = table_rows(maps.info_table())
bare = Datasets([MapDataset.read(stack / f"run{i}.fits.gz", name=f"run{i}") for i in range(2)])
for d in bare:
    d.background = None  # no background: NaN per run, zeros once stacked (from_geoms)
out["maps_no_background"] = table_rows(bare.info_table())
out["maps_no_background_cumulative"] = table_rows(bare.info_table(cumulative=True))
# the other kinds: a dataset stacked onto a copy of itself (one file of each at hand)
for key, cls, name in (("map_onoff_twice", MapDatasetOnOff, "map_dataset_onoff.fits.gz"),
                       ("spectrum_twice", SpectrumDataset, "spectrum_dataset.fits.gz")):
    pair = Datasets([cls.read(data / "gammapy" / name, name=n) for n in ("a", "b")])
    out[f"{key}_cumulative"] = table_rows(pair.info_table(cumulative=True))
onoff = Datasets([SpectrumDatasetOnOff.read(stack / f"son{i}.fits", name=f"son{i}")
                  for i in range(3)])
out["onoff"] = table_rows(onoff.info_table())
out["onoff_cumulative"] = table_rows(onoff.info_table(cumulative=True))
path = Path(__file__).with_name("info_table_gammapy.json")
path.write_text(json.dumps(out, indent=1) + "\n")
print("wrote", path)
