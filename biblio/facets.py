"""Facets of the item list: small units of value, label, count, selected and toggle URL.

Each facet counts the live items matching every *other* current filter, grouped by
its own field (so a visitor can switch from one prong or type to another without
first removing the filter), with one GROUP BY over the indexed join tables. The
collection facet is hierarchical: a collection's count includes its sub-collections'
items (counted once), and the tree shows the roots, the selected collection's
ancestors and its children. Year values are shown within the selected decade, or
the most recent years otherwise. URLs are made by a ``toggle`` callable the web layer
passes in, so this module stays free of Flask.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import desc, func, select
from sqlalchemy.engine import Connection

from biblio import storage as st
from biblio.catalog import Filters, prong_clause
from biblio.records import type_label

Toggle = Callable[[str, object], str]
TOP = 15


@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool
    toggle_url: str
    depth: int = 0  # nesting level (collections)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Facet:
    name: str  # the query parameter
    label: str
    values: list[FacetValue] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label,
                "values": [v.to_dict() for v in self.values]}


def _without(filters: Filters, name: str) -> Filters:
    return dataclasses.replace(filters, **{name: None})


def _values(param: str, pairs: list[tuple[Any, int]], current: object, toggle: Toggle,
            labels: dict[str, str] | None = None) -> list[FacetValue]:
    out = []
    for value, count in pairs:
        if value is None:
            continue
        text = str(value)
        out.append(FacetValue(text, (labels or {}).get(text, text), int(count),
                              current is not None and str(current) == text,
                              toggle(param, text)))
    return out


def prong_facet(conn: Connection, filters: Filters, toggle: Toggle,
                prongs: dict[str, str]) -> Facet:
    base = _without(filters, "prong").where()
    pairs = [(pid, conn.execute(select(func.count()).select_from(st.items)
                                .where(base, prong_clause(pid))).scalar_one())
             for pid in prongs]
    return Facet("prong", "Prong", _values("prong", pairs, filters.prong, toggle, prongs))


def _grouped(conn: Connection, column: Any, where: Any, join: Any = None,
             order: Any = None, limit: int | None = TOP) -> list[tuple[Any, int]]:
    n = func.count().label("n")
    stmt = select(column, n).select_from(join if join is not None else st.items).where(where)
    stmt = stmt.group_by(column).order_by(*(order if order is not None else (desc(n), column)))
    if limit:
        stmt = stmt.limit(limit)
    return [tuple(r) for r in conn.execute(stmt)]


def type_facet(conn: Connection, filters: Filters, toggle: Toggle) -> Facet:
    pairs = _grouped(conn, st.items.c.item_type, _without(filters, "item_type").where())
    labels = {str(t): type_label(str(t)) for t, _ in pairs}
    return Facet("type", "Item type", _values("type", pairs, filters.item_type, toggle, labels))


def tag_facet(conn: Connection, filters: Filters, toggle: Toggle) -> Facet:
    join = st.items.join(st.item_tags, st.item_tags.c.item_key == st.items.c.key)
    pairs = _grouped(conn, st.item_tags.c.tag, _without(filters, "tag").where(), join)
    facet = Facet("tag", "Tag", _values("tag", pairs, filters.tag, toggle))
    _keep_selected(facet, filters.tag, toggle)
    return facet


def creator_facet(conn: Connection, filters: Filters, toggle: Toggle) -> Facet:
    join = st.items.join(st.item_creators, st.item_creators.c.item_key == st.items.c.key)
    pairs = _grouped(conn, st.item_creators.c.name, _without(filters, "creator").where(), join)
    facet = Facet("creator", "Creator", _values("creator", pairs, filters.creator, toggle))
    _keep_selected(facet, filters.creator, toggle)
    return facet


def _keep_selected(facet: Facet, current: str | None, toggle: Toggle) -> None:
    # A selected value outside the top list still shows, so it can be removed.
    if current is not None and not any(v.selected for v in facet.values):
        facet.values.insert(0, FacetValue(current, current, 0, True, toggle(facet.name, current)))


def decade_facet(conn: Connection, filters: Filters, toggle: Toggle) -> Facet:
    decade = (st.items.c.year // 10 * 10).label("decade")
    where = _without(_without(filters, "decade"), "year").where()
    pairs = _grouped(conn, decade, where & st.items.c.year.is_not(None),
                     order=(desc(decade),), limit=None)
    labels = {str(d): f"{d}s" for d, _ in pairs}
    return Facet("decade", "Decade", _values("decade", pairs, filters.decade, toggle, labels))


def year_facet(conn: Connection, filters: Filters, toggle: Toggle) -> Facet:
    year = st.items.c.year
    where = _without(filters, "year").where() & year.is_not(None)
    pairs = _grouped(conn, year, where, order=(desc(year),), limit=None if filters.decade
                     is not None else 12)
    return Facet("year", "Year", _values("year", pairs, filters.year, toggle))


def collection_facet(conn: Connection, filters: Filters, toggle: Toggle) -> Facet:
    """Collections as a tree; counts include sub-collections, each item once."""
    c, ic = st.collections.c, st.item_collections.c
    cols = conn.execute(select(c.key, c.name, c.parent_key).where(c.deleted.is_(False))
                        .order_by(c.name)).all()
    names = {k: n for k, n, _ in cols}
    parent = {k: p for k, _, p in cols}
    closure = select(c.key.label("ancestor"), c.key.label("descendant")).cte(
        "closure", recursive=True)
    closure = closure.union_all(select(closure.c.ancestor, c.key).where(
        c.parent_key == closure.c.descendant))
    n = func.count(func.distinct(ic.item_key))
    rows = conn.execute(
        select(closure.c.ancestor, n).select_from(
            closure.join(st.item_collections, ic.collection_key == closure.c.descendant)
            .join(st.items, st.items.c.key == ic.item_key))
        .where(_without(filters, "collection").where()).group_by(closure.c.ancestor)).all()
    counts = {k: int(v) for k, v in rows}
    selected = filters.collection
    path: list[str] = []
    node = selected
    while node and node in names and node not in path:
        path.append(node)
        node = parent.get(node)
    shown_parents = {None, *path}

    def depth(key: str) -> int:
        d, p = 0, parent.get(key)
        while p and d < 50:
            d, p = d + 1, parent.get(p)
        return d

    children: dict[str | None, list[str]] = {}
    for k, _, p in cols:
        children.setdefault(p if p in names else None, []).append(k)
    values: list[FacetValue] = []

    def walk(p: str | None) -> None:
        for k in children.get(p, []):
            if counts.get(k) or k == selected:
                values.append(FacetValue(k, names[k], counts.get(k, 0), k == selected,
                                         toggle("collection", k), depth(k)))
                if k in shown_parents:
                    walk(k)

    walk(None)
    return Facet("collection", "Collection", values)


def collection_names(conn: Connection) -> dict[str, str]:
    return dict(conn.execute(select(st.collections.c.key, st.collections.c.name)).all())


def all_facets(conn: Connection, filters: Filters, toggle: Toggle,
               prongs: dict[str, str]) -> list[Facet]:
    """Every facet of the list page, in display order."""
    facets = [prong_facet(conn, filters, toggle, prongs), collection_facet(conn, filters, toggle),
              type_facet(conn, filters, toggle), decade_facet(conn, filters, toggle),
              year_facet(conn, filters, toggle), tag_facet(conn, filters, toggle),
              creator_facet(conn, filters, toggle)]
    return facets


__all__ = ["Facet", "FacetValue", "all_facets", "collection_names"]
