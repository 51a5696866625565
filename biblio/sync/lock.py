"""The one sync lock: two syncs never overlap, whoever starts them, wherever they run.

Every run, scheduled or manual ("sync now", ``biblio sync``), first takes the lock; a
run that finds it held raises :class:`SyncBusy` at once rather than queueing. On
SQLite (one machine: the database is a file) it is an exclusive ``flock`` on a file
beside the database. On PostgreSQL any number of ``biblio scheduler`` and
``biblio run`` processes on any number of machines share one database, so the lock
lives there: a session-level advisory lock held on a connection of its own for the
run. If the process dies, PostgreSQL ends its session and the lock goes with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine

from biblio import storage as st
from biblio.settings import Settings
from biblio.sync.errors import SyncError

#: The advisory lock's key: a fixed 64-bit number derived from a name, so every
#: biblio process agrees on it and no other application's key is likely to clash.
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"biblio.sync").digest()[:8], "big", signed=True)


class SyncBusy(SyncError):
    """Another sync holds the lock."""


def lock_path(settings: Settings) -> Path:
    configured = settings["sync"]["lock_file"]
    if configured:
        return Path(configured)
    db_file = st.sqlite_path(settings["database"]["url"])
    base = db_file.parent if db_file else Path("instance")
    return base / "sync.lock"


@contextmanager
def sync_lock(settings: Settings, engine: Engine | None = None) -> Iterator[None]:
    """Hold the one sync lock, or raise :class:`SyncBusy` at once.

    With a PostgreSQL ``engine`` the lock is the database's advisory lock; otherwise
    the lock file.
    """
    if engine is not None and engine.dialect.name == "postgresql":
        with st.advisory_lock(engine, ADVISORY_KEY) as got:
            if not got:
                raise SyncBusy("another sync is running (on this or another machine)")
            yield
        return
    with _file_lock(lock_path(settings)):
        yield


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncBusy("another sync is running") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
