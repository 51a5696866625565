"""The final transaction of a run: staged rows move into the cache, set against set.

Runs inside the transaction that also tells the subscribers (prongs, search,
membership) and moves the library version, so the cache and its version change
together or not at all. Everything is a handful of ``INSERT … SELECT``,
``UPDATE … FROM`` and ``DELETE … WHERE key IN (SELECT …)`` statements between the
staging tables and the real ones, which keeps the write lock short and memory flat:
only the keys of changed items are read into Python, for the ``changed`` set the run
announces. An item whose staged version equals the cached one is left alone; a full
sync also removes what the library no longer has; deleted items take their children
and their text with them (``ON DELETE CASCADE``). The parents of attachments whose
text changed or went away join the ``changed`` set, so the search index re-reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from biblio import storage as st
from biblio.storage import schema as sch
from biblio.sync.save import Counts, chunks

_ITEM_COLUMNS = [c.name for c in st.items.columns]


def apply_stage(conn: Connection, *, full: bool) -> Counts:
    """Move the staged run into the cache (inside the caller's transaction)."""
    counts = Counts()
    _apply_collections(conn, full, counts)
    _apply_items(conn, full, counts)
    if not full:
        _apply_deleted(conn, counts)
    _apply_fulltext(conn, counts)
    return counts


def _staged(kind: str) -> Any:
    d = sch.stage_deleted
    return select(d.c.key).where(d.c.kind == kind)


def _text_parents(conn: Connection, keys: Sequence[str]) -> set[str]:
    """Parents of those of ``keys`` that have text (before the text goes away)."""
    ft = st.item_fulltext
    parents: set[str] = set()
    for part in chunks(list(keys)):
        parents.update(
            conn.execute(
                select(ft.c.parent_key).where(ft.c.item_key.in_(part), ft.c.parent_key.is_not(None))
            ).scalars()
        )
    return parents


def _delete_items(conn: Connection, keys: Sequence[str], counts: Counts) -> None:
    if not keys:
        return
    i = st.items
    # Children of a deleted parent go with it (Zotero deletes them too).
    children: list[str] = []
    for part in chunks(list(keys)):
        children += conn.execute(select(i.c.key).where(i.c.parent_key.in_(part))).scalars().all()
    doomed = sorted(set(keys) | set(children))
    counts.changed_item_keys.update(_text_parents(conn, doomed))
    for part in chunks(doomed):
        counts.deleted += conn.execute(delete(i).where(i.c.key.in_(part))).rowcount or 0


def _apply_items(conn: Connection, full: bool, counts: Counts) -> None:
    i, s = st.items, sch.stage_items
    conn.execute(
        update(s).values(
            change=case(
                (~select(i.c.key).where(i.c.key == s.c.key).exists(), "a"),
                (
                    select(i.c.key).where(i.c.key == s.c.key, i.c.version != s.c.version).exists(),
                    "u",
                ),
                else_=None,
            )
        )
    )
    for key, change, trashed in conn.execute(
        select(s.c.key, s.c.change, s.c.deleted).where(s.c.change.is_not(None))
    ):
        counts.changed_item_keys.add(key)
        counts.added += change == "a"
        counts.updated += change == "u"
        counts.trashed += bool(trashed)
    counts.unchanged = (
        conn.execute(select(func.count()).select_from(s).where(s.c.change.is_(None))).scalar() or 0
    )
    if full:
        gone = (
            conn.execute(select(i.c.key).where(~select(s.c.key).where(s.c.key == i.c.key).exists()))
            .scalars()
            .all()
        )
        _delete_items(conn, gone, counts)

    updated = select(s.c.key).where(s.c.change == "u")
    changed = select(s.c.key).where(s.c.change.is_not(None))
    for table in (st.item_creators, st.item_tags, st.item_collections):
        conn.execute(delete(table).where(table.c.item_key.in_(updated)))
    if counts.updated:
        conn.execute(
            update(i)
            .values({c: s.c[c] for c in _ITEM_COLUMNS if c != "key"})
            .where(and_(i.c.key == s.c.key, s.c.change == "u"))
        )
    if counts.added:
        conn.execute(
            insert(i).from_select(
                _ITEM_COLUMNS, select(*[s.c[c] for c in _ITEM_COLUMNS]).where(s.c.change == "a")
            )
        )
    for table, staged in (
        (st.item_creators, sch.stage_item_creators),
        (st.item_tags, sch.stage_item_tags),
        (st.item_collections, sch.stage_item_collections),
    ):
        names = [c.name for c in table.columns]
        conn.execute(
            insert(table).from_select(
                names,
                select(*[staged.c[n] for n in names]).where(staged.c.item_key.in_(changed)),
            )
        )


def _apply_collections(conn: Connection, full: bool, counts: Counts) -> None:
    c, s = st.collections, sch.stage_collections
    cached = c.alias("cached")  # not the DELETE's own table: no accidental correlation
    names = [col.name for col in c.columns]
    same = select(cached.c.key).where(cached.c.key == s.c.key, cached.c.version == s.c.version)
    fresh = select(s.c.key).where(~same.exists())
    if full:
        counts.collections_changed += (
            conn.execute(
                delete(c).where(~select(s.c.key).where(s.c.key == c.c.key).exists())
            ).rowcount
            or 0
        )
    # Counted before, not from rowcount: drivers need not report it for INSERT … SELECT.
    counts.collections_changed += (
        conn.execute(select(func.count()).select_from(fresh.subquery())).scalar() or 0
    )
    conn.execute(delete(c).where(c.c.key.in_(fresh)))
    conn.execute(
        insert(c).from_select(
            names,
            select(*[s.c[n] for n in names]).where(
                ~select(cached.c.key).where(cached.c.key == s.c.key).exists()
            ),
        )
    )


def _apply_deleted(conn: Connection, counts: Counts) -> None:
    _delete_items(conn, conn.execute(_staged("items")).scalars().all(), counts)
    c, links = st.collections, st.item_collections
    counts.collections_changed += (
        conn.execute(delete(c).where(c.c.key.in_(_staged("collections")))).rowcount or 0
    )
    conn.execute(delete(links).where(links.c.collection_key.in_(_staged("collections"))))
    conn.execute(delete(st.item_tags).where(st.item_tags.c.tag.in_(_staged("tags"))))


def _apply_fulltext(conn: Connection, counts: Counts) -> None:
    ft, s, i = st.item_fulltext, sch.stage_fulltext, st.items
    dropped = conn.execute(select(ft.c.item_key).where(ft.c.item_key.in_(_staged("fulltext"))))
    dropped_keys = dropped.scalars().all()
    if dropped_keys:
        counts.changed_item_keys.update(_text_parents(conn, dropped_keys))
        for part in chunks(dropped_keys):
            counts.texts_removed += (
                conn.execute(delete(ft).where(ft.c.item_key.in_(part))).rowcount or 0
            )
    # Texts of attachments the cache holds (the foreign key); their parents change.
    arrived = select(s.c.item_key).where(s.c.item_key.in_(select(i.c.key)))
    conn.execute(delete(ft).where(ft.c.item_key.in_(arrived)))
    names = [c.name for c in ft.columns]
    source = [i.c.parent_key if n == "parent_key" else s.c[n] for n in names]
    counts.texts_changed = (
        conn.execute(select(func.count()).select_from(arrived.subquery())).scalar() or 0
    )
    conn.execute(insert(ft).from_select(names, select(*source).join(i, i.c.key == s.c.item_key)))
    counts.changed_item_keys.update(
        conn.execute(
            select(i.c.parent_key)
            .join(s, s.c.item_key == i.c.key)
            .where(i.c.parent_key.is_not(None))
        ).scalars()
    )
