"""One migrated engine per database URL, per process.

:func:`open_database` creates the engine, brings the schema up to date and empties
the connection pool again, so a process that forks afterwards (gunicorn's master
before its workers) hands no open SQLite or PostgreSQL connection to its children.
:func:`after_fork` is the child's half: it forgets, without closing them, any
connections the parent opened after all, so each child opens its own.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from biblio.storage.engine import DEFAULT_BUSY_TIMEOUT, create_db_engine
from biblio.storage.migrations import migrate

_engines: dict[tuple[str, float], Engine] = {}


def open_database(url: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Engine:
    """The (cached) engine for ``url``, migrated to the newest schema."""
    engine = _engines.get((url, busy_timeout))
    if engine is None:
        engine = create_db_engine(url, busy_timeout=busy_timeout)
        migrate(engine)
        engine.dispose()  # no connection outlives the migration into a forked child
        _engines[(url, busy_timeout)] = engine
    return engine


def after_fork() -> None:
    """In a freshly forked child: drop the pools' inherited connections without closing
    them (they belong to the parent), so the child's first query opens its own."""
    for engine in _engines.values():
        engine.dispose(close=False)


def dispose_all() -> None:
    """Close every cached engine (tests, forked processes)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
