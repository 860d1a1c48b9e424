"""Dataset kinds as registered plugins: the registry (:mod:`xdl4.kinds.base`) and the
built-in kinds, each registered by its own module (:mod:`xdl4.kinds.counts`,
:mod:`xdl4.kinds.flux_points`).

>>> import xdl4
>>> sorted(xdl4.kinds.registered())
['flux_points', 'map', 'map_onoff', 'spectrum', 'spectrum_onoff']
"""

from xdl4.kinds import counts, flux_points  # noqa: E402, F401  (register the built-in kinds)
from xdl4.kinds.base import (
    OPERATIONS,
    KindBehaviour,
    add_operations,
    get,
    of,
    register,
    registered,
    unregister,
    validate,
)

__all__ = ["OPERATIONS", "KindBehaviour", "add_operations", "get", "of", "register",
           "registered", "unregister", "validate"]
