"""Flask extensions shared by every blueprint: CSRF protection, rate limiting, proxies.

CSRF (Flask-WTF) guards every unsafe method app-wide. Rate limits (Flask-Limiter) are
counted in a store every worker shares: biblio's database by default
(:mod:`biblio.web.limitstore`), or ``[web] rate_limit_storage`` (``redis://…`` for
several machines). The public forms (login, join, new reading list) spend their
quota with :func:`spend` from inside the view, *after* the form validated, so a typo
costs nothing and an answer of 429 can re-render the form with what was typed.
``[web] trusted_proxies`` puts Werkzeug's ProxyFix in front of the app, so the client
address (:func:`client_address`, the key of every limit) is the real visitor behind
nginx; without it ``X-Forwarded-For`` is ignored. Whole numbers in routes are ASCII
and fit a database integer (:class:`DatabaseIntConverter`), and every value a template
prints loses its control characters (:func:`biblio.zotero.richtext.finalize`).
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect
from limits import parse
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from biblio.storage import MAX_INTEGER
from biblio.web import limitstore
from biblio.zotero import richtext


def client_address() -> str:
    """The client's address (the real one behind trusted proxies), or ``"invalid"``."""
    raw = request.remote_addr or ""
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return "invalid"


class DatabaseIntConverter(IntegerConverter):
    """``<int:…>`` in a route: ASCII digits only (Werkzeug's ``\\d`` takes "٣") and no
    larger than a database integer, so an id past SQLite's range is a 404, not a 500."""

    regex = r"[0-9]{1,19}"

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_INTEGER)
        super().__init__(url_map, *args, **kwargs)


csrf = CSRFProtect()
limiter = Limiter(key_func=client_address, default_limits=[])


@dataclass(frozen=True)
class Refusal:
    """A use over its limit: how long to wait, and the sentence that says so."""

    retry_after: int
    message: str


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    if seconds < 90 * 60:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{math.ceil(seconds / 3600)} hours"


def spend(limit: str, scope: str, key: str) -> Refusal | None:
    """Count one use of ``scope`` by ``key`` against ``limit`` (e.g. ``"5 per hour"``);
    None while within it, else the :class:`Refusal`. The count and the check are one
    atomic step in the store, so parallel requests cannot slip past the limit."""
    item = parse(limit)
    strategy = limiter.limiter
    if strategy.hit(item, scope, key):
        return None
    reset = strategy.get_window_stats(item, scope, key).reset_time
    wait = max(1, math.ceil(reset - time.time()))
    return Refusal(
        wait, f"Too many attempts from here ({limit}). Please try again in {_duration(wait)}."
    )


def refused(response: Response, refusal: Refusal) -> Response:
    """``response`` as the 429 answer to ``refusal`` (status and ``Retry-After``)."""
    response.status_code = 429
    response.headers["Retry-After"] = str(refusal.retry_after)
    return response


def init_app(app: Flask) -> None:
    settings = app.config["BIBLIO"]
    app.url_map.converters["int"] = DatabaseIntConverter  # before any route is added
    # Before the template environment exists: every printed value loses control chars.
    app.jinja_options = {**app.jinja_options, "finalize": richtext.finalize}
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # token lives as long as the session
    storage = settings["web"]["rate_limit_storage"]
    if not storage:
        app.config["RATELIMIT_STORAGE_URI"] = f"{limitstore.SCHEME}://"
    else:
        app.config["RATELIMIT_STORAGE_URI"] = storage
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    csrf.init_app(app)
    limiter.init_app(app)
    proxies = int(settings["web"]["trusted_proxies"])
    if proxies > 0:
        # Only the headers the proxies set are believed, and only that many hops deep.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
