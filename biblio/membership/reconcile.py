"""Reconciliation: each sync confirms approved applicants against the group's real members.

Runs inside every sync's transaction (:data:`biblio.events.sync_saved`), after the
group metadata was saved: an approved request whose Zotero user is now in the member
list becomes ``member`` (audited, with a welcome email queued), and members who joined
on zotero.org without a request are flagged for the owners once. The queued emails go
out after the commit (:data:`biblio.events.sync_committed`).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from biblio import audit, events, mail
from biblio import storage as st
from biblio.membership import messages as join_messages
from biblio.membership.group import group_summary, resolve_user_id
from biblio.settings import Settings

log = logging.getLogger(__name__)


def reconcile(
    conn: Connection, settings: Settings, _changed: set[str] | None = None, _full: bool = False
) -> list[int]:
    """Confirm approved requests whose user is now a member; flag the rest.

    Runs inside the sync's transaction, after the group metadata was saved.
    Returns the ids of requests moved to ``member``.
    """
    group = group_summary(conn)
    if group["id"] is None:
        return []
    jr = st.join_requests
    now = st.utcnow()
    confirmed: list[int] = []
    rows = conn.execute(select(jr).where(jr.c.status == "approved")).mappings().all()
    for row in rows:
        uid = row["zotero_user_id"] or resolve_user_id(conn, row["zotero_username"])
        if uid is None or uid not in group["members"]:
            continue
        conn.execute(
            update(jr)
            .where(jr.c.id == row["id"])
            .values(status="member", zotero_user_id=uid, updated_at=now)
        )
        audit.record(
            conn,
            "sync",
            "request.member",
            f"request:{row['id']}",
            old="approved",
            new="member",
            detail=f"Zotero user {uid} is in the group's member list",
        )
        mail.enqueue(
            conn, row["email"], *join_messages.welcome(dict(row), group["name"], group["id"])
        )
        confirmed.append(row["id"])
    for uid in _unrequested(conn, group):
        if not audit.exists(conn, "member.unrequested", f"zotero-user:{uid}"):
            audit.record(
                conn,
                "sync",
                "member.unrequested",
                f"zotero-user:{uid}",
                detail="joined on zotero.org without a request in biblio",
            )
    if confirmed:
        log.info("membership confirmed for request(s) %s", confirmed)
    return confirmed


def _unrequested(conn: Connection, group: dict[str, Any]) -> list[int]:
    jr = st.join_requests
    known = set(
        conn.execute(
            select(jr.c.zotero_user_id).where(
                jr.c.zotero_user_id.is_not(None), jr.c.status.in_(("approved", "member"))
            )
        ).scalars()
    )
    owner_row = conn.execute(select(st.group_info.c.owner)).first()
    owner = owner_row[0] if owner_row else None
    return sorted(u for u in group["members"] if u not in known and u != owner)


def unrequested_members(engine: Engine) -> list[int]:
    """Zotero user IDs in the group without an approved request (the owner excluded)."""
    with st.connect(engine) as conn:
        return _unrequested(conn, group_summary(conn))


def on_sync_committed(settings: Settings, *, engine: Engine, changed: set[str]) -> None:
    """Send the welcome emails the reconciliation queued, if any; a receiver of
    :data:`biblio.events.sync_committed`."""
    if settings["mail"]["enabled"] and mail.outbox_counts(engine)["pending"]:
        mail.send_soon(engine, settings)


def on_sync_saved(settings: Settings, *, conn: Connection, changed: set[str], full: bool) -> None:
    """Reconcile requests with the group's members in the sync's transaction; a receiver
    of :data:`biblio.events.sync_saved`."""
    reconcile(conn, settings, changed, full)


def subscribe() -> None:
    """Reconcile requests with every sync and send what it queued (idempotent)."""
    events.sync_saved.connect(on_sync_saved)
    events.sync_committed.connect(on_sync_committed)
