"""Zotero's waits are capped, shown and clearable (command line and owners' page, both
audited); a busy database makes the sync wait or retry, never lose its fetch; a closed
port fails at once, naming the URL, and is not taken for a backoff."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select

from biblio import audit, create_app
from biblio import storage as st
from biblio.membership import owners
from biblio.sync.client import SyncError
from biblio.sync.errors import BackoffTooLong
from biblio.sync.run import run_sync
from biblio.sync.state import pending_backoff, read_state
from tests.conftest import make_settings
from tests.sync.test_run import _cli, _settings_file, assert_equal_to_source, runs

TEN_YEARS = 10 * 365 * 24 * 3600
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def edit(library) -> None:
    library.update_item(sorted(library.items)[0], title=f"edited at {time.time()}")


def test_a_ten_year_retry_after_is_capped_and_remembered(synced, settings, library, zotero):
    edit(library)
    zotero.fail(429, retry_after=TEN_YEARS, times=10)
    with pytest.raises(BackoffTooLong):
        run_sync(synced, settings)
    until = pending_backoff(synced)
    assert until is not None
    cap = timedelta(seconds=settings["zotero"]["backoff_cap_seconds"])
    assert st.utcnow() + cap - timedelta(minutes=5) < until <= st.utcnow() + cap
    zotero.clear_faults()
    zotero.reset_counts()
    with pytest.raises(BackoffTooLong, match="back off"):
        run_sync(synced, settings, full=True)  # full or not, it waits: nothing is sent
    assert zotero.request_count == 0


def test_a_lower_cap_is_a_setting(tmp_path, zotero, library):
    settings = make_settings(tmp_path, zotero)
    settings["zotero"]["backoff_cap_seconds"] = 2.0
    engine = st.open_database(settings["database"]["url"])
    zotero.fail(503, retry_after=TEN_YEARS)
    result = run_sync(engine, settings)  # a 2 s wait is within max_wait_seconds: it waits
    assert result.status == "ok" and "2 s at most" in result.note
    assert_equal_to_source(engine, library)


def test_the_command_line_shows_the_wait_and_clears_it_audited(tmp_path, zotero, library):
    path = _settings_file(tmp_path, zotero)
    first = _cli(["--settings", path, "sync"])
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    edit(library)
    zotero.backoff(TEN_YEARS, times=5)
    failed = _cli(["--settings", path, "sync"])
    _, err = failed.communicate(timeout=120)
    assert failed.returncode == 1
    assert "--clear-backoff" in err and "Traceback" not in err
    zotero.clear_faults()
    shown = _cli(["--settings", path, "sync"])
    _, err = shown.communicate(timeout=120)
    assert shown.returncode == 1
    assert re.search(r"pending wait: Zotero asked biblio to wait until \S+ \S+ UTC", err)
    cleared = _cli(["--settings", path, "sync", "--clear-backoff"])
    out, err = cleared.communicate(timeout=120)
    assert cleared.returncode == 0, err
    assert "cleared Zotero's wait" in err and out.startswith("sync ok")
    engine = st.open_database(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    assert_equal_to_source(engine, library)
    entry = audit.entries(engine, action="sync.clear_backoff")[0]
    assert entry["actor"].startswith("command line") and entry["old"]


def test_owners_see_the_wait_and_clear_it_audited(synced, settings, library, zotero):
    edit(library)
    zotero.backoff(TEN_YEARS)
    with pytest.raises(SyncError):
        run_sync(synced, settings)
    owners.create_owner(synced, "owner@example.org", "a long owner passphrase")
    app = create_app(settings)
    app.config.update(TESTING=True)
    client = app.test_client()
    assert client.get("/-/admin/sync").status_code in (302, 303)  # owners only
    login = client.get("/-/admin/login").get_data(as_text=True)
    client.post(
        "/-/admin/login",
        data={
            "email": "owner@example.org",
            "password": "a long owner passphrase",
            "csrf_token": TOKEN.search(login).group(1),
        },
    )
    page = client.get("/-/admin/sync").get_data(as_text=True)
    assert "Zotero asked biblio to wait" in page and "Clear the wait" in page
    twin = client.get("/-/admin/sync.json").get_json()
    assert twin["ok"] and twin["pending_wait_until"] and twin["rows"][0]["status"] == "failed"
    # "Sync now" while the wait is pending says so, and sends nothing.
    zotero.reset_counts()
    now = client.post(
        "/-/admin/sync",
        data={"csrf_token": TOKEN.search(page).group(1), "next": "/-/admin/sync"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "The sync did not run" in now and zotero.request_count == 0
    assert client.post("/-/admin/sync/wait", data={}).status_code == 400  # no CSRF token
    done = client.post("/-/admin/sync/wait", data={"csrf_token": TOKEN.search(page).group(1)})
    assert done.status_code == 303
    assert client.get("/-/admin/sync.json").get_json()["pending_wait_until"] is None
    assert audit.entries(synced, action="sync.clear_backoff")[0]["actor"] == "owner@example.org"
    run_sync(synced, settings)
    assert_equal_to_source(synced, library)


def test_a_closed_port_fails_at_once_naming_the_url_and_is_no_backoff(tmp_path, zotero):
    path = _settings_file(tmp_path, zotero)
    settings_file = Path(path)
    settings_file.write_text(settings_file.read_text().replace(zotero.url, "http://127.0.0.1:9"))
    proc = _cli(["--settings", path, "sync"])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "cannot connect to Zotero at http://127.0.0.1:9" in err
    assert err.count("retry") <= 2  # two quick retries, no exponential backoff
    assert "back off" not in err
    engine = st.open_database(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    with st.connect(engine) as conn:
        assert (read_state(conn) or {}).get("backoff_until") is None
    assert "cannot connect" in runs(engine)[0]["error"]


def hold_write_lock(db_file, seconds: float, started: threading.Event) -> threading.Thread:
    """Another process's writer (a plain sqlite3 connection) holding the lock."""

    def hold() -> None:
        conn = sqlite3.connect(db_file, isolation_level=None, timeout=30)
        conn.execute("BEGIN IMMEDIATE")
        started.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def test_a_busy_database_makes_the_save_wait_and_say_so(synced, settings, library, zotero):
    edit(library)
    db_file = st.sqlite_path(settings["database"]["url"])
    started = threading.Event()
    holders: list[threading.Thread] = []
    # Once the group has been read (the last request of this run), a writer takes the lock.
    zotero.hook(
        lambda lib: holders.append(hold_write_lock(db_file, 1.5, started)), match="/groups/"
    )
    result = run_sync(synced, settings)
    for thread in holders:
        thread.join()
    assert started.is_set()
    assert_equal_to_source(synced, library)
    assert "the database was busy" in (result.note or "")
    assert "waited" in runs(synced)[0]["note"]


def test_a_database_busy_past_its_timeout_is_retried_not_lost(tmp_path, zotero, library):
    settings = make_settings(tmp_path, zotero)
    engine = st.create_db_engine(settings["database"]["url"])
    st.migrate(engine)

    @event.listens_for(engine, "connect")
    def short_timeout(dbapi_conn, _record):  # a server tuned to give up quickly
        dbapi_conn.execute("PRAGMA busy_timeout=100")

    engine.dispose()  # no connection from before the listener
    run_sync(engine, settings)
    edit(library)
    started = threading.Event()
    holders: list[threading.Thread] = []
    zotero.hook(
        lambda lib: holders.append(hold_write_lock(st.sqlite_path(str(engine.url)), 1.2, started)),
        match="/groups/",
    )
    result = run_sync(engine, settings)
    for thread in holders:
        thread.join()
    assert_equal_to_source(engine, library)
    row = runs(engine)[0]
    assert row["status"] == "ok" and row["save_retries"] >= 1
    assert "retried" in row["note"] and "retried" in result.note
    engine.dispose()


def test_a_pending_wait_within_max_wait_is_slept_through(synced, settings, library, zotero):
    edit(library)
    zotero.backoff(1.0)
    run_sync(synced, settings)
    with st.connect(synced) as conn:
        until = read_state(conn)["backoff_until"]
    assert isinstance(until, datetime)
    result = run_sync(synced, settings)  # waits the rest of the second, then asks
    assert result.status in ("ok", "unchanged")
    del until


def test_sync_state_backoff_is_utc(synced, settings, library, zotero):
    edit(library)
    zotero.backoff(3600, times=5)
    with pytest.raises(BackoffTooLong):
        run_sync(synced, settings)
    with st.connect(synced) as conn:
        until = conn.execute(select(st.sync_state.c.backoff_until)).scalar()
    assert timedelta(minutes=55) < until - st.utcnow() <= timedelta(hours=1)
