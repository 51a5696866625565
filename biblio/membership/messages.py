"""The plain-text emails of the join process: confirmation, decisions, welcome, digest.

Each function returns ``(subject, body)``; :mod:`biblio.membership.requests` queues
them in the outbox in the same transaction as the change they announce. Bodies
are plain text (never HTML), so applicant-supplied values cannot inject markup;
subjects are reduced to one line by :mod:`biblio.mail`. Links are full URLs: the web
passes its own, and mail sent by the scheduler uses ``[web] public_url``
(:func:`admin_link`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from biblio.settings import Settings

ZOTERO_GROUP_URL = "https://www.zotero.org/groups/{group_id}"
ZOTERO_MEMBERS_URL = "https://www.zotero.org/groups/{group_id}/settings/members"


def admin_link(settings: Settings, path: str) -> str:
    """The full link to an owners' page for an email sent outside a web request (the
    digest): ``[web] public_url`` + ``path``, or, with no public URL set, the path with
    a word on how to get a full link, rather than a bare path that looks broken."""
    base = settings["web"]["public_url"].rstrip("/")
    if base:
        return base + path
    return f"{path} on this site (set [web] public_url to get a full link here)"


def group_url(group_id: int | None) -> str:
    return ZOTERO_GROUP_URL.format(group_id=group_id) if group_id else "https://www.zotero.org/"


def confirmation(req: dict[str, Any], group_name: str, status_url: str) -> tuple[str, str]:
    subject = f"Your request to join {group_name} was received"
    body = (
        f"Dear {req['name']},\n\n"
        f"Thank you for asking to join {group_name}. An owner of the group will review "
        "your request; you will get an email with the decision.\n\n"
        "You can check its status, or withdraw it, at this private link (keep it to "
        f"yourself; it is the only copy):\n\n  {status_url}\n\n"
        "If you did not send this request, you can ignore this message or withdraw it "
        "at the link above.\n"
    )
    return subject, body


def approved(req: dict[str, Any], group_name: str, group_id: int | None) -> tuple[str, str]:
    subject = f"Your request to join {group_name} was approved"
    reason = (
        f"\nThe owner's note:\n\n  {req['decision_reason']}\n" if req.get("decision_reason") else ""
    )
    body = (
        f"Dear {req['name']},\n\n"
        f"Your request to join {group_name} was approved.{reason}\n"
        "To finish joining, sign in at zotero.org and accept the group invitation "
        f'(or press "Join Group") on the group\'s page:\n\n  {group_url(group_id)}\n\n'
        "Once Zotero lists you as a member, biblio confirms it and writes to you again.\n"
    )
    return subject, body


def declined(req: dict[str, Any], group_name: str) -> tuple[str, str]:
    subject = f"Your request to join {group_name}"
    body = (
        f"Dear {req['name']},\n\n"
        f"Thank you for your interest in {group_name}. An owner has declined your "
        "request to join, with this reason:\n\n"
        f"  {req.get('decision_reason') or '(no reason given)'}\n\n"
        "The library stays open to read for everyone.\n"
    )
    return subject, body


def welcome(req: dict[str, Any], group_name: str, group_id: int | None) -> tuple[str, str]:
    subject = f"Welcome to {group_name}"
    body = (
        f"Dear {req['name']},\n\n"
        f"Zotero now lists you as a member of {group_name}: welcome! You can add and "
        f"edit items in the group library:\n\n  {group_url(group_id)}\n"
    )
    return subject, body


def new_request(
    req: dict[str, Any], request_id: int, group_name: str, admin_url: str
) -> tuple[str, str]:
    """To owners: a request arrived. Only the applicant's name; details stay behind login."""
    subject = f"biblio: new request to join {group_name} (#{request_id})"
    body = f"{req['name']} asked to join {group_name}.\n\nReview the request at {admin_url}\n"
    return subject, body


def digest(
    rows: Sequence[dict[str, Any]], days: int, admin_url: str, unrequested: Sequence[int]
) -> tuple[str, str]:
    subject = f"biblio: {len(rows)} join request(s) pending more than {days} days"
    lines = [f"Join requests pending for more than {days} days:", ""]
    for row in rows:
        lines.append(
            f"  #{row['id']}  {row['created_at']:%Y-%m-%d}  {row['name']} <{row['email']}>"
        )
    if unrequested:
        lines += [
            "",
            "Members who joined on zotero.org without a request: "
            + ", ".join(str(u) for u in unrequested),
        ]
    lines += ["", f"Review them at {admin_url}", ""]
    return subject, "\n".join(lines)
