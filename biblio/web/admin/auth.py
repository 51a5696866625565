"""Owners' login and logout under ``/-/admin/``, with server-side sessions.

Login is rate-limited per address (``[auth] login_rate_limit``) and throttled per
email and address (:mod:`biblio.membership.throttle`); a refused attempt re-renders
the form, with the email kept, as a 429 with ``Retry-After``. Every attempt costs the
same password-hash work whatever the email. A successful login starts a fresh Flask
session (no fixation) holding only a server-side session token
(:mod:`biblio.membership.sessions`) that lasts ``[web] session_hours``; logout (a POST)
deletes it, so replaying the old cookie finds nothing. A signed, long-lived "this
browser signed in here before" cookie lets the real owner past an attack on the
account from elsewhere. ``next`` targets are accepted only as local paths under
``/-/admin/`` without control characters. :func:`owner_required` guards every owner
view.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from itsdangerous import BadSignature, URLSafeSerializer

from biblio import controlchars
from biblio.membership import owners as ow
from biblio.membership import sessions
from biblio.storage import app as db
from biblio.web.extensions import client_address, refused, spend

bp = Blueprint("auth", __name__)
login_manager = LoginManager()

#: The cookie that marks a browser as having signed in to an account before.
TRUSTED_COOKIE = "biblio_owner_browser"
TRUSTED_DAYS = 365


class OwnerUser(UserMixin):
    """The logged-in owner, as Flask-Login sees it: its id is the session token."""

    def __init__(self, owner: ow.Owner, token: str) -> None:
        self.owner = owner
        self.id = token
        self.email = owner.email


@login_manager.user_loader
def _load(token: str) -> OwnerUser | None:
    owner_id = sessions.owner_id(db.engine(), token)
    owner = ow.get_owner(db.engine(), owner_id) if owner_id is not None else None
    return None if owner is None else OwnerUser(owner, token)


@login_manager.unauthorized_handler
def _unauthorized():  # type: ignore[no-untyped-def]
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")), code=303)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = "strong"
    hours = int(app.config["BIBLIO"]["web"]["session_hours"])
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=max(1, hours))


def owner_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Redirect to the login page unless an owner is logged in."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return view(*args, **kwargs)

    return guarded


def actor() -> str:
    """The logged-in owner's email, for the audit log."""
    return str(current_user.email)


def safe_next(target: str | None, default: str) -> str:
    """``target`` when it is a local owners' page (no other host, no control character,
    nothing a ``Location`` header could not carry), else ``default``."""
    if (
        target
        and target.startswith("/-/admin/")
        and "\\" not in target
        and "//" not in target
        and not controlchars.has_control(target)
        and len(target) <= 2000
    ):
        return target
    return default


def _trusted_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="biblio-owner-browser")  # type: ignore[arg-type]


def _trusted_emails() -> list[str]:
    """The accounts this browser signed in to before (from the signed cookie)."""
    raw = request.cookies.get(TRUSTED_COOKIE, "")
    try:
        emails = _trusted_signer().loads(raw) if raw else []
    except BadSignature:
        return []
    return [e for e in emails if isinstance(e, str)] if isinstance(emails, list) else []


def _remember_browser(response: Response, email: str) -> None:
    emails = [email, *[e for e in _trusted_emails() if e != email]][:5]
    response.set_cookie(
        TRUSTED_COOKIE,
        _trusted_signer().dumps(emails),
        max_age=TRUSTED_DAYS * 86400,
        path="/-/admin/",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


def _login_form(target: str, email: str, error: str | None, status: int = 200) -> Response:
    html = render_template("admin/login.html", next=target, error=error, email=email)
    return Response(html, status=status)


@bp.route("/-/admin/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    target = safe_next(request.values.get("next"), url_for("admin.queue"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(target, code=303)
        return _login_form(target, "", None)
    email = controlchars.one_line(str(request.form.get("email", "")))[:320]
    password = str(request.form.get("password", ""))
    settings = db.settings()
    over = spend(settings["auth"]["login_rate_limit"], "login", client_address())
    if over is not None:
        return refused(_login_form(target, email, over.message), over)
    result = ow.authenticate(
        db.engine(),
        settings,
        email,
        password,
        address=client_address(),
        trusted=ow.normalize_email(email) in _trusted_emails(),
    )
    if result.retry_after is not None:
        minutes = max(1, round(result.retry_after / 60))
        message = (
            "Too many failed logins to this account from here. Try again in about "
            f"{minutes} minute{'s' if minutes != 1 else ''}, or from a browser you signed "
            "in with before."
        )
        response = _login_form(target, email, message, 429)
        response.headers["Retry-After"] = str(result.retry_after)
        return response
    if result.owner is None:
        auth = settings["auth"]
        error = (
            f"Wrong email or password. After {auth['lockout_failures']} failures in a row "
            f"this address is locked out of the account for {auth['lockout_minutes']} "
            "minutes or more."
        )
        return _login_form(target, email, error, 401)
    session.clear()  # a fresh session (and CSRF token) for the logged-in owner
    session.permanent = True  # the cookie lasts [web] session_hours, like the server's row
    token = sessions.start(db.engine(), result.owner.id, int(settings["web"]["session_hours"]))
    login_user(OwnerUser(result.owner, token))
    response = redirect(target, code=303)
    _remember_browser(response, result.owner.email)
    return response


@bp.post("/-/admin/logout")
def logout():  # type: ignore[no-untyped-def]
    if current_user.is_authenticated:
        sessions.end(db.engine(), str(current_user.id))
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"), code=303)
