"""``biblio run`` and ``biblio demo``: serve the web app, alone or with everything it needs.

``biblio run`` serves the app with gunicorn on ``[web] host``/``port`` and starts no
scheduler (run ``biblio scheduler`` beside it). ``biblio demo`` starts the loopback
Zotero stand-in with the bundled sample library (or ``--library FILE``) and a mail
catcher (:mod:`biblio.mailcatcher`), syncs into a fresh folder (or ``--instance DIR``)
with a ``settings.toml`` naming all of it, makes a demo owner, prints where everything
is and the commands to use it, and serves stand-in, catcher, scheduler and web app in
one process until Ctrl+C or SIGTERM; ``--no-serve`` stops after the sync, for checks.
A taken port stops it at once, naming ``--port``.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path

import click
from flask import Flask
from gunicorn.app.base import BaseApplication
from sqlalchemy.engine import Engine
from werkzeug.serving import make_server

from biblio import mail, storage
from biblio.cli import context
from biblio.mailcatcher import MailCatcher
from biblio.membership import owners
from biblio.settings import Settings
from biblio.standin.library import StandinLibrary
from biblio.standin.server import StandinServer
from biblio.sync.client import SyncError
from biblio.sync.run import run_sync
from biblio.sync.schedule import build_scheduler
from biblio.web import accesslog
from biblio.web.admin.mail import DEMO_GROUP

SAMPLE_LIBRARY = Path(__file__).resolve().parent.parent / "data" / "sample_library.json"
#: The demo's owner account (example.org is reserved for examples; mail to it is caught).
DEMO_OWNER = "owner@example.org"


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
        self.cfg.set("logger_class", accesslog.gunicorn_logger(self._app))  # tokens masked
        # gunicorn's control socket would live in the user's home; biblio has no use for it.
        self.cfg.set("control_socket_disable", True)
        self.cfg.set("post_fork", _post_fork)

    def load(self) -> Flask:
        return self._app


def _serve_single_process(app: Flask, host: str, port: int) -> None:
    """Serve in this process (the demo: stand-in, scheduler and web share it); stop on
    SIGINT or SIGTERM."""
    server = make_server(
        host, port, app, threaded=True, request_handler=accesslog.request_handler(app)
    )

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
    help="Folder for the demo's data (default: a fresh temporary folder, kept after it stops).",
)
@click.option("--no-serve", is_flag=True, help="Set up and sync, then exit (for checks).")
def demo_command(port: int, library: str | None, instance: str | None, no_serve: bool) -> None:
    """Start the Zotero stand-in with the sample library, a mail catcher and a demo owner,
    sync, and serve it all on loopback."""
    if not no_serve:
        _check_port(port)
    lib = StandinLibrary.from_file(Path(library) if library else SAMPLE_LIBRARY)
    folder = Path(instance) if instance else Path(tempfile.mkdtemp(prefix="biblio-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _demo(lib, folder.resolve(), port, serve=not no_serve)
    except BaseException:
        if not instance:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    if no_serve and not instance:
        shutil.rmtree(folder, ignore_errors=True)


def _check_port(port: int, host: str = "127.0.0.1") -> None:
    """Fail at once, before any work, if the web port is taken (a second demo, say)."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            context.fail(
                f"cannot serve the demo on {host}:{port} ({exc.strerror or exc}); "
                f"is another demo running? Choose another port: biblio demo --port {port + 1}"
            )


def _demo_settings(lib: StandinLibrary, folder: Path, port: int) -> dict[str, dict[str, object]]:
    """Where the demo keeps everything, as settings (the stand-in's URL comes later)."""
    return {
        "zotero": {"library_type": "group", "library_id": lib.group_id},
        "database": {"url": f"sqlite:///{folder / 'biblio.sqlite3'}"},
        "sync": {"lock_file": str(folder / "sync.lock")},
        # The demo serves plain HTTP on loopback: its own links, never production's
        # (Secure cookies and HSTS would lock a browser out of http://127.0.0.1).
        "web": {"env": "development", "public_url": f"http://127.0.0.1:{port}", "port": port},
        "mail": {"enabled": True, "host": "127.0.0.1", "security": "none", "username": ""},
        "demo": {"mailbox": str(folder / "mail")},
    }


def _write_settings_file(path: Path, places: dict[str, dict[str, object]]) -> None:
    """The demo's places as a settings file, so ``biblio --settings PATH …`` reaches them."""
    lines = ["# Written by `biblio demo`: its stand-in, database and mail catcher.", ""]
    for section, values in places.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def _demo_signin(
    server: StandinServer, places: dict[str, dict[str, object]], settings: Settings
) -> None:
    """Sign in with Zotero through the stand-in: a client registered there, its key in
    the settings file, its secret (a secret) only in this process's settings."""
    key, secret = secrets.token_hex(10), secrets.token_hex(16)
    server.oauth.register(key, secret)
    places["join"] = {"zotero_oauth_key": key, "zotero_oauth_url": server.url}
    settings["join"].update(places["join"], zotero_oauth_secret=secret)


def _demo_owner(engine: Engine) -> tuple[str, str]:
    """The demo's owner account, with a fresh password each run: ``(email, password)``."""
    password = secrets.token_urlsafe(12)
    try:
        owners.create_owner(engine, DEMO_OWNER, password, actor="demo")
    except owners.OwnerError:  # a reused --instance: same account, new password
        owners.set_password(engine, DEMO_OWNER, password, actor="demo")
    return DEMO_OWNER, password


def _guide(settings_file: Path, folder: Path, url: str, owner: tuple[str, str]) -> str:
    """What the demo prints once it is ready: where things are and how to use them."""
    biblio = f"biblio --settings {shlex.quote(str(settings_file))}"
    return "\n".join(
        [
            f"biblio demo: {url}/  (Ctrl+C stops it)",
            f"  owners' area   {url}/-/admin/  sign in as {owner[0]}, password {owner[1]}",
            f"  caught mail    {url}/-/admin/mail  (the demo's email goes to a local catcher)",
            f"  data           {folder}  (database, mail, settings.toml; kept when it stops)",
            "From another terminal, while the demo runs:",
            f"  {biblio} owners add you@example.org",
            f"  {biblio} mail list",
            f"  {biblio} export --format docx --prong pathways -o pathways.docx",
            f"  {biblio} sync",
        ]
    )


def _demo(lib: StandinLibrary, folder: Path, port: int, *, serve: bool) -> None:
    places = _demo_settings(lib, folder, port)
    settings = context.load_settings(overrides=places)
    context.load_rules(settings)  # settings and rules are checked before anything starts
    zotero_port = int(settings["demo"]["zotero_port"])
    with (
        MailCatcher(folder / "mail") as catcher,
        StandinServer(lib, host="127.0.0.1", port=zotero_port) as server,
    ):
        # Known once they listen:
        places["zotero"]["base_url"] = settings["zotero"]["base_url"] = server.url
        places["mail"]["port"] = settings["mail"]["port"] = catcher.port
        _demo_signin(server, places, settings)
        settings_file = folder / "settings.toml"
        _write_settings_file(settings_file, places)
        app = context.make_app(settings)
        app.extensions[DEMO_GROUP] = lib  # "Accept the invitation" on /-/admin/mail
        engine = context.open_engine(settings)
        try:
            result = run_sync(engine, settings, trigger="demo")
        except SyncError as exc:
            context.fail(f"sync failed: {exc}")
        owner = _demo_owner(engine)
        click.echo(f"Zotero stand-in: {server.url}/groups/{lib.group_id}")
        click.echo(result.summary())
        click.echo(_guide(settings_file, folder, f"http://127.0.0.1:{port}", owner))
        if not serve:
            return
        scheduler = build_scheduler(engine, settings, blocking=False, run_now=False)
        scheduler.start()
        try:
            _serve_single_process(app, "127.0.0.1", port)
        except OSError as exc:  # taken since _check_port looked
            context.fail(f"cannot serve on 127.0.0.1:{port} ({exc}); try biblio demo --port N")
        finally:
            scheduler.shutdown(wait=False)
            mail.wait_for_background(5)
        click.echo("biblio demo stopped")


def add_commands(group: click.Group) -> None:
    """Add ``run`` and ``demo`` to the ``biblio`` group."""
    group.add_command(run_command)
    group.add_command(demo_command)
