"""Email through an outbox: queued in the caller's transaction, delivered over SMTP.

A join request or a decision and its email are written in one transaction
(:func:`enqueue`), so a crash before delivery never loses either; the message
simply waits in the ``outbox`` table. :func:`deliver_pending` sends what is due:
each message is first *claimed* (its attempt counted and its next attempt pushed
a lease ahead) in its own small transaction, so two senders (the after-commit
thread and the scheduler job) never send the same message twice, and a sender
killed mid-delivery leaves the message to be retried when the lease expires.
Failures are logged and retried with exponential backoff; after ``[mail]
max_attempts`` the message is parked as ``failed`` (never deleted) and
``biblio mail flush --retry-failed`` puts it back in the queue.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from biblio import controlchars
from biblio import storage as st
from biblio.settings import Settings

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=6)
LEASE = timedelta(minutes=10)
SMTP_TIMEOUT = 20.0

_threads: set[threading.Thread] = set()
_threads_lock = threading.Lock()


def _header(value: str, limit: int = 300) -> str:
    """One line, no control characters (no header injection)."""
    return controlchars.one_line(value).strip()[:limit]


def enqueue(conn: Connection, to_addr: str, subject: str, body: str) -> int:
    """Queue one plain-text message inside the caller's transaction; return its id."""
    now = st.utcnow()
    key = conn.execute(
        insert(st.outbox).values(
            created_at=now,
            to_addr=_header(to_addr, 320),
            subject=_header(subject),
            body=body,
            status="pending",
            attempts=0,
            next_attempt_at=now,
        )
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0  # attempts that failed (message kept for a retry or parked)
    parked: int = 0  # of those, messages that reached max_attempts

    def summary(self) -> str:
        return f"{self.sent} sent, {self.failed} failed attempts, {self.parked} parked"


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failed attempt: 1, 2, 4 ... minutes, at most 6 h."""
    return min(BACKOFF_BASE * (2 ** max(0, attempts - 1)), BACKOFF_MAX)


def _build(settings: Settings, row: Any) -> EmailMessage:
    msg = EmailMessage()
    sender = settings["mail"]["sender"]
    msg["From"] = sender
    msg["To"] = row["to_addr"]
    msg["Subject"] = row["subject"]
    msg["Date"] = format_datetime(datetime.now().astimezone())
    domain = sender.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(idstring=f"outbox-{row['id']}", domain=domain)
    msg.set_content(row["body"])
    return msg


def _connect(settings: Settings) -> smtplib.SMTP:
    mail = settings["mail"]
    if mail["security"] == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            mail["host"],
            int(mail["port"]),
            timeout=SMTP_TIMEOUT,
            context=ssl.create_default_context(),
        )
    else:
        smtp = smtplib.SMTP(mail["host"], int(mail["port"]), timeout=SMTP_TIMEOUT)
        if mail["security"] == "starttls":
            smtp.starttls(context=ssl.create_default_context())
    if mail["username"]:
        smtp.login(mail["username"], mail.get("password") or "")
    return smtp


def _claim(engine: Engine, row: Any, now: datetime) -> bool:
    """Count the attempt and push the next one a lease ahead; False if another sender won."""
    with st.transaction(engine) as conn:
        result = conn.execute(
            update(st.outbox)
            .where(
                st.outbox.c.id == row["id"],
                st.outbox.c.status == "pending",
                st.outbox.c.attempts == row["attempts"],
            )
            .values(attempts=row["attempts"] + 1, next_attempt_at=now + LEASE)
        )
    return result.rowcount == 1


def deliver_pending(
    engine: Engine,
    settings: Settings,
    *,
    force: bool = False,
    now: datetime | None = None,
    limit: int = 200,
) -> Delivery:
    """Send the due pending messages (all pending ones if ``force``); never raises."""
    result = Delivery()
    if not settings["mail"]["enabled"]:
        return result
    now = now or st.utcnow()
    query = select(st.outbox).where(st.outbox.c.status == "pending")
    if not force:
        query = query.where(st.outbox.c.next_attempt_at <= now)
    with st.connect(engine) as conn:
        rows = conn.execute(query.order_by(st.outbox.c.id).limit(limit)).mappings().all()
    if not rows:
        return result
    max_attempts = max(1, int(settings["mail"]["max_attempts"]))
    smtp: smtplib.SMTP | None = None
    try:
        for row in rows:
            if not _claim(engine, row, now):
                continue
            attempt = row["attempts"] + 1
            try:
                if smtp is None:
                    smtp = _connect(settings)
                smtp.send_message(_build(settings, row))
            except (OSError, smtplib.SMTPException) as exc:
                _quit(smtp)  # the connection may be unusable; reconnect next time
                smtp = None
                error = f"{type(exc).__name__}: {exc}"[:1000]
                parked = attempt >= max_attempts
                with st.transaction(engine) as conn:
                    conn.execute(
                        update(st.outbox)
                        .where(st.outbox.c.id == row["id"])
                        .values(
                            status="failed" if parked else "pending",
                            last_error=error,
                            next_attempt_at=now + backoff(attempt),
                        )
                    )
                result.failed += 1
                result.parked += int(parked)
                log.warning(
                    "mail %d to %s: attempt %d/%d failed: %s%s",
                    row["id"],
                    row["to_addr"],
                    attempt,
                    max_attempts,
                    error,
                    " (parked)" if parked else "",
                )
                continue
            with st.transaction(engine) as conn:
                conn.execute(
                    update(st.outbox)
                    .where(st.outbox.c.id == row["id"])
                    .values(status="sent", sent_at=st.utcnow(), last_error=None)
                )
            result.sent += 1
    finally:
        _quit(smtp)
    if result.sent or result.failed:
        log.info("outbox: %s", result.summary())
    return result


def _quit(smtp: smtplib.SMTP | None) -> None:
    if smtp is not None:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def retry_failed(engine: Engine) -> int:
    """Put parked messages back in the queue with a fresh attempt count."""
    with st.transaction(engine) as conn:
        return (
            conn.execute(
                update(st.outbox)
                .where(st.outbox.c.status == "failed")
                .values(status="pending", attempts=0, next_attempt_at=st.utcnow())
            ).rowcount
            or 0
        )


def send_soon(engine: Engine, settings: Settings) -> None:
    """Deliver in a background thread, after the caller's transaction has committed."""
    if not settings["mail"]["enabled"]:
        return

    def run() -> None:
        try:
            deliver_pending(engine, settings)
        except Exception:  # the scheduler job retries; a thread must never crash loudly
            log.exception("background mail delivery failed")
        finally:
            with _threads_lock:
                _threads.discard(threading.current_thread())

    thread = threading.Thread(target=run, name="biblio-mail", daemon=True)
    with _threads_lock:  # started inside the lock: a waiter never sees an unstarted thread
        _threads.add(thread)
        thread.start()


def wait_for_background(timeout: float = 30.0) -> None:
    """Join the background senders, for at most ``timeout`` seconds in all (tests,
    shutdown, and a new join request waiting a moment for its confirmation)."""
    deadline = time.monotonic() + timeout
    with _threads_lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def outbox_counts(engine: Engine) -> dict[str, int]:
    """Messages per status, for the owners' area."""
    with st.connect(engine) as conn:
        rows = conn.execute(
            select(st.outbox.c.status, func.count()).group_by(st.outbox.c.status)
        ).all()
    counts = {"pending": 0, "sent": 0, "failed": 0}
    counts.update({status: int(n) for status, n in rows})
    return counts


def messages(
    engine: Engine, *, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Newest outbox rows (for owners and tests)."""
    query = select(st.outbox).order_by(st.outbox.c.id.desc()).limit(limit)
    if status:
        query = query.where(or_(st.outbox.c.status == status))
    with st.connect(engine) as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def delivery_state(engine: Engine, settings: Settings, to_addr: str, since: datetime) -> str:
    """What became of the first message to ``to_addr`` queued at or after ``since``:
    ``sent``, ``sending`` (queued, no failed attempt yet), ``failing`` (an attempt failed;
    it is retried), ``failed`` (parked after every attempt), ``off`` (mail is disabled)
    or ``none`` (no such message)."""
    query = (
        select(st.outbox.c.status, st.outbox.c.last_error)
        .where(st.outbox.c.to_addr == _header(to_addr, 320), st.outbox.c.created_at >= since)
        .order_by(st.outbox.c.id)
        .limit(1)
    )
    with st.connect(engine) as conn:
        row = conn.execute(query).first()
    if row is None:
        return "none"
    if row.status == "sent":
        return "sent"
    if not settings["mail"]["enabled"]:
        return "off"
    if row.status == "failed":
        return "failed"
    return "failing" if row.last_error else "sending"


def message(engine: Engine, message_id: int) -> dict[str, Any] | None:
    """One outbox row, body included (``biblio mail show``)."""
    with st.connect(engine) as conn:
        row = conn.execute(select(st.outbox).where(st.outbox.c.id == message_id)).mappings().first()
    return dict(row) if row else None
