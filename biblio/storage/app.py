"""The Flask side of storage: one migrated engine per app, reachable as ``db.engine()``.

Views and domain functions called from views get the engine from here; the sync
and the CLI open it from settings with :func:`engine_for`.
"""

from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy.engine import Engine

from biblio import storage
from biblio.settings import Settings


def engine_for(settings: Settings) -> Engine:
    """The migrated engine for the settings' ``[database] url`` and busy timeout."""
    database = settings["database"]
    return storage.open_database(
        database["url"], busy_timeout=float(database["busy_timeout_seconds"])
    )


def init_app(app: Flask) -> None:
    app.extensions["biblio.engine"] = engine_for(app.config["BIBLIO"])


def engine() -> Engine:
    """The current app's engine."""
    return current_app.extensions["biblio.engine"]


def settings() -> Settings:
    """The current app's settings."""
    return current_app.config["BIBLIO"]
