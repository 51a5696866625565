"""One migrated engine per database URL, per process.

:func:`open_database` creates the engine, brings the schema up to date and empties
the connection pool again, so a process that forks afterwards (gunicorn's master
before its workers) hands no open SQLite or PostgreSQL connection to its children.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from biblio.storage.engine import create_db_engine
from biblio.storage.migrations import migrate

_engines: dict[str, Engine] = {}


def open_database(url: str) -> Engine:
    """The (cached) engine for ``url``, migrated to the newest schema."""
    engine = _engines.get(url)
    if engine is None:
        engine = create_db_engine(url)
        migrate(engine)
        engine.dispose()  # no connection outlives the migration into a forked child
        _engines[url] = engine
    return engine


def dispose_all() -> None:
    """Close every cached engine (tests, forked processes)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
