"""What the cache knows of its last sync: the library, its version, any pending backoff.

One ``sync_state`` row (the library synced, its version, the group version, the last
success and a backoff deadline Zotero asked for) and the ``sync_runs`` history, one row
per run, read by the status pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

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


def persist_backoff(engine: Engine, library: str, deadline: float) -> None:
    when = datetime.fromtimestamp(deadline)
    with st.transaction(engine) as conn:
        state = read_state(conn)
        if state is None:
            write_state(conn, library=library, library_version=0, backoff_until=when)
        elif not state["backoff_until"] or state["backoff_until"] < when:
            write_state(conn, backoff_until=when)


def recent_runs(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    """The newest sync runs, newest first."""
    with st.connect(engine) as conn:
        rows = (
            conn.execute(select(st.sync_runs).order_by(st.sync_runs.c.id.desc()).limit(limit))
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
