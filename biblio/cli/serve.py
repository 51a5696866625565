"""``biblio run`` and ``biblio demo``: serve the web app, alone or with everything it needs.

``biblio run`` serves the app with gunicorn on ``[web] host``/``port`` and starts no
scheduler (run ``biblio scheduler`` beside it). ``biblio demo`` starts the loopback
Zotero stand-in with the bundled sample library (or ``--library FILE``), syncs it into
a fresh folder, and serves stand-in, scheduler and web app in one process until
Ctrl+C or SIGTERM; ``--no-serve`` stops after the sync, for checks.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
from pathlib import Path

import click
from flask import Flask
from gunicorn.app.base import BaseApplication
from werkzeug.serving import make_server

from biblio import storage
from biblio.cli import context
from biblio.standin.library import StandinLibrary
from biblio.standin.server import StandinServer
from biblio.sync.client import SyncError
from biblio.sync.run import run_sync
from biblio.sync.schedule import build_scheduler

SAMPLE_LIBRARY = Path(__file__).resolve().parent.parent / "data" / "sample_library.json"


def _post_fork(_server: object, _worker: object) -> None:
    """gunicorn's hook in each new worker: the app was built (and the database migrated)
    in the master, so the worker forgets any connection it inherited and opens its own."""
    storage.after_fork()


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn serving one already-built app (no app import string, no config file)."""

    def __init__(self, app: Flask, host: str, port: int, workers: int) -> None:
        self._app, self._bind, self._workers = app, f"{host}:{port}", workers
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", self._bind)
        self.cfg.set("workers", self._workers)
        self.cfg.set("threads", 4)
        self.cfg.set("accesslog", "-")
        # gunicorn's control socket would live in the user's home; biblio has no use for it.
        self.cfg.set("control_socket_disable", True)
        self.cfg.set("post_fork", _post_fork)

    def load(self) -> Flask:
        return self._app


def _serve_single_process(app: Flask, host: str, port: int) -> None:
    """Serve in this process (the demo: stand-in, scheduler and web share it); stop on
    SIGINT or SIGTERM."""
    server = make_server(host, port, app, threaded=True)

    def stop(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()


@click.command("run")
@click.option("--host", default=None, help="Address (default [web] host).")
@click.option("--port", type=int, default=None, help="Port (default [web] port).")
@click.option("--workers", type=int, default=2, show_default=True)
def run_command(host: str | None, port: int | None, workers: int) -> None:
    """Serve the web app with gunicorn (no scheduler; run `biblio scheduler` beside it)."""
    settings = context.load_settings()
    context.load_rules(settings)  # every page shows prongs: a bad rule fails now, not there
    app = context.make_app(settings)
    web = settings["web"]
    _Gunicorn(app, host or web["host"], port or web["port"], workers).run()


@click.command("demo")
@click.option("--port", type=int, default=5000, show_default=True, help="Web port.")
@click.option(
    "--library",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Zotero library JSON (default: the bundled sample library).",
)
@click.option(
    "--instance",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the demo database (default: a fresh temporary folder).",
)
@click.option("--no-serve", is_flag=True, help="Set up and sync, then exit (for checks).")
def demo_command(port: int, library: str | None, instance: str | None, no_serve: bool) -> None:
    """Start the Zotero stand-in with the sample library, sync, and serve it all on loopback."""
    lib = StandinLibrary.from_file(Path(library) if library else SAMPLE_LIBRARY)
    folder = Path(instance) if instance else Path(tempfile.mkdtemp(prefix="biblio-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _demo(lib, folder, port, serve=not no_serve)
    except BaseException:
        if not instance:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    if no_serve and not instance:
        shutil.rmtree(folder, ignore_errors=True)


def _demo(lib: StandinLibrary, folder: Path, port: int, *, serve: bool) -> None:
    settings = context.load_settings(
        overrides={
            "zotero": {"library_type": "group", "library_id": lib.group_id},
            "database": {"url": f"sqlite:///{folder / 'biblio.sqlite3'}"},
            "sync": {"lock_file": str(folder / "sync.lock")},
            # The demo serves plain HTTP on loopback: its own links, never production's
            # (Secure cookies and HSTS would lock a browser out of http://127.0.0.1).
            "web": {"env": "development", "public_url": f"http://127.0.0.1:{port}"},
        }
    )
    context.load_rules(settings)  # settings and rules are checked before anything starts
    with StandinServer(lib, host="127.0.0.1", port=0) as server:
        settings["zotero"]["base_url"] = server.url  # known once the stand-in listens
        app = context.make_app(settings)
        engine = context.open_engine(settings)
        try:
            result = run_sync(engine, settings, trigger="demo")
        except SyncError as exc:
            context.fail(f"sync failed: {exc}")
        click.echo(f"Zotero stand-in: {server.url}/groups/{lib.group_id}")
        click.echo(result.summary())
        if not serve:
            return
        scheduler = build_scheduler(engine, settings, blocking=False, run_now=False)
        scheduler.start()
        click.echo(f"biblio demo: http://127.0.0.1:{port}/  (Ctrl+C stops)")
        try:
            _serve_single_process(app, "127.0.0.1", port)
        finally:
            scheduler.shutdown(wait=False)
        click.echo("biblio demo stopped")


def add_commands(group: click.Group) -> None:
    """Add ``run`` and ``demo`` to the ``biblio`` group."""
    group.add_command(run_command)
    group.add_command(demo_command)
