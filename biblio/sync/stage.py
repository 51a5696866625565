"""Staging: what a run fetches goes to the ``sync_stage_*`` tables as it arrives.

Holding a 100k-item fetch in memory until one commit took over half a gigabyte, and
writing it into the real tables inside one long transaction would hold SQLite's write
lock (every join request, every login) for the whole download. Instead each answer
becomes rows at once (the same rows the cache keeps, built by :mod:`.save`) and is
written to the staging twins of the cache's tables in short transactions of a few
hundred rows; the final transaction (:mod:`.apply`) moves them into place with the
new library version. A failed or killed run leaves only staging rows behind, which
the next run clears first; the cache and its version are untouched.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, insert
from sqlalchemy.engine import Connection

from biblio.storage import schema as sch
from biblio.sync.patience import Writer
from biblio.sync.save import (
    chunks,
    collection_links,
    collection_row,
    creator_rows,
    item_row,
    tag_rows,
)

#: Every staging table, children before parents (the order they are emptied in).
STAGING = (
    sch.stage_item_creators,
    sch.stage_item_tags,
    sch.stage_item_collections,
    sch.stage_items,
    sch.stage_collections,
    sch.stage_fulltext,
    sch.stage_deleted,
)
#: Rows buffered before a staging transaction; full-text characters likewise.
FLUSH_ROWS = 1000
FLUSH_CHARS = 4_000_000


class Stage:
    """The :class:`~biblio.sync.fetch.Sink` of a run: buffered writes to staging."""

    def __init__(self, writer: Writer, now: datetime) -> None:
        self.writer = writer
        self.now = now
        self._rows: dict[Table, list[dict[str, Any]]] = {t: [] for t in STAGING}
        self._count = 0
        self._chars = 0

    def reset(self) -> None:
        """Empty the staging tables (a new run, a restarted one, or a finished one)."""
        self._rows = {t: [] for t in STAGING}
        self._count = self._chars = 0

        def clear(conn: Connection) -> None:
            for table in STAGING:
                conn.execute(delete(table))

        self.writer.write(clear, "clearing of the staging tables")

    # -- the sink --------------------------------------------------------------------

    def add_items(self, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            row = item_row(obj, self.now)
            self._add(sch.stage_items, [row])
            self._add(sch.stage_item_creators, creator_rows(row["key"], row["data"]))
            self._add(sch.stage_item_tags, tag_rows(row["key"], row["data"]))
            self._add(sch.stage_item_collections, collection_links(row["key"], row["data"]))
        self._maybe_flush()

    def add_collections(self, objects: list[dict[str, Any]]) -> None:
        self._add(sch.stage_collections, [collection_row(o, self.now) for o in objects])
        self._maybe_flush()

    def add_fulltext(self, key: str, version: int, text: dict[str, Any]) -> None:
        row = {
            "item_key": key,
            "parent_key": None,  # filled from the items table when applied
            "version": int(version),
            "content": text["content"],
            "indexed_chars": text.get("indexedChars"),
            "total_chars": text.get("totalChars"),
            "indexed_pages": text.get("indexedPages"),
            "total_pages": text.get("totalPages"),
        }
        self._add(sch.stage_fulltext, [row])
        self._chars += len(row["content"])
        self._maybe_flush()

    def drop(self, kind: str, keys: Iterable[str]) -> None:
        self._add(sch.stage_deleted, [{"kind": kind, "key": k[:255]} for k in keys])
        self._maybe_flush()

    # -- writing -----------------------------------------------------------------------

    def _add(self, table: Table, rows: list[dict[str, Any]]) -> None:
        self._rows[table].extend(rows)
        self._count += len(rows)

    def _maybe_flush(self) -> None:
        if self._count >= FLUSH_ROWS or self._chars >= FLUSH_CHARS:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered in one short transaction."""
        if not self._count:
            return
        batches = {t: rows for t, rows in self._rows.items() if rows}

        def write(conn: Connection) -> None:
            for table, rows in batches.items():
                if table is sch.stage_deleted:
                    # The same key may be named twice (a full listing and a 404).
                    rows = list({(r["kind"], r["key"]): r for r in rows}.values())
                    for kind in {r["kind"] for r in rows}:
                        keys = [r["key"] for r in rows if r["kind"] == kind]
                        for part in chunks(keys):
                            conn.execute(
                                delete(table).where(table.c.kind == kind, table.c.key.in_(part))
                            )
                for part in chunks(rows):
                    conn.execute(insert(table), list(part))

        self.writer.write(write, "staging of fetched objects")
        self._rows = {t: [] for t in STAGING}
        self._count = self._chars = 0
