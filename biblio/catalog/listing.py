"""The browse side of the catalog: one page of items, its count and facets; the landing data.

:func:`list_page` answers a list request (filters, sort, size, offset) with a count
and the facets from the in-memory index of the current data stamp
(:mod:`biblio.catalog.index`), and the page's rows from ``items``; :func:`landing` gathers what the
front page shows (group, prongs with counts, recent additions, last sync, chart
data). Prong labels and descriptions come from the tagger's rules
(:mod:`biblio.prongs`). Rows are plain dicts; the web layer turns them into HTML,
JSON or Atom.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import desc, func, select
from sqlalchemy.engine import Engine

from biblio import storage as st
from biblio.catalog import facets as fc
from biblio.catalog import index as facetindex
from biblio.catalog import items as catalog
from biblio.catalog import search
from biblio.catalog.filters import Filters, Labels, live_items, prong_clause
from biblio.catalog.sorts import SORT_ORDER
from biblio.prongs import load_rules
from biblio.sync.state import read_state

LIST_COLUMNS = (
    "key",
    "version",
    "item_type",
    "title",
    "creator_summary",
    "date",
    "year",
    "date_added",
    "date_modified",
    "data",
)
_I = st.items.c


@dataclass
class Page:
    rows: list[dict[str, Any]]
    count: int
    offset: int
    next_offset: int | None
    facets: list[fc.Facet]
    labels: Labels  # labels of the filters' values, for the phrase
    stamp: tuple[Any, ...] = ()  # the data stamp the page was read at


def stamp(engine: Engine) -> tuple[Any, ...]:
    """The current :func:`data_stamp` of ``engine``'s database."""
    with st.connect(engine) as conn:
        return data_stamp(conn)


_LABELS: dict[int, tuple[Mapping[str, Any], dict[str, dict[str, Any]]]] = {}


def prong_labels(settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{id: {"label", "description"}}`` from the tagger's rules, in their order.

    Compiling the rules takes a good part of a request, and settings never change
    while an app runs, so the answer is kept per settings object.
    """
    cached = _LABELS.get(id(settings))
    if cached is not None and cached[0] is settings:
        return cached[1]

    labels = {
        p.id: {"label": p.label, "description": p.description, "threshold": p.threshold}
        for p in load_rules(settings).prongs
    }
    _LABELS[id(settings)] = (settings, labels)
    return labels


def value_labels(conn: Any, filters: Filters, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Labels of the values ``filters`` may name, by parameter (prongs by their names,
    the chosen collection by its name), for :meth:`Filters.phrase`."""
    labels: dict[str, Any] = {
        "prong": {k: v["label"] for k, v in prong_labels(settings).items()},
    }
    if filters.collection:
        c = st.collections.c
        name = conn.execute(select(c.name).where(c.key == filters.collection)).scalar()
        labels["collection"] = {filters.collection: name} if name else {}
    return labels


def describe(engine: Engine, filters: Filters, settings: Mapping[str, Any]) -> str:
    """:meth:`Filters.phrase` with the values' labels: what feeds, exports and the
    command line say a selection is."""
    with st.connect(engine) as conn:
        return filters.phrase(value_labels(conn, filters, settings))


def _rows(conn: Any, stmt: Any) -> list[dict[str, Any]]:
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    prongs = catalog.effective_prongs(conn, [r["key"] for r in rows])
    for row in rows:
        row["prongs"] = prongs[row["key"]]
    return rows


# Counts and facets only change when the cache does, so they are kept per "data stamp"
# (library version, last sync, newest prong assignment and override); an LRU bound.
_COUNTS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_COUNTS_MAX = 512
_COUNTS_LOCK = threading.Lock()


def data_stamp(conn: Any) -> tuple[Any, ...]:
    """Changes whenever a sync, a retag or an owner's override changes what lists show.

    On SQLite, triggers count every write to prongs and overrides (migration
    ``0003_data_changes``); elsewhere their row count and newest change stand in.
    """
    sync = conn.execute(
        select(st.sync_state.c.library_version, st.sync_state.c.last_success_at)
    ).first()
    if conn.dialect.name == "sqlite":
        return (tuple(sync or ()), conn.execute(select(st.data_changes.c.n)).scalar())
    prongs = conn.execute(
        select(func.max(st.item_prongs.c.item_version), func.count()).select_from(st.item_prongs)
    ).first()
    overrides = conn.execute(
        select(func.count(), func.max(st.prong_overrides.c.at)).select_from(st.prong_overrides)
    ).first()
    return (tuple(sync or ()), tuple(prongs or ()), tuple(overrides or ()))


def _memo(key: tuple[Any, ...], build: Any) -> Any:
    with _COUNTS_LOCK:
        if key in _COUNTS:
            _COUNTS.move_to_end(key)
            return _COUNTS[key]
    value = build()
    with _COUNTS_LOCK:
        _COUNTS[key] = value
        while len(_COUNTS) > _COUNTS_MAX:
            _COUNTS.popitem(last=False)
    return value


def _rows_of(conn: Any, keys: list[str]) -> list[dict[str, Any]]:
    """The list columns of ``keys``, in that order."""
    found = (
        {
            r["key"]: r
            for r in _rows(conn, select(*[_I[c] for c in LIST_COLUMNS]).where(_I.key.in_(keys)))
        }
        if keys
        else {}
    )
    return [found[k] for k in keys if k in found]


def list_page(
    engine: Engine,
    filters: Filters,
    sort: str,
    size: int,
    offset: int,
    settings: Mapping[str, Any],
    toggle: fc.Toggle | None = None,
    facet_size: int = fc.TOP,
) -> Page:
    """One page of live items; facets only when ``toggle`` (URL maker) is given.

    The count, the page's keys and the facets come from the in-memory index of the
    current data stamp (:mod:`biblio.catalog.index`); the rows themselves from SQL.
    """
    with st.connect(engine) as conn:
        now = data_stamp(conn)
        index = facetindex.index_for(conn, str(engine.url), now)
        mask = index.mask(conn, filters)
        rows = _rows_of(conn, index.page(conn, mask, sort, offset, size + 1, filters.q))
        more = len(rows) > size
        rows = rows[:size]
        count = int(mask.sum())
        if filters.q:
            found = search.snippets(conn, filters.q, [r["key"] for r in rows])
            for row in rows:
                row["snippet"] = found.get(row["key"])
        labels = value_labels(conn, filters, settings)
        facets: list[fc.Facet] = []
        if toggle is not None:
            prongs = {k: v["label"] for k, v in prong_labels(settings).items()}
            facets = fc.all_facets(index, conn, filters, toggle, prongs, facet_size)
    return Page(
        rows=rows,
        count=count,
        offset=offset,
        next_offset=offset + size if more else None,
        facets=facets,
        labels=labels,
        stamp=now,
    )


def recent_changes(engine: Engine, filters: Filters, limit: int = 50) -> list[dict[str, Any]]:
    """The most recently added or modified live items (for feeds), newest first."""
    cols = [_I[c] for c in LIST_COLUMNS]
    with st.connect(engine) as conn:
        return _rows(
            conn,
            select(*cols)
            .where(filters.where())
            .order_by(desc(_I.date_modified), _I.key)
            .limit(limit),
        )


def prong_years(engine: Engine, prong_ids: list[str]) -> dict[str, dict[int, int]]:
    """``{prong: {year: count}}`` of live items, for the chart."""

    def build() -> dict[str, dict[int, int]]:
        out: dict[str, dict[int, int]] = {}
        for pid in prong_ids:
            stmt = (
                select(_I.year, func.count())
                .where(live_items(), prong_clause(pid), _I.year.is_not(None))
                .group_by(_I.year)
            )
            out[pid] = {int(y): int(n) for y, n in conn.execute(stmt)}
        return out

    with st.connect(engine) as conn:
        return _memo((str(engine.url), data_stamp(conn), tuple(prong_ids), "years"), build)


def landing(engine: Engine, settings: Mapping[str, Any], recent: int = 8) -> dict[str, Any]:
    """Everything the front page shows."""
    prongs = prong_labels(settings)
    with st.connect(engine) as conn:
        group = catalog.group(conn)
        state = read_state(conn) or {}
        stamp = (str(engine.url), data_stamp(conn))
        total = _memo(
            stamp + (Filters(), "count"),
            lambda: conn.execute(
                select(func.count()).select_from(st.items).where(live_items())
            ).scalar_one(),
        )
        counts = {
            pid: _memo(
                stamp + (Filters(prong=pid), "count"),
                lambda pid=pid: conn.execute(
                    select(func.count())
                    .select_from(st.items)
                    .where(live_items(), prong_clause(pid))
                ).scalar_one(),
            )
            for pid in prongs
        }
        newest = _rows(
            conn,
            select(*[_I[c] for c in LIST_COLUMNS])
            .where(live_items())
            .order_by(*SORT_ORDER["added"])
            .limit(recent),
        )
    return {
        "group": group,
        "total": total,
        "last_success_at": state.get("last_success_at"),
        "library_version": state.get("library_version"),
        "prongs": [{"id": pid, **info, "count": counts[pid]} for pid, info in prongs.items()],
        "recent": newest,
    }
