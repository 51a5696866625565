"""``biblio run`` under real gunicorn (two workers, production settings): the master holds
no database connection when it forks, each worker opens its own, and the production
defaults hold on the wire (HSTS, links from ``[web] public_url`` whatever the Host
header, no library versions).

Connections are read from ``/proc/<pid>/fd``: the SQLite file (and its ``-wal`` and
``-shm``) open in a worker and not in the master means no worker inherited one.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from biblio import __version__
from tests.served import PUBLIC, children, get, serve_biblio

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux /proc")


def open_database_files(pid: int, database: Path) -> list[str]:
    """The names of the database's files (and its -wal, -shm) open in process ``pid``."""
    names = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(database)):
            names.append(Path(target).name)
    return sorted(names)


@pytest.fixture
def served(synced, settings, tmp_path):
    """``biblio run --workers 2`` on the synced sample, in production."""
    with serve_biblio(settings, tmp_path, workers=2) as running:
        yield running.proc, running.base, running.database


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
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    _, _, feed = get(base + "/items.atom", **evil)
    assert b"evil.example" not in feed and f'href="{PUBLIC}/'.encode() in feed
    _, _, versions = get(base + "/-/versions.json")
    assert versions.decode().strip() == f'{{"biblio": "{__version__}", "ok": true}}'
