"""The group as the cache knows it: its member list, and Zotero user IDs from usernames.

Join requests check applicants against the member list (synced with the group's
metadata) and reconciliation confirms approved applicants with it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from biblio import storage as st

#: Zotero user IDs are positive 32-bit integers.
MAX_USER_ID = 2**31 - 1


def group_summary(conn: Connection) -> dict[str, Any]:
    row = conn.execute(select(st.group_info)).mappings().first()
    if row is None:
        return {"id": None, "name": "the group", "members": set()}
    members = {int(u) for u in [*(row["members"] or []), *(row["admins"] or [])]}
    if row["owner"] is not None:
        members.add(int(row["owner"]))
    return {"id": row["id"], "name": row["name"] or "the group", "members": members}


def resolve_user_id(conn: Connection, username: str | None) -> int | None:
    """A Zotero user ID for a username, where the data allows it.

    The public API has no username lookup, so only what biblio already knows is
    used: an all-digit "username" is an ID, and an earlier request with the same
    username whose ID was given or set by an owner supplies it.
    """
    if not username:
        return None
    if username.isascii() and username.isdigit() and int(username) <= MAX_USER_ID:
        return int(username)
    jr = st.join_requests
    return conn.execute(
        select(jr.c.zotero_user_id)
        .where(
            func.lower(jr.c.zotero_username) == username.lower(), jr.c.zotero_user_id.is_not(None)
        )
        .order_by(jr.c.id.desc())
        .limit(1)
    ).scalar()
