"""Applicants' pages: the join form, the private status link and withdrawal.

``/join`` explains the group and its prongs and takes a request (CSRF-protected,
with a honeypot field and length limits, rate-limited per address and per email: only
a valid form spends the quota, and a 429 re-renders the form with what was typed).
Every valid request gets the same answer, a repeat of an open one included, and its
email links use the configured site URL, never the ``Host`` header;
``/join/status/<token>`` (and its ``.json`` twin) shows that one
request and nothing else, and offers withdrawal while it is open. The views
parse the form and call :mod:`biblio.membership.requests`.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from biblio import mail
from biblio.membership import requests as jr
from biblio.membership import zotero_signin
from biblio.membership.owners import normalize_email
from biblio.settings import public_url
from biblio.storage import app as db
from biblio.web import join_zotero
from biblio.web.extensions import Refusal, client_address, refused, spend

bp = Blueprint("join", __name__)

MAX_FORM_BYTES = 64 * 1024
#: Seconds a new request waits for its confirmation email to go out.
CONFIRMATION_WAIT = 3.0
HONEYPOT = "website"


def _spend(values: dict[str, Any]) -> Refusal | None:
    """Spend a valid submission's quota: per address, then per email."""
    limits = db.settings()["join"]
    return spend(limits["rate_limit"], "join", client_address()) or spend(
        limits["email_rate_limit"], "join-email", normalize_email(values["email"])[:254]
    )


def _external(endpoint: str, **values: Any) -> str:
    """An absolute link for an email: the configured site URL, never the ``Host`` header."""
    return public_url(db.settings()) + url_for(endpoint, **values)


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _form(
    values: dict[str, Any], errors: dict[str, str], message: str | None = None, status: int = 200
) -> tuple[str, int]:
    return render_template(
        "join/form.html",
        prongs=jr.PRONGS,
        values=values,
        errors=errors,
        message=message,
        zotero=join_zotero.identity(),
        zotero_signin=zotero_signin.enabled(db.settings()),
    ), status


@bp.route("/join", methods=["GET", "POST"])
def join():  # type: ignore[no-untyped-def]
    if request.method == "GET":
        return _form({"prongs": []}, {})
    if (request.content_length or 0) > MAX_FORM_BYTES:
        abort(413)
    form = request.form
    if form.get(HONEYPOT):
        return render_template("join/thanks.html"), 200  # bots get no hint
    who = join_zotero.identity()
    if who is not None:  # Zotero said who this is: typed IDs do not count
        form = form.copy()
        form["zotero_user_id"], form["zotero_username"] = str(who.user_id), who.username
    values, errors = jr.validate(form, form.getlist("prongs"))
    values["zotero_verified"] = who is not None
    if errors:  # a form with mistakes costs no quota: the person fixes it and sends again
        return _form(values, errors, "Please correct the fields marked below.", 400)
    over = _spend(values)
    if over is not None:
        body, _ = _form(values, {}, over.message, 429)
        return refused(Response(body), over)
    try:
        submitted = jr.submit(
            db.engine(), db.settings(), values, lambda token: _external("join.status", token=token)
        )
    except jr.RequestError as exc:
        return _form(values, {}, str(exc), exc.status)
    join_zotero.forget()
    # A moment for the confirmation to go out, so the next page can say truly whether it
    # did; a slow mail server only makes that page say "we are sending it".
    mail.wait_for_background(CONFIRMATION_WAIT)
    return redirect(url_for("join.status", token=submitted.token, new=1), code=303)


def _request_or_404(token: str) -> dict[str, Any]:
    found = jr.by_token(db.engine(), token)
    if found is None:
        abort(404)
    return found


@bp.get("/join/status/<token>.json")
def status_json(token: str) -> Response:
    found = jr.by_token(db.engine(), token)
    if found is None:
        response = jsonify({"ok": False, "error": "No such request.", "status": 404})
        response.status_code = 404
        return _private(response)
    view = jr.public_view(found)
    for key in ("created_at", "decided_at"):
        view[key] = view[key].isoformat() + "Z" if view[key] else None
    return _private(jsonify({"ok": True, "rows": [view], "count": 1, "next": None}))


@bp.get("/join/status/<token>")
def status(token: str) -> Response:
    found = _request_or_404(token)
    new = request.args.get("new") == "1"
    # What became of the confirmation email: the page never claims one was sent if not.
    mailed = mail.delivery_state(db.engine(), db.settings(), found["email"], found["created_at"])
    html = render_template(
        "join/status.html", req=jr.public_view(found), token=token, new=new, mailed=mailed
    )
    return _private(Response(html))


@bp.post("/join/status/<token>/withdraw")
def withdraw(token: str):  # type: ignore[no-untyped-def]
    try:
        jr.withdraw(db.engine(), token)
    except jr.RequestError as exc:
        if exc.status == 404:
            abort(404)
        view = jr.public_view(_request_or_404(token))
        html = render_template("join/status.html", req=view, token=token, error=str(exc))
        return _private(Response(html, status=exc.status))
    return redirect(url_for("join.status", token=token), code=303)
