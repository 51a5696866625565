"""``biblio sync`` and ``biblio scheduler``: pull the Zotero library once, or on a schedule.

``biblio sync [--full] [--clear-backoff]`` runs one sync (with a progress bar on a
terminal) and prints its summary; a failed sync prints one line naming the library's
URL and exits 1. A wait Zotero asked for (``Backoff``/``Retry-After``) that is still
pending is shown before the run; ``--clear-backoff`` clears it (audited) and syncs.
``biblio scheduler`` runs the scheduled sync every ``[sync] interval_minutes`` in the
foreground; it is the only scheduler (web workers never start one). Both check the
settings and the prong rules first, so a bad settings file exits 2 before any
download.
"""

from __future__ import annotations

import contextlib
import getpass
import sys
from collections.abc import Callable

import click
from tqdm import tqdm

from biblio.cli import context
from biblio.settings import Settings
from biblio.storage import utcnow
from biblio.sync import state
from biblio.sync.client import SyncError
from biblio.sync.errors import BackoffTooLong
from biblio.sync.fetch import Progress
from biblio.sync.run import run_sync
from biblio.sync.schedule import build_scheduler


def _progress_bar() -> tuple[Progress | None, Callable[[], None]]:
    """A tqdm progress callback and its closer on a terminal, else (None, no-op)."""
    if not sys.stderr.isatty():
        return None, lambda: None
    bar = tqdm(unit="item", desc="items", leave=False)

    def update(_kind: str, done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar.close


def library_url(settings: Settings) -> str:
    """The Zotero library a sync reads, as a URL (``…/groups/123``), for messages."""
    zotero = settings["zotero"]
    kind = "groups" if zotero["library_type"] == "group" else "users"
    return f"{zotero['base_url'].rstrip('/')}/{kind}/{zotero['library_id']}"


def _actor() -> str:
    try:
        return f"command line ({getpass.getuser()})"
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "command line"


@click.command("sync")
@click.option("--full", is_flag=True, help="Re-read the whole library, not just changes.")
@click.option(
    "--clear-backoff",
    is_flag=True,
    help="Clear a pending wait Zotero asked for (Backoff/Retry-After; audited), then sync.",
)
def sync_command(full: bool, clear_backoff: bool) -> None:
    """Sync the Zotero library into the local cache once."""
    settings = context.load_settings()
    context.load_rules(settings)
    engine = context.open_engine(settings)
    if clear_backoff:
        cleared = state.clear_backoff(engine, _actor())
        click.echo(
            f"cleared Zotero's wait (it ran until {cleared:%Y-%m-%d %H:%M:%S} UTC)"
            if cleared is not None
            else "no wait was pending",
            err=True,
        )
    else:
        until = state.pending_backoff(engine)
        if until is not None:
            minutes = max(1, round((until - utcnow()).total_seconds() / 60))
            click.echo(
                f"pending wait: Zotero asked biblio to wait until {until:%Y-%m-%d %H:%M:%S} UTC "
                f"(about {minutes} min); `biblio sync --clear-backoff` clears it",
                err=True,
            )
    progress, close = _progress_bar()
    try:
        result = run_sync(engine, settings, full=full, trigger="cli", progress=progress)
    except BackoffTooLong as exc:
        context.fail(
            f"sync failed: {exc} (library {library_url(settings)}); "
            "`biblio sync --clear-backoff` clears the wait"
        )
    except SyncError as exc:
        context.fail(f"sync failed: {exc} (library {library_url(settings)})")
    finally:
        close()
    click.echo(result.summary())


@click.command("scheduler")
def scheduler_command() -> None:
    """Run the scheduled sync every [sync] interval_minutes (the only scheduler)."""
    settings = context.load_settings()
    context.load_rules(settings)
    scheduler = build_scheduler(context.open_engine(settings), settings, blocking=True)
    click.echo(f"scheduler: syncing every {settings['sync']['interval_minutes']} min; Ctrl+C stops")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


def add_commands(group: click.Group) -> None:
    """Add ``sync`` and ``scheduler`` to the ``biblio`` group."""
    group.add_command(sync_command)
    group.add_command(scheduler_command)
