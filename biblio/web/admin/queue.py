"""The owners' queue under ``/-/admin/``: join requests, decisions, notes, CSV export.

Every view requires a logged-in owner (the blueprint's ``before_request``), every
POST is CSRF-checked app-wide and answers with a 303 redirect (POST-redirect-GET)
and a flash message. Views parse arguments and call :mod:`biblio.membership.requests`;
the audit and outbox writes happen there, in the same transaction as the change.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from biblio import audit, mail
from biblio import storage as st
from biblio.membership import messages as join_messages
from biblio.membership import requests as jr
from biblio.membership.group import group_summary
from biblio.membership.reconcile import unrequested_members
from biblio.storage import app as db
from biblio.web.admin.auth import actor, owner_required

bp = Blueprint("admin", __name__)
SORTS = {"age": "oldest first", "-age": "newest first"}


@bp.before_request
@owner_required
def _guard() -> None:
    return None


def _iso(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() + "Z" if hasattr(v, "isoformat") else v) for k, v in row.items()}


def _queue_args() -> tuple[str | None, str]:
    status = request.args.get("status") or None
    if status is not None and status not in jr.STATUSES:
        abort(400, f"status must be one of {', '.join(jr.STATUSES)}")
    sort = request.args.get("_sort") or "age"
    if sort not in SORTS:
        abort(400, f"_sort must be one of {', '.join(SORTS)}")
    return status, sort


@bp.get("/-/admin/")
def queue():  # type: ignore[no-untyped-def]
    status, sort = _queue_args()
    engine = db.engine()
    rows = jr.list_requests(engine, status=status, newest_first=sort == "-age")
    with db.engine().connect() as conn:
        group = group_summary(conn)
    return render_template(
        "admin/queue.html",
        rows=rows,
        status=status,
        sort=sort,
        sorts=SORTS,
        statuses=jr.STATUSES,
        labels=jr.STATUS_LABELS,
        counts=jr.status_counts(engine),
        unrequested=unrequested_members(engine),
        outbox=mail.outbox_counts(engine),
        members_url=join_messages.ZOTERO_MEMBERS_URL.format(group_id=group["id"])
        if group["id"]
        else None,
        reminder_days=int(db.settings()["join"]["reminder_days"]),
    )


@bp.get("/-/admin/requests.json")
def queue_json() -> ResponseReturnValue:
    status, sort = _queue_args()
    rows = [
        _iso(r) for r in jr.list_requests(db.engine(), status=status, newest_first=sort == "-age")
    ]
    return jsonify({"ok": True, "rows": rows, "count": len(rows), "next": None})


@bp.get("/-/admin/requests.csv")
def queue_csv() -> ResponseReturnValue:
    status, _ = _queue_args()
    response = Response(
        jr.export_csv(db.engine(), status=status),
        mimetype="text/csv" if request.args.get("_dl") else "text/plain",
    )
    response.headers["Content-Type"] += "; charset=utf-8"
    if request.args.get("_dl"):
        name = f"join-requests-{status or 'all'}.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _request_or_404(request_id: int) -> dict[str, Any]:
    found = jr.get_request(db.engine(), request_id)
    if found is None:
        abort(404)
    return found


@bp.get("/-/admin/requests/<int:request_id>")
def detail(request_id: int):  # type: ignore[no-untyped-def]
    req = _request_or_404(request_id)
    with db.engine().connect() as conn:
        group = group_summary(conn)
    return render_template(
        "admin/request.html",
        req=req,
        prongs=jr.PRONGS,
        history=audit.entries(db.engine(), subject=f"request:{request_id}"),
        members_url=join_messages.ZOTERO_MEMBERS_URL.format(group_id=group["id"])
        if group["id"]
        else None,
        transitions=jr.TRANSITIONS,
    )


@bp.get("/-/admin/requests/<int:request_id>.json")
def detail_json(request_id: int) -> ResponseReturnValue:
    return jsonify(
        {"ok": True, "rows": [_iso(_request_or_404(request_id))], "count": 1, "next": None}
    )


def _back(request_id: int) -> ResponseReturnValue:
    return redirect(url_for("admin.detail", request_id=request_id), code=303)


@bp.post("/-/admin/requests/<int:request_id>/decide")
def decide(request_id: int) -> ResponseReturnValue:
    action = str(request.form.get("action", ""))
    try:
        jr.decide(
            db.engine(),
            db.settings(),
            request_id,
            action,
            actor(),
            str(request.form.get("reason", "")),
            request.form.get("zotero_user_id"),
        )
    except jr.RequestError as exc:
        if exc.status == 404:
            abort(404)
        flash(str(exc), "error")
        return _back(request_id)
    if action == "approve":
        flash(
            f"Request #{request_id} approved. Now approve the person on zotero.org too; the "
            "next sync confirms the membership.",
            "ok",
        )
    else:
        flash(f"Request #{request_id} declined; the applicant is told why.", "ok")
    return _back(request_id)


@bp.post("/-/admin/requests/<int:request_id>/note")
def note(request_id: int) -> ResponseReturnValue:
    try:
        jr.set_note(db.engine(), request_id, actor(), str(request.form.get("note", "")))
    except jr.RequestError as exc:
        if exc.status == 404:
            abort(404)
        flash(str(exc), "error")
        return _back(request_id)
    flash("Note saved.", "ok")
    return _back(request_id)


@bp.post("/-/admin/requests/bulk")
def bulk() -> ResponseReturnValue:
    ids = [int(i) for i in request.form.getlist("ids") if i.isascii() and i.isdigit()]
    ids = [i for i in ids if i <= st.MAX_INTEGER]  # a larger one names no request
    target = redirect(url_for("admin.queue", status=request.form.get("status") or None), code=303)
    if not ids:
        flash("Select at least one request.", "error")
        return target
    try:
        done, skipped = jr.bulk(
            db.engine(),
            db.settings(),
            ids,
            str(request.form.get("action", "")),
            actor(),
            str(request.form.get("reason", "")),
        )
    except jr.RequestError as exc:
        flash(str(exc), "error")
        return target
    if done:
        flash(f"{len(done)} request(s) updated: " + ", ".join(f"#{i}" for i in done), "ok")
    for request_id, why in skipped.items():
        flash(f"#{request_id} skipped: {why}", "error")
    return target
