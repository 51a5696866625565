"""DDL beyond the tables: the browse indexes and the SQLite FTS5 search table.

Kept apart from :mod:`.schema` because SQLAlchemy's metadata cannot express them
(an FTS5 virtual table, covering indexes created with ``IF NOT EXISTS``), and apart
from the migrations so the search module can rebuild them on an older database.
The search table's shape has changed once: :func:`upgrade_fts` (migration
``0007_search_v2``) rebuilds a first-shape table in the current one from its own rows,
beside the ranking table ``items_rank`` (see :data:`RANK_COLUMNS`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, inspect, text
from sqlalchemy.engine import Connection

from biblio import controlchars

log = logging.getLogger(__name__)

#: The searchable columns of ``items_fts``, after the unindexed item key.
FTS_COLUMNS = ("title", "creators", "abstract", "publication", "tags", "notes", "fulltext")
#: How the search table splits text into words: Unicode words, accents folded
#: (``café`` finds ``cafe``), then Porter's stemmer (``paraprofessionals`` finds
#: ``paraprofessional``); prefix indexes make ``li*`` and ``lib*`` fast.
FTS_OPTIONS = "tokenize = 'porter unicode61 remove_diacritics 2', prefix = '2 3'"
#: The columns of ``items_rank``, the contentless FTS5 table that ranks matches by the
#: work's own metadata. FTS5's bm25 normalises by the length of the whole row, so in
#: ``items_fts`` a work with a long note or the text of its PDF would rank below a
#: short record even for a word in its title; ranking by these columns alone (the
#: others then break ties) keeps a title match a title match.
RANK_COLUMNS = ("title", "creators", "abstract", "publication", "tags")
#: The table of attachments' full text (from Zotero's /fulltext, kept by the sync).
FULLTEXT_TABLE = "item_fulltext"


def create_browse_indexes(conn: Connection) -> None:
    """A covering index for "live items" counts and the type/year facets: without it
    every count reads the wide ``items`` rows (their JSON) of the whole library."""
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_items_live ON items (parent_key, deleted, item_type, year)"
    )
    # The default list order (newest additions first) walks this index and stops early.
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_items_live_added ON items (parent_key, deleted, date_added)"
    )


def has_fts(conn: Connection) -> bool:
    """Whether the FTS5 table exists (SQLite only; always False elsewhere)."""
    return _fts_sql(conn) is not None


def _fts_sql(conn: Connection, name: str = "items_fts") -> str | None:
    if conn.dialect.name != "sqlite":
        return None
    row = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).first()
    return None if row is None else str(row[0])


def _create_table(conn: Connection, name: str) -> None:
    conn.exec_driver_sql(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5("
        f"key UNINDEXED, {', '.join(FTS_COLUMNS)}, {FTS_OPTIONS})"
    )


def _create_rank(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE VIRTUAL TABLE IF NOT EXISTS items_rank USING fts5("
        f"{', '.join(RANK_COLUMNS)}, content = '', {FTS_OPTIONS})"
    )


def create_fts(conn: Connection) -> None:
    """Create the (empty) FTS5 tables on SQLite; other databases search with ILIKE."""
    if conn.dialect.name != "sqlite":
        log.info("not SQLite: search falls back to ILIKE over title, creators and tags")
        return
    _create_table(conn, "items_fts")
    _create_rank(conn)


def fill_rank(conn: Connection, keys: Iterable[str] | None = None) -> None:
    """Copy the ranking columns of ``keys`` (None: every row) from ``items_fts`` into
    ``items_rank``, under the same rowids."""
    columns = ", ".join(RANK_COLUMNS)
    sql = f"INSERT INTO items_rank (rowid, {columns}) SELECT rowid, {columns} FROM items_fts"  # noqa: S608
    if keys is None:
        conn.exec_driver_sql(sql)
        return
    statement = text(sql + " WHERE key IN :keys").bindparams(bindparam("keys", expanding=True))
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), 500):
        conn.execute(statement, {"keys": wanted[start : start + 500]})


def drop_rank(conn: Connection, keys: list[str] | None) -> None:
    """Remove from ``items_rank`` the rows of ``keys`` in ``items_fts`` (None: the rows
    of items no longer in the cache); a contentless table forgets a row only when told
    the values it indexed, so this runs before those rows leave ``items_fts``."""
    columns = ", ".join(RANK_COLUMNS)
    select_sql = f"SELECT rowid, {columns} FROM items_fts WHERE "  # noqa: S608 (constants)
    if keys is None:
        gone = select_sql + "key NOT IN (SELECT key FROM items)"  # noqa: S608
        rows = conn.exec_driver_sql(gone).all()
    else:
        statement = text(select_sql + "key IN :keys").bindparams(bindparam("keys", expanding=True))
        rows = conn.execute(statement, {"keys": keys}).all() if keys else []
    if rows:
        conn.execute(
            text(
                f"INSERT INTO items_rank (items_rank, rowid, {columns}) "  # noqa: S608
                f"VALUES ('delete', :rowid, {', '.join(':' + c for c in RANK_COLUMNS)})"
            ),
            [dict(zip(("rowid", *RANK_COLUMNS), row, strict=True)) for row in rows],
        )


def insert_fts(conn: Connection, docs: list[dict[str, Any]], table: str = "items_fts") -> None:
    """Insert ``docs`` (``key`` and every :data:`FTS_COLUMNS` value) into the FTS5 table."""
    if not docs:
        return
    columns = ("key", *FTS_COLUMNS)
    conn.execute(
        text(
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (constants)
            f"VALUES ({', '.join(':' + c for c in columns)})"
        ),
        docs,
    )


def fts_is_current(conn: Connection) -> bool:
    """Whether ``items_fts`` has today's columns and tokenizer, beside ``items_rank``."""
    sql = _fts_sql(conn)
    if sql is None or _fts_sql(conn, "items_rank") is None:
        return False
    columns = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(items_fts)")]
    return columns == ["key", *FTS_COLUMNS] and FTS_OPTIONS in sql


def has_fulltext(conn: Connection) -> bool:
    """Whether the cache keeps attachments' full text (the sync's ``item_fulltext``)."""
    return inspect(conn).has_table(FULLTEXT_TABLE)


def fulltext_rows(conn: Connection, parents: Iterable[str] | None) -> list[tuple[str, str]]:
    """``(parent key, text)`` of the live attachments of ``parents`` (None: of all), in
    the attachments' key order; nothing when the cache keeps no full text."""
    if not has_fulltext(conn):
        return []
    # A trashed attachment's text is not searched; one the cache lacks still is.
    sql = (
        f"SELECT f.parent_key, f.content FROM {FULLTEXT_TABLE} f "  # noqa: S608 (constant)
        "LEFT JOIN items a ON a.key = f.item_key "
        "WHERE f.parent_key IS NOT NULL AND f.content IS NOT NULL "
        "AND (a.deleted IS NULL OR a.deleted = :no)"
    )
    if parents is None:
        rows = conn.execute(text(sql + " ORDER BY f.item_key"), {"no": False}).all()
        return [(str(p), str(c)) for p, c in rows]
    wanted = sorted(set(parents))
    found: list[tuple[str, str]] = []
    statement = text(sql + " AND f.parent_key IN :parents ORDER BY f.item_key").bindparams(
        bindparam("parents", expanding=True)
    )
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found += [
            (str(p), str(c))
            for p, c in conn.execute(statement, {"no": False, "parents": chunk}).all()
        ]
    return found


def upgrade_fts(conn: Connection) -> int:
    """Rebuild an older ``items_fts`` in today's shape from its own rows (their text is
    the cache's, already extracted), adding the attachments' full text where the cache
    keeps it; returns the rows copied. Nothing to do on PostgreSQL or when current."""
    if conn.dialect.name != "sqlite" or fts_is_current(conn):
        return 0
    if not has_fts(conn):
        create_fts(conn)
        return 0
    old = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(items_fts)")]
    kept = [c for c in ("key", *FTS_COLUMNS) if c in old]
    rows = conn.exec_driver_sql(f"SELECT {', '.join(kept)} FROM items_fts").all()  # noqa: S608
    fulltext: dict[str, list[str]] = {}
    for parent, content in fulltext_rows(conn, None):
        fulltext.setdefault(parent, []).append(content)
    conn.exec_driver_sql("DROP TABLE IF EXISTS items_fts_v2")
    _create_table(conn, "items_fts_v2")
    docs = []
    for row in rows:
        doc = {c: "" for c in FTS_COLUMNS} | dict(zip(kept, row, strict=True))
        if "fulltext" not in old:
            doc["fulltext"] = "\n".join(fulltext.get(str(doc["key"]), []))
        # Snippets mark matches with control characters: none may come from the text.
        docs.append({k: controlchars.strip(str(v or "")) for k, v in doc.items()})
    insert_fts(conn, docs, "items_fts_v2")
    conn.exec_driver_sql("DROP TABLE items_fts")
    conn.exec_driver_sql("ALTER TABLE items_fts_v2 RENAME TO items_fts")
    conn.exec_driver_sql("DROP TABLE IF EXISTS items_rank")
    _create_rank(conn)
    fill_rank(conn)
    log.info("search index rebuilt with word forms and full text: %d row(s)", len(docs))
    return len(docs)
