"""The orders a list of items can be sorted in: each with its label and its SQL order.

``SORTS`` names them for people ("sorted by year, newest first"); ``SORT_ORDER`` gives
the SQL ``ORDER BY`` of each, the item key last so every order is total and stable.
``relevance`` is the order of a search (bm25, :mod:`biblio.catalog.search`), and the
default when there is one (:func:`resolve`); its SQL order, used only to break ties and
when there is nothing to rank by, is the default list order. Items without creators
come last in both creator orders, as undated ones do in the year orders.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, desc, func

from biblio import storage as st

#: The list order without a search, and the order of ties in a search.
DEFAULT = "added"
RELEVANCE = "relevance"

SORTS = {
    RELEVANCE: "relevance",
    "added": "date added, newest first",
    "-added": "date added, oldest first",
    "year": "year, oldest first",
    "-year": "year, newest first",
    "title": "title",
    "-title": "title, Z to A",
    "creator": "creator",
    "-creator": "creator, Z to A",
}

_I = st.items.c
_NO_CREATOR = case((_I.creator_summary == "", 1), else_=0)
SORT_ORDER: dict[str, tuple[Any, ...]] = {
    "added": (desc(_I.date_added), _I.key),
    "-added": (_I.date_added, _I.key),
    "year": (_I.year.asc().nulls_last(), _I.key),
    "-year": (_I.year.desc().nulls_last(), _I.key),
    "title": (func.lower(_I.title), _I.key),
    "-title": (desc(func.lower(_I.title)), _I.key),
    "creator": (_NO_CREATOR, func.lower(_I.creator_summary), _I.key),
    "-creator": (_NO_CREATOR, desc(func.lower(_I.creator_summary)), _I.key),
}
SORT_ORDER[RELEVANCE] = SORT_ORDER[DEFAULT]


def resolve(sort: str | None, searching: bool) -> str:
    """The order a list is shown in: ``sort`` as asked, relevance by default when
    ``searching``, and the default order for relevance without a search."""
    if sort is None:
        return RELEVANCE if searching else DEFAULT
    return DEFAULT if sort == RELEVANCE and not searching else sort
