"""Overlapping requests through the real stand-in: the same cache as one at a time,
Zotero's Backoff obeyed by every worker, restarts when the library moves, and a kill
mid-stream that leaves the last good cache (a real subprocess)."""

from __future__ import annotations

import signal
import time

import pytest
from sqlalchemy import func, select

from biblio import storage as st
from biblio.standin.server import StandinServer
from biblio.standin.synthetic import synthetic_library
from biblio.storage import schema as sch
from biblio.sync.run import run_sync
from tests.conftest import make_settings
from tests.sync.test_run import _cli, _settings_file, assert_equal_to_source, cache_snapshot, runs

TABLES = (
    st.items,
    st.item_creators,
    st.item_tags,
    st.item_collections,
    st.collections,
    st.item_fulltext,
    st.item_prongs,
    st.group_info,
)
VOLATILE = {"synced_at", "fetched_at"}  # when a row was written, not what it says


def contents(engine) -> dict:
    """Every row the sync writes (and the prongs derived from them), comparable."""
    out = {}
    with st.connect(engine) as conn:
        for table in TABLES:
            cols = [c for c in table.columns if c.name not in VOLATILE]
            rows = conn.execute(select(*cols)).all()
            out[table.name] = sorted(repr(tuple(r)) for r in rows)
    return out


@pytest.fixture
def big():
    """A synthetic library of 1,500 items (15 pages), 40 texts, behind 20 ms of latency."""
    lib = synthetic_library(1500, seed=11, children_ratio=0.4, fulltext=40)
    with StandinServer(lib) as server:
        server.latency(0.02)
        yield lib, server


def sync_into(tmp_path, server, name: str, **sync):
    folder = tmp_path / name
    folder.mkdir()
    settings = make_settings(folder, server, sync=sync)
    engine = st.open_database(settings["database"]["url"])
    server.reset_counts()
    result = run_sync(engine, settings)
    return engine, settings, result


def test_concurrent_fetch_equals_the_sequential_result(tmp_path, big):
    lib, server = big
    one, _, first = sync_into(tmp_path, server, "one", concurrency=1)
    assert server.peak_concurrency == 1
    four, _, second = sync_into(tmp_path, server, "four", concurrency=4)
    assert server.peak_concurrency > 1  # the requests really overlapped
    assert contents(one) == contents(four)
    assert_equal_to_source(four, lib)
    # The same requests, at the protocol minimum: pages, collections, group, text list,
    # one request per text.
    pages = -(-len(lib.items) // 100) + -(-len(lib.collections) // 100)
    assert first.requests == second.requests == pages + 1 + 1 + 40
    with st.connect(four) as conn:
        texts = dict(
            conn.execute(select(st.item_fulltext.c.item_key, st.item_fulltext.c.version)).all()
        )
    assert texts == lib.fulltext_since(0)[1]


def test_incremental_overlapped_batches_equal_the_sequential_result(tmp_path, big):
    lib, server = big
    one, s1, _ = sync_into(tmp_path, server, "one", concurrency=1)
    four, s4, _ = sync_into(tmp_path, server, "four", concurrency=4)
    keys = sorted(k for k, d in lib.items.items() if not d.get("parentItem"))
    for key in keys[:230]:  # five batches of 50
        lib.update_item(key, title=f"edited {key}")
    lib.delete_item(keys[300])
    run_sync(one, s1)
    server.reset_counts()
    run_sync(four, s4)
    assert server.peak_concurrency > 1
    assert contents(one) == contents(four)
    assert_equal_to_source(four, lib)


def test_backoff_mid_run_slows_every_in_flight_worker(tmp_path, big):
    lib, server = big
    server.latency(0.05)
    server.backoff(2.0, match="start=300")
    engine, _, result = sync_into(tmp_path, server, "db", concurrency=4)
    assert_equal_to_source(engine, lib)
    records = sorted(server.requests, key=lambda r: r.started)
    told = next(r for r in records if r.fault == "backoff")
    # A request already on its way while the answer travelled back may still arrive
    # (the client needs a moment to read it, longer on a busy machine: half a second is
    # allowed); nothing after that before the 2 s wait is over...
    early = [r for r in records if told.finished + 0.5 < r.started < told.finished + 1.95]
    assert early == []
    after = [r for r in records if r.started >= told.finished + 1.95]
    assert after, "requests followed the Backoff"
    # ...and from then on one request at a time.
    for a, b in zip(after, after[1:], strict=False):
        assert a.finished <= b.started
    assert "back off" in (runs(engine)[0]["note"] or "")
    assert "back off" in result.summary()


def test_retry_after_on_one_worker_pauses_the_others(tmp_path, big):
    lib, server = big
    server.latency(0.05)
    server.fail(429, retry_after=2, match="start=400")
    engine, _, _ = sync_into(tmp_path, server, "db", concurrency=4)
    assert_equal_to_source(engine, lib)
    records = sorted(server.requests, key=lambda r: r.started)
    busy = next(r for r in records if r.status == 429)
    # A request already on its way while the 429 travelled back may still arrive (the
    # client needs a moment to read the answer, longer on a busy machine: half a second
    # is allowed); nothing after that before the 2 s wait.
    early = [r for r in records if busy.finished + 0.5 < r.started < busy.finished + 1.95]
    assert early == []
    later = [r for r in records if r.started >= busy.finished + 1.95]
    assert any(r.query.get("start") == "400" and r.status == 200 for r in later)


def test_version_change_during_overlapping_pages_restarts_cleanly(tmp_path, big):
    lib, server = big
    victim = sorted(lib.items)[0]
    server.hook(lambda library: library.update_item(victim, title="moved"), match="start=500")
    engine, _, result = sync_into(tmp_path, server, "db", concurrency=4)
    assert result.restarts == 1
    assert_equal_to_source(engine, lib)
    with st.connect(engine) as conn:
        staged = conn.execute(select(func.count()).select_from(sch.stage_items)).scalar()
        title = conn.execute(select(st.items.c.title).where(st.items.c.key == victim)).scalar()
    assert staged == 0 and title == "moved"


def test_sigkill_mid_stream_leaves_the_last_good_cache(tmp_path, zotero, library):
    path = _settings_file(tmp_path, zotero)
    first = _cli(["--settings", path, "sync"])
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    engine = st.open_database(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    good = cache_snapshot(engine)
    for key in sorted(library.items)[:120]:
        library.update_item(key, title=f"never arrives {key}")
    zotero.latency(0.4)
    proc = _cli(["--settings", path, "sync", "--full"])
    deadline = time.time() + 60
    staged = 0
    while time.time() < deadline and not staged:
        with st.connect(engine) as conn:
            staged = conn.execute(select(func.count()).select_from(sch.stage_items)).scalar()
        time.sleep(0.05)
    assert staged, "the run was streaming into the staging tables"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert cache_snapshot(engine) == good  # cache and version exactly as before
    assert runs(engine)[0]["status"] == "running"
    zotero.latency(0)
    again = _cli(["--settings", path, "sync"])
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert_equal_to_source(engine, library)
    with st.connect(engine) as conn:
        assert conn.execute(select(func.count()).select_from(sch.stage_items)).scalar() == 0
    assert [r["status"] for r in runs(engine)][:2] == ["ok", "failed"]
