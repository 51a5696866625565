"""Zotero's answers are checked for completeness: a batch or page that leaves objects
out, or a /deleted without its shape, is retried, and if it persists the run fails
without moving the library version; a passing glitch costs one retry."""

from __future__ import annotations

import pytest

from biblio.sync.client import SyncError
from biblio.sync.run import run_sync
from tests.sync.test_run import assert_equal_to_source, cache_snapshot, runs


def edit_some(library, n: int = 3) -> list[str]:
    keys = sorted(k for k, d in library.items.items() if not d.get("parentItem"))[:n]
    for key in keys:
        library.update_item(key, title=f"edited {key}")
    return keys


INCOMPLETE = {
    "batch answered with []": lambda z, times: z.incomplete(keep=0, times=times, match="itemKey"),
    "batch missing keys": lambda z, times: z.incomplete(keep=1, times=times, match="itemKey"),
    "/deleted answered {}": lambda z, times: z.malformed_deleted(b"{}", times=times),
    "/deleted with a list missing": lambda z, times: z.malformed_deleted(
        b'{"collections": [], "items": [], "tags": [], "searches": []}', times=times
    ),
    "/deleted items not a list": lambda z, times: z.malformed_deleted(
        b'{"collections": [], "items": "ABCD2345", "tags": [], "searches": [], "settings": []}',
        times=times,
    ),
    "/deleted with a malformed key": lambda z, times: z.malformed_deleted(
        b'{"collections": [], "items": ["../etc"], "tags": [], "searches": [], "settings": []}',
        times=times,
    ),
    "/deleted not JSON": lambda z, times: z.malformed_deleted(b"<html>busy</html>", times=times),
}


@pytest.mark.parametrize("fault", INCOMPLETE, ids=list(INCOMPLETE))
def test_a_persistently_incomplete_answer_fails_the_run_without_moving_the_version(
    synced, settings, library, zotero, fault
):
    before = cache_snapshot(synced)
    edit_some(library)
    INCOMPLETE[fault](zotero, 100)
    with pytest.raises(SyncError, match="failed after 6 attempt"):
        run_sync(synced, settings)
    assert cache_snapshot(synced) == before
    failed = runs(synced)[0]
    assert failed["status"] == "failed" and failed["to_version"] is None
    assert "\n" not in failed["error"]
    zotero.clear_faults()
    run_sync(synced, settings)
    assert_equal_to_source(synced, library)


@pytest.mark.parametrize("fault", INCOMPLETE, ids=list(INCOMPLETE))
def test_a_passing_glitch_is_retried_and_the_run_succeeds(synced, settings, library, zotero, fault):
    edit_some(library)
    INCOMPLETE[fault](zotero, 1)
    result = run_sync(synced, settings)
    assert result.status == "ok"
    assert zotero.pending_faults == 0
    assert_equal_to_source(synced, library)


def test_a_short_page_in_a_full_sync_is_retried(engine, settings, library, zotero):
    zotero.incomplete(keep=10, match="start=100")
    result = run_sync(engine, settings)
    assert_equal_to_source(engine, library)
    pages = [r for r in zotero.requests if r.query.get("start") == "100"]
    assert [r.fault for r in pages] == ["incomplete", None] and result.status == "ok"


def test_a_page_that_stays_short_fails_the_first_sync_and_saves_nothing(engine, settings, zotero):
    zotero.incomplete(keep=0, times=100, match="start=100")
    with pytest.raises(SyncError, match="Total-Results promised"):
        run_sync(engine, settings)
    assert cache_snapshot(engine)["items"] == {}
    assert cache_snapshot(engine)["version"] is None


def test_a_key_deleted_while_its_batch_was_read_restarts_the_run(synced, settings, library, zotero):
    keys = edit_some(library, 5)
    # The batch asks for keys[0]; Zotero deletes it first, so the answer (at a newer
    # library version) leaves it out: the run starts again and learns of the deletion.
    zotero.hook(lambda lib: lib.delete_item(keys[0]), match="itemKey")
    result = run_sync(synced, settings)
    assert result.restarts == 1
    assert_equal_to_source(synced, library)
    assert keys[0] not in cache_snapshot(synced)["items"]
