"""``biblio backup FILE`` and ``biblio restore FILE``: keep what only biblio holds.

``biblio backup FILE`` copies the database while the site serves (SQLite's online
backup API, or ``pg_dump`` on PostgreSQL) and prints what the copy holds; it refuses
to overwrite FILE unless ``--force``. ``biblio restore FILE`` checks that FILE is a
biblio backup this biblio can read, refuses to replace a database in use unless
``--force``, migrates the copy to the newest schema and loads it, holding the sync
lock so no sync writes meanwhile. Both exit 1 with one ``error:`` line when they
cannot; nothing is replaced by a failed run. The code is :mod:`biblio.storage.backup`.
"""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from biblio.cli import context
from biblio.settings import Settings
from biblio.storage import backup as bk
from biblio.sync.client import SyncError
from biblio.sync.lock import sync_lock


def _shown(settings: Settings) -> str:
    """The database URL without its password; a URL no dialect reads is bad settings."""
    url = settings["database"]["url"]
    try:
        parsed = make_url(url)
        parsed.get_dialect()  # an unknown database or driver is a settings error too
    except ArgumentError as exc:
        context.fail(f"[database] url {url!r} is not a database URL ({exc})", context.USAGE)
    return parsed.render_as_string(hide_password=True)


def _held(found: dict[str, int]) -> str:
    return ", ".join(f"{label}: {n}" for label, n in found.items())


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def backup_command(file: Path, force: bool) -> None:
    """Back up the database to FILE while the site serves (SQLite or PostgreSQL)."""
    settings = context.load_settings()
    context.open_engine(settings)  # the database is reachable and migrated
    try:
        result = bk.backup(settings["database"]["url"], file, force=force)
    except bk.BackupError as exc:
        context.fail(str(exc))
    held = f"; {_held(result.counts)}" if result.counts else ""
    click.echo(f"backed up {_shown(settings)} to {result.path} ({result.size:,} bytes{held})")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that holds data.")
def restore_command(file: Path, force: bool) -> None:
    """Restore the database from a backup FILE made by `biblio backup`."""
    settings = context.load_settings()
    shown = _shown(settings)
    database = settings["database"]
    try:
        with sync_lock(settings):
            result = bk.restore(
                database["url"],
                file,
                force=force,
                busy_timeout=float(database["busy_timeout_seconds"]),
            )
    except SyncError as exc:
        context.fail(f"{exc}; restore when it has finished (or stop `biblio scheduler`)")
    except bk.BackupError as exc:
        context.fail(str(exc))
    migrated = f"; migrated: {', '.join(result.migrated)}" if result.migrated else ""
    click.echo(f"restored {file} into {shown} ({_held(result.counts)}{migrated})")
    click.echo("run `biblio sync` to bring the library up to date with Zotero")


def add_commands(group: click.Group) -> None:
    """Add ``backup`` and ``restore`` to the ``biblio`` group."""
    group.add_command(backup_command)
    group.add_command(restore_command)
