"""``biblio backup`` and ``biblio restore`` on a real PostgreSQL server (``pg_dump`` and
``pg_restore``): the same round trip as on SQLite.

Runs where ``BIBLIO_TEST_POSTGRES_URL`` names a database on a server where its user may
create databases (``.ci/run`` starts one); each test works in a database of its own,
so it never disturbs the other PostgreSQL tests running beside it.
"""

from __future__ import annotations

import subprocess

import pytest

from biblio import storage as st
from biblio.storage import backup as bk
from biblio.sync.run import run_sync
from tests.conftest import make_settings
from tests.storage.test_backup import group_snapshot, invoke, make_group_data, one_error_line
from tests.sync.test_run import assert_equal_to_source

pytestmark = pytest.mark.postgres


@pytest.fixture
def databases(postgres_database):
    """Two fresh databases on the test server: (live URL, restore URL)."""
    return [postgres_database(), postgres_database()]


def test_what_the_group_owns_survives_pg_dump_and_pg_restore(databases, tmp_path, zotero, library):
    live_url, new_url = databases
    settings = make_settings(tmp_path, zotero, database={"url": live_url})
    live = st.open_database(live_url)
    run_sync(live, settings)
    make_group_data(live, settings)
    before = group_snapshot(live)

    file = tmp_path / "biblio.pgdump"
    done = invoke(settings, "backup", str(file))
    assert done.exit_code == 0, done.output
    assert file.read_bytes().startswith(bk.PG_DUMP_MAGIC)
    assert file.stat().st_mode & 0o077 == 0
    listing = subprocess.run(
        [bk.postgres_tool("pg_restore"), "--list", str(file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "TABLE DATA public join_requests" in listing

    restored = invoke(settings, "restore", str(file), url=new_url)
    assert restored.exit_code == 0, restored.output
    engine = st.open_database(new_url)
    assert group_snapshot(engine) == before
    new_settings = make_settings(tmp_path, zotero, database={"url": new_url})
    key = next(k for k, d in library.items.items() if not d.get("parentItem"))
    library.update_item(key, title="Edited after the dump")
    assert run_sync(engine, new_settings).counts.updated >= 1
    assert_equal_to_source(engine, library)
    assert group_snapshot(engine) == before

    # The restored database is now in use: replacing it needs --force.
    refused = invoke(settings, "restore", str(file), url=new_url)
    assert refused.exit_code == 1 and "--force" in one_error_line(refused)
    forced = invoke(settings, "restore", str(file), "--force", url=new_url)
    assert forced.exit_code == 0, forced.output
    assert group_snapshot(engine) == before


def test_a_sqlite_backup_is_refused_by_postgresql_and_the_reverse(databases, tmp_path, zotero):
    live_url, _ = databases
    settings = make_settings(tmp_path, zotero, database={"url": live_url})
    st.open_database(live_url)
    dump = tmp_path / "biblio.pgdump"
    assert invoke(settings, "backup", str(dump)).exit_code == 0
    sqlite_url = f"sqlite:///{tmp_path / 'biblio.sqlite3'}"
    wrong = invoke(settings, "restore", str(dump), url=sqlite_url)
    assert wrong.exit_code == 1 and "PostgreSQL dump" in one_error_line(wrong)
    copy = tmp_path / "copy.sqlite3"
    st.open_database(sqlite_url)
    assert invoke(settings, "backup", str(copy), url=sqlite_url).exit_code == 0
    other = invoke(settings, "restore", str(copy), url=live_url)
    assert other.exit_code == 1 and "SQLite backup" in one_error_line(other)
