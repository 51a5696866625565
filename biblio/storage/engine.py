"""Engines and transactions: SQLite (WAL, foreign keys, a busy timeout) or PostgreSQL.

SQLAlchemy Core keeps the same code on SQLite, the default, and on PostgreSQL.
:func:`open_database` returns one cached, migrated engine per URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url

from biblio.storage.migrations import migrate


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


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their folder, WAL and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    return create_engine(url, pool_pre_ping=True)


_engines: dict[str, Engine] = {}


def open_database(url: str) -> Engine:
    """The (cached) engine for ``url``, migrated to the newest schema."""
    engine = _engines.get(url)
    if engine is None:
        engine = create_db_engine(url)
        migrate(engine)
        _engines[url] = engine
    return engine


def dispose_all() -> None:
    """Close every cached engine (tests, forked processes)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction: committed on success, rolled back on any exception."""
    with engine.begin() as conn:
        yield conn


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """A read connection."""
    with engine.connect() as conn:
        yield conn


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database)
    return None
