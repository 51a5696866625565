"""``biblio run`` under real gunicorn (two workers, production settings): the master holds
no database connection when it forks, each worker opens its own, and the production
defaults hold on the wire (HSTS, links from ``[web] public_url`` whatever the Host
header, no library versions).

Connections are read from ``/proc/<pid>/fd``: the SQLite file (and its ``-wal`` and
``-shm``) open in a worker and not in the master means no worker inherited one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from biblio import __version__
from biblio import storage as st
from tests.smtp_server import free_port

PUBLIC = "https://biblio.example.org"
pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def open_database_files(pid: int, database: Path) -> list[str]:
    names = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(database)):
            names.append(Path(target).name)
    return sorted(names)


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def served(synced, settings, tmp_path):
    """``biblio run --workers 2`` on the synced sample, in production."""
    port = free_port()
    database = st.sqlite_path(settings["database"]["url"])
    st.dispose_all()  # this test process keeps no connection either
    path = tmp_path / "served.toml"
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
    log = tmp_path / "served.log"
    with log.open("w", encoding="utf-8") as out:  # a file never fills up and blocks gunicorn
        proc = subprocess.Popen(
            [sys.executable, "-m", "biblio", "--settings", str(path), "run", "--workers", "2"],
            cwd=tmp_path,
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
                if get(base + "/-/health")[0] == 200 and len(children(proc.pid)) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("biblio run never answered")
        yield proc, base, database
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_each_gunicorn_worker_opens_its_own_connection_and_the_master_none(served):
    proc, base, database = served
    workers = children(proc.pid)
    assert len(workers) == 2
    with ThreadPoolExecutor(16) as pool:
        for _ in range(40):  # until both workers have answered something
            statuses = list(pool.map(lambda _: get(base + "/items.json")[0], range(32)))
            assert set(statuses) == {200}
            if all(open_database_files(pid, database) for pid in workers):
                break
    for pid in workers:
        assert database.name in open_database_files(pid, database), pid
    assert open_database_files(proc.pid, database) == []
    assert children(proc.pid) == workers  # no worker died and was replaced meanwhile


def test_production_defaults_hold_under_gunicorn(served):
    _proc, base, _database = served
    status, headers, _ = get(base + "/items.json", Host="evil.example")
    assert status == 200 and headers["Strict-Transport-Security"] == "max-age=31536000"
    _, _, feed = get(base + "/items.atom", Host="evil.example", X_Forwarded_Host="evil.example")
    assert b"evil.example" not in feed and f'href="{PUBLIC}/'.encode() in feed
    _, _, versions = get(base + "/-/versions.json")
    assert versions.decode().strip() == f'{{"biblio": "{__version__}", "ok": true}}'
