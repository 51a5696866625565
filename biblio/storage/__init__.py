"""The database: schema, named migrations and engines, owned by this package alone.

SQLAlchemy Core keeps the same code on SQLite (the default: WAL journal, foreign
keys on, writers that wait their turn within ``[database] busy_timeout_seconds``) and on
PostgreSQL. Migrations are named and ordered; each applied one is recorded in the
``migrations`` table, so ``open_database`` brings any older file up to date.
Domain modules import the ``Table`` objects and run Core statements through
:func:`transaction` / :func:`connect`; nothing else creates tables.
Modules: ``schema`` (tables), ``ddl`` (indexes and the FTS5 table), ``migrations``,
``engine`` (engines and transactions), ``registry`` (one migrated engine per URL),
``app`` (the Flask side), ``backup`` (``biblio backup`` / ``biblio restore``) and
``cli`` (their commands).
"""

from sqlalchemy import text

from biblio.storage.engine import (
    advisory_lock,
    connect,
    create_db_engine,
    is_sqlite,
    sqlite_path,
    transaction,
    upsert,
)
from biblio.storage.migrations import MIGRATIONS, migrate
from biblio.storage.registry import after_fork, dispose_all, open_database
from biblio.storage.schema import (
    MAX_INTEGER,
    audit_log,
    citation_styles_used,
    collections,
    data_changes,
    group_info,
    item_collections,
    item_creators,
    item_fulltext,
    item_prongs,
    item_tags,
    items,
    join_requests,
    login_throttle,
    metadata,
    migrations_table,
    outbox,
    owner_sessions,
    owners,
    prong_doubts,
    prong_overrides,
    rate_limits,
    reading_list_items,
    reading_lists,
    rendered_citations,
    sync_runs,
    sync_state,
    utcnow,
)

__all__ = [
    "MAX_INTEGER",
    "advisory_lock",
    "MIGRATIONS",
    "after_fork",
    "audit_log",
    "citation_styles_used",
    "collections",
    "connect",
    "create_db_engine",
    "data_changes",
    "dispose_all",
    "group_info",
    "is_sqlite",
    "item_collections",
    "item_creators",
    "item_fulltext",
    "item_prongs",
    "item_tags",
    "items",
    "join_requests",
    "login_throttle",
    "metadata",
    "migrate",
    "migrations_table",
    "open_database",
    "outbox",
    "owner_sessions",
    "owners",
    "prong_doubts",
    "prong_overrides",
    "rate_limits",
    "reading_list_items",
    "reading_lists",
    "rendered_citations",
    "sqlite_path",
    "sync_runs",
    "sync_state",
    "text",
    "transaction",
    "upsert",
    "utcnow",
]
