"""What the cache knows of its last sync: the library, its version, any pending backoff.

One ``sync_state`` row (the library synced, its version, the group version, the
version its attachments' text was synced to, the last success and a backoff deadline
Zotero asked for) and the ``sync_runs`` history, one row per run, read by the status
pages. A pending backoff can be read and cleared here (the command line's
``--clear-backoff`` and the owners' button both come through :func:`clear_backoff`,
which audits it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from biblio import audit
from biblio import storage as st
from biblio.settings import Settings


def library_name(settings: Settings) -> str:
    z = settings["zotero"]
    return f"{z['library_type']}s/{z['library_id']}"


def read_state(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(st.sync_state).where(st.sync_state.c.id == 1)).mappings().first()
    return dict(row) if row else None


def write_state(conn: Connection, **values: Any) -> None:
    if read_state(conn) is None:
        conn.execute(insert(st.sync_state).values(id=1, **values))
    else:
        conn.execute(update(st.sync_state).where(st.sync_state.c.id == 1).values(**values))


def to_utc(deadline: float) -> datetime:
    """A ``time.time()`` deadline as the naive UTC datetime the database keeps."""
    return datetime.fromtimestamp(deadline, UTC).replace(tzinfo=None)


def to_timestamp(when: datetime) -> float:
    return when.replace(tzinfo=UTC).timestamp()


def persist_backoff(engine: Engine, library: str, deadline: float) -> None:
    """Keep Zotero's backoff deadline across runs (the later of the stored and this)."""
    when = to_utc(deadline)
    with st.transaction(engine) as conn:
        state = read_state(conn)
        if state is None:
            write_state(conn, library=library, library_version=0, backoff_until=when)
        elif not state["backoff_until"] or state["backoff_until"] < when:
            write_state(conn, backoff_until=when)


def pending_backoff(engine: Engine) -> datetime | None:
    """The stored backoff deadline (naive UTC) if it is still in the future."""
    with st.connect(engine) as conn:
        state = read_state(conn) or {}
    until = state.get("backoff_until")
    return until if until is not None and until > st.utcnow() else None


def clear_backoff(engine: Engine, actor: str) -> datetime | None:
    """Forget a pending backoff (audited); returns the deadline that was cleared."""
    with st.transaction(engine) as conn:
        state = read_state(conn) or {}
        until = state.get("backoff_until")
        if until is None or until <= st.utcnow():
            if until is not None:
                write_state(conn, backoff_until=None)
            return None
        write_state(conn, backoff_until=None)
        audit.record(
            conn,
            actor,
            "sync.clear_backoff",
            f"library:{state.get('library') or ''}"[:100],
            old=until.isoformat() + "Z",
            new=None,
            detail="Zotero's pending Backoff/Retry-After was cleared; the next sync asks at once",
        )
        return until


def recent_runs(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The newest sync runs, newest first."""
    with st.connect(engine) as conn:
        rows = (
            conn.execute(select(st.sync_runs).order_by(st.sync_runs.c.id.desc()).limit(limit))
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
