"""Engines and transactions: SQLite (WAL, foreign keys, a busy timeout) or PostgreSQL.

SQLAlchemy Core keeps the same code on SQLite, the default, and on PostgreSQL.
Writing transactions (:func:`transaction`) begin IMMEDIATE on SQLite, so writers
wait their turn, each for at most ``[database] busy_timeout_seconds``, applied to
every connection the engine opens; :mod:`.registry` keeps one migrated engine per
URL. Every write in biblio, background threads included, goes through
:func:`transaction` (``tests/storage/test_concurrency.py`` checks the source for
any other way in).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url

from biblio.settings import declared_default

log = logging.getLogger(__name__)

#: The busy timeout of engines made without settings (tests, benchmarks): the declared
#: default of ``[database] busy_timeout_seconds``.
DEFAULT_BUSY_TIMEOUT: float = declared_default("database", "busy_timeout_seconds")


def _sqlite_pragmas(busy_timeout: float) -> Any:
    milliseconds = max(0, round(busy_timeout * 1000))

    def on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # pysqlite's own transaction handling defers BEGIN; turn it off and emit BEGIN
        # ourselves (the "begin" listener) so a sync's reads and writes form one
        # transaction.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # First, so that even switching the journal mode waits its turn.
        cur.execute(f"PRAGMA busy_timeout={milliseconds}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return on_connect


#: Execution option naming how a SQLite transaction begins (DEFERRED, IMMEDIATE).
BEGIN_MODE = "biblio_sqlite_begin"


def _sqlite_begin(conn: Connection) -> None:
    # A deferred transaction that reads and then writes cannot wait for the write lock
    # (SQLite answers "database is locked" at once rather than risk a deadlock), so
    # transactions that will write begin IMMEDIATE and wait their turn at BEGIN, within
    # the busy timeout. Read-only connections stay deferred and never block anyone (WAL).
    conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(BEGIN_MODE, 'DEFERRED')}")


def create_db_engine(url: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Engine:
    """An engine for ``url``; SQLite files get their folder, WAL, foreign keys and a
    busy timeout of ``busy_timeout`` seconds on every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # pysqlite's timeout and the PRAGMA set the same SQLite busy handler; both are
        # given so that the very first statement of a connection waits too.
        engine = create_engine(url, connect_args={"timeout": busy_timeout})
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout))
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
    """Whether ``engine`` is SQLite (else PostgreSQL)."""
    return engine.dialect.name == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database)
    return None


@contextmanager
def advisory_lock(engine: Engine, key: int) -> Iterator[bool]:
    """PostgreSQL's session-level advisory lock ``key``, tried without waiting, on a
    connection of its own held for the block; yields whether it was taken. If the
    process dies, PostgreSQL ends its session and the lock goes with it."""
    conn = engine.connect()
    try:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()  # the lock belongs to the session, not to this transaction
        if not got:
            yield False
            return
        try:
            yield True
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
            except Exception:
                # A broken connection: never hand it back to the pool holding the lock.
                log.warning("could not release advisory lock %d; closing its connection", key)
                conn.invalidate()
    finally:
        conn.close()
