"""``biblio backup`` and ``biblio restore``: what only biblio holds survives a round trip.

Join requests, owners, the audit log, reading lists, prong overrides and the owners'
review decisions are made through biblio's own code, backed up with the command line
(SQLite's online backup API, also while writers are busy), restored into another
database and compared row by row; the library is then re-synced through the stand-in.
Files that are not biblio backups, newer backups and databases in use are refused
with one line, and nothing is replaced.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from biblio import storage as st
from biblio.catalog.items import iter_items
from biblio.cli import cli
from biblio.membership import owners
from biblio.membership import requests as jr
from biblio.prongs.overrides import set_override
from biblio.prongs.store import review_queue
from biblio.reading_lists import add_items, create_list, set_note
from biblio.storage import backup as bk
from biblio.sync.run import run_sync
from tests.storage import writers
from tests.sync.test_run import assert_equal_to_source

#: Every table whose rows exist only in biblio's database.
GROUP_TABLES = (
    st.join_requests,
    st.owners,
    st.audit_log,
    st.reading_lists,
    st.reading_list_items,
    st.prong_overrides,
    st.outbox,
)


def group_snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of every table only biblio holds, in a stable order."""
    with st.connect(engine) as conn:
        return {
            t.name: sorted(tuple(map(repr, row)) for row in conn.execute(select(t)))
            for t in GROUP_TABLES
        }


def make_group_data(engine, settings) -> dict[str, object]:
    """One of everything the group owns, made the way the site makes it."""
    owners.create_owner(engine, "owner@example.org", "a long owner passphrase")
    ids = []
    for name in ("Ada", "Grace", "Katherine"):
        values, errors = jr.validate(
            {
                "name": name,
                "email": f"{name.lower()}@example.org",
                "zotero_username": name.lower(),
                "reason": "I study library labour and want to follow the group.",
                "consent": "yes",
            },
            ["pathways", "worker-equity"],
        )
        assert not errors
        ids.append(jr.submit(engine, settings, values, lambda t: f"/join/status/{t}").id)
    jr.decide(engine, settings, ids[0], "approve", "owner@example.org", "", 8000001)
    jr.decide(engine, settings, ids[1], "decline", "owner@example.org", "Not a researcher yet.")
    jr.set_note(engine, ids[2], "owner@example.org", "Asked for more detail.")
    key = next(iter_items(engine))["key"]
    slug, _token = create_list(engine, "Reading for the spring", "Start here.")
    add_items(engine, slug, [key])
    set_note(engine, slug, key, "Chapter 2 first.")
    set_override(engine, key, "pathways", "add", "owner@example.org", "core reading", settings)
    with st.connect(engine) as conn:
        doubts, before = review_queue(conn, limit=1)
    assert before > 0, "the sample library has borderline verdicts to review"
    decided = doubts[0]
    set_override(
        engine, decided["item_key"], decided["prong"], "remove", "owner@example.org", "review"
    )
    return {"slug": slug, "review_left": before - 1, "decided": decided}


def invoke(settings, *args: str, url: str | None = None):
    """``biblio ARGS`` with the test's settings (database ``url`` if given)."""
    env = {
        "BIBLIO_DATABASE__URL": url or settings["database"]["url"],
        "BIBLIO_ZOTERO__BASE_URL": settings["zotero"]["base_url"],
        "BIBLIO_SYNC__LOCK_FILE": settings["sync"]["lock_file"],
        "BIBLIO_MAIL__ENABLED": "false",
    }
    path = Path(settings["sync"]["lock_file"]).parent / "settings.toml"
    return CliRunner().invoke(cli, ["--settings", str(path), *args], env=env)


def one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_what_the_group_owns_survives_backup_and_restore_and_the_library_resyncs(
    synced, settings, library, tmp_path
):
    made = make_group_data(synced, settings)
    before = group_snapshot(synced)
    assert all(before.values()), "one of everything"
    file = tmp_path / "biblio-backup.sqlite3"
    done = invoke(settings, "backup", str(file))
    assert done.exit_code == 0, done.output
    assert "join requests: 3, owners: 1" in done.output and "reading lists: 1" in done.output
    assert file.stat().st_mode & 0o077 == 0, "owners' password hashes: readable by the owner only"

    # A new machine: an empty database restored from the file.
    url = f"sqlite:///{tmp_path / 'new' / 'biblio.sqlite3'}"
    restored = invoke(settings, "restore", str(file), url=url)
    assert restored.exit_code == 0, restored.output
    assert "biblio sync" in restored.output
    engine = st.open_database(url)
    assert group_snapshot(engine) == before
    with st.connect(engine) as conn:
        left = review_queue(conn, limit=500)
    assert left[1] == made["review_left"]
    decided = made["decided"]
    assert (decided["item_key"], decided["prong"]) not in {
        (r["item_key"], r["prong"]) for r in left[0]
    }

    # The library itself comes back from Zotero, changes made since the backup included.
    key = next(k for k, d in library.items.items() if not d.get("parentItem"))
    library.update_item(key, title="Edited after the backup")
    conf = {**settings, "database": {**settings["database"], "url": url}}
    result = run_sync(engine, type(settings)(conf))
    assert result.counts.updated >= 1
    assert_equal_to_source(engine, library)
    assert group_snapshot(engine) == before


def test_a_backup_taken_while_writers_write_is_a_consistent_snapshot(synced, settings, tmp_path):
    settings["mail"]["enabled"] = False
    stop = threading.Event()
    done: list[int] = []

    def write() -> None:
        n = 0
        while not stop.is_set():
            done.extend(writers.write(settings, f"b{n}", 1, synced).acknowledged)
            n += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        while len(done) < 5:
            threading.Event().wait(0.05)
        files = [tmp_path / f"during-{i}.sqlite3" for i in range(3)]
        for file in files:
            assert bk.backup(settings["database"]["url"], file).path == file
    finally:
        stop.set()
        thread.join()
    live = group_snapshot(synced)
    for file in files:
        with closing(sqlite3.connect(file)) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            requests = [r[0] for r in db.execute("SELECT id FROM join_requests ORDER BY id")]
            audited = {
                int(r[0].split(":")[1])
                for r in db.execute("SELECT subject FROM audit_log WHERE action = 'request.submit'")
            }
            mailed = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        assert requests, "the backup holds what was acknowledged before it"
        # A request, its audit row and its email were committed together: a snapshot has
        # all three or none, never a torn transaction.
        assert set(requests) == audited and mailed == len(requests)
        assert len(requests) <= len(live["join_requests"])


def test_backup_refuses_to_overwrite_a_file_without_force(synced, settings, tmp_path):
    file = tmp_path / "taken.sqlite3"
    file.write_text("someone's notes", encoding="utf-8")
    refused = invoke(settings, "backup", str(file))
    assert refused.exit_code == 1
    assert "exists" in one_error_line(refused) and "--force" in refused.output
    assert file.read_text(encoding="utf-8") == "someone's notes"
    forced = invoke(settings, "backup", str(file), "--force")
    assert forced.exit_code == 0, forced.output
    assert file.read_bytes().startswith(bk.SQLITE_MAGIC)
    missing = invoke(settings, "backup", str(tmp_path / "no" / "such" / "folder.sqlite3"))
    assert missing.exit_code == 1 and "does not exist" in one_error_line(missing)
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []


def test_restore_refuses_a_database_in_use_without_force(synced, settings, tmp_path):
    make_group_data(synced, settings)
    file = tmp_path / "backup.sqlite3"
    bk.backup(settings["database"]["url"], file)
    saved = group_snapshot(synced)
    writers.write(settings, "late", 1, synced)  # acknowledged after the backup
    now = group_snapshot(synced)
    refused = invoke(settings, "restore", str(file))
    assert refused.exit_code == 1
    assert "in use" in one_error_line(refused) and "--force" in refused.output
    assert group_snapshot(synced) == now
    forced = invoke(settings, "restore", str(file), "--force")
    assert forced.exit_code == 0, forced.output
    assert group_snapshot(synced) == saved  # the live file, while its engine is open


def test_restore_refuses_files_that_are_not_biblio_backups(synced, settings, tmp_path):
    good = tmp_path / "good.sqlite3"
    bk.backup(settings["database"]["url"], good)
    target = f"sqlite:///{tmp_path / 'target.sqlite3'}"

    text = tmp_path / "notes.txt"
    text.write_text("not a database\n", encoding="utf-8")
    other = tmp_path / "other.sqlite3"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE t (x)")
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    newer = tmp_path / "newer.sqlite3"
    newer.write_bytes(good.read_bytes())
    with closing(sqlite3.connect(newer)) as db:
        db.execute("INSERT INTO migrations VALUES ('9999_from_the_future', '2030-01-01')")
        db.commit()
    cases = {
        text: "not a SQLite database",
        other: "not a biblio database",
        damaged: "damaged",
        newer: "newer biblio",
        tmp_path / "absent.sqlite3": "no such backup file",
    }
    for file, needle in cases.items():
        result = invoke(settings, "restore", str(file), url=target)
        assert result.exit_code == 1, (file, result.output)
        assert needle in one_error_line(result), (file, result.output)
    assert not (tmp_path / "target.sqlite3").exists() or not bk.in_use(st.open_database(target))


def test_restore_migrates_an_older_backup(synced, settings, tmp_path):
    file = tmp_path / "old.sqlite3"
    bk.backup(settings["database"]["url"], file)
    with closing(sqlite3.connect(file)) as db:  # as made before 0004 shipped
        db.execute("DROP TABLE prong_doubts")
        db.execute("DELETE FROM migrations WHERE name = '0004_prong_doubts'")
        db.commit()
    url = f"sqlite:///{tmp_path / 'upgraded.sqlite3'}"
    result = invoke(settings, "restore", str(file), url=url)
    assert result.exit_code == 0, result.output
    assert "migrated: 0004_prong_doubts" in result.output
    with closing(sqlite3.connect(tmp_path / "upgraded.sqlite3")) as db:
        names = [r[0] for r in db.execute("SELECT name FROM migrations ORDER BY name")]
        assert db.execute("SELECT count(*) FROM prong_doubts").fetchone() == (0,)
    assert names == [name for name, _ in st.MIGRATIONS]


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_a_bad_database_url_is_bad_settings(settings, tmp_path, command):
    result = invoke(settings, command, str(tmp_path / "x"), url="nonsense://x")
    assert result.exit_code == 2 and "[database] url" in one_error_line(result)
