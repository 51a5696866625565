"""On PostgreSQL: one sync at a time across processes and machines (the advisory lock),
and a sync killed mid-stream leaves the last good cache. Real processes, a real server.

Runs when ``BIBLIO_TEST_POSTGRES_URL`` names a PostgreSQL database; each test makes a
database of its own beside it (and drops it), so tests can run in parallel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import func, select

from biblio import storage as st
from biblio.storage import schema as sch
from biblio.sync.lock import SyncBusy, sync_lock
from biblio.sync.run import run_sync
from tests.conftest import make_settings
from tests.sync.test_run import assert_equal_to_source, cache_snapshot, runs

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(postgres_database):
    return postgres_database()


def settings_file(tmp_path, zotero, url: str, machine: str) -> str:
    """One machine's settings: the shared database, a lock file of its own."""
    path = tmp_path / f"{machine}.toml"
    path.write_text(
        f'[zotero]\nbase_url = "{zotero.url}"\nlibrary_id = {zotero.library.group_id}\n'
        "retry_base_seconds = 0.01\n"
        f'[database]\nurl = "{url}"\n'
        f'[sync]\nlock_file = "{tmp_path / machine / "sync.lock"}"\nconcurrency = 1\n'
        "prerender = false\n",
        encoding="utf-8",
    )
    return str(path)


def biblio(args: list[str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIBLIO_")}
    return subprocess.Popen(
        [sys.executable, "-m", "biblio", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, seconds: float = 60.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def running(engine) -> bool:
    with st.connect(engine) as conn:
        return (
            conn.execute(
                select(func.count())
                .select_from(st.sync_runs)
                .where(st.sync_runs.c.status == "running")
            ).scalar()
            > 0
        )


def test_the_advisory_lock_is_one_per_database_whatever_the_lock_file(tmp_path, zotero, pg_url):
    for machine in ("a", "b"):
        (tmp_path / machine).mkdir()
    one = make_settings(tmp_path / "a", zotero, database={"url": pg_url})
    two = make_settings(tmp_path / "b", zotero, database={"url": pg_url})
    assert one["sync"]["lock_file"] != two["sync"]["lock_file"]
    engine = st.open_database(pg_url)
    other = st.create_db_engine(pg_url)  # another process's pool
    with (
        sync_lock(one, engine),
        pytest.raises(SyncBusy, match="another sync"),
        sync_lock(two, other),
    ):
        pass
    with sync_lock(two, other):  # released
        pass
    other.dispose()


def test_two_schedulers_on_two_machines_never_sync_at_once(tmp_path, zotero, library, pg_url):
    for machine in ("a", "b"):
        (tmp_path / machine).mkdir()
    # The first run stops at its full-text listing until the test lets it go: it holds
    # the lock for as long as the test needs, however slowly processes start here.
    gate = threading.Event()
    zotero.hook(lambda lib: gate.wait(120), times=1000, match="/fulltext?")  # retries too
    logs = {m: tmp_path / f"{m}.log" for m in ("a", "b")}
    procs = []
    engine = st.open_database(pg_url)
    try:
        procs.append(scheduler(tmp_path, zotero, pg_url, "a", logs["a"]))
        wait_for(lambda: running(engine), 120)
        procs.append(scheduler(tmp_path, zotero, pg_url, "b", logs["b"]))
        wait_for(lambda: "scheduled sync skipped" in logs["b"].read_text(), 120)
        manual = biblio(["--settings", settings_file(tmp_path, zotero, pg_url, "b"), "sync"])
        _, err = manual.communicate(timeout=120)
        assert manual.returncode == 1 and "another sync is running" in err
        gate.set()
        wait_for(lambda: any(r["status"] == "ok" for r in runs(engine)), 120)
    finally:
        gate.set()
        for proc in procs:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
    assert "scheduled sync skipped" not in logs["a"].read_text()
    rows = runs(engine)
    assert [r["status"] for r in rows] == ["ok"]
    assert_equal_to_source(engine, library)


def scheduler(tmp_path, zotero, url: str, machine: str, log) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIBLIO_")}
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "biblio",
                "--settings",
                settings_file(tmp_path, zotero, url, machine),
                "scheduler",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
            text=True,
        )


def test_a_sync_killed_mid_stream_leaves_the_last_good_cache_and_frees_the_lock(
    tmp_path, zotero, library, pg_url
):
    (tmp_path / "a").mkdir()
    path = settings_file(tmp_path, zotero, pg_url, "a")
    first = biblio(["--settings", path, "sync"])
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    engine = st.open_database(pg_url)
    good = cache_snapshot(engine)
    with st.connect(engine) as conn:
        good_texts = conn.execute(select(func.count()).select_from(st.item_fulltext)).scalar()
    for key in sorted(library.items)[:150]:
        library.update_item(key, title=f"never arrives {key}")
    zotero.latency(0.3)
    doomed = biblio(["--settings", path, "sync", "--full"])

    def staged() -> bool:
        with st.connect(engine) as conn:
            return conn.execute(select(func.count()).select_from(sch.stage_items)).scalar() > 0

    wait_for(staged)
    doomed.send_signal(signal.SIGKILL)
    doomed.communicate(timeout=30)
    assert cache_snapshot(engine) == good
    with st.connect(engine) as conn:
        assert (
            conn.execute(select(func.count()).select_from(st.item_fulltext)).scalar() == good_texts
        )
    zotero.latency(0)
    # PostgreSQL ended the killed session, and its advisory lock with it.
    again = biblio(["--settings", path, "sync"])
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert_equal_to_source(engine, library)
    statuses = [r["status"] for r in runs(engine)]
    assert statuses[:2] == ["ok", "failed"] and "interrupted" in runs(engine)[1]["error"]


def test_full_text_and_staging_work_on_postgresql(tmp_path, zotero, library, pg_url):
    settings = make_settings(tmp_path, zotero, database={"url": pg_url})
    engine = st.open_database(pg_url)
    run_sync(engine, settings)
    assert_equal_to_source(engine, library)
    library.set_fulltext("T4MZ7S7Q", "Text with a NUL\x00 that PostgreSQL refuses")
    library.delete_item("RE4G8RFX")
    result = run_sync(engine, settings)
    assert result.counts.texts_changed == 1
    with st.connect(engine) as conn:
        stored = dict(
            conn.execute(select(st.item_fulltext.c.item_key, st.item_fulltext.c.content)).all()
        )
    assert stored["T4MZ7S7Q"] == "Text with a NUL that PostgreSQL refuses"
    assert "RE4G8RFX" not in stored and set(stored) == set(library.fulltext.records)
