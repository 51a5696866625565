"""Caches of rendered list pages and list lines, kept per data stamp.

A list page depends on nothing but its URL and the data it shows (public pages never
read the session), and every sync, retag and override moves the data stamp on
(:func:`biblio.catalog.listing.data_stamp`), so a whole page is kept per (stamp,
URL). One list line's HTML depends only on its item's version and effective prongs,
so lines are kept across pages. Both are bounded LRU maps: pages also by bytes, since
pages of up to ``[web] max_page_size`` rows are large and a crawler varying its
queries must not be able to pin much memory in each worker.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from markupsafe import Markup

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """A thread-safe LRU map bounded in entries and, with ``size_of``, in total size."""

    def __init__(
        self,
        max_entries: int,
        max_size: int | None = None,
        size_of: Callable[[V], int] | None = None,
    ) -> None:
        self.max_entries, self.max_size, self.size_of = max_entries, max_size, size_of
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= self._measure(old)
            self._data[key] = value
            self._size += self._measure(value)
            while len(self._data) > self.max_entries or (
                self.max_size is not None and self._size > self.max_size
            ):
                self._size -= self._measure(self._data.popitem(last=False)[1])

    def _measure(self, value: V) -> int:
        return self.size_of(value) if self.size_of else 0

    def __len__(self) -> int:
        return len(self._data)


#: Whole list pages: (app, database, stamp, host, path?query) -> (body, media type).
pages: BoundedCache[tuple[str, str]] = BoundedCache(
    256, 32 * 1024 * 1024, size_of=lambda entry: len(entry[0])
)
#: List lines: (app, database, key, version, prongs) -> HTML.
lines: BoundedCache[Markup] = BoundedCache(20_000)
