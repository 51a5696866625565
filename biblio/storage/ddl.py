"""DDL beyond the tables: the browse indexes and the SQLite FTS5 search table.

Kept apart from :mod:`.schema` because SQLAlchemy's metadata cannot express them
(an FTS5 virtual table, covering indexes created with ``IF NOT EXISTS``), and apart
from the migrations so the search module can rebuild them on an older database.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

#: The searchable columns of ``items_fts``, after the unindexed item key.
FTS_COLUMNS = ("title", "creators", "abstract", "publication", "tags", "notes")


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
    if conn.dialect.name != "sqlite":
        return False
    return (
        conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'items_fts'").first()
        is not None
    )


def create_fts(conn: Connection) -> None:
    """Create the (empty) FTS5 table on SQLite; other databases search with ILIKE."""
    if conn.dialect.name != "sqlite":
        log.info("not SQLite: search falls back to ILIKE over title and creators")
        return
    conn.exec_driver_sql(
        "CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5("
        f"key UNINDEXED, {', '.join(FTS_COLUMNS)}, "
        "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3')"
    )
