"""Scheduled notification jobs: the owners' daily digest and outbox retries.

The scheduler process (``biblio scheduler`` or the demo; never a web worker)
runs :func:`daily_digest` once a day, emailing every owner the join requests
pending longer than ``[join] reminder_days``, and :func:`flush_outbox` every few
minutes, so messages whose first delivery failed are retried with backoff. Both
never raise: a failure is logged and the next run tries again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy.engine import Engine

from biblio import audit, events, mail
from biblio import storage as st
from biblio.membership import messages as join_messages
from biblio.membership import owners
from biblio.membership import requests as join_requests
from biblio.membership.reconcile import unrequested_members
from biblio.settings import Settings

log = logging.getLogger(__name__)

DIGEST_JOB_ID = "biblio-join-digest"
OUTBOX_JOB_ID = "biblio-outbox"
OUTBOX_MINUTES = 5


def overdue(engine: Engine, days: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """Pending requests older than ``days`` days, oldest first."""
    cutoff = (now or st.utcnow()) - timedelta(days=days)
    pending = join_requests.list_requests(engine, status="pending")
    return [r for r in pending if r["created_at"] < cutoff]


def digest(
    engine: Engine, settings: Settings, owner_emails: list[str], now: datetime | None = None
) -> int:
    """Queue the reminder digest to every owner if requests are overdue; return emails queued."""
    days = int(settings["join"]["reminder_days"])
    rows = overdue(engine, days, now)
    if not rows or not owner_emails:
        return 0
    subject, body = join_messages.digest(
        rows,
        days,
        join_messages.admin_link(settings, "/-/admin/?status=pending"),
        unrequested_members(engine),
    )
    with st.transaction(engine) as conn:
        for email in owner_emails:
            mail.enqueue(conn, email, subject, body)
        audit.record(
            conn,
            "scheduler",
            "digest.queue",
            "digest",
            detail=f"{len(rows)} overdue request(s) to {len(owner_emails)} owner(s)",
        )
    mail.send_soon(engine, settings)
    return len(owner_emails)


def daily_digest(engine: Engine, settings: Settings) -> int:
    """Queue (and try to send) the reminder digest; return the emails queued."""
    try:
        queued = digest(engine, settings, owners.owner_emails(engine))
    except Exception:  # a scheduler job must not die; tomorrow's run retries
        log.exception("join-request digest failed")
        return 0
    log.info("join-request digest: %d email(s) queued", queued)
    return queued


def flush_outbox(engine: Engine, settings: Settings) -> mail.Delivery:
    """Deliver the due outbox messages (retries included)."""
    try:
        return mail.deliver_pending(engine, settings)
    except Exception:
        log.exception("outbox delivery failed")
        return mail.Delivery()


def add_jobs(settings: Settings, *, scheduler: BaseScheduler, engine: Engine) -> None:
    """Add the digest (daily, first run in an hour) and outbox (every 5 min) jobs; a
    receiver of :data:`biblio.events.scheduler_built`."""
    scheduler.add_job(
        daily_digest,
        "interval",
        days=1,
        args=(engine, settings),
        id=DIGEST_JOB_ID,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now() + timedelta(hours=1),
        misfire_grace_time=3600,
    )
    scheduler.add_job(
        flush_outbox,
        "interval",
        minutes=OUTBOX_MINUTES,
        args=(engine, settings),
        id=OUTBOX_JOB_ID,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(),
        misfire_grace_time=OUTBOX_MINUTES * 60,
    )


def subscribe() -> None:
    """Add the digest and outbox jobs to the one scheduler (idempotent)."""
    events.scheduler_built.connect(add_jobs)
