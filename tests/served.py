"""``biblio run`` as a real server for tests: gunicorn in a child process, on loopback, in
production (``[web] public_url`` :data:`PUBLIC`), over a test's database.

:func:`serve_biblio` writes a settings file from the test's settings, starts
``python -m biblio run``, waits until ``/-/health`` answers 200 and every worker is up,
and stops it with SIGTERM afterwards. :func:`children` and :func:`get` help look at it.
"""

from __future__ import annotations

import os
import signal
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
def serve_biblio(settings: Settings, folder: Path, *, workers: int = 2) -> Iterator[Served]:
    """``biblio run --workers N`` over ``settings``' database, in production."""
    port = free_port()
    st.dispose_all()  # the test process keeps no connection open either
    path = folder / "served.toml"
    path.write_text(
        f"[zotero]\nlibrary_id = {settings['zotero']['library_id']}\n"
        f'base_url = "{settings["zotero"]["base_url"]}"\n'
        f'[database]\nurl = "{settings["database"]["url"]}"\n'
        f'[sync]\nlock_file = "{settings["sync"]["lock_file"]}"\n'
        f'[web]\nenv = "production"\npublic_url = "{PUBLIC}"\nport = {port}\n'
        "[mail]\nenabled = false\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIBLIO_")}
    env["BIBLIO_SECRET_KEY"] = "s" * 40
    log = folder / "served.log"
    with log.open("w", encoding="utf-8") as out:  # a file never fills up and blocks gunicorn
        proc = subprocess.Popen(
            [sys.executable, "-m", "biblio", "--settings", str(path), "run"]
            + ["--workers", str(workers)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                pytest.fail(f"biblio run ended: {log.read_text(encoding='utf-8')[-2000:]}")
            try:
                if get(base + "/-/health")[0] == 200 and len(children(proc.pid)) == workers:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("biblio run never answered")
        yield Served(proc, base, port, st.sqlite_path(settings["database"]["url"]), log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
