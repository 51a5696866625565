"""What search engines are told to index: the public pages and every item page, in parts.

The sitemap protocol (sitemaps.org) allows at most 50,000 URLs per file, so a larger
library is described by a sitemap index naming numbered parts. :func:`plan` counts
the parts; :func:`part` lists one part's entries: the landing page, the item list, the
prong overview and each prong's list first (last modified at the last sync), then the
live items in key order, each with Zotero's ``dateModified``. Paths are relative; the
web layer makes them absolute with ``[web] public_url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from biblio import storage as st
from biblio.catalog.filters import live_items
from biblio.catalog.listing import prong_labels
from biblio.sync.state import read_state

#: The most URLs one sitemap file may list (the protocol's limit).
PER_FILE = 50_000


@dataclass(frozen=True)
class Entry:
    """One URL: ``page`` is an endpoint name, ``values`` its arguments."""

    page: str
    values: tuple[tuple[str, str], ...]
    lastmod: str | None


@dataclass(frozen=True)
class Plan:
    parts: int  # how many files the sitemap needs (1: no index)
    lastmods: tuple[str | None, ...]  # per part, its newest change


def _synced_at(conn: Any) -> str | None:
    when = (read_state(conn) or {}).get("last_success_at")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def _pages(conn: Any, settings: Mapping[str, Any]) -> list[Entry]:
    synced = _synced_at(conn)
    pages = [
        Entry("browse.index", (), synced),
        Entry("browse.items", (), synced),
        Entry("browse.prongs", (), synced),
    ]
    return pages + [Entry("browse.items", (("prong", p),), synced) for p in prong_labels(settings)]


def plan(engine: Engine, settings: Mapping[str, Any], per_file: int = PER_FILE) -> Plan:
    """How many parts the sitemap has, and each part's newest change."""
    with st.connect(engine) as conn:
        pages = _pages(conn, settings)
        items = conn.execute(select(func.count()).select_from(st.items).where(live_items()))
        total = len(pages) + int(items.scalar_one())
        parts = max(1, -(-total // per_file))
        lastmods = (
            tuple(
                max(
                    (e.lastmod for e in _part(conn, settings, n, per_file) if e.lastmod),
                    default=None,
                )
                for n in range(1, parts + 1)
            )
            if parts > 1
            else (None,)
        )
    return Plan(parts, lastmods)


def part(
    engine: Engine, settings: Mapping[str, Any], number: int, per_file: int = PER_FILE
) -> list[Entry]:
    """The entries of part ``number`` (from 1); empty past the last part."""
    with st.connect(engine) as conn:
        return _part(conn, settings, number, per_file)


def _part(conn: Any, settings: Mapping[str, Any], number: int, per_file: int) -> list[Entry]:
    if number < 1:
        return []
    pages = _pages(conn, settings)
    start, stop = (number - 1) * per_file, number * per_file
    chosen = pages[start:stop]
    first_item = max(0, start - len(pages))
    i = st.items.c
    rows = conn.execute(
        select(i.key, i.date_modified)
        .where(live_items())
        .order_by(i.key)
        .offset(first_item)
        .limit(stop - start - len(chosen))
    ).all()
    return chosen + [Entry("browse.item", (("key", k),), modified) for k, modified in rows]
