"""Item filtering, sorting and derived fields of the Zotero API stand-in.

What Zotero's server computes from item data rather than stores: which items a list
request matches (scope, trash, ``since``, ``itemKey``, ``itemType``, ``tag``, ``q``),
their order for ``sort``/``direction``, and ``meta.creatorSummary`` and
``meta.parsedDate``. Kept apart from :mod:`biblio.standin.library` so the model
holds state and versioning only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


def _match_list(value: str, expr: str) -> bool:
    """Zotero's simple filter syntax: ``A || B`` means either, ``-A`` means not A."""
    if expr.startswith("-"):
        return value not in expr[1:].split(" || ")
    return value in expr.split(" || ")


def _tag_filter(tags: list[dict[str, Any]], expr: str) -> bool:
    names = [t.get("tag", "") for t in tags]
    if expr.startswith("-"):
        return not any(n in names for n in expr[1:].split(" || "))
    return any(n in names for n in expr.split(" || "))


@dataclass(frozen=True)
class ItemQuery:
    """Filters of one item list request (everything except paging and format)."""

    scope: str = "all"  # all | top | trash | children | collection | collection_top
    scope_key: str | None = None
    include_trashed: bool = False
    since: int | None = None
    item_keys: tuple[str, ...] | None = None
    item_type: str | None = None
    tags: tuple[str, ...] = ()
    q: str | None = None
    sort: str = "dateModified"
    direction: str = "desc"


@dataclass
class QueryResult:
    """An atomic view of one page: the library version and the objects on the page."""

    version: int
    total: int
    records: list[Any] = field(default_factory=list)


def select_items(
    items: dict[str, dict[str, Any]], children: dict[str, list[str]], q: ItemQuery
) -> list[str]:
    """Ordered keys of the items matching ``q`` (a full scan; callers cache it)."""
    if q.item_keys is not None:
        pool: Iterable[dict[str, Any]] = [items[k] for k in q.item_keys if k in items]
    elif q.scope == "children":
        pool = [items[k] for k in children.get(q.scope_key or "", ())]
    else:
        pool = items.values()
    trash_only = q.scope == "trash"
    top_only = q.scope in ("top", "collection_top")
    coll = q.scope_key if q.scope.startswith("collection") else None
    text = (q.q or "").lower()
    out = []
    for d in pool:
        if trash_only:
            if not d.get("deleted"):
                continue
        elif not q.include_trashed and d.get("deleted"):
            continue
        if top_only and d.get("parentItem"):
            continue
        if coll is not None:
            parent = d.get("parentItem")
            colls = (items.get(parent, {})) if parent else d
            if coll not in (colls.get("collections") or ()):
                continue
        if q.since is not None and d["version"] <= q.since:
            continue
        if q.item_type and not _match_list(d.get("itemType", ""), q.item_type):
            continue
        if any(not _tag_filter(d.get("tags") or [], t) for t in q.tags):
            continue
        if text and text not in _search_text(d):
            continue
        out.append(d)
    _sort_items(out, q.sort, q.direction)
    return [d["key"] for d in out]


def _search_text(d: dict[str, Any]) -> str:
    parts = [str(d.get("title", "")), str(d.get("date", ""))]
    for c in d.get("creators") or ():
        parts.extend((c.get("firstName", ""), c.get("lastName", ""), c.get("name", "")))
    return " ".join(parts).lower()


def creator_summary(creators: list[dict[str, Any]]) -> str | None:
    """Zotero's ``meta.creatorSummary``: "A", "A and B" or "A et al."."""
    if not creators:
        return None
    primary = [c for c in creators if c.get("creatorType") == "author"] or creators
    names = [c.get("lastName") or c.get("name") or "" for c in primary]
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
        start=1,
    )
}
_ISO_RE = re.compile(r"^\s*(\d{4})(?:[-/](\d{1,2})(?:[-/](\d{1,2}))?)?")
_YEAR_RE = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_MONTH_RE = re.compile(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b", re.I)


def parsed_date(date: str) -> str | None:
    """An ISO-like ``meta.parsedDate`` from free-text ``date`` (None if no year)."""
    m = _ISO_RE.match(date or "")
    if m:
        year, month, day = m.group(1), int(m.group(2) or 0), int(m.group(3) or 0)
    else:
        y = _YEAR_RE.search(date or "")
        if not y:
            return None
        year, day = y.group(1), 0
        mm = _MONTH_RE.search(date)
        month = _MONTHS[mm.group(1).lower()] if mm else 0
    if not 1 <= month <= 12:
        return year
    if not 1 <= day <= 31:
        return f"{year}-{month:02d}"
    return f"{year}-{month:02d}-{day:02d}"


def _sort_items(out: list[dict[str, Any]], sort: str, direction: str) -> None:
    rev = direction == "desc"
    if sort in ("dateModified", "dateAdded"):
        out.sort(key=lambda d: (d.get(sort, ""), d["version"], d["key"]), reverse=rev)
    elif sort == "creator":
        out.sort(
            key=lambda d: ((creator_summary(d.get("creators") or []) or "").lower(), d["key"]),
            reverse=rev,
        )
    elif sort == "date":
        out.sort(key=lambda d: (parsed_date(str(d.get("date", ""))) or "", d["key"]), reverse=rev)
    else:
        out.sort(key=lambda d: (str(d.get(sort, "")).lower(), d["key"]), reverse=rev)
