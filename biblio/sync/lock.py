"""The one sync lock: two syncs never overlap, whoever starts them.

Every run, scheduled or manual ("sync now", ``biblio sync``), first takes an
exclusive ``flock`` on a file beside the database; a run that finds it held raises
:class:`SyncBusy` at once rather than queueing.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from biblio import storage as st
from biblio.settings import Settings
from biblio.sync.client import SyncError


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
def sync_lock(settings: Settings) -> Iterator[None]:
    """Hold the one sync lock, or raise :class:`SyncBusy` at once."""
    path = lock_path(settings)
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
