"""The cache's rows for what Zotero sends: items, their creators, tags and collection
links, collections, the group, and the counts a run reports.

:func:`item_row` and its companions turn one API object into the rows the cache
keeps; the staging step (:mod:`.stage`) writes them as objects arrive and the final
transaction (:mod:`.apply`) moves them into place. The group's metadata is small and
saved directly in that transaction (:func:`save_group`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from biblio import storage as st

CHUNK = 500
_TAG_RE = re.compile(r"<[^>]+>")
_SPACE_RE = re.compile(r"\s+")


@dataclass
class Counts:
    """What a run changed; ``changed_item_keys`` is what it announces to subscribers."""

    added: int = 0
    updated: int = 0
    deleted: int = 0
    trashed: int = 0
    unchanged: int = 0
    collections_changed: int = 0
    texts_changed: int = 0
    texts_removed: int = 0
    changed_item_keys: set[str] = field(default_factory=set)


def chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """``seq`` in slices of ``size`` (bound lists in ``IN (...)`` stay small)."""
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def note_title(note_html: str) -> str:
    """The first line of a note's text, as Zotero shows it (tags removed, entities decoded)."""
    text = _TAG_RE.sub("\n", note_html or "")
    for line in html.unescape(text).splitlines():
        line = _SPACE_RE.sub(" ", line).strip()
        if line:
            return line[:200]
    return ""


def _year(parsed_date: str | None) -> int | None:
    if parsed_date and len(parsed_date) >= 4 and parsed_date[:4].isdigit():
        year = int(parsed_date[:4])
        return year if year > 0 else None
    return None


def item_row(obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The ``items`` row for one API object ``{key, version, meta, data}``."""
    data = obj.get("data") or {}
    meta = obj.get("meta") or {}
    item_type = str(data.get("itemType") or "")
    title = data.get("title") or ""
    if item_type == "note":
        title = note_title(data.get("note") or "")
    parsed = meta.get("parsedDate")
    return {
        "key": obj["key"],
        "version": int(obj.get("version") or data.get("version") or 0),
        "item_type": item_type,
        "parent_key": data.get("parentItem") or None,
        "title": str(title),
        "creator_summary": str(meta.get("creatorSummary") or ""),
        "date": str(data.get("date") or ""),
        "parsed_date": str(parsed)[:10] if parsed else None,
        "year": _year(str(parsed) if parsed else None),
        "date_added": data.get("dateAdded"),
        "date_modified": data.get("dateModified"),
        "deleted": bool(data.get("deleted")),
        "data": data,
        "meta": meta,
        "synced_at": now,
    }


def creator_rows(key: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for position, creator in enumerate(data.get("creators") or []):
        if not isinstance(creator, dict):
            continue
        last, first = creator.get("lastName"), creator.get("firstName")
        name = creator.get("name") or ", ".join(p for p in (last, first) if p)
        if not name:
            continue
        rows.append(
            {
                "item_key": key,
                "position": position,
                "creator_type": str(creator.get("creatorType") or "author"),
                "name": name,
                "last_name": last,
                "first_name": first,
            }
        )
    return rows


def tag_rows(key: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for tag in data.get("tags") or []:
        name = tag.get("tag") if isinstance(tag, dict) else None
        if isinstance(name, str) and name.strip() and name not in seen:
            seen[name] = {"item_key": key, "tag": name[:255], "type": int(tag.get("type") or 0)}
    return list(seen.values())


def collection_links(key: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"item_key": key, "collection_key": c}
        for c in dict.fromkeys(data.get("collections") or [])
        if isinstance(c, str)
    ]


def collection_row(obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The ``collections`` row for one API object."""
    data = obj.get("data") or {}
    return {
        "key": obj["key"],
        "version": int(obj.get("version") or data.get("version") or 0),
        "name": str(data.get("name") or ""),
        "parent_key": data.get("parentCollection") or None,
        "deleted": bool(data.get("deleted")),
        "data": data,
        "synced_at": now,
    }


def save_group(conn: Connection, group: dict[str, Any] | None, now: datetime) -> bool:
    """Cache the group's metadata; return True if its version changed."""
    if not group:
        return False
    data = group.get("data") or {}
    row = {
        "version": int(group.get("version") or data.get("version") or 0),
        "name": str(data.get("name") or ""),
        "description": str(data.get("description") or ""),
        "type": data.get("type"),
        "url": data.get("url") or None,
        "owner": data.get("owner"),
        "admins": [int(a) for a in data.get("admins") or []],
        "members": [int(m) for m in data.get("members") or []],
        "data": data,
        "fetched_at": now,
    }
    group_id = int(group.get("id") or data.get("id") or 0)
    old = conn.execute(
        select(st.group_info.c.version).where(st.group_info.c.id == group_id)
    ).scalar()
    if old is None:
        conn.execute(delete(st.group_info))  # one library per cache
        conn.execute(insert(st.group_info).values(id=group_id, **row))
    else:
        conn.execute(update(st.group_info).where(st.group_info.c.id == group_id).values(row))
    return old != row["version"]


def wipe_library(conn: Connection) -> None:
    """Forget every cached object (the configured library changed)."""
    for table in (st.item_fulltext, st.items, st.collections, st.group_info):
        conn.execute(delete(table))
