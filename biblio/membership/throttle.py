"""Login throttling that slows an attacker without locking the real owner out.

Failed logins are counted per *(email tried, address)*: ``[auth] lockout_failures`` of
them lock that address out of that account for ``[auth] lockout_minutes``, doubling
with each lockout in a row (up to a day), while the owner signs in from anywhere else.
A second counter per email, from every address (address ``"*"``), catches an attack
spread over many addresses: past ``[auth] account_failures`` within the window only
*trusted* browsers (those that signed in to that account before) may try until it is
quiet again. Emails that belong to no owner are counted exactly like owners' emails,
so neither the answers nor the lockouts reveal which addresses are accounts.
Every counter moves in one atomic upsert inside the caller's transaction, so parallel
attempts never lose a count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.engine import Connection

from biblio import storage as st
from biblio.settings import Settings

#: The address of the per-account counter (every address together).
EVERYWHERE = "*"
#: The longest lockout, however many came before it.
MAX_LOCK = timedelta(days=1)
#: A quiet day forgets earlier lockouts (the next one is short again).
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Lockout:
    """A lockout that a failure just started: where from, and until when."""

    address: str
    until: datetime
    failures: int


def _window(settings: Settings) -> timedelta:
    return timedelta(minutes=max(1, int(settings["auth"]["lockout_minutes"])))


def refused_until(
    conn: Connection,
    settings: Settings,
    account: str,
    address: str,
    *,
    trusted: bool,
    now: datetime,
) -> datetime | None:
    """Until when an attempt on ``account`` from ``address`` is refused (None: it may
    try). A trusted browser is held back only by its own address's lockout."""
    t = st.login_throttle
    rows = conn.execute(
        select(t.c.address, t.c.locked_until).where(
            t.c.account == account, t.c.address.in_((address, EVERYWHERE))
        )
    ).all()
    until = [
        locked
        for where, locked in rows
        if locked is not None and locked > now and (where == address or not trusted)
    ]
    return max(until, default=None)


def failed(
    conn: Connection, settings: Settings, account: str, address: str, *, now: datetime
) -> list[Lockout]:
    """Count one failed login on both counters; the lockouts it started."""
    window = _window(settings)
    limits = (
        (address, max(1, int(settings["auth"]["lockout_failures"]))),
        (EVERYWHERE, max(1, int(settings["auth"]["account_failures"]))),
    )
    started = []
    t = st.login_throttle
    for where, allowed in limits:
        stale = t.c.last_failure_at < now - window
        forgotten = t.c.last_failure_at < now - FORGET_AFTER
        stmt = st.upsert(conn, t).values(
            account=account,
            address=where,
            failures=1,
            lockouts=0,
            locked_until=None,
            last_failure_at=now,
        )
        counted = stmt.on_conflict_do_update(
            index_elements=[t.c.account, t.c.address],
            set_={
                "failures": case((stale, 1), else_=t.c.failures + 1),
                "lockouts": case((forgotten, 0), else_=t.c.lockouts),
                "last_failure_at": now,
            },
        ).returning(t.c.failures, t.c.lockouts)
        failures, lockouts = conn.execute(counted).one()
        if failures < allowed:
            continue
        until = now + min(window * 2 ** min(int(lockouts), 16), MAX_LOCK)
        conn.execute(
            update(t)
            .where(t.c.account == account, t.c.address == where)
            .values(failures=0, lockouts=t.c.lockouts + 1, locked_until=until)
        )
        started.append(Lockout(where, until, int(failures)))
    return started


def succeeded(conn: Connection, account: str, address: str) -> None:
    """A right password from ``address``: its count and lockout history start over.
    (The per-account counter stays: an attack elsewhere goes on.)"""
    t = st.login_throttle
    conn.execute(delete(t).where(t.c.account == account, t.c.address == address))


def forget(conn: Connection, account: str) -> None:
    """Every count and lockout of ``account`` (a new password was set)."""
    conn.execute(delete(st.login_throttle).where(st.login_throttle.c.account == account))
