"""Join requests: submission, status links, owners' decisions, membership reconciliation.

Zotero's Web API cannot list pending applications or add members, so biblio runs
the screening queue itself: an applicant submits a request (:func:`submit`) and
gets a private status link whose token is stored only as a SHA-256 hash; owners
approve or decline with a reason (:func:`decide`, :func:`bulk`) and approve the
person on zotero.org too. Every sync then reads the group's real member list and
moves approved requests whose Zotero user ID appears there to ``member``
(:func:`reconcile`, an after-save hook of the sync), flagging members who joined
without a request. Each change, its audit row and its email are committed in one
transaction; emails go out afterwards from the outbox (:mod:`biblio.mail`).
Importing this module registers the sync hook.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from biblio import audit, controlchars, mail
from biblio import storage as st
from biblio.membership import messages as join_messages
from biblio.membership.group import MAX_USER_ID, group_summary, resolve_user_id
from biblio.membership.owners import valid_email
from biblio.settings import Settings

log = logging.getLogger(__name__)

PRONGS: dict[str, tuple[str, str]] = {
    "mlis-access": (
        "Access to the MLS/MLIS",
        "Making the MLS/MLIS experience more accessible "
        "and authentic, especially for underrepresented and marginalized people.",
    ),
    "pathways": (
        "Pathways and credentials",
        "Parallel pathways to, or alternative credentialing for, librarian positions.",
    ),
    "worker-equity": (
        "Equity between worker classifications",
        "Pay, benefits, professional-development funding, institutional and disciplinary power.",
    ),
}
STATUSES = ("pending", "approved", "member", "declined", "withdrawn")
OPEN_STATUSES = ("pending", "approved")
STATUS_LABELS = {
    "pending": "pending review",
    "approved": "approved — now accept on zotero.org",
    "member": "member (confirmed)",
    "declined": "declined",
    "withdrawn": "withdrawn",
}
#: (action, allowed from) for owner decisions.
TRANSITIONS = {"approve": ("pending",), "decline": ("pending", "approved")}
LIMITS = {
    "name": 200,
    "email": 254,
    "zotero_username": 100,
    "affiliation": 300,
    "reason": 2000,
    "decision_reason": 2000,
    "owner_note": 4000,
}
MIN_REASON = 10
_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RequestError(Exception):
    """A join-request operation cannot be done; ``status`` is the matching HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Submitted:
    id: int
    token: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _text(
    form: Mapping[str, Any],
    key: str,
    errors: dict[str, str],
    label: str,
    *,
    required: bool = False,
    multiline: bool = False,
) -> str:
    value = str(form.get(key) or "").replace("\r\n", "\n").strip()
    if not multiline:
        value = " ".join(value.split())
    if controlchars.has_control(value, allow_breaks=multiline):
        errors[key] = f"{label} contains control characters."
    elif len(value) > LIMITS[key]:
        errors[key] = f"{label} is too long ({len(value):,} characters; at most {LIMITS[key]:,})."
    elif required and not value:
        errors[key] = f"{label} is required."
    return value


def validate(
    form: Mapping[str, Any], prongs: Iterable[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Clean a submitted form; return ``(values, errors)`` with one message per bad field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {
        "name": _text(form, "name", errors, "Name", required=True),
        "email": _text(form, "email", errors, "Email", required=True).lower(),
        "zotero_username": _text(form, "zotero_username", errors, "Zotero username"),
        "affiliation": _text(form, "affiliation", errors, "Affiliation"),
        "reason": _text(form, "reason", errors, "Reason", required=True, multiline=True),
    }
    if "email" not in errors and not valid_email(clean["email"]):
        errors["email"] = "Enter a valid email address, like name@example.org."
    if (
        clean["zotero_username"]
        and "zotero_username" not in errors
        and not _USERNAME_RE.match(clean["zotero_username"])
    ):
        errors["zotero_username"] = (
            "A Zotero username has only letters, digits, dots, hyphens and underscores."
        )
    raw_id = str(form.get("zotero_user_id") or "").strip()
    clean["zotero_user_id"] = None
    if raw_id:
        if raw_id.isascii() and raw_id.isdigit() and 0 < int(raw_id) <= MAX_USER_ID:
            clean["zotero_user_id"] = int(raw_id)
        else:
            errors["zotero_user_id"] = "The Zotero user ID is a number, like 1234567."
    if (
        not clean["zotero_username"]
        and clean["zotero_user_id"] is None
        and not ({"zotero_username", "zotero_user_id"} & errors.keys())
    ):
        errors["zotero_user_id"] = "Give your Zotero user ID (or at least your username)."
    if "reason" not in errors and len(clean["reason"]) < MIN_REASON:
        errors["reason"] = f"Tell us a little more (at least {MIN_REASON} characters)."
    chosen = list(prongs)
    unknown = [p for p in chosen if p not in PRONGS]
    if unknown:
        errors["prongs"] = "Choose among the listed prongs."
    clean["prongs"] = [p for p in PRONGS if p in chosen]
    if str(form.get("consent") or "") != "yes":
        errors["consent"] = "Please agree to how we use your details."
    return clean, errors


def submit(
    engine: Engine,
    settings: Settings,
    values: Mapping[str, Any],
    status_url: Callable[[str], str],
    admin_url: Callable[[int], str] | None = None,
) -> Submitted:
    """Store a validated request and queue its confirmation; refuse duplicates (409).
    ``status_url(token)`` and ``admin_url(request id)`` are the full links the emails
    carry (the web passes its own; without ``admin_url``, ``[web] public_url`` is used)."""
    jr = st.join_requests
    token = secrets.token_urlsafe(32)
    now = st.utcnow()
    with st.transaction(engine) as conn:
        user_id = values.get("zotero_user_id") or resolve_user_id(
            conn, values.get("zotero_username")
        )
        same = [jr.c.email == values["email"]]
        if user_id is not None:
            same.append(jr.c.zotero_user_id == user_id)
        if values.get("zotero_username"):
            same.append(func.lower(jr.c.zotero_username) == values["zotero_username"].lower())
        duplicate = conn.execute(
            select(jr.c.id).where(jr.c.status.in_(OPEN_STATUSES), or_(*same)).limit(1)
        ).first()
        if duplicate:
            raise RequestError(
                "There is already an open request for this email address or "
                "Zotero account. Use the status link from your confirmation "
                "email to follow it.",
                409,
            )
        group = group_summary(conn)
        if user_id is not None and user_id in group["members"]:
            raise RequestError("That Zotero user is already a member of the group.", 409)
        row = {
            "token_hash": hash_token(token),
            "status": "pending",
            "name": values["name"],
            "email": values["email"],
            "zotero_username": values.get("zotero_username") or None,
            "zotero_user_id": user_id,
            "affiliation": values.get("affiliation") or "",
            "prongs": list(values.get("prongs") or []),
            "reason": values["reason"],
            "created_at": now,
            "updated_at": now,
        }
        key = conn.execute(insert(jr).values(**row)).inserted_primary_key
        assert key is not None
        new_id = int(key[0])
        verified = "Zotero user ID confirmed by Sign in with Zotero"
        audit.record(
            conn,
            values["email"],
            "request.submit",
            f"request:{new_id}",
            new="pending",
            detail=verified if values.get("zotero_verified") else None,
        )
        mail.enqueue(
            conn,
            values["email"],
            *join_messages.confirmation(row, group["name"], status_url(token)),
        )
        if settings["join"]["notify_owners"]:
            path = f"/-/admin/requests/{new_id}"
            link = admin_url(new_id) if admin_url else join_messages.admin_link(settings, path)
            note = join_messages.new_request(row, new_id, group["name"], link)
            for owner in conn.execute(select(st.owners.c.email)).scalars():
                mail.enqueue(conn, owner, *note)
    log.info("join request %d submitted", new_id)
    mail.send_soon(engine, settings)
    return Submitted(new_id, token)


def by_token(engine: Engine, token: str) -> dict[str, Any] | None:
    """The request a status token belongs to, or None."""
    if not token or len(token) > 100:
        return None
    with st.connect(engine) as conn:
        row = (
            conn.execute(
                select(st.join_requests).where(st.join_requests.c.token_hash == hash_token(token))
            )
            .mappings()
            .first()
        )
        group = group_summary(conn)
    if row is None:
        return None
    return {
        **dict(row),
        "status_label": STATUS_LABELS[row["status"]],
        "group_name": group["name"],
        "group_url": join_messages.group_url(group["id"]),
    }


def public_view(req: dict[str, Any]) -> dict[str, Any]:
    """What the applicant's status link shows: their own request, without owner notes."""
    keep = (
        "id",
        "status",
        "status_label",
        "name",
        "created_at",
        "decided_at",
        "decision_reason",
        "prongs",
        "group_name",
        "group_url",
    )
    out = {k: req.get(k) for k in keep}
    out["can_withdraw"] = req["status"] in OPEN_STATUSES
    return out


def withdraw(engine: Engine, token: str) -> dict[str, Any]:
    """The applicant withdraws their open request."""
    jr = st.join_requests
    with st.transaction(engine) as conn:
        row = (
            conn.execute(select(jr).where(jr.c.token_hash == hash_token(token))).mappings().first()
        )
        if row is None:
            raise RequestError("No such request.", 404)
        if row["status"] not in OPEN_STATUSES:
            raise RequestError(
                f"This request is {row['status']} and can no longer be withdrawn.", 409
            )
        conn.execute(
            update(jr)
            .where(jr.c.id == row["id"])
            .values(status="withdrawn", updated_at=st.utcnow())
        )
        audit.record(
            conn,
            row["email"],
            "request.withdraw",
            f"request:{row['id']}",
            old=row["status"],
            new="withdrawn",
        )
    return dict(row, status="withdrawn")


def list_requests(
    engine: Engine, *, status: str | None = None, newest_first: bool = False
) -> list[dict[str, Any]]:
    """Requests for the owners' queue, oldest first unless ``newest_first``."""
    jr = st.join_requests
    order = jr.c.created_at.desc() if newest_first else jr.c.created_at.asc()
    query = select(jr).order_by(order, jr.c.id)
    if status:
        query = query.where(jr.c.status == status)
    now = st.utcnow()
    with st.connect(engine) as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    for row in rows:
        row["age_days"] = (now - row["created_at"]).days
        row.pop("token_hash", None)
    return rows


def status_counts(engine: Engine) -> dict[str, int]:
    jr = st.join_requests
    with st.connect(engine) as conn:
        rows = conn.execute(select(jr.c.status, func.count()).group_by(jr.c.status)).all()
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({s: int(n) for s, n in rows})
    return counts


def get_request(engine: Engine, request_id: int) -> dict[str, Any] | None:
    with st.connect(engine) as conn:
        row = (
            conn.execute(select(st.join_requests).where(st.join_requests.c.id == request_id))
            .mappings()
            .first()
        )
    if row is None:
        return None
    out = dict(row)
    out.pop("token_hash")
    out["status_label"] = STATUS_LABELS[out["status"]]
    return out


def _decide(
    conn: Connection, request_id: int, action: str, actor: str, reason: str, user_id: int | None
) -> None:
    jr = st.join_requests
    row = conn.execute(select(jr).where(jr.c.id == request_id)).mappings().first()
    if row is None:
        raise RequestError(f"No request #{request_id}.", 404)
    if row["status"] not in TRANSITIONS[action]:
        raise RequestError(
            f"Request #{request_id} is {row['status']}; it cannot be {action}d.", 409
        )
    now = st.utcnow()
    new = "approved" if action == "approve" else "declined"
    values: dict[str, Any] = {
        "status": new,
        "decision_reason": reason or None,
        "decided_at": now,
        "decided_by": actor,
        "updated_at": now,
    }
    if user_id is not None and user_id != row["zotero_user_id"]:
        values["zotero_user_id"] = user_id
        audit.record(
            conn,
            actor,
            "request.user_id",
            f"request:{request_id}",
            old=row["zotero_user_id"],
            new=str(user_id),
        )
    conn.execute(update(jr).where(jr.c.id == request_id).values(**values))
    audit.record(
        conn,
        actor,
        f"request.{action}",
        f"request:{request_id}",
        old=row["status"],
        new=new,
        detail=reason or None,
    )
    group = group_summary(conn)
    req = {**dict(row), **values}
    subject, body = (
        join_messages.approved(req, group["name"], group["id"])
        if action == "approve"
        else join_messages.declined(req, group["name"])
    )
    mail.enqueue(conn, row["email"], subject, body)


def _check_decision(action: str, reason: str, user_id: Any) -> tuple[str, int | None]:
    if action not in TRANSITIONS:
        raise RequestError(f"Unknown action {action!r}.")
    reason = (reason or "").replace("\r\n", "\n").strip()
    if controlchars.has_control(reason, allow_breaks=True):
        raise RequestError("The reason contains control characters.")
    if len(reason) > LIMITS["decision_reason"]:
        raise RequestError(f"The reason is too long (at most {LIMITS['decision_reason']:,}).")
    if action == "decline" and not reason:
        raise RequestError("Give the applicant a reason when declining.")
    uid: int | None = None
    if user_id not in (None, ""):
        text = str(user_id).strip()
        if not (text.isascii() and text.isdigit() and 0 < int(text) <= MAX_USER_ID):
            raise RequestError("The Zotero user ID is a number, like 1234567.")
        uid = int(text)
    return reason, uid


def decide(
    engine: Engine,
    settings: Settings,
    request_id: int,
    action: str,
    actor: str,
    reason: str = "",
    user_id: Any = None,
) -> None:
    """Approve or decline one request (with a reason), audited, with its email queued."""
    reason, uid = _check_decision(action, reason, user_id)
    with st.transaction(engine) as conn:
        _decide(conn, request_id, action, actor, reason, uid)
    mail.send_soon(engine, settings)


def bulk(
    engine: Engine,
    settings: Settings,
    request_ids: Iterable[int],
    action: str,
    actor: str,
    reason: str = "",
) -> tuple[list[int], dict[int, str]]:
    """Apply one decision to many requests; return (done ids, {skipped id: why})."""
    reason, _ = _check_decision(action, reason, None)
    done: list[int] = []
    skipped: dict[int, str] = {}
    with st.transaction(engine) as conn:
        for request_id in sorted(set(request_ids)):
            try:
                _decide(conn, request_id, action, actor, reason, None)
                done.append(request_id)
            except RequestError as exc:
                skipped[request_id] = str(exc)
    if done:
        mail.send_soon(engine, settings)
    return done, skipped


def set_note(engine: Engine, request_id: int, actor: str, note: str) -> None:
    """Replace the owners' private note on a request."""
    note = (note or "").replace("\r\n", "\n").strip()
    if controlchars.has_control(note, allow_breaks=True) or len(note) > LIMITS["owner_note"]:
        raise RequestError(
            f"The note must be plain text of at most {LIMITS['owner_note']:,} characters."
        )
    jr = st.join_requests
    with st.transaction(engine) as conn:
        old = conn.execute(select(jr.c.owner_note).where(jr.c.id == request_id)).first()
        if old is None:
            raise RequestError(f"No request #{request_id}.", 404)
        conn.execute(
            update(jr)
            .where(jr.c.id == request_id)
            .values(owner_note=note or None, updated_at=st.utcnow())
        )
        audit.record(
            conn, actor, "request.note", f"request:{request_id}", old=old[0], new=note or None
        )


CSV_COLUMNS = (
    "id",
    "status",
    "created_at",
    "name",
    "email",
    "zotero_username",
    "zotero_user_id",
    "affiliation",
    "prongs",
    "reason",
    "decision_reason",
    "decided_at",
    "decided_by",
    "owner_note",
)


def _cell(value: Any) -> Any:
    # Spreadsheets run cells that start with = + - @ as formulas; quote them.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_csv(engine: Engine, *, status: str | None = None) -> str:
    """All requests (or those of one status) as CSV text, oldest first, via pandas."""
    import pandas as pd  # only here: pandas costs a web worker half a second to import

    rows = list_requests(engine, status=status)
    for row in rows:
        row["prongs"] = " ".join(row.get("prongs") or [])
    frame = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    frame = frame.astype(object).where(frame.notna(), None)
    for column in CSV_COLUMNS:
        frame[column] = frame[column].map(_cell)
    return frame.to_csv(index=False)
