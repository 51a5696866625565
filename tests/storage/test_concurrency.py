"""Writes never collide: many writers at once on one real SQLite file, none told
"database is locked", nothing acknowledged lost, no update lost.

Writers are threads and spawned processes running biblio's own code (join submissions
through :mod:`biblio.membership.requests`, read-then-write transactions), while the
outbox thread delivers to a real SMTP server on loopback and the pre-render thread
fills the citation cache. The busy timeout is the ``[database] busy_timeout_seconds``
setting, applied to every connection; and no module writes except through
``storage.transaction()``.
"""

from __future__ import annotations

import ast
import logging
import multiprocessing
import sqlite3
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from biblio import mail
from biblio import storage as st
from biblio.catalog.items import iter_items
from biblio.citations import prerender
from biblio.storage.app import engine_for
from tests.conftest import make_settings
from tests.storage import writers

BIBLIO = Path(__file__).resolve().parents[2] / "biblio"


@pytest.fixture
def settings(tmp_path, zotero, smtp):
    return make_settings(
        tmp_path,
        zotero,
        mail={"host": "127.0.0.1", "port": smtp.port},
        join={"notify_owners": False},
    )


def _counter(engine) -> int:
    with st.connect(engine) as conn:
        return conn.execute(select(st.data_changes.c.n)).scalar_one()


def test_every_sqlite_connection_gets_the_configured_busy_timeout(tmp_path, zotero):
    conf = make_settings(tmp_path, zotero, database={"busy_timeout_seconds": 2.5})
    engine = engine_for(conf)
    seen: list[int] = []
    hold = threading.Barrier(3)

    def look() -> None:
        with st.connect(engine) as conn:
            seen.append(conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one())
            hold.wait(timeout=10)  # three connections open at once, not one reused

    threads = [threading.Thread(target=look) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [2500, 2500, 2500]
    st.dispose_all()


class LockHolder(threading.Thread):
    """Another writer (its own connection, as another process would have) that holds the
    write lock for ``seconds``, then commits."""

    def __init__(self, path: Path, seconds: float) -> None:
        super().__init__(daemon=True)
        self.path, self.seconds, self.holding = path, seconds, threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE data_changes SET n = n + 1")
        self.holding.set()
        threading.Event().wait(self.seconds)
        conn.execute("COMMIT")
        conn.close()


@pytest.mark.parametrize("timeout, hold, waits", [(20.0, 0.5, True), (0.2, 5.0, False)])
def test_a_writer_waits_its_turn_within_the_busy_timeout_and_no_longer(
    tmp_path, zotero, timeout, hold, waits
):
    conf = make_settings(tmp_path, zotero, database={"busy_timeout_seconds": timeout})
    engine = engine_for(conf)
    before = _counter(engine)
    holder = LockHolder(st.sqlite_path(conf["database"]["url"]), hold)
    holder.start()
    assert holder.holding.wait(10)
    if waits:
        writers.bump(engine)  # waited for the holder's commit, then wrote
        assert _counter(engine) == before + 2
    else:
        with pytest.raises(OperationalError, match="database is locked"):
            writers.bump(engine)
    holder.join()
    st.dispose_all()


def test_a_deferred_read_then_write_fails_at_once_where_a_biblio_transaction_waits(synced):
    """Why transactions begin IMMEDIATE: two deferred ones that read, then write, cannot
    both go on, and SQLite fails the second at once, whatever the busy timeout."""
    path = st.sqlite_path(str(synced.url))
    first, second = (
        sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        for _ in range(2)
    )
    for conn in (first, second):
        conn.execute("BEGIN")
        conn.execute("SELECT n FROM data_changes").fetchone()
    first.execute("UPDATE data_changes SET n = n + 1")
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        second.execute("UPDATE data_changes SET n = n + 1")
    second.execute("ROLLBACK")
    first.execute("COMMIT")

    # biblio's transaction, begun while another writer holds the lock, waits for it.
    first.execute("BEGIN")
    first.execute("UPDATE data_changes SET n = n + 1")
    before = _counter(synced)
    threading.Timer(0.5, first.execute, ("COMMIT",)).start()
    writers.bump(synced)
    assert _counter(synced) == before + 2
    first.close()
    second.close()


def test_many_writers_in_threads_and_processes_lose_nothing(synced, settings, smtp, caplog):
    caplog.set_level(logging.INFO)
    settings["sync"]["prerender"] = True
    before = _counter(synced)
    threads, processes, count = 6, 3, 10
    spawn = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(processes, mp_context=spawn) as pool,
        ThreadPoolExecutor(threads) as local,
    ):
        # Processes first: they take a moment to start, then all write at once.
        remote = [
            pool.submit(writers.write_in_process, dict(settings), f"p{i}", count)
            for i in range(processes)
        ]
        prerender.prerender_in_background(synced, settings)  # the pre-render thread writes too
        here = [
            local.submit(writers.write, settings, f"t{i}", count, synced) for i in range(threads)
        ]
        outcomes = [f.result(timeout=300) for f in remote + here]
    assert prerender.wait_for_prerender(120)
    mail.wait_for_background()

    errors = [e for o in outcomes for e in o.errors]
    locked = [r.getMessage() for r in caplog.records if "locked" in r.getMessage()]
    unwritten = [
        r.getMessage() for r in caplog.records if "render cache not written" in r.getMessage()
    ]
    assert (errors, locked, unwritten) == ([], [], [])

    total = (threads + processes) * count
    acknowledged = sorted(i for o in outcomes for i in o.acknowledged)
    assert len(acknowledged) == len(set(acknowledged)) == total
    with st.connect(synced) as conn:
        stored = sorted(conn.execute(select(st.join_requests.c.id)).scalars())
        audited = conn.execute(
            select(func.count()).where(st.audit_log.c.action == "request.submit")
        ).scalar_one()
        rendered = conn.execute(select(func.count()).select_from(st.rendered_citations)).scalar()
    assert stored == acknowledged and audited == total
    assert _counter(synced) == before + total  # no read-then-write lost an update
    assert rendered == len(list(iter_items(synced)))

    # Every confirmation went out exactly once, whichever outbox thread sent it.
    mail.deliver_pending(synced, settings, force=True)
    sent = mail.messages(synced, status="sent", limit=1000)
    assert len(sent) == total and mail.outbox_counts(synced)["pending"] == 0
    received = smtp.collector.wait_for(total)
    assert sorted(m["To"] for m in received) == sorted(r["to_addr"] for r in sent)


def _writes_outside_storage(path: Path) -> list[str]:
    """Calls that open a transaction or a raw connection other than through
    ``storage.transaction()`` (and ``storage.connect()`` for reads)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, owner = node.func.attr, node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else ""
            if name in {"begin", "commit", "begin_nested", "raw_connection"} or (
                name == "connect" and owner_name in {"engine", "sqlite3"}
            ):
                found.append(f"{path.relative_to(BIBLIO.parent)}:{node.lineno} .{name}()")
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            if "sqlite3" in names:
                found.append(f"{path.relative_to(BIBLIO.parent)}:{node.lineno} import sqlite3")
    return found


def test_every_write_goes_through_storage_transaction():
    """Web requests, the sync, the outbox and pre-render threads all take the one path
    that begins IMMEDIATE; only the storage package itself opens connections."""
    sources = [p for p in BIBLIO.rglob("*.py") if "storage" not in p.relative_to(BIBLIO).parts]
    assert len(sources) > 50
    found = [hit for path in sources for hit in _writes_outside_storage(path)]
    assert found == []
