"""``biblio run`` as a real server for tests: gunicorn in a child process, on loopback, in
production (``[web] public_url`` :data:`PUBLIC`), over a test's database; and the
shipped nginx site in front of it.

:func:`serve_biblio` writes a settings file from the test's settings, starts
``python -m biblio run``, waits until ``/-/health`` answers 200 and every worker is up,
and stops it with SIGTERM afterwards. :func:`serve_nginx` runs ``deploy/nginx/biblio.conf``
in front of it, moved onto loopback ports and into the test's folder with a self-signed
certificate. :func:`children` and :func:`get` help look at them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from biblio import storage as st
from biblio.settings import Settings
from tests.smtp_server import free_port

PUBLIC = "https://biblio.example.org"
ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "biblio.conf"
STATIC = ROOT / "biblio" / "web" / "static"
HAVE_NGINX = bool(shutil.which("nginx") and shutil.which("openssl"))


@dataclass
class Served:
    proc: subprocess.Popen
    base: str  # http://127.0.0.1:PORT
    port: int
    database: Path | None  # the SQLite file, if SQLite
    log: Path


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers of its master)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``: status, headers and body, for errors too."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


@contextmanager
def serve_biblio(
    settings: Settings,
    folder: Path,
    *,
    workers: int = 2,
    public_url: str = PUBLIC,
    mail_port: int | None = None,
) -> Iterator[Served]:
    """``biblio run --workers N`` over ``settings``' database, in production; email to an
    SMTP server on loopback ``mail_port``, or none."""
    port = free_port()
    st.dispose_all()  # the test process keeps no connection open either
    path = folder / "served.toml"
    path.write_text(
        f"[zotero]\nlibrary_id = {settings['zotero']['library_id']}\n"
        f'base_url = "{settings["zotero"]["base_url"]}"\n'
        f'[database]\nurl = "{settings["database"]["url"]}"\n'
        f'[sync]\nlock_file = "{settings["sync"]["lock_file"]}"\n'
        f'[web]\nenv = "production"\npublic_url = "{public_url}"\nport = {port}\n'
        + (
            f'[mail]\nhost = "127.0.0.1"\nport = {mail_port}\n'
            if mail_port
            else "[mail]\nenabled = false\n"
        ),
        encoding="utf-8",
    )
    with running(path, folder, port, workers, log_name="served.log") as (proc, base, log):
        yield Served(proc, base, port, st.sqlite_path(settings["database"]["url"]), log)


@contextmanager
def running(
    conf: Path,
    folder: Path,
    port: int,
    workers: int,
    *,
    log_name: str,
    ready: str | None = "/-/health",
    env: dict[str, str] | None = None,
) -> Iterator[tuple[subprocess.Popen, str, Path]]:
    """``python -m biblio --settings CONF run --port PORT --workers N`` in ``folder``, its
    output in ``folder/log_name``; yields the process, base URL and log once every worker
    is up and ``ready`` answers 200 (``None``: once the port accepts), and stops it with
    SIGTERM afterwards."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BIBLIO_")}
    environ["BIBLIO_SECRET_KEY"] = "s" * 40
    environ.update(env or {})
    log = folder / log_name
    command = [sys.executable, "-m", "biblio", "--settings", str(conf), "run"]
    command += ["--port", str(port), "--workers", str(workers)]
    with log.open("w", encoding="utf-8") as out:  # a file never fills up and blocks gunicorn
        proc = subprocess.Popen(
            command, cwd=folder, env=environ, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                pytest.fail(f"biblio run ended: {log.read_text(encoding='utf-8')[-2000:]}")
            if len(children(proc.pid)) == workers and _answers(base, port, ready):
                break
            time.sleep(0.1)
        else:
            pytest.fail("biblio run never answered")
        yield proc, base, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(base: str, port: int, ready: str | None) -> bool:
    try:
        if ready is None:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        return get(base + ready)[0] == 200
    except OSError:
        return False


def site_for_test(folder: Path, app_port: int, http_port: int, https_port: int) -> str:
    """The shipped site, moved into ``folder`` and onto free loopback ports."""
    text = SITE.read_text(encoding="utf-8")
    moved = {
        "server 127.0.0.1:5000;": f"server 127.0.0.1:{app_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/letsencrypt/live/biblio.example.org/": f"{folder}/",
        "/var/log/nginx/": f"{folder}/",
        "alias /opt/biblio/static/;": f"alias {STATIC}/;",
    }
    for old, new in moved.items():
        assert old in text, f"the site no longer has {old!r}; update tests/served.py"
        text = text.replace(old, new)
    return "\n".join(line for line in text.splitlines() if "listen [::]" not in line)


@dataclass
class Proxy:
    http_port: int
    https_port: int
    folder: Path  # its access log is biblio.access.log here


@contextmanager
def serve_nginx(app: Served, folder: Path) -> Iterator[Proxy]:
    """nginx with the shipped site in front of ``app``."""
    folder.mkdir()
    folder.chmod(0o755)  # nginx's workers may run as another user
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=biblio.example.org"]
        + ["-keyout", str(folder / "privkey.pem"), "-out", str(folder / "fullchain.pem")],
        check=True,
        capture_output=True,
    )
    proxy = Proxy(free_port(), free_port(), folder)
    (folder / "site.conf").write_text(
        site_for_test(folder, app.port, proxy.http_port, proxy.https_port), encoding="utf-8"
    )
    (folder / "nginx.conf").write_text(
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        "daemon off;\nevents {}\nhttp {\n"
        "    include /etc/nginx/mime.types;\n"
        f"    client_body_temp_path {folder}/body;\n    proxy_temp_path {folder}/proxy;\n"
        f"    include {folder}/site.conf;\n}}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        ["nginx", "-c", str(folder / "nginx.conf"), "-p", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", proxy.https_port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (folder / "error.log").read_text()
                time.sleep(0.1)
        yield proxy
    finally:
        proc.terminate()
        proc.wait(30)
