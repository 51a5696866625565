"""Health of a running biblio, for load balancers and monitors (``/-/health``).

Three checks, each with a verdict and plain figures: the database answers a query;
the last good sync is no older than ``[health] max_sync_age_minutes`` (by default
three sync intervals); and no email has waited in the outbox for longer than
``[health] outbox_overdue_minutes`` past its due time (only while mail is enabled:
disabled mail queues on purpose). The result names no host, path, URL, error text or
version, so it can be public; failures are logged with their details instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from biblio import storage as st
from biblio.settings import Settings
from biblio.sync.state import read_state

log = logging.getLogger(__name__)

#: The sync age limit when ``[health] max_sync_age_minutes`` is 0, in sync intervals.
SYNC_INTERVALS = 3


@dataclass
class Check:
    name: str
    ok: bool
    problem: str = ""  # one short sentence when not ok, shown to anyone
    figures: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, **self.figures}


@dataclass
class Health:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def problems(self) -> str:
        return "; ".join(f"{c.name}: {c.problem}" for c in self.checks if not c.ok)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def max_sync_age(settings: Settings) -> timedelta:
    """How old the last good sync may be before the site counts as unhealthy."""
    minutes = int(settings["health"]["max_sync_age_minutes"])
    if minutes <= 0:
        minutes = SYNC_INTERVALS * int(settings["sync"]["interval_minutes"])
    return timedelta(minutes=minutes)


def _sync_check(state: dict[str, Any] | None, settings: Settings, now: datetime) -> Check:
    limit = max_sync_age(settings)
    last = state["last_success_at"] if state else None
    figures: dict[str, Any] = {
        "last_success_at": _iso(last),
        "age_seconds": None if last is None else max(0, int((now - last).total_seconds())),
        "max_age_seconds": int(limit.total_seconds()),
    }
    if last is None:
        return Check("sync", False, "no sync has succeeded yet", figures)
    if now - last > limit:
        hours = (now - last).total_seconds() / 3600
        problem = f"the last good sync was {hours:.1f} h ago"
        return Check("sync", False, problem, figures)
    return Check("sync", True, figures=figures)


def _outbox_check(conn: Any, settings: Settings, now: datetime) -> Check:
    o = st.outbox.c
    overdue_after = now - timedelta(minutes=int(settings["health"]["outbox_overdue_minutes"]))
    counts = dict(conn.execute(select(o.status, func.count()).group_by(o.status)).all())
    overdue = conn.execute(
        select(func.count()).where(o.status == "pending", o.next_attempt_at < overdue_after)
    ).scalar_one()
    enabled = bool(settings["mail"]["enabled"])
    figures = {
        "pending": int(counts.get("pending", 0)),
        "overdue": int(overdue),
        "failed": int(counts.get("failed", 0)),  # parked for an owner; not a fault of the site
        "mail_enabled": enabled,
    }
    if enabled and overdue:
        return Check("outbox", False, f"{overdue} email(s) overdue", figures)
    return Check("outbox", True, figures=figures)


def check(engine: Engine, settings: Settings, now: datetime | None = None) -> Health:
    """Run every check against ``engine``; never raises for a database that is down."""
    now = now or st.utcnow()
    try:
        with st.connect(engine) as conn:
            conn.execute(select(1)).scalar_one()
            state = read_state(conn)
            outbox = _outbox_check(conn, settings, now)
    except SQLAlchemyError as exc:
        log.error("health: the database does not answer: %s", exc)
        down = "the database does not answer"
        return Health(
            [
                Check("database", False, "does not answer"),
                Check("sync", False, down),
                Check("outbox", False, down),
            ]
        )
    return Health([Check("database", True), _sync_check(state, settings, now), outbox])
