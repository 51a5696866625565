"""The append-only audit log: who did what, when, with the old and new value.

Every owner action (decisions, notes, prong overrides, "sync now", logins) and
every automatic status change (membership confirmed by a sync) writes one row
with :func:`record`, inside the same transaction as the change it describes, so
the log and the data never disagree. Nothing in biblio updates or deletes audit
rows; this module offers only inserts and reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, Engine

from biblio import storage as st

MAX_DETAIL = 4000


def record(
    conn: Connection,
    actor: str,
    action: str,
    subject: str,
    old: str | None = None,
    new: str | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> int:
    """Append one audit row inside the caller's transaction; return its id."""
    values = {
        "at": at or st.utcnow(),
        "actor": (actor or "unknown")[:320],
        "action": action[:60],
        "subject": subject[:100],
        "old": None if old is None else str(old)[:MAX_DETAIL],
        "new": None if new is None else str(new)[:MAX_DETAIL],
        "detail": None if detail is None else str(detail)[:MAX_DETAIL],
    }
    key = conn.execute(insert(st.audit_log).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def entries(
    engine: Engine,
    *,
    subject: str | None = None,
    action: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    """Audit rows, newest first; optionally of one subject or action, before an id."""
    query = select(st.audit_log).order_by(st.audit_log.c.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(st.audit_log.c.subject == subject)
    if action is not None:
        query = query.where(st.audit_log.c.action == action)
    if before_id is not None:
        query = query.where(st.audit_log.c.id < before_id)
    with st.connect(engine) as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def exists(conn: Connection, action: str, subject: str) -> bool:
    """Whether an entry with this action and subject was ever recorded."""
    query = (
        select(func.count())
        .select_from(st.audit_log)
        .where(st.audit_log.c.action == action, st.audit_log.c.subject == subject)
    )
    return bool(conn.execute(query).scalar())
