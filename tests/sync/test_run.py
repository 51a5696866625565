"""Sync through the real loopback stand-in: protocol, faults, atomicity, locking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from biblio import events
from biblio import storage as st
from biblio.standin.server import http_date
from biblio.sync.client import SyncError
from biblio.sync.lock import SyncBusy
from biblio.sync.run import run_sync
from biblio.sync.schedule import build_scheduler, scheduled_sync
from biblio.sync.state import read_state, recent_runs


def cache_snapshot(engine) -> dict:
    with st.connect(engine) as conn:
        items = dict(conn.execute(select(st.items.c.key, st.items.c.version)).all())
        colls = dict(conn.execute(select(st.collections.c.key, st.collections.c.version)).all())
        state = read_state(conn) or {}
    return {"items": items, "collections": colls, "version": state.get("library_version")}


def assert_equal_to_source(engine, library) -> None:
    source = library.snapshot()
    cache = cache_snapshot(engine)
    assert cache["items"] == source["items"]
    assert cache["collections"] == source["collections"]
    assert cache["version"] == source["version"]


def runs(engine) -> list[dict]:
    return recent_runs(engine, 100)


# -- the protocol -----------------------------------------------------------------


def test_first_sync_equals_source(engine, settings, library, zotero):
    synced = engine
    run_sync(engine, settings)
    assert_equal_to_source(synced, library)
    with st.connect(synced) as conn:
        children = conn.execute(
            select(st.items.c.key, st.items.c.parent_key).where(st.items.c.parent_key.is_not(None))
        ).all()
        parents = set(conn.execute(select(st.items.c.key)).scalars())
        group = conn.execute(select(st.group_info)).mappings().one()
    assert children, "the sample library has notes and attachments"
    assert all(parent in parents for _, parent in children)
    assert group["name"] == library.group["name"]
    assert group["members"] == library.group["members"]
    assert group["owner"] == library.group["owner"]
    run = runs(synced)[0]
    n_items = len(library.snapshot()["items"])
    assert run["status"] == "ok" and run["full"] and run["added"] == n_items
    # A full sync pages at 100: items pages + collections page(s) + the group read,
    # then the full-text listing and one request per attachment text.
    texts = len(library.fulltext.records)
    assert run["requests"] == -(-n_items // 100) + 1 + 1 + 1 + texts


def test_incremental_changes_arrive(synced, settings, library, zotero):
    before = library.snapshot()
    keys = sorted(k for k in before["items"] if not library.items[k].get("parentItem"))
    library.update_item(keys[0], title="A changed title")
    new_key = library.add_item({"itemType": "book", "title": "Added later", "creators": []})
    library.delete_item(keys[1])
    library.trash_item(keys[2])
    coll = library.add_collection("New collection")
    old_coll = sorted(before["collections"])[0]
    library.update_collection(old_coll, name="Renamed")
    zotero.reset_counts()

    result = run_sync(synced, settings)

    assert_equal_to_source(synced, library)
    assert result.counts.added == 1
    assert result.counts.deleted >= 1
    with st.connect(synced) as conn:
        row = conn.execute(select(st.items).where(st.items.c.key == keys[0])).mappings().one()
        trashed = conn.execute(select(st.items.c.deleted).where(st.items.c.key == keys[2])).scalar()
        names = dict(conn.execute(select(st.collections.c.key, st.collections.c.name)).all())
    assert row["title"] == "A changed title"
    assert trashed is True
    assert names[coll] == "New collection" and names[old_coll] == "Renamed"
    assert new_key in cache_snapshot(synced)["items"]
    # Only the changed keys were fetched, by key, after versions?since=V.
    queries = [r.query for r in zotero.requests]
    assert any(
        q.get("format") == "versions" and q.get("since") == str(before["version"]) for q in queries
    )
    assert sum(1 for r in zotero.requests if "itemKey" in r.query) == 1


def test_unchanged_library_costs_only_304s(synced, settings, zotero):
    zotero.reset_counts()
    result = run_sync(synced, settings)
    assert result.status == "unchanged"
    listed = [
        r for r in zotero.requests if not r.path.rstrip("/").endswith(str(zotero.library.group_id))
    ]
    assert listed and all(r.status == 304 for r in listed)
    assert len(zotero.requests) <= 2  # one 304 + the group metadata read


def test_group_membership_changes_are_cached(synced, settings, library):
    library.add_member(424242)
    run_sync(synced, settings)
    with st.connect(synced) as conn:
        members = conn.execute(select(st.group_info.c.members)).scalar()
    assert 424242 in members


def test_full_resync_removes_what_the_library_lost(synced, settings, library):
    key = next(k for k, v in library.items.items() if not v.get("parentItem"))
    library.delete_item(key)
    run_sync(synced, settings, full=True)
    assert_equal_to_source(synced, library)


# -- faults -----------------------------------------------------------------------

FAULTS = {
    "503 Retry-After": lambda z: z.fail(503, retry_after=0.05),
    "429 Retry-After": lambda z: z.fail(429, retry_after=0.05),
    "429 Retry-After date": lambda z: z.fail(
        429, retry_after=http_date(datetime.now(UTC) + timedelta(seconds=1))
    ),
    "500": lambda z: z.fail(500, times=2),
    "502 on a page": lambda z: z.fail(502, match="start="),
    "dropped connection": lambda z: z.drop(),
    "truncated body": lambda z: z.truncate(),
    "Backoff header": lambda z: z.backoff(0.05),
}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_first_sync_survives_fault(engine, settings, library, zotero, fault):
    FAULTS[fault](zotero)
    result = run_sync(engine, settings)
    assert result.status == "ok"
    assert zotero.pending_faults == 0
    assert_equal_to_source(engine, library)


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_incremental_sync_survives_fault(synced, settings, library, zotero, fault):
    key = next(iter(library.snapshot()["items"]))
    library.update_item(key, title="edited")
    FAULTS[fault](zotero)
    run_sync(synced, settings)
    assert_equal_to_source(synced, library)


def test_persistent_failure_leaves_last_good_cache(synced, settings, library, zotero):
    before = cache_snapshot(synced)
    key = next(iter(library.snapshot()["items"]))
    library.update_item(key, title="never arrives")
    zotero.fail(500, times=1000)
    with pytest.raises(SyncError, match="failed after"):
        run_sync(synced, settings)
    assert cache_snapshot(synced) == before
    failed = runs(synced)[0]
    assert failed["status"] == "failed" and "500" in failed["error"]
    zotero.clear_faults()
    run_sync(synced, settings)
    assert_equal_to_source(synced, library)


def test_long_backoff_gives_up_and_is_remembered(synced, settings, library, zotero):
    library.update_item(next(iter(library.snapshot()["items"])), title="x")
    zotero.backoff(3600, times=5)
    with pytest.raises(SyncError, match="back off"):
        run_sync(synced, settings)
    with st.connect(synced) as conn:
        deadline = read_state(conn)["backoff_until"]
    assert deadline > datetime.now() + timedelta(minutes=50)
    zotero.clear_faults()
    zotero.reset_counts()
    with pytest.raises(SyncError, match="back off"):
        run_sync(synced, settings)  # the deadline outlives the run: no request is sent
    assert zotero.request_count == 0


def test_error_in_save_rolls_back_everything(synced, settings, library):
    before = cache_snapshot(synced)
    library.update_item(next(iter(library.snapshot()["items"])), title="half-saved")

    def explode(settings, **_kwargs):
        raise RuntimeError("disk on fire")

    events.sync_saved.connect(explode)
    try:
        with pytest.raises(SyncError, match="disk on fire"):
            run_sync(synced, settings)
    finally:
        events.sync_saved.disconnect(explode)
    assert cache_snapshot(synced) == before


def test_version_change_while_paging_restarts(engine, settings, library, zotero):
    victim = next(iter(library.snapshot()["items"]))
    zotero.hook(lambda lib: lib.update_item(victim, title="edited mid-sync"), match="start=100")
    result = run_sync(engine, settings)
    assert result.restarts == 1
    assert_equal_to_source(engine, library)


def test_library_that_never_settles_fails_cleanly(engine, settings, library, zotero):
    victim = next(iter(library.snapshot()["items"]))
    zotero.hook(
        lambda lib: lib.update_item(victim, title=str(time.time())), times=1000, match="start=100"
    )
    with pytest.raises(SyncError, match="gave up after 3 restart"):
        run_sync(engine, settings)
    assert cache_snapshot(engine)["items"] == {}
    assert runs(engine)[0]["status"] == "failed"


def test_change_during_incremental_sync_is_caught_next_time(synced, settings, library, zotero):
    keys = [k for k in library.snapshot()["items"]][:2]
    library.update_item(keys[0], title="first edit")
    zotero.hook(lambda lib: lib.update_item(keys[1], title="edit during sync"), match="itemKey")
    run_sync(synced, settings)
    run_sync(synced, settings)
    assert_equal_to_source(synced, library)


def test_hostile_values_are_stored_verbatim(engine, settings, library, zotero):
    key = library.add_item(
        {
            "itemType": "journalArticle",
            "title": '<script>alert(1)</script><img src=x onerror="alert(2)">',
            "creators": [{"creatorType": "author", "name": "<b>Evil</b> Corp"}],
            "abstractNote": "x" * 100_000,
            "date": "Spring 2019",
        }
    )
    run_sync(engine, settings)
    with st.connect(engine) as conn:
        row = conn.execute(select(st.items).where(st.items.c.key == key)).mappings().one()
    assert row["title"].startswith("<script>")  # escaping is the web layer's job
    assert len(row["data"]["abstractNote"]) == 100_000


# -- locking, scheduling, the CLI, and SIGKILL ------------------------------------


def test_manual_and_scheduled_syncs_never_overlap(engine, settings, zotero):
    zotero.slow(0.5, times=3)
    results: list[str] = []
    worker = threading.Thread(target=lambda: results.append(scheduled_sync(engine, settings)))
    worker.start()
    deadline = time.time() + 10
    while not runs(engine) and time.time() < deadline:
        time.sleep(0.02)
    with pytest.raises(SyncBusy):
        run_sync(engine, settings)  # a manual run while the scheduled one holds the lock
    worker.join()
    assert results == ["ok"]
    assert scheduled_sync(engine, settings) == "unchanged"
    # ...and the other way round: the scheduled job skips while a manual run holds it.
    zotero.slow(0.5, times=2)
    manual = threading.Thread(target=lambda: run_sync(engine, settings))
    manual.start()
    time.sleep(0.2)
    assert scheduled_sync(engine, settings) == "busy"
    manual.join()
    spans = sorted((r["started_at"], r["finished_at"]) for r in runs(engine))
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_scheduler_runs_the_sync_job(engine, settings, library):
    scheduler = build_scheduler(engine, settings, blocking=False)
    job = scheduler.get_job("biblio-sync")
    assert job.max_instances == 1 and job.trigger.interval == timedelta(minutes=60)
    scheduler.start()
    try:
        deadline = time.time() + 20
        while time.time() < deadline and not any(r["status"] == "ok" for r in runs(engine)):
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert runs(engine)[0]["trigger"] == "scheduled"
    assert_equal_to_source(engine, library)


def _settings_file(tmp_path, zotero) -> str:
    path = tmp_path / "cli-settings.toml"
    path.write_text(
        f'[zotero]\nbase_url = "{zotero.url}"\nlibrary_id = {zotero.library.group_id}\n'
        "retry_base_seconds = 0.01\nmax_retries = 2\n"
        f'[database]\nurl = "sqlite:///{tmp_path / "cli.sqlite3"}"\n'
        f'[sync]\nlock_file = "{tmp_path / "cli.lock"}"\n',
        encoding="utf-8",
    )
    return str(path)


def _cli(args: list[str], env_extra: dict | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIBLIO_")}
    env.update(env_extra or {})
    return subprocess.Popen(
        [sys.executable, "-m", "biblio", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_sync_prints_summary_and_fails_with_nonzero_exit(tmp_path, zotero, library):
    path = _settings_file(tmp_path, zotero)
    proc = _cli(["--settings", path, "sync"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip().startswith("sync ok: library version 0 ->")
    assert len(out.strip().splitlines()) == 1
    zotero.fail(503, times=100)
    library.update_item(next(iter(library.snapshot()["items"])), title="x")
    proc = _cli(["--settings", path, "sync"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "sync failed:" in err and "Traceback" not in err


def test_sigkill_mid_sync_then_rerun_equals_source(tmp_path, zotero, library):
    path = _settings_file(tmp_path, zotero)
    zotero.slow(1.0, times=100, match="/items")
    proc = _cli(["--settings", path, "sync"])
    engine = st.open_database(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    deadline = time.time() + 30
    while time.time() < deadline:
        if any(r.query.get("start") == "100" for r in zotero.requests):
            break  # past the first page: mid-run
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert cache_snapshot(engine)["items"] == {}  # nothing half-saved
    assert runs(engine)[0]["status"] == "running"  # it died holding the run open
    zotero.clear_faults()
    proc = _cli(["--settings", path, "sync"])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert_equal_to_source(engine, library)
    statuses = [r["status"] for r in runs(engine)]
    assert statuses == ["ok", "failed"]
    assert "interrupted" in runs(engine)[1]["error"]


# -- hostile or broken answers ----------------------------------------------------

HOSTILE = {
    "not JSON": b"<html>oops</html>",
    "JSON object instead of list": b'{"error": "nope"}',
    "bad key": b'[{"key": "../../etc", "version": 1, "data": {}}]',
    "bad version": b'[{"key": "ABCD2345", "version": "9; DROP TABLE items", "data": {}}]',
    "no data": b'[{"key": "ABCD2345", "version": 3}]',
    "list of strings": b'["ABCD2345"]',
}


@pytest.mark.parametrize("body", HOSTILE, ids=list(HOSTILE))
def test_hostile_item_page_fails_cleanly_and_keeps_cache(synced, settings, library, zotero, body):
    before = cache_snapshot(synced)
    library.update_item(next(iter(library.snapshot()["items"])), title="edited")
    zotero.corrupt(HOSTILE[body], times=100, match="itemKey")
    with pytest.raises(SyncError) as info:
        run_sync(synced, settings)
    assert "\n" not in str(info.value)
    assert cache_snapshot(synced) == before
    assert runs(synced)[0]["status"] == "failed"
    zotero.clear_faults()
    run_sync(synced, settings)
    assert_equal_to_source(synced, library)


def test_hostile_versions_answer_fails_cleanly(synced, settings, library, zotero):
    before = cache_snapshot(synced)
    library.update_item(next(iter(library.snapshot()["items"])), title="edited")
    zotero.corrupt(b'{"ABCD2345": "x"}', times=100, match="format=versions")
    with pytest.raises(SyncError, match="item versions"):
        run_sync(synced, settings)
    assert cache_snapshot(synced) == before
