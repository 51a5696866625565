"""Owners' tools beside the queue: the audit log, prong overrides and the sync page.

Same guard as the queue (a logged-in owner), CSRF on every POST and
POST-redirect-GET. The sync page (``/-/admin/sync``, twin ``.json``) shows the last
runs and any wait Zotero asked for (``Backoff``/``Retry-After``), which an owner can
clear (audited). "Sync now" runs :func:`biblio.sync.run.run_sync` under the one sync
lock, so it never overlaps a scheduled run (a busy lock is a friendly message).
Prong overrides call :mod:`biblio.prongs`, which audits them itself.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request
from flask import url_for as _url_for
from flask.typing import ResponseReturnValue

from biblio import audit, prongs
from biblio import storage as st
from biblio.prongs.store import review_queue
from biblio.storage import app as db
from biblio.sync.client import SyncError
from biblio.sync.errors import BackoffTooLong
from biblio.sync.lock import SyncBusy
from biblio.sync.run import run_sync
from biblio.sync.state import clear_backoff, pending_backoff
from biblio.web import responses
from biblio.web.admin.auth import actor, owner_required
from biblio.web.admin.queue import _iso
from biblio.web.status import sync_status

bp = Blueprint("admin_tools", __name__)
PAGE = 100


@bp.before_request
@owner_required
def _guard() -> None:
    return None


def _before() -> int | None:
    raw = request.args.get("_next")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        abort(400, "_next must be an audit entry id")
    return int(raw)


@bp.get("/-/admin/audit")
def audit_page():  # type: ignore[no-untyped-def]
    rows = audit.entries(db.engine(), limit=PAGE, before_id=_before())
    nxt = rows[-1]["id"] if len(rows) == PAGE else None
    return render_template("admin/audit.html", rows=rows, next=nxt)


@bp.get("/-/admin/audit.json")
def audit_json() -> ResponseReturnValue:
    rows = audit.entries(db.engine(), limit=PAGE, before_id=_before())
    nxt = rows[-1]["id"] if len(rows) == PAGE else None
    return jsonify({"ok": True, "rows": [_iso(r) for r in rows], "count": len(rows), "next": nxt})


def _sync_status() -> dict:  # type: ignore[type-arg]
    status = sync_status()
    until = pending_backoff(db.engine())
    status["pending_wait_until"] = None if until is None else until.isoformat() + "Z"
    status["pending_wait_minutes"] = (
        None if until is None else max(1, round((until - st.utcnow()).total_seconds() / 60))
    )
    return status


@bp.get("/-/admin/sync")
def sync_page():  # type: ignore[no-untyped-def]
    return render_template("admin/sync.html", status=_sync_status())


@bp.get("/-/admin/sync.json")
def sync_json() -> ResponseReturnValue:
    status = _sync_status()
    runs = status.pop("runs")
    return responses.envelope(runs, len(runs), None, **status)


@bp.post("/-/admin/sync/wait")
def clear_wait() -> ResponseReturnValue:
    cleared = clear_backoff(db.engine(), actor())
    if cleared is None:
        flash("No wait was pending.", "ok")
    else:
        flash("Zotero's wait was cleared; the next sync asks Zotero at once.", "ok")
    return redirect(_url_for("admin_tools.sync_page"), code=303)


@bp.post("/-/admin/sync")
def sync_now() -> ResponseReturnValue:
    engine, settings = db.engine(), db.settings()
    try:
        result = run_sync(engine, settings, trigger="owner")
    except SyncBusy:
        flash("A sync is already running; try again in a minute.", "error")
    except BackoffTooLong as exc:
        flash(f"The sync did not run: {exc}. The sync page can clear the wait.", "error")
    except SyncError as exc:
        flash(f"The sync failed: {exc}", "error")
    else:
        with st.transaction(engine) as conn:
            audit.record(
                conn,
                actor(),
                "sync.now",
                f"sync:{result.run_id}",
                new=result.status,
                detail=result.summary(),
            )
        flash(result.summary(), "ok")
    return redirect(_admin_target(_url_for("admin.queue")), code=303)


@bp.get("/-/admin/prongs")
def overrides_page():  # type: ignore[no-untyped-def]
    rules = prongs.load_rules(db.settings())
    return render_template(
        "admin/prongs.html",
        rows=prongs.list_overrides(db.engine()),
        prong_ids=rules.ids(),
        key=request.args.get("key", "")[:16],
    )


@bp.post("/-/admin/prongs")
def overrides_post() -> ResponseReturnValue:
    form = request.form
    key = str(form.get("key", "")).strip().upper()[:16]
    prong = str(form.get("prong", ""))[:40]
    action = str(form.get("action", ""))
    try:
        if action == "clear":
            changed = prongs.clear_override(
                db.engine(), key, prong, actor(), settings=db.settings()
            )
        else:
            changed = prongs.set_override(
                db.engine(),
                key,
                prong,
                action,
                actor(),
                note=str(form.get("note", ""))[:2000] or None,
                settings=db.settings(),
            )
    except prongs.OverrideError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Override {action} {prong} on {key} saved." if changed else "Nothing changed.", "ok")
    return redirect(_admin_target(_url_for("admin_tools.overrides_page")), code=303)


def _admin_target(default: str) -> str:
    """The form's ``next`` when it is a local owners' page, else ``default``."""
    target = request.form.get("next") or ""
    if not target.startswith("/-/admin/") or "//" in target or "\\" in target:
        return default
    return target


#: What each kind of borderline verdict means, for the review page.
VERDICTS = {
    "model-only": "assigned by the learned vocabulary; no rule reached the threshold",
    "vetoed": "a rule matched, but the learned vocabulary found it unlikely, so it was dropped",
    "weak": "a rule matched and the learned vocabulary only just agreed",
    "near-miss": "not assigned, but the learned vocabulary came close",
}


@bp.get("/-/admin/prongs/review")
def review_page():  # type: ignore[no-untyped-def]
    rules = prongs.load_rules(db.settings())
    prong = request.args.get("prong") or None
    verdict = request.args.get("verdict") or None
    if prong is not None and prong not in rules.ids():
        abort(400, "unknown prong")
    if verdict is not None and verdict not in VERDICTS:
        abort(400, "unknown verdict")
    raw = request.args.get("_start", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        abort(400, "_start must be a whole number")
    start = int(raw)
    with st.connect(db.engine()) as conn:
        rows, total = review_queue(conn, prong, verdict, limit=PAGE // 2, offset=start)
    labels = {p.id: p.label for p in rules.prongs}
    more = start + len(rows) < total
    return render_template(
        "admin/review.html",
        rows=rows,
        total=total,
        start=start,
        next_start=start + len(rows) if more else None,
        labels=labels,
        verdicts=VERDICTS,
        prong=prong,
        verdict=verdict,
        model_on=rules.model is not None,
        thresholds={p.id: p.threshold for p in rules.prongs},
    )
