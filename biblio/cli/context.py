"""What every ``biblio`` command shares: its settings, its database, and how it fails.

A command reads its settings with :func:`load_settings` (the file named by
``biblio --settings PATH``, else ``BIBLIO_SETTINGS``, else ./settings.toml, then the
environment), the prong rules with :func:`load_rules`, opens the database with
:func:`open_engine`, and stops with :func:`fail`: one line ``error: …`` on stderr
and exit status :data:`FAILED` (1, the operation failed) or :data:`USAGE` (2, bad
usage or bad settings). Package command modules (``biblio/<package>/cli.py``)
import this module and never the ``biblio`` group, which imports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any, NoReturn

import click
from flask import Flask
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from biblio import create_app
from biblio import settings as biblio_settings
from biblio.prongs.rules import Rules
from biblio.prongs.rules import load_rules as compile_rules
from biblio.settings import Settings, SettingsError
from biblio.storage.app import engine_for

#: Exit status of a command whose operation failed (sync failed, owner exists, …).
FAILED = 1
#: Exit status of bad usage or bad settings (click's own usage errors use it too).
USAGE = 2

#: Where ``biblio --settings PATH`` leaves PATH for :func:`load_settings`.
SETTINGS_PATH = "biblio.settings_path"


class CommandError(click.ClickException):
    """A command cannot go on: shown as one line, ``error: <message>``, on stderr."""

    def __init__(self, message: str) -> None:
        # One line, whatever the message carried (a TOML error spans several).
        super().__init__(" ".join(message.split()))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=file is None)


class OperationFailed(CommandError):
    """The operation ran and failed or was refused; exit 1."""

    exit_code = FAILED


class BadUsage(CommandError):
    """The command line or the settings are wrong; exit 2."""

    exit_code = USAGE


def fail(message: str, code: int = FAILED) -> NoReturn:
    """Stop the command: ``error: <message>`` on stderr, exit ``code`` (1 or 2)."""
    if code == USAGE:
        raise BadUsage(message)
    if code == FAILED:
        raise OperationFailed(message)
    raise ValueError(f"exit status must be {FAILED} or {USAGE}, got {code}")


def remember_settings_path(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Callback of ``--settings PATH``: keep PATH for every command of this invocation.

    It goes in the context (shared by the group and its subcommands), not in the process
    environment, so one invocation in a test never leaks into the next.
    """
    if value:
        ctx.meta[SETTINGS_PATH] = value


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """This invocation's settings; a problem stops the command with exit 2."""
    ctx = click.get_current_context(silent=True)
    path = ctx.meta.get(SETTINGS_PATH) if ctx is not None else None
    try:
        return biblio_settings.load_settings(path, overrides=overrides)
    except SettingsError as exc:
        fail(str(exc), USAGE)


def load_rules(settings: Settings) -> Rules:
    """The compiled prong rules (``[prongs]`` over the shipped ones); a bad table exits 2.

    Commands that tag, filter or show by prong call it before they start, so a bad rule
    fails them at once rather than after a sync's downloads or on the first web page.
    """
    try:
        return compile_rules(settings)
    except SettingsError as exc:
        fail(str(exc), USAGE)


def open_engine(settings: Settings) -> Engine:
    """The migrated database of ``[database] url``.

    A URL SQLAlchemy cannot read is bad settings (exit 2); a database it cannot open or
    reach is a failed operation (exit 1). The password of a URL is never printed.
    """
    url = settings["database"]["url"]
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError as exc:
        fail(f"[database] url {url!r} is not a database URL ({exc})", USAGE)
    try:
        return engine_for(settings)
    except ArgumentError as exc:  # includes an unknown dialect or driver
        fail(f"[database] url {shown}: {exc}", USAGE)
    except (OSError, SQLAlchemyError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        fail(f"cannot open the database {shown}: {reason[0] if reason else type(exc).__name__}")


def make_app(settings: Settings | None = None) -> Flask:
    """The web app for ``settings`` (default: :func:`load_settings`)."""
    return create_app(settings if settings is not None else load_settings())
