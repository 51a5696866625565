"""Owner accounts: creation from the command line, password checks with lockout.

Passwords are hashed with scrypt (werkzeug's ``generate_password_hash``), there
is no default account or password, and short passwords are refused. A failed
login counts against the account; after ``[auth] lockout_failures`` failures in a
row it is locked for ``[auth] lockout_minutes`` and even the right password is
refused until then. Unknown emails cost the same hashing work as known ones, so
timing does not reveal which addresses are owners.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from biblio import audit
from biblio import storage as st
from biblio.settings import Settings

log = logging.getLogger(__name__)

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
EMAIL_RE = re.compile(
    r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
# A real hash of a random string: checked when the email is unknown (constant work).
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
        audit.record(conn, actor, "owner.password", f"owner:{owner_id}", new=email)
    log.info("owner %s: password changed", email)


def remove_owner(engine: Engine, email: str, *, actor: str = "cli") -> None:
    """Delete an owner account (its sessions end with it); the audit log keeps its trail."""
    email = normalize_email(email)
    with st.transaction(engine) as conn:
        owner_id = _owner_id(conn, email)
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


def authenticate(
    engine: Engine, settings: Settings, email: str, password: str, *, now: datetime | None = None
) -> Owner | None:
    """The owner if the email and password match and the account is not locked.

    Every outcome is audited; failures count towards the lockout.
    """
    now = now or st.utcnow()
    email = normalize_email(email)[:320]
    failures_allowed = max(1, int(settings["auth"]["lockout_failures"]))
    lock_for = timedelta(minutes=max(1, int(settings["auth"]["lockout_minutes"])))
    with st.transaction(engine) as conn:
        row = conn.execute(select(st.owners).where(st.owners.c.email == email)).mappings().first()
        if row is None:
            check_password_hash(_DUMMY_HASH, password or "")
            audit.record(conn, email or "anonymous", "owner.login_failed", "owner:unknown")
            return None
        subject = f"owner:{row['id']}"
        if row["locked_until"] and row["locked_until"] > now:
            check_password_hash(_DUMMY_HASH, password or "")
            audit.record(conn, email, "owner.login_refused", subject, detail="account locked")
            return None
        table = st.owners
        if (
            password
            and len(password) <= MAX_PASSWORD
            and check_password_hash(row["password_hash"], password)
        ):
            conn.execute(
                update(table)
                .where(table.c.id == row["id"])
                .values(failed_logins=0, locked_until=None, last_login_at=now)
            )
            audit.record(conn, email, "owner.login", subject)
            return _owner(row)
        failures = int(row["failed_logins"] or 0) + 1
        if failures >= failures_allowed:
            conn.execute(
                update(table)
                .where(table.c.id == row["id"])
                .values(failed_logins=0, locked_until=now + lock_for)
            )
            until = f"{now + lock_for:%Y-%m-%d %H:%M} UTC"
            audit.record(
                conn,
                email,
                "owner.locked",
                subject,
                detail=f"{failures} failed logins; locked until {until}",
            )
        else:
            conn.execute(
                update(table).where(table.c.id == row["id"]).values(failed_logins=failures)
            )
            audit.record(conn, email, "owner.login_failed", subject, detail=f"failure {failures}")
    return None
