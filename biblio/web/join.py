"""Applicants' pages: the join form, the private status link and withdrawal.

``/join`` explains the group and its prongs and takes a request (CSRF-protected,
rate-limited per address and per email, with a honeypot field and length
limits); ``/join/status/<token>`` (and its ``.json`` twin) shows that one
request and nothing else, and offers withdrawal while it is open. The views
parse the form and call :mod:`biblio.membership.requests`.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
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
from biblio.storage import app as db
from biblio.web import join_zotero
from biblio.web.extensions import limiter

bp = Blueprint("join", __name__)

MAX_FORM_BYTES = 64 * 1024
#: Seconds a new request waits for its confirmation email to go out.
CONFIRMATION_WAIT = 3.0
HONEYPOT = "website"


def _ip_limit() -> str:
    return current_app.config["BIBLIO"]["join"]["rate_limit"]


def _email_limit() -> str:
    return current_app.config["BIBLIO"]["join"]["email_rate_limit"]


def _email_key() -> str:
    return "join-email:" + normalize_email(str(request.form.get("email", "")))[:254]


def _external(endpoint: str, **values: Any) -> str:
    base = db.settings()["web"]["public_url"].rstrip("/")
    if base:
        return base + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


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
@limiter.limit(_ip_limit, methods=["POST"])
@limiter.limit(
    _email_limit,
    methods=["POST"],
    key_func=_email_key,
    deduct_when=lambda response: response.status_code == 303,
)
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
    if errors:
        return _form(values, errors, "Please correct the fields marked below.", 400)
    try:
        submitted = jr.submit(
            db.engine(),
            db.settings(),
            values,
            lambda token: _external("join.status", token=token),
            lambda request_id: _external("admin.detail", request_id=request_id),
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
