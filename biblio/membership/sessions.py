"""Owners' login sessions, kept on the server so that ending one really ends it.

The session cookie carries only a random token; the ``owner_sessions`` table holds its
SHA-256 hash, the owner and an expiry (``[web] session_hours`` after login). Logout
deletes the row and a password change or a removed account deletes every row of that
owner, so a copy of an old cookie, replayed later, finds nothing and is anonymous.
Expired rows are swept whenever a session starts.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Engine

from biblio import storage as st

#: Longest token accepted (ours are 43 characters); anything longer is not one.
MAX_TOKEN = 100


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def start(engine: Engine, owner_id: int, hours: int, *, now: datetime | None = None) -> str:
    """A new session for ``owner_id`` lasting ``hours``; its token (for the cookie)."""
    now = now or st.utcnow()
    token = secrets.token_urlsafe(32)
    table = st.owner_sessions
    with st.transaction(engine) as conn:
        conn.execute(delete(table).where(table.c.expires_at <= now))
        conn.execute(
            insert(table).values(
                token_hash=_hash(token),
                owner_id=owner_id,
                created_at=now,
                expires_at=now + timedelta(hours=max(1, hours)),
            )
        )
    return token


def owner_id(engine: Engine, token: str, *, now: datetime | None = None) -> int | None:
    """The owner a live session token belongs to, or None (unknown, ended, expired)."""
    if not token or len(token) > MAX_TOKEN:
        return None
    table = st.owner_sessions
    with st.connect(engine) as conn:
        found = conn.execute(
            select(table.c.owner_id).where(
                table.c.token_hash == _hash(token), table.c.expires_at > (now or st.utcnow())
            )
        ).scalar()
    return None if found is None else int(found)


def end(engine: Engine, token: str) -> None:
    """End one session (logout)."""
    if token and len(token) <= MAX_TOKEN:
        with st.transaction(engine) as conn:
            conn.execute(
                delete(st.owner_sessions).where(st.owner_sessions.c.token_hash == _hash(token))
            )


def end_all(conn: Connection, owner_id: int) -> int:
    """End every session of an owner inside the caller's transaction; how many."""
    table = st.owner_sessions
    return int(conn.execute(delete(table).where(table.c.owner_id == owner_id)).rowcount or 0)
