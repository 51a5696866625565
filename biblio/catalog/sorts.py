"""The orders a list of items can be sorted in: each with its label and its SQL order.

``SORTS`` names them for people ("sorted by year, newest first"); ``SORT_ORDER`` gives
the SQL ``ORDER BY`` of each, the item key last so every order is total and stable.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import desc, func

from biblio import storage as st

SORTS = {
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
SORT_ORDER: dict[str, tuple[Any, ...]] = {
    "added": (desc(_I.date_added), _I.key),
    "-added": (_I.date_added, _I.key),
    "year": (_I.year.asc().nulls_last(), _I.key),
    "-year": (_I.year.desc().nulls_last(), _I.key),
    "title": (func.lower(_I.title), _I.key),
    "-title": (desc(func.lower(_I.title)), _I.key),
    "creator": (func.lower(_I.creator_summary), _I.key),
    "-creator": (desc(func.lower(_I.creator_summary)), _I.key),
}
