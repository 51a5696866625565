"""The ``biblio`` command line, built on Flask's ``FlaskGroup``.

``biblio sync``, ``biblio scheduler``, ``biblio run``, ``biblio demo``,
``biblio export`` and the domain groups (``biblio prongs``, ``biblio owners``).
``--settings PATH`` (or ``BIBLIO_SETTINGS``) picks the settings file. A settings
problem prints one line naming the key and exits 2; a failed sync exits 1.
``flask --app biblio`` keeps working too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from flask.cli import FlaskGroup

from biblio import configure_logging, create_app, subscribe_packages
from biblio.settings import Settings, SettingsError, load_settings

log = logging.getLogger(__name__)

SAMPLE_LIBRARY = Path(__file__).resolve().parent.parent / "data" / "sample_library.json"


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.exceptions.Exit(_fail(str(exc))) from None


def _fail(message: str, code: int = 2) -> int:
    click.echo(f"error: {message}", err=True)
    return code


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    from biblio.storage.app import engine_for

    return engine_for(settings)


def _make_app(*_args: Any, **_kwargs: Any):  # type: ignore[no-untyped-def]
    try:
        return create_app()
    except SettingsError as exc:
        raise click.exceptions.Exit(_fail(str(exc))) from None


def _set_settings_path(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        os.environ["BIBLIO_SETTINGS"] = value


@click.group(cls=FlaskGroup, create_app=_make_app, add_default_commands=False,
             add_version_option=False, load_dotenv=False)
@click.option("--settings", "settings_path", metavar="PATH", expose_value=False,
              is_eager=True, callback=_set_settings_path,
              help="Settings file (default: $BIBLIO_SETTINGS or ./settings.toml).")
def cli() -> None:
    """biblio: a Zotero-backed research bibliography service."""
    configure_logging()
    subscribe_packages()


def _progress_bar():  # type: ignore[no-untyped-def]
    """A tqdm progress callback on a terminal, else None."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(unit="item", desc="items", leave=False)

    def update(_kind: str, done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar.close


@cli.command("sync", with_appcontext=False)
@click.option("--full", is_flag=True, help="Re-read the whole library, not just changes.")
def sync_command(full: bool) -> None:
    """Sync the Zotero library into the local cache once."""
    from biblio.sync.client import SyncError
    from biblio.sync.run import run_sync

    settings = _settings()
    engine = _engine(settings)
    progress, close = _progress_bar()
    try:
        result = run_sync(engine, settings, full=full, trigger="cli", progress=progress)
    except SyncError as exc:
        close()
        raise click.exceptions.Exit(_fail(f"sync failed: {exc}", 1)) from None
    close()
    click.echo(result.summary())


@cli.command("scheduler", with_appcontext=False)
def scheduler_command() -> None:
    """Run the scheduled sync every [sync] interval_minutes (the only scheduler)."""
    from biblio.sync.schedule import build_scheduler

    settings = _settings()
    scheduler = build_scheduler(_engine(settings), settings, blocking=True)
    click.echo(f"scheduler: syncing every {settings['sync']['interval_minutes']} min; "
               "Ctrl+C stops")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


def _serve(app, host: str, port: int, workers: int) -> None:  # type: ignore[no-untyped-def]
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", 4)
            self.cfg.set("accesslog", "-")
            # gunicorn's control socket would live in the user's home; biblio has no use
            # for it.
            self.cfg.set("control_socket_disable", True)

        def load(self):  # type: ignore[no-untyped-def]
            return app

    _Server().run()


def _serve_single_process(app, host: str, port: int) -> None:  # type: ignore[no-untyped-def]
    """Serve in this process (the demo: stand-in, scheduler and web share it); stop on
    SIGINT or SIGTERM."""
    import signal
    import threading

    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)

    def stop(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()


@cli.command("run", with_appcontext=False)
@click.option("--host", default=None, help="Address (default [web] host).")
@click.option("--port", type=int, default=None, help="Port (default [web] port).")
@click.option("--workers", type=int, default=2, show_default=True)
def run_command(host: str | None, port: int | None, workers: int) -> None:
    """Serve the web app with gunicorn (no scheduler; run `biblio scheduler` beside it)."""
    app = _make_app()
    web = app.config["BIBLIO"]["web"]
    _serve(app, host or web["host"], port or web["port"], workers)


@cli.command("demo", with_appcontext=False)
@click.option("--port", type=int, default=5000, show_default=True, help="Web port.")
@click.option("--library", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Zotero library JSON (default: the bundled sample library).")
@click.option("--instance", type=click.Path(file_okay=False), default=None,
              help="Folder for the demo database (default: a fresh temporary folder).")
@click.option("--no-serve", is_flag=True, help="Set up and sync, then exit (for checks).")
def demo_command(port: int, library: str | None, instance: str | None, no_serve: bool) -> None:
    """Start the Zotero stand-in with the sample library, sync, and serve it all on loopback."""
    from biblio.standin.library import StandinLibrary
    from biblio.standin.server import StandinServer
    from biblio.sync.schedule import build_scheduler

    lib = StandinLibrary.from_file(Path(library) if library else SAMPLE_LIBRARY)
    folder = Path(instance) if instance else Path(tempfile.mkdtemp(prefix="biblio-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    with StandinServer(lib, host="127.0.0.1", port=0) as server:
        overrides = {
            "zotero": {"base_url": server.url, "library_type": "group",
                       "library_id": lib.group_id},
            "database": {"url": f"sqlite:///{folder / 'biblio.sqlite3'}"},
            "sync": {"lock_file": str(folder / "sync.lock")},
        }
        try:
            settings = load_settings(overrides=overrides)
        except SettingsError as exc:
            raise click.exceptions.Exit(_fail(str(exc))) from None
        app = create_app(settings)
        from biblio.sync.run import run_sync

        result = run_sync(_engine(settings), settings, trigger="demo")
        click.echo(f"Zotero stand-in: {server.url}/groups/{lib.group_id}")
        click.echo(result.summary())
        if no_serve:
            if not instance:
                shutil.rmtree(folder, ignore_errors=True)
            return
        scheduler = build_scheduler(_engine(settings), settings, blocking=False, run_now=False)
        scheduler.start()
        click.echo(f"biblio demo: http://127.0.0.1:{port}/  (Ctrl+C stops)")
        try:
            _serve_single_process(app, "127.0.0.1", port)
        finally:
            scheduler.shutdown(wait=False)
        click.echo("biblio demo stopped")


@cli.command("export", with_appcontext=False)
@click.option("--format", "fmt", default="json", show_default=True,
              type=click.Choice(["json", "csljson", "bibtex", "ris", "csv", "xlsx", "html",
                                 "text", "rtf", "docx"]),
              help="json (data, prongs and reasons), a data format, or a formatted "
                   "bibliography (html, text, rtf, docx) in --style.")
@click.option("--style", default=None, help="CSL style id (default [citations] default_style).")
@click.option("--locale", default=None, help="CSL locale (default [citations] locale).")
@click.option("--prong", default=None, help="Only items of this prong.")
@click.option("--tag", default=None, help="Only items with this Zotero tag.")
@click.option("--collection", default=None, help="Only items in this collection (key).")
@click.option("--type", "item_type", default=None, help="Only items of this Zotero type.")
@click.option("--year", type=int, default=None, help="Only items of this year.")
@click.option("--creator", default=None, help='Only items by this creator ("Last, First").')
@click.option("-q", "query", default=None, help="Only items matching this search.")
@click.option("--list", "list_slug", default=None, help="Export this reading list instead.")
@click.option("-o", "output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write here instead of standard output.")
def export_command(fmt: str, style: str | None, locale: str | None, prong: str | None,
                   tag: str | None, collection: str | None, item_type: str | None,
                   year: int | None, creator: str | None, query: str | None,
                   list_slug: str | None, output: str | None) -> None:
    """Export cached items (all matching, or a reading list) in any format."""
    from biblio import exports
    from biblio.catalog.filters import Filters
    from biblio.catalog.items import iter_items
    from biblio.citations import StyleError

    settings = _settings()
    engine = _engine(settings)
    cit = settings["citations"]
    options = exports.Options(style=style or cit["default_style"],
                              locale=locale or cit["locale"], styles_dir=cit["styles_dir"])
    if list_slug:
        from biblio.reading_lists import get_list

        found = get_list(engine, list_slug)
        if found is None:
            raise click.exceptions.Exit(_fail(f"no reading list {list_slug!r}"))
        rows = iter(found.live_rows)
        options.title, options.intro, options.notes = found.title, found.intro, found.notes
        options.order = "input"
        options.removed = [e.label or e.key for e in found.removed]
    else:
        filters = Filters(prong=prong, tag=tag, collection=collection, item_type=item_type,
                          year=year, creator=creator, q=query)
        rows = iter_items(engine, filters)
        phrase = filters.phrase()
        options.description = f"Items {'where ' + phrase if phrase else 'in the library'}"
        options.title = "Bibliography" + (f": items where {phrase}" if phrase else "")
    if fmt == "json":
        records = [{"key": r["key"], "version": r["version"], "itemType": r["item_type"],
                    "prongs": [p["prong"] for p in r["prongs"]],
                    "prong_reasons": {p["prong"]: p["reasons"] for p in r["prongs"]},
                    "data": r["data"]} for r in rows]
        chunks: Any = [json.dumps(records, ensure_ascii=False, indent=2) + "\n"]
    else:
        try:
            chunks = exports.export(engine, fmt, rows, options)
        except StyleError as exc:
            raise click.exceptions.Exit(_fail(str(exc))) from None
    binary = fmt in ("xlsx", "docx")
    if binary and not output:
        raise click.exceptions.Exit(_fail(f"--format {fmt} needs -o FILE"))
    if output:
        with open(output, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
        click.echo(f"wrote {fmt} to {output}", err=True)
    else:
        for chunk in chunks:
            click.echo(chunk, nl=False)


@cli.command("settings", with_appcontext=False)
def settings_command() -> None:
    """Print every setting with its default and help."""
    from biblio.settings import describe

    click.echo(describe(), nl=False)


from biblio.prongs.cli import prongs_cli  # noqa: E402

cli.add_command(prongs_cli)

from biblio.membership.cli import mail_cli, owners_cli  # noqa: E402

cli.add_command(owners_cli)
cli.add_command(mail_cli)


def main() -> None:
    cli(prog_name="biblio")
