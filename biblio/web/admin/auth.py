"""Owners' login and logout under ``/-/admin/``, with Flask-Login sessions.

Login is rate-limited per address (``[auth] login_rate_limit``) and, per
account, locked after repeated failures (:mod:`biblio.membership.owners`). A successful
login starts a fresh session (no fixation); logout is a POST. ``next`` targets
are accepted only as local paths under ``/-/admin/``. :func:`owner_required`
guards every owner view.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from biblio.membership import owners as ow
from biblio.storage import app as db
from biblio.web.extensions import limiter

bp = Blueprint("auth", __name__)
login_manager = LoginManager()


class OwnerUser(UserMixin):
    """The logged-in owner, as Flask-Login sees it."""

    def __init__(self, owner: ow.Owner) -> None:
        self.owner = owner
        # The fingerprint of the password hash is part of the id kept in the session:
        # a changed password (or a removed account) ends every session opened before.
        self.id = f"{owner.id}:{owner.fingerprint}"
        self.email = owner.email


@login_manager.user_loader
def _load(user_id: str) -> OwnerUser | None:
    owner_id, _, fingerprint = user_id.partition(":")
    if not owner_id.isdigit() or not fingerprint:
        return None
    owner = ow.get_owner(db.engine(), int(owner_id))
    if owner is None or not hmac.compare_digest(owner.fingerprint, fingerprint):
        return None
    return OwnerUser(owner)


@login_manager.unauthorized_handler
def _unauthorized():  # type: ignore[no-untyped-def]
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")), code=303)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = "strong"


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


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/-/admin/") and "\\" not in target and "//" not in target:
        return target
    return url_for("admin.queue")


def _login_limit() -> str:
    return current_app.config["BIBLIO"]["auth"]["login_rate_limit"]


@bp.route("/-/admin/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login():  # type: ignore[no-untyped-def]
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(target, code=303)
        return render_template("admin/login.html", next=target, error=None, email="")
    email = str(request.form.get("email", ""))[:320]
    password = str(request.form.get("password", ""))
    owner = ow.authenticate(db.engine(), db.settings(), email, password)
    if owner is None:
        settings = db.settings()["auth"]
        error = (
            f"Wrong email or password. After {settings['lockout_failures']} failures in a "
            f"row an account is locked for {settings['lockout_minutes']} minutes."
        )
        return render_template("admin/login.html", next=target, error=error, email=email), 401
    session.clear()  # a fresh session (and CSRF token) for the logged-in owner
    login_user(OwnerUser(owner))
    return redirect(target, code=303)


@bp.post("/-/admin/logout")
def logout():  # type: ignore[no-untyped-def]
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"), code=303)
