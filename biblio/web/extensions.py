"""Flask extensions shared by every blueprint: CSRF protection and rate limiting.

CSRF (Flask-WTF) guards every unsafe method app-wide; the rate limiter
(Flask-Limiter, keyed by client address) is applied per route by the login and
public-form views, with limits from settings.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def init_app(app: Flask) -> None:
    settings = app.config["BIBLIO"]
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # token lives as long as the session
    app.config["RATELIMIT_STORAGE_URI"] = settings["web"]["rate_limit_storage"]
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    csrf.init_app(app)
    limiter.init_app(app)
