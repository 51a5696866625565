"""An in-memory column index of the live items: filter masks, facet counts and sort orders.

A list page needs the matching items' count, one page of them in the chosen order,
and seven facets, each counting the items that match every *other* filter. Asked of
SQL, a broad filter on a large library (a decade, a prong, a common search word)
costs hundreds of milliseconds of GROUP BYs. This module loads the few columns those
answers need (type, year, tags, creators, collections with their ancestors, effective
prongs) once per data stamp (:func:`biblio.catalog.listing.data_stamp`, which every sync,
retag and override changes) into numpy arrays, so a filter is a boolean mask, a count
is a sum and a facet is one ``bincount``. Sort orders are read from SQL (so they
match the database's collation exactly) the first time each is asked for.
Search text is matched and ranked by the database (FTS5's bm25, or ``ILIKE``); the
matches, in relevance order, are kept per stamp for repeated searches, so a search's
facets, count and page all come from one query. Rows themselves are still read from SQL.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection

from biblio import storage as st
from biblio.catalog import search
from biblio.catalog.filters import Filters, live_items
from biblio.catalog.sorts import DEFAULT, RELEVANCE, SORT_ORDER

_SEARCH_CACHE = 256


class _Codes:
    """Distinct values of one column, numbered in first-seen order."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.values: list[Any] = []

    def code(self, value: Any) -> int:
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.values)
            self.values.append(value)
        return found


@dataclass
class _Pairs:
    """(item, value) pairs of a many-valued column, as two parallel arrays."""

    items: np.ndarray
    values: np.ndarray
    codes: _Codes
    _by_value: np.ndarray | None = None  # items grouped by value code
    _starts: np.ndarray | None = None  # where each code's group starts in _by_value

    def having(self, value: Any) -> np.ndarray:
        """Item indexes having ``value``."""
        code = self.codes.ids.get(value)
        if code is None:
            return np.empty(0, dtype=np.int32)
        if self._by_value is None or self._starts is None:
            order = np.argsort(self.values, kind="stable")
            self._starts = np.concatenate(
                ([0], np.cumsum(np.bincount(self.values, minlength=len(self.codes.values))))
            )
            self._by_value = self.items[order]
        return self._by_value[self._starts[code] : self._starts[code + 1]]

    def counts(self, mask: np.ndarray) -> np.ndarray:
        """Per value code, how many masked items have it."""
        return np.bincount(self.values[mask[self.items]], minlength=len(self.codes.values))


def _pairs(rows: Sequence[tuple[Any, Any]], index: dict[str, int]) -> _Pairs:
    get = index.get
    items = np.fromiter((get(k, -1) for k, _ in rows), dtype=np.int32, count=len(rows))
    codes = _Codes()
    code = codes.code
    values = np.fromiter((code(v) for _, v in rows), dtype=np.int32, count=len(rows))
    keep = items >= 0  # rows of items that are not live (children, trashed) drop out
    return _Pairs(items[keep], values[keep], codes)


def _fetch(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a fixed, parameterless query as plain tuples, straight from the driver
    (tens of thousands of rows: SQLAlchemy's row objects would double the time)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        return [tuple(r) for r in cursor.fetchall()]
    finally:
        cursor.close()


@dataclass
class Index:
    """The live items' columns at one data stamp."""

    keys: list[str]
    position: dict[str, int]
    types: np.ndarray  # type code per item
    type_codes: _Codes
    years: np.ndarray  # year per item, -1 when undated
    tags: _Pairs
    creators: _Pairs
    collections: _Pairs  # the collections items are directly in
    in_tree: _Pairs  # (item, collection or any of its ancestors), each pair once
    children: dict[str, list[str]]  # every collection (trashed too), by parent
    shelf: list[tuple[str, str, str | None]]  # (key, name, parent) of live ones, by name
    fts: np.ndarray | None  # FTS5 rowids (sorted) over their item indexes (-1: none)
    prongs: _Pairs  # effective prongs (computed, plus owners' overrides)
    _orders: dict[str, np.ndarray] = field(default_factory=dict)
    _searches: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    _shelf_maps: (
        tuple[dict[str, str], dict[str, str | None], dict[str | None, list[str]]] | None
    ) = None

    @property
    def size(self) -> int:
        return len(self.keys)

    def shelf_maps(
        self,
    ) -> tuple[dict[str, str], dict[str, str | None], dict[str | None, list[str]]]:
        """Live collections' names, parents, and children by parent (None: the roots)."""
        if self._shelf_maps is None:
            names = {k: n for k, n, _ in self.shelf}
            children: dict[str | None, list[str]] = {}
            for k, _, p in self.shelf:
                children.setdefault(p if p in names else None, []).append(k)
            self._shelf_maps = (names, {k: p for k, _, p in self.shelf}, children)
        return self._shelf_maps

    def mask_of(self, items: np.ndarray) -> np.ndarray:
        mask = np.zeros(self.size, dtype=bool)
        mask[items] = True
        return mask

    def search(self, conn: Connection, q: str) -> tuple[np.ndarray, np.ndarray]:
        """The items matching search text ``q``: a mask, and their indexes most relevant
        first (ties: newest additions first); kept per search text."""
        with self._lock:
            found = self._searches.get(q)
            if found is not None:
                self._searches.move_to_end(q)
                return found
        ranked = search.ranked_rowids(conn, q) if self.fts is not None else None
        if self.fts is not None and ranked is not None:
            positions = np.empty(0, dtype=np.int64)
            if self.fts.shape[1] and ranked:
                table = np.asarray(ranked, dtype=np.float64).reshape(-1, 3)
                rowids = table[:, 0].astype(np.int64)
                at = np.minimum(np.searchsorted(self.fts[0], rowids), self.fts.shape[1] - 1)
                hit = self.fts[0][at] == rowids
                positions, table = self.fts[1][at[hit]], table[hit]
                live = positions >= 0
                positions, table = positions[live], table[live]
                # bm25 is lower for better matches: by the metadata's score, then the
                # whole row's, then the newest additions first.
                newest = self.rank(conn, DEFAULT)[positions]
                positions = positions[np.lexsort((newest, table[:, 2], table[:, 1]))]
        else:
            keys = search.ranked_keys(conn, q)
            positions = np.fromiter(
                (self.position[k] for k in keys if k in self.position), dtype=np.int64
            )
        found = (self.mask_of(positions), positions)
        with self._lock:
            self._searches[q] = found
            while len(self._searches) > _SEARCH_CACHE:
                self._searches.popitem(last=False)
        return found

    def search_mask(self, conn: Connection, q: str) -> np.ndarray:
        """The items matching search text ``q``."""
        return self.search(conn, q)[0]

    def mask(self, conn: Connection, filters: Filters) -> np.ndarray:
        """The live items matching ``filters`` (each filter knows its own mask)."""
        return filters.mask(self, conn)

    def tree(self, key: str) -> list[str]:
        """``key`` and every collection under it (trashed ones too, as the SQL filter)."""
        out, todo = [], [key]
        while todo:
            node = todo.pop()
            if node in out:
                continue
            out.append(node)
            todo.extend(self.children.get(node, []))
        return out

    def order(self, conn: Connection, sort: str) -> np.ndarray:
        """Item indexes in ``sort`` order, read once per stamp from SQL."""
        found = self._orders.get(sort)
        if found is None:
            keys = conn.execute(
                select(st.items.c.key).where(live_items()).order_by(*SORT_ORDER[sort])
            ).scalars()
            found = np.fromiter(
                (self.position[k] for k in keys if k in self.position), dtype=np.int32
            )
            self._orders[sort] = found
        return found

    def rank(self, conn: Connection, sort: str) -> np.ndarray:
        """Each item's place in ``sort`` order (the inverse of :meth:`order`)."""
        order = self.order(conn, sort)
        ranks = np.empty(self.size, dtype=np.int64)
        ranks[order] = np.arange(len(order))
        return ranks

    def page(
        self,
        conn: Connection,
        mask: np.ndarray,
        sort: str,
        offset: int,
        size: int,
        q: str | None = None,
    ) -> list[str]:
        """Keys of up to ``size`` matching items from ``offset`` in ``sort`` order (by
        relevance to search text ``q`` when ``sort`` is relevance)."""
        if sort == RELEVANCE and q:
            order = self.search(conn, q)[1]
        else:
            order = self.order(conn, DEFAULT if sort == RELEVANCE else sort)
        chosen = order[mask[order]][offset : offset + size]
        return [self.keys[i] for i in chosen]


def build(conn: Connection) -> Index:
    """Read the columns of every live item (one pass over each table)."""
    i = st.items.c
    rows = conn.execute(
        select(i.key, i.item_type, i.year).where(live_items()).order_by(i.key)
    ).all()
    keys = [r[0] for r in rows]
    position = {k: n for n, k in enumerate(keys)}
    type_codes = _Codes()
    types = np.fromiter((type_codes.code(r[1]) for r in rows), dtype=np.int32, count=len(rows))
    years = np.fromiter(
        (-1 if r[2] is None else r[2] for r in rows), dtype=np.int64, count=len(rows)
    )
    tags = _pairs(_fetch(conn, "SELECT item_key, tag FROM item_tags"), position)
    # An item counts once per name, even when that name is its author and its editor.
    creators = _pairs(list(set(_fetch(conn, "SELECT item_key, name FROM item_creators"))), position)
    links = _fetch(conn, "SELECT item_key, collection_key FROM item_collections")
    collections = _pairs(links, position)
    co = st.collections.c
    parent = dict(conn.execute(select(co.key, co.parent_key)).all())
    children: dict[str, list[str]] = {}
    for key, up in parent.items():
        if up is not None:
            children.setdefault(up, []).append(key)
    ancestry: dict[str, list[str]] = {}
    for key in parent:
        chain: list[str] = []
        node: str | None = key
        while node is not None and node not in chain and len(chain) < 100:
            chain.append(node)
            node = parent.get(node)
        ancestry[key] = chain
    in_tree = _pairs(
        list({(item, a) for item, coll in links for a in ancestry.get(coll, [coll])}), position
    )
    return Index(
        keys=keys,
        position=position,
        types=types,
        type_codes=type_codes,
        years=years,
        tags=tags,
        creators=creators,
        collections=collections,
        in_tree=in_tree,
        children=children,
        prongs=_prongs(conn, position),
        fts=_fts_positions(conn, position),
        shelf=[
            tuple(r)
            for r in conn.execute(  # type: ignore[misc]
                select(co.key, co.name, co.parent_key)
                .where(co.deleted.is_(False))
                .order_by(co.name)
            )
        ],
    )


def _fts_positions(conn: Connection, position: dict[str, int]) -> np.ndarray | None:
    """``[FTS5 rowids (sorted), item indexes]`` as a 2-row array, SQLite only."""
    pairs = search.index_rowids(conn)
    if pairs is None:
        return None
    pairs.sort()
    table = np.empty((2, len(pairs)), dtype=np.int64)
    table[0] = [r for r, _ in pairs]
    table[1] = [position.get(k, -1) for _, k in pairs]
    return table


def _prongs(conn: Connection, position: dict[str, int]) -> _Pairs:
    """Effective prongs, by the rule of :func:`biblio.catalog.items.prong_clause`: computed
    or added by an owner, and not removed by one."""
    p, o = st.item_prongs.c, st.prong_overrides.c
    pairs = {(k, v) for k, v in conn.execute(select(p.item_key, p.prong))}
    removed = set()
    for key, prong, action in conn.execute(select(o.item_key, o.prong, o.action)):
        if action == "add":
            pairs.add((key, prong))
        elif action == "remove":
            removed.add((key, prong))
    return _pairs(sorted(pairs - removed), position)


_INDEXES: dict[str, tuple[tuple[Any, ...], Index]] = {}
_BUILD_LOCK = threading.Lock()


def index_for(conn: Connection, name: str, stamp: tuple[Any, ...]) -> Index:
    """The index of database ``name`` at ``stamp``, built by one thread when it moves on."""
    found = _INDEXES.get(name)
    if found is not None and found[0] == stamp:
        return found[1]
    with _BUILD_LOCK:
        found = _INDEXES.get(name)
        if found is not None and found[0] == stamp:
            return found[1]
        index = build(conn)
        _INDEXES[name] = (stamp, index)
        return index


__all__ = ["Index", "build", "index_for"]
