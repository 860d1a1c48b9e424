"""Estimators on the xarray model: flux points, light curves, excess and TS maps.

Each is a function of datasets and models returning xarray objects:

* :func:`flux_points` -> a ``flux_points`` dataset (sed_type ``likelihood``);
* :func:`light_curve` -> flux points with a ``time`` axis;
* :func:`excess_map` (``ds.dl4.excess_map``) -> correlated counts, background, excess,
  significance, flux maps;
* :func:`ts_map` (``ds.dl4.ts_map``) -> TS, sqrt(TS), norm and error maps of a test
  source at every pixel.

The likelihood profiles of a norm, shared by all of them, live in
:mod:`xdl4.estimators.profile`.
"""

from xdl4 import kinds

from .excess_map import excess_map
from .flux_points import flux_points
from .light_curve import light_curve
from .ts_map import ts_map

# the map estimators are operations of the map kinds (TS maps: of the cash one)
kinds.add_operations("map", {"excess_map": excess_map, "ts_map": ts_map})
kinds.add_operations("map_onoff", {"excess_map": excess_map})

__all__ = ["excess_map", "flux_points", "light_curve", "ts_map"]
