"""A sync never loses its fetch to a busy database: it waits, retries, and says so.

Every transaction a sync writes (its run row, each staging batch, the final apply)
goes through :class:`Writer`. On SQLite a writer begins ``IMMEDIATE`` and waits its
turn for the write lock within the busy timeout; if the database stays busy past it
(a long owner action, a backup, another process's stuck transaction), the whole
transaction is tried again after a pause, up to ``[sync] save_attempts`` times, with
a log line each time. On PostgreSQL the same holds for lock timeouts, serialization
failures and deadlocks. What was fetched stays in the staging tables meanwhile, so
nothing is downloaded twice. The waits and retries end up in the run's row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from biblio import storage as st

log = logging.getLogger(__name__)

T = TypeVar("T")

#: PostgreSQL SQLSTATEs that mean "busy, try again": lock_not_available,
#: serialization_failure, deadlock_detected.
_PG_BUSY = {"55P03", "40001", "40P01"}
#: A wait at BEGIN longer than this is worth a line in the log and the run row.
NOTABLE_WAIT = 1.0


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` means the database was busy (locked), not broken."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _PG_BUSY:
        return True
    text = str(orig).lower()
    return "database is locked" in text or "database table is locked" in text


class Writer:
    """Runs a sync's write transactions with patience; remembers the waits."""

    def __init__(self, engine: Engine, attempts: int) -> None:
        self.engine = engine
        self.attempts = max(1, attempts)
        self.retries = 0
        self.waited = 0.0

    def write(self, work: Callable[[Connection], T], what: str) -> T:
        """``work(conn)`` in one transaction; retried while the database is busy."""
        attempt = 0
        while True:
            attempt += 1
            asked = time.monotonic()
            began = False
            try:
                with st.transaction(self.engine) as conn:
                    began = True
                    self._waited(time.monotonic() - asked, what)
                    return work(conn)
            except DBAPIError as exc:
                if not began:
                    self._waited(time.monotonic() - asked, what)
                if not is_busy(exc) or attempt >= self.attempts:
                    raise
                self.retries += 1
                pause = min(30.0, 0.5 * 2 ** (attempt - 1))
                log.warning(
                    "the database stayed busy during the %s (%s); retrying in %.1f s "
                    "(attempt %d of %d); nothing fetched is lost",
                    what,
                    str(exc.orig).strip().splitlines()[0][:200] if str(exc.orig) else "busy",
                    pause,
                    attempt + 1,
                    self.attempts,
                )
                time.sleep(pause)

    def _waited(self, seconds: float, what: str) -> None:
        if seconds >= NOTABLE_WAIT:
            self.waited += seconds
            log.info("the %s waited %.1f s for the database", what, seconds)

    def note(self) -> str | None:
        """One sentence for the run row, or None if the database never made it wait."""
        if not self.retries and not self.waited:
            return None
        text = f"the database was busy: the sync waited {self.waited:.1f} s for it"
        if self.retries:
            text += f" and retried {self.retries} transaction(s)"
        return text
