"""Named, ordered migrations of the cache, each recorded in the ``migrations`` table.

``migrate`` brings any older database up to date, one migration per transaction.
Migrations are append only: one that has shipped is never edited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Column, inspect, select, update
from sqlalchemy.engine import Connection, Engine

from biblio.storage import ddl
from biblio.storage.engine import transaction
from biblio.storage.schema import (
    citation_styles_used,
    data_changes,
    item_fulltext,
    items,
    login_throttle,
    metadata,
    migrations_table,
    owner_sessions,
    prong_doubts,
    rate_limits,
    stage_collections,
    stage_deleted,
    stage_fulltext,
    stage_item_collections,
    stage_item_creators,
    stage_item_tags,
    stage_items,
    sync_runs,
    sync_state,
    utcnow,
)

log = logging.getLogger(__name__)


def _m0001_initial(conn: Connection) -> None:
    metadata.create_all(conn)


def _m0002_items_fts(conn: Connection) -> None:
    ddl.create_browse_indexes(conn)
    ddl.create_fts(conn)
    if conn.execute(select(items.c.key).limit(1)).first():
        # An older cache with items but no index: the index is filled by a full sync, so
        # make the next sync a full one (the cache itself stays as it is until then).
        conn.execute(update(sync_state).values(library_version=0))
        log.info("search index created empty; the next sync re-reads the library")


def _m0003_data_changes(conn: Connection) -> None:
    # Browse pages cache what they compute per "data stamp"; a retag that moves items
    # between prongs keeps their count and versions, so the stamp needs a counter that
    # every write bumps. PostgreSQL keeps the aggregate stamp (no triggers made here).
    data_changes.create(conn, checkfirst=True)
    if not conn.execute(select(data_changes.c.id)).first():
        conn.execute(data_changes.insert().values(id=1, n=0))
    if conn.dialect.name != "sqlite":
        return
    for table in ("item_prongs", "prong_overrides"):
        for event_name in ("INSERT", "UPDATE", "DELETE"):
            name = f"tr_{table}_{event_name.lower()}_stamp"
            sql = (
                f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event_name} ON {table} "  # noqa: S608
                "BEGIN UPDATE data_changes SET n = n + 1 WHERE id = 1; END"
            )
            conn.exec_driver_sql(sql)


def _m0004_prong_doubts(conn: Connection) -> None:
    prong_doubts.create(conn, checkfirst=True)


def _m0005_item_fulltext(conn: Connection) -> None:
    item_fulltext.create(conn, checkfirst=True)
    _add_column(conn, sync_state.name, sync_state.c.fulltext_version)


def _m0006_sync_staging(conn: Connection) -> None:
    # A sync streams what it fetches into these tables in short transactions, then
    # applies them in one; the run row says when the save had to wait for the database.
    for table in (
        stage_items,
        stage_item_creators,
        stage_item_tags,
        stage_item_collections,
        stage_collections,
        stage_fulltext,
        stage_deleted,
    ):
        table.create(conn, checkfirst=True)
    _add_column(conn, sync_runs.name, sync_runs.c.save_retries)
    _add_column(conn, sync_runs.name, sync_runs.c.note)


def _add_column(conn: Connection, table: str, column: Column) -> None:  # type: ignore[type-arg]
    """Add ``column`` to an existing table unless 0001's create_all already made it."""
    if column.name in {c["name"] for c in inspect(conn).get_columns(table)}:
        return
    kind = column.type.compile(dialect=conn.dialect)
    default = ""
    if not column.nullable:
        default = f" NOT NULL DEFAULT {int(column.default.arg) if column.default else 0}"  # type: ignore[attr-defined]
    conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column.name} {kind}{default}")


def _m0007_search_v2(conn: Connection) -> None:
    # Word forms (Porter stemming) and a column for attachments' full text change the
    # FTS5 table's shape: rebuilt from its own rows, so no re-sync is needed. (On a new
    # database 0002 already made today's shape and this does nothing.)
    ddl.upgrade_fts(conn)


def _m0009_web_security(conn: Connection) -> None:
    # Server-side owner sessions (logout ends them), per-address login throttling and
    # rate-limit counters every worker shares.
    for table in (owner_sessions, login_throttle, rate_limits):
        table.create(conn, checkfirst=True)


def _m0010_citation_styles_used(conn: Connection) -> None:
    # The styles (with locale and format) requests ask for, by day: a sync pre-renders
    # the ones used within [citations] prerender_recent_days.
    citation_styles_used.create(conn, checkfirst=True)


#: Named, ordered migrations. Append only; never edit one that has shipped.
MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = [
    ("0001_initial", _m0001_initial),
    ("0002_items_fts", _m0002_items_fts),
    ("0003_data_changes", _m0003_data_changes),
    ("0004_prong_doubts", _m0004_prong_doubts),
    ("0005_item_fulltext", _m0005_item_fulltext),
    ("0006_sync_staging", _m0006_sync_staging),
    ("0007_search_v2", _m0007_search_v2),
    ("0009_web_security", _m0009_web_security),
    ("0010_citation_styles_used", _m0010_citation_styles_used),
]


def migrate(engine: Engine) -> list[str]:
    """Apply pending migrations in order, each in its own transaction."""
    applied: list[str] = []
    with transaction(engine) as conn:
        migrations_table.create(conn, checkfirst=True)
        done = set(conn.execute(select(migrations_table.c.name)).scalars())
    for name, upgrade in MIGRATIONS:
        if name in done:
            continue
        with transaction(engine) as conn:
            upgrade(conn)
            conn.execute(migrations_table.insert().values(name=name, applied_at=utcnow()))
        log.info("applied migration %s", name)
        applied.append(name)
    return applied
