"""Owner accounts: creation from the command line, password checks, throttled logins.

Passwords are hashed with scrypt (werkzeug's ``generate_password_hash``), there
is no default account or password, and short passwords are refused. Every login
attempt costs exactly one password-hash computation, whatever the email (an owner's,
an unknown one, a locked one) and whatever the password (empty, too long), so timing
does not reveal which addresses are owners. Failures are throttled per email and
address (:mod:`.throttle`), and a right password is refused while its address is
locked out. A new password ends the owner's sessions (:mod:`.sessions`) and lifts
every lockout of the account.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from biblio import audit
from biblio import storage as st
from biblio.membership import sessions, throttle
from biblio.settings import Settings

log = logging.getLogger(__name__)

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
EMAIL_RE = re.compile(
    r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
# A real hash of a random string, made like every owner's: checked when the email is
# unknown, so an unknown email costs the same scrypt work as a known one.
_DUMMY_HASH = generate_password_hash("biblio-no-such-owner", method="scrypt")


class OwnerError(ValueError):
    """An owner account cannot be created; the message says why."""


@dataclass(frozen=True)
class Owner:
    id: int
    email: str
    created_at: datetime
    last_login_at: datetime | None = None
    locked_until: datetime | None = None
    #: Changes with the password: part of the login session's id, so changing a
    #: password signs out every session that was opened with the old one.
    fingerprint: str = ""


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def valid_email(email: str) -> bool:
    return len(email) <= 254 and bool(EMAIL_RE.match(email))


def _owner(row: Any) -> Owner:
    fingerprint = hashlib.sha256(row["password_hash"].encode()).hexdigest()[:16]
    return Owner(
        id=row["id"],
        email=row["email"],
        created_at=row["created_at"],
        last_login_at=row["last_login_at"],
        locked_until=row["locked_until"],
        fingerprint=fingerprint,
    )


def _check_password(password: str) -> str:
    """The scrypt hash of an acceptable password, or :class:`OwnerError`."""
    if len(password) < MIN_PASSWORD:
        raise OwnerError(f"password too short: use at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise OwnerError("password too long")
    if password.strip() != password or not password.strip():
        raise OwnerError("password must not start or end with spaces")
    return generate_password_hash(password, method="scrypt")


def create_owner(engine: Engine, email: str, password: str, *, actor: str = "cli") -> Owner:
    """Create an owner account; raise :class:`OwnerError` on a bad email or password."""
    email = normalize_email(email)
    if not valid_email(email):
        raise OwnerError(f"not a valid email address: {email!r}")
    hashed = _check_password(password)
    try:
        with st.transaction(engine) as conn:
            key = conn.execute(
                insert(st.owners).values(
                    email=email,
                    password_hash=hashed,
                    created_at=st.utcnow(),
                    failed_logins=0,
                )
            ).inserted_primary_key
            assert key is not None
            new_id = key[0]
            audit.record(conn, actor, "owner.create", f"owner:{new_id}", new=email)
    except IntegrityError:
        raise OwnerError(f"an owner with email {email} already exists") from None
    log.info("owner %s created", email)
    return get_owner(engine, int(new_id))  # type: ignore[return-value]


def _owner_id(conn: Connection, email: str) -> int:
    owner_id = conn.execute(select(st.owners.c.id).where(st.owners.c.email == email)).scalar()
    if owner_id is None:
        raise OwnerError(f"no owner with email {email}")
    return int(owner_id)


def set_password(engine: Engine, email: str, password: str, *, actor: str = "cli") -> None:
    """Replace an owner's password (which also unlocks the account and ends its
    sessions); raise :class:`OwnerError` if there is no such owner or it is too weak."""
    email = normalize_email(email)
    hashed = _check_password(password)
    with st.transaction(engine) as conn:
        owner_id = _owner_id(conn, email)
        conn.execute(
            update(st.owners)
            .where(st.owners.c.id == owner_id)
            .values(password_hash=hashed, failed_logins=0, locked_until=None)
        )
        ended = sessions.end_all(conn, owner_id)
        throttle.forget(conn, email)
        audit.record(
            conn,
            actor,
            "owner.password",
            f"owner:{owner_id}",
            new=email,
            detail=f"{ended} session(s) ended",
        )
    log.info("owner %s: password changed", email)


def remove_owner(engine: Engine, email: str, *, actor: str = "cli") -> None:
    """Delete an owner account (its sessions end with it); the audit log keeps its trail."""
    email = normalize_email(email)
    with st.transaction(engine) as conn:
        owner_id = _owner_id(conn, email)
        sessions.end_all(conn, owner_id)
        throttle.forget(conn, email)
        conn.execute(delete(st.owners).where(st.owners.c.id == owner_id))
        audit.record(conn, actor, "owner.remove", f"owner:{owner_id}", old=email)
    log.info("owner %s removed", email)


def get_owner(engine: Engine, owner_id: int) -> Owner | None:
    with st.connect(engine) as conn:
        row = conn.execute(select(st.owners).where(st.owners.c.id == owner_id)).mappings().first()
    return _owner(row) if row else None


def list_owners(engine: Engine) -> list[Owner]:
    with st.connect(engine) as conn:
        rows = conn.execute(select(st.owners).order_by(st.owners.c.email)).mappings().all()
    return [_owner(r) for r in rows]


def owner_emails(engine: Engine) -> list[str]:
    return [o.email for o in list_owners(engine)]


@dataclass(frozen=True)
class Login:
    """The outcome of a login attempt: the owner, or why not."""

    owner: Owner | None = None
    #: Set when the attempt was refused by a lockout: seconds until it may try again.
    retry_after: int | None = None


def authenticate(
    engine: Engine,
    settings: Settings,
    email: str,
    password: str,
    *,
    address: str = "unknown",
    trusted: bool = False,
    now: datetime | None = None,
) -> Login:
    """Check an email and password from ``address`` (``trusted``: this browser signed in
    to this email before). Exactly one password hash is computed, outside the write
    transaction; every outcome is audited and failures are counted (:mod:`.throttle`)."""
    email = normalize_email(email)[:320]
    address = (address or "unknown")[:64]
    password = password or ""
    with st.connect(engine) as conn:
        row = conn.execute(select(st.owners).where(st.owners.c.email == email)).mappings().first()
    stored = row["password_hash"] if row is not None else _DUMMY_HASH
    # The one hash of this attempt, made whatever the email and password: an empty or
    # over-long password, an unknown or locked account all cost the same.
    matches = check_password_hash(stored, password[:MAX_PASSWORD])
    matches = matches and row is not None and bool(password) and len(password) <= MAX_PASSWORD
    subject = f"owner:{row['id']}" if row is not None else "owner:unknown"
    actor = email or "anonymous"
    now = now or st.utcnow()
    with st.transaction(engine) as conn:
        until = throttle.refused_until(conn, settings, email, address, trusted=trusted, now=now)
        if until is not None:
            audit.record(
                conn,
                actor,
                "owner.login_refused",
                subject,
                detail=f"from {address}: locked out until {until:%Y-%m-%d %H:%M} UTC",
            )
            return Login(retry_after=max(1, math.ceil((until - now).total_seconds())))
        if matches and row is not None:
            throttle.succeeded(conn, email, address)
            conn.execute(
                update(st.owners).where(st.owners.c.id == row["id"]).values(last_login_at=now)
            )
            audit.record(conn, actor, "owner.login", subject, detail=f"from {address}")
            return Login(owner=_owner(row))
        started = throttle.failed(conn, settings, email, address, now=now)
        audit.record(conn, actor, "owner.login_failed", subject, detail=f"from {address}")
        for lock in started:
            where = lock.address
            if where == throttle.EVERYWHERE:
                where = "every browser that never signed in to it"
            audit.record(
                conn,
                actor,
                "owner.locked",
                subject,
                detail=f"{lock.failures} failed logins; {where} locked out until "
                f"{lock.until:%Y-%m-%d %H:%M} UTC",
            )
    return Login()
