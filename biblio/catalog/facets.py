"""Facets of the item list: small units of value, label, count, selected and toggle URL.

Each facet counts the live items matching every *other* current filter, grouped by
its own field (so a visitor can switch from one prong or type to another without
first removing the filter), counted from the in-memory index of
:mod:`biblio.catalog.index` (one mask per left-out filter, one ``bincount`` per facet). The
collection facet is hierarchical: a collection's count includes its sub-collections'
items (counted once), and the tree shows the roots, the selected collection's
ancestors and its children, at most ``TOP`` per level. Year values are shown within
the selected decade, or the most recent years otherwise (``_facet_size=max`` shows
them all). A decade counts the items of that decade matching the other filters but the
year, and choosing it clears the year, so the count is what the link gives. URLs are
made by a ``toggle`` callable the web layer passes in, so this module stays free of Flask.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlalchemy.engine import Connection

from biblio.catalog.filters import Filters
from biblio.catalog.index import Index
from biblio.zotero.schema import type_label

TOP = 15


class Toggle(Protocol):
    """The URL selecting ``param=value`` (or removing it when it is the current value),
    with the parameters named in ``clear`` removed too."""

    def __call__(self, param: str, value: object, clear: tuple[str, ...] = ()) -> str: ...


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
    truncated: bool = False  # more values than shown (``_facet_size=max`` shows them)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "truncated": self.truncated,
            "values": [v.to_dict() for v in self.values],
        }


def _values(
    param: str,
    pairs: list[tuple[Any, int]],
    current: object,
    toggle: Toggle,
    labels: dict[str, str] | None = None,
    clear: tuple[str, ...] = (),
) -> list[FacetValue]:
    out = []
    for value, count in pairs:
        if value is None:
            continue
        text = str(value)
        out.append(
            FacetValue(
                text,
                (labels or {}).get(text, text),
                int(count),
                current is not None and str(current) == text,
                toggle(param, text, clear),
            )
        )
    return out


class _Counter:
    """Masks of the current filters without one of them, each computed once."""

    def __init__(self, index: Index, conn: Connection, filters: Filters, limit: int = TOP) -> None:
        self.index, self.conn, self.filters, self.limit = index, conn, filters, limit
        self._masks: dict[Filters, np.ndarray] = {}

    def mask(self, *without: str) -> np.ndarray:
        filters = self.filters
        for name in without:
            filters = filters.without(name)
        found = self._masks.get(filters)
        if found is None:
            found = self._masks[filters] = self.index.mask(self.conn, filters)
        return found


def _top(
    codes: list[Any], counts: np.ndarray, limit: int | None = TOP, by_value_desc: bool = False
) -> list[tuple[Any, int]]:
    """Non-zero counts, largest first (ties by value), or by value, newest first."""
    pairs = [(codes[c], int(counts[c])) for c in np.flatnonzero(counts)]
    if by_value_desc:
        pairs.sort(key=lambda p: p[0], reverse=True)
    else:
        pairs.sort(key=lambda p: (-p[1], p[0]))
    return pairs[:limit] if limit else pairs


def prong_facet(counter: _Counter, toggle: Toggle, prongs: dict[str, str]) -> Facet:
    index, mask = counter.index, counter.mask("prong")
    counts = index.prongs.counts(mask)
    pairs = [
        (pid, int(counts[index.prongs.codes.ids[pid]]) if pid in index.prongs.codes.ids else 0)
        for pid in prongs
    ]
    return Facet("prong", "Prong", _values("prong", pairs, counter.filters.prong, toggle, prongs))


def type_facet(counter: _Counter, toggle: Toggle) -> Facet:
    index = counter.index
    counts = np.bincount(index.types[counter.mask("type")], minlength=len(index.type_codes.values))
    pairs = _top(index.type_codes.values, counts, None)
    labels = {str(t): type_label(str(t)) for t, _ in pairs[: counter.limit]}
    return Facet(
        "type",
        "Item type",
        _values("type", pairs[: counter.limit], counter.filters.item_type, toggle, labels),
        truncated=len(pairs) > counter.limit,
    )


def tag_facet(counter: _Counter, toggle: Toggle) -> Facet:
    tags = counter.index.tags
    pairs = _top(tags.codes.values, tags.counts(counter.mask("tag")), None)
    facet = Facet(
        "tag",
        "Tag",
        _values("tag", pairs[: counter.limit], counter.filters.tag, toggle),
        truncated=len(pairs) > counter.limit,
    )
    _keep_selected(facet, counter.filters.tag, toggle)
    return facet


def creator_facet(counter: _Counter, toggle: Toggle) -> Facet:
    creators = counter.index.creators
    pairs = _top(creators.codes.values, creators.counts(counter.mask("creator")), None)
    facet = Facet(
        "creator",
        "Creator",
        _values("creator", pairs[: counter.limit], counter.filters.creator, toggle),
        truncated=len(pairs) > counter.limit,
    )
    _keep_selected(facet, counter.filters.creator, toggle)
    return facet


def _keep_selected(facet: Facet, current: object, toggle: Toggle) -> None:
    # A selected value outside the top list still shows, so it can be removed.
    if current is not None and not any(v.selected for v in facet.values):
        text = str(current)
        facet.values.insert(0, FacetValue(text, text, 0, True, toggle(facet.name, text)))


def _years(counter: _Counter, *without: str) -> tuple[list[int], np.ndarray]:
    years = counter.index.years[counter.mask(*without)]
    years = years[years >= 0]
    found, counts = np.unique(years, return_counts=True)
    return [int(y) for y in found], counts


def decade_facet(counter: _Counter, toggle: Toggle) -> Facet:
    years, counts = _years(counter, "decade", "year")
    per: dict[int, int] = {}
    for year, n in zip(years, counts, strict=True):
        per[year // 10 * 10] = per.get(year // 10 * 10, 0) + int(n)
    pairs = sorted(per.items(), reverse=True)
    labels = {str(d): f"{d}s" for d, _ in pairs}
    # Counted without the year, so choosing a decade must clear the year too.
    values = _values("decade", pairs, counter.filters.decade, toggle, labels, clear=("year",))
    return Facet("decade", "Decade", values)


def year_facet(counter: _Counter, toggle: Toggle) -> Facet:
    years, counts = _years(counter, "year")
    pairs = sorted(((y, int(n)) for y, n in zip(years, counts, strict=True)), reverse=True)
    truncated = counter.filters.decade is None and len(pairs) > counter.limit
    if truncated:
        selected = [p for p in pairs[counter.limit :] if p[0] == counter.filters.year]
        pairs = pairs[: counter.limit] + selected  # a chosen year stays, to be removed
    facet = Facet(
        "year", "Year", _values("year", pairs, counter.filters.year, toggle), truncated=truncated
    )
    _keep_selected(facet, counter.filters.year, toggle)
    return facet


def collection_facet(counter: _Counter, toggle: Toggle) -> Facet:
    """Collections as a tree; counts include sub-collections, each item once."""
    names, parent, children = counter.index.shelf_maps()
    in_tree = counter.index.in_tree
    raw = in_tree.counts(counter.mask("collection"))
    counts = {in_tree.codes.values[c]: int(raw[c]) for c in np.flatnonzero(raw)}
    selected = counter.filters.collection
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

    values: list[FacetValue] = []
    cut = [False]

    def shown(siblings: list[str]) -> set[str]:
        # A large library has hundreds of collections: each level shows its largest
        # (in name order), plus the selected one and its ancestors, so it can be removed.
        ranked = sorted((k for k in siblings if counts.get(k)), key=lambda k: -counts[k])
        cut[0] = cut[0] or len(ranked) > counter.limit
        return {*ranked[: counter.limit], *(k for k in siblings if k in shown_parents)}

    def walk(p: str | None) -> None:
        siblings = children.get(p, [])
        keep = shown(siblings)
        for k in siblings:
            if k in keep:
                values.append(
                    FacetValue(
                        k,
                        names[k],
                        counts.get(k, 0),
                        k == selected,
                        toggle("collection", k),
                        depth(k),
                    )
                )
                if k in shown_parents:
                    walk(k)

    walk(None)
    return Facet("collection", "Collection", values, truncated=cut[0])


def all_facets(
    index: Index,
    conn: Connection,
    filters: Filters,
    toggle: Toggle,
    prongs: dict[str, str],
    limit: int = TOP,
) -> list[Facet]:
    """Every facet of the list page, in display order, counted from ``index``; at most
    ``limit`` values each (per level for collections)."""
    counter = _Counter(index, conn, filters, limit)
    return [
        prong_facet(counter, toggle, prongs),
        collection_facet(counter, toggle),
        type_facet(counter, toggle),
        decade_facet(counter, toggle),
        year_facet(counter, toggle),
        tag_facet(counter, toggle),
        creator_facet(counter, toggle),
    ]


__all__ = ["Facet", "FacetValue", "Toggle", "all_facets"]
