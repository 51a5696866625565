"""Rate-limit counters in biblio's own database, so every worker counts the same hits.

Flask-Limiter's default store is the memory of one process: with gunicorn's two
workers each counted alone and a configured limit held twice over. This store keeps
fixed-window counters in the ``rate_limits`` table instead (``[web]
rate_limit_storage = ""``, the default): one counter per key for every worker of
``biblio run``, and for every machine when the database is PostgreSQL. The counters
live in the database of the app serving the request. An increment is one atomic
``INSERT … ON CONFLICT DO UPDATE … RETURNING`` statement on both databases; an expired
window restarts in the same statement. ``redis://`` and ``memory://`` remain
available through Flask-Limiter's own stores.
"""

from __future__ import annotations

import random
import time
from typing import Any

from limits.storage import Storage
from sqlalchemy import case, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from biblio import storage as st
from biblio.storage import app as db

#: The scheme of the URI that selects this store (``database://``).
SCHEME = "database"
#: One increment in this many also deletes expired counters.
_SWEEP_EVERY = 200


class DatabaseStorage(Storage):
    """A :mod:`limits` storage over the ``rate_limits`` table of an engine."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(
        self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any
    ) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    @property
    def engine(self) -> Engine:
        # The current app's engine: Flask-Limiter keeps one store for the process, and
        # every limit is counted inside a request of some app.
        return db.engine()

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` hits to ``key``'s window (a new window when it expired)."""
        table = st.rate_limits
        now = time.time()
        expired = table.c.expires_at <= now
        with st.transaction(self.engine) as conn:
            stmt = st.upsert(conn, table).values(key=key, count=amount, expires_at=now + expiry)
            counted = stmt.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "count": case((expired, amount), else_=table.c.count + amount),
                    "expires_at": case((expired, now + expiry), else_=table.c.expires_at),
                },
            ).returning(table.c.count)
            count = int(conn.execute(counted).scalar_one())
            if random.randrange(_SWEEP_EVERY) == 0:
                conn.execute(delete(table).where(expired))
        return count

    def _row(self, key: str) -> tuple[int, float] | None:
        table = st.rate_limits
        with st.connect(self.engine) as conn:
            row = conn.execute(
                select(table.c.count, table.c.expires_at).where(
                    table.c.key == key, table.c.expires_at > time.time()
                )
            ).first()
        return None if row is None else (int(row[0]), float(row[1]))

    def get(self, key: str) -> int:
        row = self._row(key)
        return 0 if row is None else row[0]

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return time.time() if row is None else row[1]

    def check(self) -> bool:
        try:
            with st.connect(self.engine) as conn:
                conn.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def reset(self) -> int | None:
        with st.transaction(self.engine) as conn:
            count = conn.execute(select(func.count()).select_from(st.rate_limits)).scalar()
            conn.execute(delete(st.rate_limits))
        return int(count or 0)

    def clear(self, key: str) -> None:
        with st.transaction(self.engine) as conn:
            conn.execute(delete(st.rate_limits).where(st.rate_limits.c.key == key))
