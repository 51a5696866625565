"""Sign in with Zotero on the join page: the OAuth 1.0a dance's two web steps.

``POST /join/zotero`` (CSRF-checked) asks Zotero for a temporary token, keeps it in the
session and redirects, 303, to Zotero's authorize page; Zotero sends the applicant back
to ``/join/zotero/callback`` with a verifier, which :mod:`biblio.membership.zotero_signin`
exchanges for the applicant's user ID and username. Those stay in the session until the
request is sent (the join form then takes them instead of typed ones) or the applicant
signs out of them (``POST /join/zotero/forget``). Without ``[join] zotero_oauth_key`` these
routes answer 404 and the join form asks for the numeric ID, as before.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, flash, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from biblio.catalog.items import group
from biblio.membership import zotero_signin
from biblio.storage import app as db
from biblio.web import CSP

bp = Blueprint("join_zotero", __name__)

PENDING = "zotero_oauth"
IDENTITY = "zotero_identity"


def identity() -> zotero_signin.Identity | None:
    """The Zotero account this browser signed in with, if any (and if still enabled)."""
    kept: Any = session.get(IDENTITY)
    if not isinstance(kept, dict) or not zotero_signin.enabled(db.settings()):
        return None
    return zotero_signin.Identity(int(kept["user_id"]), str(kept["username"]))


def forget() -> None:
    """Drop the signed-in identity (the request was sent, or the applicant said so)."""
    session.pop(IDENTITY, None)


@bp.after_app_request
def _allow_zotero_form_action(response: Response) -> Response:
    """The join page's forms may lead to Zotero: "Sign in with Zotero" posts here and is
    redirected there, and browsers hold a form's redirects to the page's CSP
    ``form-action``, which otherwise allows this site only."""
    if request.endpoint == "join.join" and zotero_signin.enabled(db.settings()):
        origin = "{0.scheme}://{0.netloc}".format(
            urlsplit(db.settings()["join"]["zotero_oauth_url"])
        )
        response.headers["Content-Security-Policy"] = CSP.replace(
            "form-action 'self'", f"form-action 'self' {origin}"
        )
    return response


def _enabled() -> None:
    if not zotero_signin.enabled(db.settings()):
        abort(404, description="Sign in with Zotero is not set up on this site")


def _external(endpoint: str) -> str:
    base = db.settings()["web"]["public_url"].rstrip("/")
    return base + url_for(endpoint) if base else url_for(endpoint, _external=True)


def _back() -> ResponseReturnValue:
    return redirect(url_for("join.join") + "#form-heading", 303)


@bp.post("/join/zotero")
def start() -> ResponseReturnValue:
    _enabled()
    with db.engine().connect() as conn:
        name = (group(conn) or {}).get("name") or "biblio"
    try:
        url, pending = zotero_signin.start(
            db.settings(), _external("join_zotero.callback"), f"{name}: join request"
        )
    except zotero_signin.SignInError as exc:
        flash(f"{exc}. You can give your Zotero user ID below instead.", "error")
        return _back()
    session[PENDING] = pending
    return redirect(url, 303)


@bp.get("/join/zotero/callback")
def callback() -> ResponseReturnValue:
    _enabled()
    pending = session.pop(PENDING, None)
    if not isinstance(pending, dict):
        abort(400, description="no sign-in with Zotero was started here; start again at /join")
    try:
        who = zotero_signin.finish(
            db.settings(),
            pending,
            str(request.args.get("oauth_token", ""))[:200],
            str(request.args.get("oauth_verifier", ""))[:200],
        )
    except zotero_signin.SignInError as exc:
        flash(f"{exc}.", "error")
        return _back()
    session[IDENTITY] = {"user_id": who.user_id, "username": who.username}
    return _back()  # the join page says whom Zotero confirmed


@bp.post("/join/zotero/forget")
def forget_post() -> ResponseReturnValue:
    forget()
    return _back()
