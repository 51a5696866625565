"""Engines and transactions: SQLite (WAL, foreign keys, a busy timeout) or PostgreSQL.

SQLAlchemy Core keeps the same code on SQLite, the default, and on PostgreSQL.
Writing transactions (:func:`transaction`) begin IMMEDIATE on SQLite, so writers
wait their turn; :mod:`.registry` keeps one migrated engine per URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url


def _sqlite_on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # pysqlite's own transaction handling defers BEGIN; turn it off and emit BEGIN
    # ourselves (the "begin" listener) so a sync's reads and writes form one transaction.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


#: Execution option naming how a SQLite transaction begins (DEFERRED, IMMEDIATE).
BEGIN_MODE = "biblio_sqlite_begin"


def _sqlite_begin(conn: Connection) -> None:
    # A deferred transaction that reads and then writes cannot wait for the write lock
    # (SQLite answers "database is locked" at once rather than risk a deadlock), so
    # transactions that will write begin IMMEDIATE and wait their turn at BEGIN, within
    # the busy timeout. Read-only connections stay deferred and never block anyone (WAL).
    conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(BEGIN_MODE, 'DEFERRED')}")


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their folder, WAL and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One writing transaction: committed on success, rolled back on any exception.

    On SQLite it begins IMMEDIATE, so concurrent writers (web requests, the outbox,
    a sync) queue for the write lock instead of failing; on PostgreSQL it is an
    ordinary transaction.
    """
    with engine.connect() as conn:
        conn.execution_options(**{BEGIN_MODE: "IMMEDIATE"})
        with conn.begin():
            yield conn


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """A read connection."""
    with engine.connect() as conn:
        yield conn


def upsert(conn: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT on ``table`` that takes ``on_conflict_do_update`` (one atomic statement
    for counters) on SQLite and PostgreSQL alike."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database)
    return None
