"""Filters of the item list: one object per filter, asked by every page, export and command.

A :class:`Filter` knows everything about one way of narrowing the library: its
query parameter (also the ``biblio export`` option), how a raw value parses (or why
it is refused, :class:`BadParameter`), its SQL clause, its boolean mask over the
in-memory index of :mod:`biblio.catalog.index`, and the words that describe it
("decade is 1990s", with labels for values: "prong is MLIS access", "type is Journal
Article"). :data:`FILTERS` lists them in display order and :class:`Filters` holds one
value per filter: its :meth:`Filters.where` is one parameterised WHERE clause and its
:meth:`Filters.phrase` the English beside it, so a page can say "213 items where
prong is Pathways" (:func:`sentence` adds the count and the order). The list page, its JSON twin,
the Atom feed, every export and the command line all parse and describe filters
here; adding a filter touches this module (and :mod:`.facets` if it has a facet).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from biblio import controlchars
from biblio import storage as st
from biblio.catalog import query, search
from biblio.catalog.sorts import SORTS
from biblio.zotero.schema import type_label

#: Zotero item types that are not works of their own: never listed.
NON_REGULAR = ("note", "attachment", "annotation")
#: Longest text value a filter accepts.
MAX_TEXT = 500
_WHOLE_NUMBER = re.compile(r"-?[0-9]+")  # ASCII digits only: "²" and "٣" are not years


class BadParameter(ValueError):
    """A filter or control parameter has a bad value; the message says which and why.

    The web answers it with a 400 and the message; the command line exits 2 with it.
    """

    status = 400


class SearchError(BadParameter):
    """The search text cannot be run; ``message`` says how to fix it, ``q`` keeps it, so
    the list page can show both (the JSON twin answers the usual 400)."""

    def __init__(self, message: str, q: str) -> None:
        super().__init__(f"q: {message}")
        self.message, self.q = message, q


#: Labels of filter values, by parameter: ``{"prong": {"pathways": "Pathways"}}``.
Labels = Mapping[str, Mapping[str, str]]


def text_value(name: str, raw: str | None) -> str | None:
    """A trimmed text parameter, or None when absent or blank; refuses control characters."""
    if raw is None or raw.strip() == "":
        return None
    if len(raw) > MAX_TEXT:
        raise BadParameter(f"{name} is too long (at most {MAX_TEXT} characters)")
    if controlchars.has_control(raw):
        raise BadParameter(f"{name} contains a control character")
    return raw.strip()


def int_value(name: str, raw: str | None, low: int, high: int) -> int | None:
    """A whole number between ``low`` and ``high`` (ASCII digits, optional minus sign)."""
    text = text_value(name, raw)
    if text is None:
        return None
    if not _WHOLE_NUMBER.fullmatch(text):
        raise BadParameter(
            f"{name} must be a whole number between {low} and {high}, got {text[:40]!r}"
        )
    value = int(text)
    if not low <= value <= high:
        raise BadParameter(f"{name} must be between {low} and {high}, got {value}")
    return value


def live_items() -> ColumnElement[bool]:
    """Top-level, regular items not in Zotero's trash: the items biblio lists."""
    i = st.items.c
    return and_(i.parent_key.is_(None), i.deleted == false(), i.item_type.not_in(NON_REGULAR))


def collection_tree(key: str) -> Any:
    """A recursive CTE of ``key`` and all its sub-collections' keys."""
    c = st.collections.c
    tree = select(c.key).where(c.key == key).cte("collection_tree", recursive=True)
    tree = tree.union(select(c.key).where(c.parent_key == tree.c.key))
    return select(tree.c.key)


def prong_clause(prong: str) -> ColumnElement[bool]:
    """Items whose effective prongs include ``prong`` (computed, plus overrides)."""
    i, p, o = st.items.c, st.item_prongs.c, st.prong_overrides.c
    computed = exists().where(p.item_key == i.key, p.prong == prong)
    added = exists().where(o.item_key == i.key, o.prong == prong, o.action == "add")
    removed = exists().where(o.item_key == i.key, o.prong == prong, o.action == "remove")
    return and_(or_(computed, added), ~removed)


@dataclass(frozen=True)
class Filter:
    """A text filter; subclasses change how a value parses, matches and reads."""

    attr: str  # the attribute of :class:`Filters`
    param: str  # the query parameter and the ``biblio export --<param>`` option
    label: str  # the words before the value: "type is ..."
    help: str  # one line for the command line's help

    def parse(self, raw: str | None, prong_ids: tuple[str, ...]) -> Any:
        return text_value(self.param, raw)

    def clause(self, value: Any) -> ColumnElement[bool]:
        raise NotImplementedError

    def mask(self, index: Any, conn: Connection, value: Any) -> np.ndarray:
        """The index rows matching ``value`` (``index`` is a :class:`.index.Index`)."""
        raise NotImplementedError

    def value_text(self, value: Any) -> str:
        """The value as it reads in a file name ("1990s" for a decade)."""
        return str(value)

    def value_label(self, value: Any, labels: Labels) -> str:
        """The value as people read it: its label where ``labels`` has one."""
        return labels.get(self.param, {}).get(str(value)) or self.value_text(value)

    def describe(self, value: Any, labels: Labels) -> str:
        """This filter in words: "type is Journal Article"."""
        return f"{self.label} is {self.value_label(value, labels)}"


class ProngFilter(Filter):
    def parse(self, raw: str | None, prong_ids: tuple[str, ...]) -> Any:
        prong = text_value(self.param, raw)
        if prong is not None and prong_ids and prong not in prong_ids:
            raise BadParameter(f"unknown prong {prong!r}; known prongs: {', '.join(prong_ids)}")
        return prong

    def clause(self, value: Any) -> ColumnElement[bool]:
        return prong_clause(value)

    def mask(self, index: Any, conn: Connection, value: Any) -> np.ndarray:
        return index.mask_of(index.prongs.having(value))


class TagFilter(Filter):
    def clause(self, value: Any) -> ColumnElement[bool]:
        t = st.item_tags.c
        return exists().where(t.item_key == st.items.c.key, t.tag == value)

    def mask(self, index: Any, conn: Connection, value: Any) -> np.ndarray:
        return index.mask_of(index.tags.having(value))


class CollectionFilter(Filter):
    """The collection and its sub-collections, like Zotero's "show items from
    subcollections" option."""

    def clause(self, value: Any) -> ColumnElement[bool]:
        c = st.item_collections.c
        return exists().where(
            c.item_key == st.items.c.key, c.collection_key.in_(collection_tree(value))
        )

    def mask(self, index: Any, conn: Connection, value: Any) -> np.ndarray:
        ids = index.collections.codes.ids
        codes = [ids[k] for k in index.tree(value) if k in ids]
        return index.mask_of(index.collections.items[np.isin(index.collections.values, codes)])


class TypeFilter(Filter):
    def value_label(self, value: Any, labels: Labels) -> str:
        return labels.get(self.param, {}).get(str(value)) or type_label(str(value))

    def clause(self, value: Any) -> ColumnElement[bool]:
        return st.items.c.item_type == value

    def mask(self, index: Any, conn: Connection, value: Any) -> np.ndarray:
        return np.asarray(index.types == index.type_codes.ids.get(value, -1))


class YearFilter(Filter):
    def parse(self, raw: str | None, prong_ids: tuple[str, ...]) -> Any:
        return int_value(self.param, raw, 0, 9999)

    def clause(self, value: Any) -> ColumnElement[bool]:
        return st.items.c.year == value

    def mask(self, index: Any, conn: Connection, value: Any) -> np.ndarray:
        return np.asarray(index.years == value)


class DecadeFilter(Filter):
    """A decade by its first year: ``decade=1990`` is 1990-1999."""

    def parse(self, raw: str | None, prong_ids: tuple[str, ...]) -> Any:
        decade = int_value(self.param, raw, 0, 9990)
        if decade is not None and decade % 10:
            raise BadParameter(f"decade must be a year ending in 0, like 1990, got {decade}")
        return decade

    def clause(self, value: Any) -> ColumnElement[bool]:
        return st.items.c.year.between(value, value + 9)

    def mask(self, index: Any, conn: Connection, value: Any) -> np.ndarray:
        return np.asarray((index.years >= value) & (index.years <= value + 9))

    def value_text(self, value: Any) -> str:
        return f"{value}s"


class CreatorFilter(Filter):
    def clause(self, value: Any) -> ColumnElement[bool]:
        c = st.item_creators.c
        return exists().where(c.item_key == st.items.c.key, c.name == value)

    def mask(self, index: Any, conn: Connection, value: Any) -> np.ndarray:
        return index.mask_of(index.creators.having(value))


class SearchFilter(Filter):
    """Full-text search in the query language of :mod:`.query`: FTS5 on SQLite (ranked,
    with word forms), ILIKE elsewhere. Bad search text is a :class:`SearchError`."""

    def parse(self, raw: str | None, prong_ids: tuple[str, ...]) -> Any:
        if raw is None or raw.strip() == "":
            return None
        q = raw.strip()
        if controlchars.has_control(raw, allow_breaks=True):
            raise SearchError(
                "The search contains a control character (perhaps pasted in): retype it.",
                controlchars.strip(q),
            )
        try:
            query.parse(q)
        except query.SearchSyntaxError as exc:
            raise SearchError(str(exc), q) from None
        return q

    def clause(self, value: Any) -> ColumnElement[bool]:
        return search.match_clause(value)

    def mask(self, index: Any, conn: Connection, value: Any) -> np.ndarray:
        return np.asarray(index.search_mask(conn, value))

    def describe(self, value: Any, labels: Labels) -> str:
        # A search with its own quotation marks reads as typed, without doubling them.
        text = str(value)
        return f"{self.label} {text}" if '"' in text else f'{self.label} "{text}"'


#: Every filter, in the order pages list them and phrases read.
FILTERS: tuple[Filter, ...] = (
    ProngFilter("prong", "prong", "prong", "Only items of this prong."),
    TagFilter("tag", "tag", "tag", "Only items with this Zotero tag."),
    CollectionFilter(
        "collection",
        "collection",
        "collection",
        "Only items in this collection (key) or its sub-collections.",
    ),
    TypeFilter("item_type", "type", "type", "Only items of this Zotero item type."),
    YearFilter("year", "year", "year", "Only items of this year."),
    DecadeFilter("decade", "decade", "decade", "Only items of this decade (e.g. 1990)."),
    CreatorFilter("creator", "creator", "creator", 'Only items by this creator ("Last, First").'),
    SearchFilter("q", "q", "matching", "Only items matching this search."),
)
BY_PARAM: dict[str, Filter] = {f.param: f for f in FILTERS}


@dataclass(frozen=True)
class Filters:
    """One value (or None) per filter of :data:`FILTERS`."""

    prong: str | None = None
    tag: str | None = None
    collection: str | None = None
    item_type: str | None = None
    year: int | None = None
    decade: int | None = None  # e.g. 1990 for 1990-1999
    creator: str | None = None
    q: str | None = None

    @classmethod
    def parse(cls, args: Mapping[str, Any], prong_ids: tuple[str, ...] = ()) -> Filters:
        """Filters from raw parameter values (a query string, or command-line options)
        keyed by parameter name; :class:`BadParameter` names the first bad one."""
        return cls(**{f.attr: f.parse(args.get(f.param), prong_ids) for f in FILTERS})

    def active(self) -> Iterator[tuple[Filter, Any]]:
        """The filters that are set, with their values, in :data:`FILTERS` order."""
        for f in FILTERS:
            value = getattr(self, f.attr)
            if value is not None and value != "":
                yield f, value

    def without(self, param: str) -> Filters:
        """These filters with one of them (by parameter name) removed."""
        return dataclasses.replace(self, **{BY_PARAM[param].attr: None})

    def where(self) -> ColumnElement[bool]:
        """The live items matching every filter, as one parameterised clause."""
        return and_(live_items(), *(f.clause(v) for f, v in self.active()))

    def mask(self, index: Any, conn: Connection) -> np.ndarray:
        """The live items matching every filter, as a mask over ``index``."""
        mask = np.ones(index.size, dtype=bool)
        for f, value in self.active():
            mask &= f.mask(index, conn, value)
        return mask

    def values(self) -> list[Any]:
        """The set values as they read ("1990s" for a decade), e.g. for a file name."""
        return [f.value_text(v) for f, v in self.active()]

    def phrase(self, labels: Labels | None = None) -> str:
        """English for the filters, to follow "items": ``matching "tenure" where prong is
        Pathways and type is Book``, ``where year is 2020``, ``matching "tenure"`` or ""
        (no filter); values read through ``labels`` (prong and collection names)."""
        search: list[str] = []
        rest: list[str] = []
        for f, value in self.active():
            (search if f.param == "q" else rest).append(f.describe(value, labels or {}))
        where = "where " + " and ".join(rest) if rest else ""
        return " ".join(part for part in (*search, where) if part)


def sentence(count: int, filters: Filters, sort: str, labels: Labels | None = None) -> str:
    """What a list shows, in one sentence: "1 item where type is Book, sorted by title"."""
    phrase = filters.phrase(labels)
    noun = "item" if count == 1 else "items"
    return f"{count} {noun}{' ' + phrase if phrase else ''}, sorted by {SORTS[sort]}"
