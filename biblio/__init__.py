"""biblio: a Zotero-backed research bibliography service.

``create_app`` is the one app factory: it loads the settings (defaults <
settings.toml < ``BIBLIO_*`` environment < the ``settings`` argument), configures
logging, opens and migrates the database, and registers the web blueprints.
Nothing reads configuration at import time.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask

from biblio import web
from biblio.settings import Settings, load_settings
from biblio.storage import app as storage_app

__version__ = "0.1.0"

log = logging.getLogger(__name__)

#: Modules that react to :mod:`biblio.events`; each has a ``subscribe()``.
SUBSCRIBERS = (
    "biblio.prongs",  # tag what a sync changed
    "biblio.catalog.search",  # keep the search index in step
    "biblio.membership.reconcile",  # confirm approved applicants against the members
    "biblio.membership.digests",  # the owners' digest and outbox jobs of the scheduler
    "biblio.citations.prerender",  # pre-render citations after a sync
)


def subscribe_packages() -> None:
    """Connect every package to the events it reacts to (idempotent)."""
    for name in SUBSCRIBERS:
        importlib.import_module(name).subscribe()


def configure_logging(level: str | None = None) -> None:
    """Plain, timestamped log lines on stderr, once per process."""
    root = logging.getLogger()
    if root.handlers:
        return
    logging.basicConfig(
        level=(level or os.environ.get("BIBLIO_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per HTTP request to Zotero and per SMTP connection drowns biblio's own
    # lines (the sync logs its request count); their warnings and errors still show.
    for chatty in ("httpx", "httpx2", "httpcore", "mail.log"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def create_app(
    settings: Mapping[str, Any] | Settings | None = None,
    settings_file: str | os.PathLike[str] | None = None,
) -> Flask:
    """Build the Flask application.

    ``settings`` may be a complete :class:`Settings` (used as is) or a mapping of
    overrides applied last.
    """
    configure_logging()
    if isinstance(settings, Settings):
        conf = settings
    else:
        conf = load_settings(settings_file, overrides=settings)

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    secret = conf["web"]["secret_key"]
    if not secret:
        # Development only (production refuses to start without one, see settings):
        # a per-process random key, so sessions simply do not survive a restart.
        secret = secrets.token_hex(32)
        log.warning("no BIBLIO_SECRET_KEY set; using a random per-process key")
    app.config.update(
        SECRET_KEY=secret,
        BIBLIO=conf,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=conf["web"]["env"] == "production",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=conf["web"]["env"] == "production",
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )

    subscribe_packages()
    storage_app.init_app(app)
    web.init_app(app)
    return app
