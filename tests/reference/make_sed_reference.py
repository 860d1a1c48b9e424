"""gammapy 2.1's SED conversions (``FluxPoints.to_table(sed_type=...)``) of the shared flux
points: the reference numbers of tests/test_sed.py. Run by hand with the gammapy
environment:

    /work/.venv-gammapy/bin/python tests/reference/make_sed_reference.py $XDL4_DATA

It writes tests/reference/sed_gammapy.json (never imported by the tests' code).
"""

import json
import sys
from pathlib import Path

import numpy as np
from gammapy.estimators import FluxPoints

data = Path(sys.argv[1])
files = {"hess": data / "estimators" / "crab_hess_fp" / "crab_hess_fp.fits",
         "hawc": data / "hawc" / "crab_flux" / "HAWC19_flux_points.fits"}
out = {}
for key, path in files.items():
    kwargs = {"sed_type": "dnde"} if key == "hawc" else {}
    fp = FluxPoints.read(path, **kwargs)
    out[key] = {}
    for sed_type in ("dnde", "e2dnde", "flux", "eflux"):
        table = fp.to_table(sed_type=sed_type)
        columns = {}
        for suffix in ("", "_err", "_errn", "_errp", "_ul"):
            name = sed_type + suffix
            if name in table.colnames:
                columns[name] = {"unit": str(table[name].unit),
                                 "values": [None if not np.isfinite(v) else float(v)
                                            for v in np.ravel(table[name].quantity.value)]}
        out[key][sed_type] = columns
path = Path(__file__).with_name("sed_gammapy.json")
path.write_text(json.dumps(out, indent=1) + "\n")
