"""Attachments' full text through the stand-in: it appears, changes and disappears with
its attachment, by version; its parent is announced as changed; it can be turned off."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from biblio import events
from biblio import storage as st
from biblio.sync.run import run_sync
from tests.conftest import make_settings


def texts(engine) -> dict[str, dict]:
    ft = st.item_fulltext
    with st.connect(engine) as conn:
        rows = conn.execute(select(ft)).mappings().all()
    return {r["item_key"]: dict(r) for r in rows}


@pytest.fixture
def announced():
    """The ``changed`` sets the syncs announce (events.sync_saved)."""
    seen: list[set[str]] = []

    def receiver(_settings, *, conn, changed, full):
        seen.append(set(changed))

    events.sync_saved.connect(receiver)
    yield seen
    events.sync_saved.disconnect(receiver)


def test_the_first_sync_stores_each_text_under_its_parent(synced, library):
    stored = texts(synced)
    assert set(stored) == set(library.fulltext.records) and len(stored) == 3
    for key, row in stored.items():
        source = library.fulltext.records[key]
        assert row["content"] == source["content"]
        assert row["version"] == source["version"]
        assert row["parent_key"] == library.items[key]["parentItem"]
        assert row["content"].startswith("[Excerpt written for biblio's sample library")
    kendrick = stored["T4MZ7S7Q"]
    assert (kendrick["indexed_pages"], kendrick["total_pages"]) == (33, 33)
    assert kendrick["indexed_chars"] is None


def test_a_text_appears_changes_and_disappears_with_its_attachment(
    synced, settings, library, zotero, announced
):
    parent = next(k for k, d in library.items.items() if d.get("itemType") == "book")
    attachment = library.add_item(
        {"itemType": "attachment", "parentItem": parent, "linkMode": "imported_file"}
    )
    run_sync(synced, settings)
    assert attachment not in texts(synced)  # not indexed yet

    version = library.set_fulltext(attachment, "A phrase only the PDF holds", indexedPages=2)
    zotero.reset_counts()
    result = run_sync(synced, settings)
    row = texts(synced)[attachment]
    assert (row["content"], row["version"], row["parent_key"]) == (
        "A phrase only the PDF holds",
        version,
        parent,
    )
    assert parent in announced[-1] and result.counts.texts_changed == 1
    # Only what changed was fetched: the listing since the last version, then one text.
    fetched = [r.path for r in zotero.requests if r.path.endswith("/fulltext")]
    assert fetched == ["/groups/100001/fulltext", f"/groups/100001/items/{attachment}/fulltext"]
    since = next(r for r in zotero.requests if r.path.endswith("/groups/100001/fulltext"))
    assert since.query["since"] == str(version - 1)

    library.set_fulltext(attachment, "Re-indexed with different words", indexedPages=3)
    run_sync(synced, settings)
    assert texts(synced)[attachment]["content"] == "Re-indexed with different words"
    assert parent in announced[-1]

    library.delete_item(attachment)
    result = run_sync(synced, settings)
    assert attachment not in texts(synced)
    assert parent in announced[-1]
    assert set(texts(synced)) == set(library.fulltext.records)


def test_a_text_listed_then_gone_is_dropped(synced, settings, library, zotero, announced):
    key = "T4MZ7S7Q"
    parent = library.items[key]["parentItem"]
    library.set_fulltext(key, "changed once more")
    # Between the listing and the fetch, the attachment is deleted: the text answers 404.
    zotero.hook(lambda lib: lib.delete_item(key), match=f"/items/{key}/fulltext")
    run_sync(synced, settings)
    assert key not in texts(synced)
    assert parent in announced[-1]
    run_sync(synced, settings)  # the deletion itself arrives through /deleted
    assert key not in {k for k in texts(synced)}


def test_an_unchanged_library_asks_nothing_about_text(synced, settings, zotero):
    zotero.reset_counts()
    result = run_sync(synced, settings)
    assert result.status == "unchanged" and zotero.request_count == 2


def test_control_characters_in_a_text_are_not_stored(synced, settings, library):
    library.set_fulltext("T4MZ7S7Q", "page one\x00\x0c page two \ud800 end")
    run_sync(synced, settings)
    assert texts(synced)["T4MZ7S7Q"]["content"] == "page one page two  end"


def test_turned_off_no_text_is_asked_for_and_turned_on_it_catches_up(tmp_path, zotero, library):
    off = make_settings(tmp_path, zotero, sync={"fulltext": False})
    engine = st.open_database(off["database"]["url"])
    run_sync(engine, off)
    assert texts(engine) == {}
    assert not [r for r in zotero.requests if "fulltext" in r.path]
    zotero.reset_counts()
    on = make_settings(tmp_path, zotero, sync={"fulltext": True})
    result = run_sync(engine, on)  # the library itself has not changed: a 304
    assert result.status == "ok" and set(texts(engine)) == set(library.fulltext.records)
    assert result.counts.texts_changed == 3


def test_a_full_resync_fetches_only_texts_whose_version_moved(synced, settings, library, zotero):
    library.set_fulltext("RE4G8RFX", "a new version of one text")
    zotero.reset_counts()
    run_sync(synced, settings, full=True)
    fetched = [r.path for r in zotero.requests if r.path.endswith("/fulltext")]
    assert fetched == ["/groups/100001/fulltext", "/groups/100001/items/RE4G8RFX/fulltext"]
    assert texts(synced)["RE4G8RFX"]["content"] == "a new version of one text"
