"""Save fetched Zotero changes into the cache: upserts by key and version, idempotently.

Everything here runs inside the caller's one transaction, so a failure anywhere
leaves the previous cache and library version untouched. An object whose version
already matches the cache is skipped; a full sync also removes what the library
no longer has. Derived rows (creators, tags, collection links) are rebuilt for the
items that changed, in bulk.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from biblio import storage as st
from biblio.sync.fetch import Changes

CHUNK = 500
_TAG_RE = re.compile(r"<[^>]+>")
_SPACE_RE = re.compile(r"\s+")


@dataclass
class Counts:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    trashed: int = 0
    unchanged: int = 0
    collections_changed: int = 0

    @property
    def changed_item_keys(self) -> set[str]:
        return self._changed

    def __post_init__(self) -> None:
        self._changed: set[str] = set()


def _chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
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


def _creator_rows(key: str, data: dict[str, Any]) -> list[dict[str, Any]]:
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


def _tag_rows(key: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for tag in data.get("tags") or []:
        name = tag.get("tag") if isinstance(tag, dict) else None
        if isinstance(name, str) and name.strip() and name not in seen:
            seen[name] = {"item_key": key, "tag": name[:255], "type": int(tag.get("type") or 0)}
    return list(seen.values())


def _collection_rows(key: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"item_key": key, "collection_key": c}
        for c in dict.fromkeys(data.get("collections") or [])
        if isinstance(c, str)
    ]


def _existing_versions(conn: Connection, table: Any, keys: list[str] | None) -> dict[str, int]:
    if keys is None:
        return dict(conn.execute(select(table.c.key, table.c.version)).all())
    found: dict[str, int] = {}
    for chunk in _chunks(keys):
        found.update(
            conn.execute(select(table.c.key, table.c.version).where(table.c.key.in_(chunk))).all()
        )
    return found


def _delete_items(conn: Connection, keys: Sequence[str]) -> int:
    removed = 0
    for chunk in _chunks(list(keys)):
        # Children of a deleted parent go with it (Zotero deletes them too).
        children = (
            conn.execute(select(st.items.c.key).where(st.items.c.parent_key.in_(chunk)))
            .scalars()
            .all()
        )
        removed += (
            conn.execute(
                delete(st.items).where(st.items.c.key.in_(list(chunk) + list(children)))
            ).rowcount
            or 0
        )
    return removed


def save_items(
    conn: Connection, objects: list[dict[str, Any]], full: bool, now: datetime, counts: Counts
) -> None:
    keys = [o["key"] for o in objects]
    existing = _existing_versions(conn, st.items, None if full else keys)
    if full:
        gone = sorted(set(existing) - set(keys))
        counts.deleted += _delete_items(conn, gone)
    # A chunk at a time: rows and their derived rows for 50k items at once would
    # multiply the memory the fetched objects already take.
    for chunk in _chunks(objects):
        _save_item_chunk(conn, chunk, existing, now, counts)


def _save_item_chunk(
    conn: Connection,
    objects: Sequence[dict[str, Any]],
    existing: dict[str, int],
    now: datetime,
    counts: Counts,
) -> None:
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for obj in objects:
        row = item_row(obj, now)
        old = existing.get(row["key"])
        if old is not None and old == row["version"]:
            counts.unchanged += 1
            continue
        (updates if old is not None else inserts).append(row)
        counts.trashed += int(row["deleted"])
        counts._changed.add(row["key"])
    counts.added += len(inserts)
    counts.updated += len(updates)
    if inserts:
        conn.execute(insert(st.items), inserts)
    if updates:
        # Bind names must differ from column names in an executemany UPDATE.
        stmt = (
            update(st.items)
            .where(st.items.c.key == bindparam("b_key"))
            .values(
                {c: bindparam(f"b_{c}", type_=st.items.c[c].type) for c in updates[0] if c != "key"}
            )
        )
        conn.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in updates])
        changed = [r["key"] for r in updates]
        for table in (st.item_creators, st.item_tags, st.item_collections):
            conn.execute(delete(table).where(table.c.item_key.in_(changed)))
    creators: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for row in inserts + updates:
        creators += _creator_rows(row["key"], row["data"])
        tags += _tag_rows(row["key"], row["data"])
        links += _collection_rows(row["key"], row["data"])
    for table, rows in (
        (st.item_creators, creators),
        (st.item_tags, tags),
        (st.item_collections, links),
    ):
        if rows:
            conn.execute(insert(table), rows)


def save_collections(
    conn: Connection, objects: list[dict[str, Any]], full: bool, now: datetime, counts: Counts
) -> None:
    existing = _existing_versions(conn, st.collections, None)
    seen = set()
    for obj in objects:
        data = obj.get("data") or {}
        key = obj["key"]
        seen.add(key)
        version = int(obj.get("version") or data.get("version") or 0)
        if existing.get(key) == version:
            continue
        row = {
            "version": version,
            "name": str(data.get("name") or ""),
            "parent_key": data.get("parentCollection") or None,
            "deleted": bool(data.get("deleted")),
            "data": data,
            "synced_at": now,
        }
        if key in existing:
            conn.execute(update(st.collections).where(st.collections.c.key == key).values(row))
        else:
            conn.execute(insert(st.collections).values(key=key, **row))
        counts.collections_changed += 1
    if full:
        gone = sorted(set(existing) - seen)
        for chunk in _chunks(gone):
            conn.execute(delete(st.collections).where(st.collections.c.key.in_(chunk)))
        counts.collections_changed += len(gone)


def save_deleted(conn: Connection, deleted: dict[str, list[str]], counts: Counts) -> None:
    counts.deleted += _delete_items(conn, deleted.get("items") or [])
    gone = list(deleted.get("collections") or [])
    for chunk in _chunks(gone):
        n = conn.execute(delete(st.collections).where(st.collections.c.key.in_(chunk))).rowcount
        counts.collections_changed += n or 0
        conn.execute(
            delete(st.item_collections).where(st.item_collections.c.collection_key.in_(chunk))
        )
    for chunk in _chunks(list(deleted.get("tags") or [])):
        conn.execute(delete(st.item_tags).where(st.item_tags.c.tag.in_(chunk)))


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
    for table in (st.items, st.collections, st.group_info):
        conn.execute(delete(table))


def save_changes(conn: Connection, changes: Changes, now: datetime) -> Counts:
    """Apply one run's :class:`Changes` inside the caller's transaction."""
    counts = Counts()
    if not changes.not_modified:
        save_collections(conn, changes.collections, changes.full, now, counts)
        save_items(conn, changes.items, changes.full, now, counts)
        if not changes.full:
            save_deleted(conn, changes.deleted, counts)
    save_group(conn, changes.group, now)
    return counts
