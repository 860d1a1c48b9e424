"""Caches bounded in bytes (and entries), with their sizes reported.

>>> c = BoundedCache(max_bytes=100)
>>> c.put("a", np.zeros(10)); c.put("b", np.zeros(10))  # 80 bytes each
>>> "a" in c, "b" in c, c.nbytes, c.peak_nbytes
(False, True, 80, 80)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np


def nbytes(value: Any) -> int:
    """Bytes held by a cached value: numpy arrays, scipy sparse matrices, tuples / lists /
    dicts of them."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if hasattr(value, "data") and hasattr(value, "indices") and hasattr(value, "indptr"):
        return value.data.nbytes + value.indices.nbytes + value.indptr.nbytes
    if isinstance(value, tuple | list):
        return sum(nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    return 0


class BoundedCache:
    """A least-recently-used mapping bounded by the bytes of its values (``max_bytes``)
    and by a number of entries (``max_items``). The newest entry is always kept, even
    alone above the bound. ``nbytes`` and ``peak_nbytes`` report its size. Thread-safe
    (a lock around each operation; values are built outside it)."""

    def __init__(self, max_bytes: int, max_items: int | None = None) -> None:
        self.max_bytes = int(max_bytes)
        self.max_items = max_items
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.nbytes = 0
        self.peak_nbytes = 0
        self._lock = threading.Lock()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return default
            self._data.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: Any, size: int | None = None) -> None:
        size = nbytes(value) if size is None else int(size)
        with self._lock:
            if key in self._data:
                self.nbytes -= self._data.pop(key)[1]
            self._data[key] = (value, size)
            self.nbytes += size
            while len(self._data) > 1 and (self.nbytes > self.max_bytes or (
                    self.max_items is not None and len(self._data) > self.max_items)):
                _, (_, s) = self._data.popitem(last=False)
                self.nbytes -= s
            self.peak_nbytes = max(self.peak_nbytes, self.nbytes)

    def get_or_build(self, key: Hashable, build: Callable[[], Any]) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = build()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.nbytes = 0

    def __getstate__(self) -> dict:
        """Pickled empty (same bounds): a cache is rebuilt where it is used, and its
        entries may hold weak references."""
        return {"max_bytes": self.max_bytes, "max_items": self.max_items,
                "_data": OrderedDict(), "nbytes": 0, "peak_nbytes": 0}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


_MISSING = object()
