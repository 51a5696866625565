"""Owners' mail pages: the outbox and its failures, and the demo's caught mail.

``/-/admin/outbox`` lists what biblio queued, newest first, with each message's status,
attempts and last error, and re-queues parked messages and sends what waits ("Retry
now", audited). ``/-/admin/mail`` shows the messages the demo's mail catcher received
(``[demo] mailbox``, :mod:`biblio.mailcatcher`); in the demo it also plays zotero.org's
part for an approved applicant: "Accept the invitation" adds their user ID to the
stand-in group's members and syncs, so the whole join flow reaches "member". Outside
the demo that control does not exist (404). Same guard as every owners' page.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
)
from flask import url_for as _url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup, escape

from biblio import audit, mail, mailcatcher
from biblio import storage as st
from biblio.membership import requests as jr
from biblio.membership.group import MAX_USER_ID
from biblio.storage import app as db
from biblio.sync.client import SyncError
from biblio.sync.lock import SyncBusy
from biblio.sync.run import run_sync
from biblio.web.admin.auth import actor, owner_required
from biblio.web.admin.queue import _iso

bp = Blueprint("admin_mail", __name__)

#: Where ``biblio demo`` leaves its stand-in group in ``app.extensions``.
DEMO_GROUP = "biblio.demo_group"
#: Outbox rows a page shows (newest first).
OUTBOX_ROWS = 200
# Links in a caught message's text (http and https only; never javascript:).
_URL = re.compile(r"https?://[^\s<>\"']+")


class DemoGroup(Protocol):
    """The demo's stand-in Zotero group (a :class:`biblio.standin.library.StandinLibrary`)."""

    def add_member(self, user_id: int) -> int: ...


@bp.before_request
@owner_required
def _guard() -> None:
    return None


def _demo_group() -> DemoGroup | None:
    group: DemoGroup | None = current_app.extensions.get(DEMO_GROUP)
    return group


def _status() -> str | None:
    status = request.args.get("status") or None
    if status is not None and status not in ("pending", "sent", "failed"):
        abort(400, "status must be one of pending, sent, failed")
    return status


def _outbox_rows(status: str | None) -> list[dict[str, Any]]:
    # Bodies stay out: they carry applicants' private status links.
    rows = mail.messages(db.engine(), status=status, limit=OUTBOX_ROWS)
    return [{k: v for k, v in row.items() if k != "body"} for row in rows]


@bp.get("/-/admin/outbox")
def outbox():  # type: ignore[no-untyped-def]
    status = _status()
    settings = db.settings()["mail"]
    return render_template(
        "admin/outbox.html",
        rows=_outbox_rows(status),
        counts=mail.outbox_counts(db.engine()),
        status=status,
        server=f"{settings['host']}:{settings['port']}",
        enabled=settings["enabled"],
        limit=OUTBOX_ROWS,
    )


@bp.get("/-/admin/outbox.json")
def outbox_json() -> ResponseReturnValue:
    rows = [_iso(r) for r in _outbox_rows(_status())]
    counts = mail.outbox_counts(db.engine())
    return jsonify({"ok": True, "rows": rows, "count": len(rows), "next": None, "totals": counts})


@bp.post("/-/admin/outbox/retry")
def outbox_retry() -> ResponseReturnValue:
    engine, settings = db.engine(), db.settings()
    requeued = mail.retry_failed(engine)
    result = mail.deliver_pending(engine, settings, force=True)
    with st.transaction(engine) as conn:
        audit.record(
            conn,
            actor(),
            "outbox.retry",
            "outbox",
            detail=f"{requeued} re-queued; {result.summary()}",
        )
    if not settings["mail"]["enabled"]:
        flash("Mail is off ([mail] enabled = false): the messages stay queued.", "error")
    elif result.failed:
        flash(f"Outbox: {result.summary()}. The mail server still fails; see the errors.", "error")
    else:
        flash(f"Outbox: {requeued} re-queued; {result.summary()}.", "ok")
    return redirect(_url_for("admin_mail.outbox"), code=303)


def _caught() -> list[mailcatcher.Caught]:
    folder = db.settings()["demo"]["mailbox"]
    return mailcatcher.caught(folder) if folder else []


@bp.get("/-/admin/mail")
def caught_mail():  # type: ignore[no-untyped-def]
    demo = _demo_group() is not None
    return render_template(
        "admin/mail.html",
        messages=_caught(),
        mailbox=db.settings()["demo"]["mailbox"],
        demo=demo,
        approved=jr.list_requests(db.engine(), status="approved") if demo else [],
    )


@bp.get("/-/admin/mail.json")
def caught_mail_json() -> ResponseReturnValue:
    rows = [m.as_json() for m in _caught()]
    return jsonify({"ok": True, "rows": rows, "count": len(rows), "next": None})


@bp.post("/-/admin/mail/member")
def demo_member() -> ResponseReturnValue:
    """The demo only: accept an applicant's invitation on the stand-in "zotero.org"."""
    group = _demo_group()
    if group is None:
        abort(404, "only the demo's stand-in group can be changed from here")
    raw = str(request.form.get("user_id", "")).strip()
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_USER_ID):
        flash("The Zotero user ID is a number, like 1234567.", "error")
        return redirect(_url_for("admin_mail.caught_mail"), code=303)
    user_id = int(raw)
    group.add_member(user_id)
    engine = db.engine()
    with st.transaction(engine) as conn:
        audit.record(conn, actor(), "demo.member", f"zotero-user:{user_id}", new="member")
    try:
        result = run_sync(engine, db.settings(), trigger="owner")
    except SyncBusy:
        flash(f"User {user_id} joined the stand-in group; a sync is running and confirms it.", "ok")
    except SyncError as exc:
        flash(f"User {user_id} joined the stand-in group, but the sync failed: {exc}", "error")
    else:
        flash(f"User {user_id} joined the stand-in group; {result.summary()}.", "ok")
    mail.wait_for_background(3)  # so the welcome email is on the page it returns to
    return redirect(_url_for("admin_mail.caught_mail"), code=303)


def linkify(text: str) -> Markup:
    """Plain text, escaped, with its http(s) URLs as links (the status links in mail)."""
    out, pos = [], 0
    for found in _URL.finditer(text or ""):
        url = found.group(0).rstrip(".,;:!?)")
        out += [escape(text[pos : found.start()]), Markup('<a href="{0}">{0}</a>').format(url)]
        pos = found.start() + len(url)
    out.append(escape((text or "")[pos:]))
    return Markup("").join(out)


def init_app(app: Flask) -> None:
    app.jinja_env.filters.setdefault("linkify", linkify)
