"""The stand-in's full-text endpoints (Zotero's version rules), its latency and the
faults that make answers incomplete or malformed, all through pyzotero and real HTTP."""

from __future__ import annotations

import json
import threading

import httpx2
import pytest
from pyzotero import zotero
from pyzotero import zotero_errors as ze

from biblio.standin.library import StandinLibrary
from biblio.standin.server import StandinServer
from biblio.standin.synthetic import synthetic_library


@pytest.fixture
def lib() -> StandinLibrary:
    library = StandinLibrary({"id": 42, "name": "Texts"})
    parent = library.add_item({"itemType": "book", "title": "A book"})
    library.add_items(
        [
            {
                "key": "PDF22222",
                "itemType": "attachment",
                "parentItem": parent,
                "linkMode": "imported_file",
                "contentType": "application/pdf",
            },
            {
                "key": "LINK3333",
                "itemType": "attachment",
                "parentItem": parent,
                "linkMode": "linked_url",
                "url": "https://example.org/",
            },
        ]
    )
    return library


@pytest.fixture
def srv(lib):
    with StandinServer(lib) as server:
        yield server


@pytest.fixture
def zot(srv, lib):
    z = zotero.Zotero(lib.group_id, "group")
    z.endpoint = srv.url
    yield z
    z.client.close()


def get(srv, path: str, **params) -> httpx2.Response:
    return httpx2.get(f"{srv.url}{path}", params=params)


def test_writing_a_text_is_a_library_write_and_the_text_takes_its_version(srv, lib):
    before = lib.version
    version = lib.set_fulltext("PDF22222", "Words inside the PDF", indexedPages=3, totalPages=4)
    assert version == lib.version == before + 1
    listed = get(srv, "/groups/42/fulltext", since=before)
    assert listed.json() == {"PDF22222": version}
    assert listed.headers["Last-Modified-Version"] == str(lib.version)
    assert get(srv, "/groups/42/fulltext", since=version).json() == {}
    assert get(srv, "/groups/42/fulltext").json() == {"PDF22222": version}  # since defaults to 0
    lib.update_item("PDF22222", title="renamed")  # an item write does not touch the text
    text = get(srv, "/groups/42/items/PDF22222/fulltext")
    assert text.json() == {"content": "Words inside the PDF", "indexedPages": 3, "totalPages": 4}
    assert text.headers["Last-Modified-Version"] == str(version)


def test_pyzotero_reads_both_full_text_endpoints(zot, lib):
    version = lib.set_fulltext("PDF22222", "Indexed", indexedChars=7, totalChars=7)
    assert zot.new_fulltext(0) == {"PDF22222": version}
    assert zot.fulltext_item("PDF22222") == {
        "content": "Indexed",
        "indexedChars": 7,
        "totalChars": 7,
    }


def test_only_stored_attachments_have_text_and_404_otherwise(srv, lib):
    parent = next(k for k, d in lib.items.items() if d["itemType"] == "book")
    with pytest.raises(ValueError):
        lib.set_fulltext("LINK3333", "a link has no file")
    with pytest.raises(ValueError):
        lib.set_fulltext(parent, "a book is not an attachment")
    for key in ("PDF22222", "LINK3333", parent, "ZZZZZZZZ"):  # no text yet, or never
        assert get(srv, f"/groups/42/items/{key}/fulltext").status_code == 404


def test_deleting_an_attachment_deletes_its_text(srv, lib):
    lib.set_fulltext("PDF22222", "soon gone")
    lib.delete_item("PDF22222")
    assert get(srv, "/groups/42/fulltext").json() == {}
    assert get(srv, "/groups/42/items/PDF22222/fulltext").status_code == 404


def test_texts_round_trip_through_the_library_file(tmp_path, lib):
    version = lib.set_fulltext("PDF22222", "kept in the file", indexedPages=1, totalPages=1)
    path = tmp_path / "lib.json"
    lib.save(path)
    again = StandinLibrary.from_file(path)
    assert again.fulltext_since(0) == (lib.version, {"PDF22222": version})
    assert again.get_fulltext("PDF22222")["content"] == "kept in the file"


def test_texts_in_a_file_without_versions_are_written_after_the_items():
    data = {
        "group": {"id": 7},
        "items": [
            {"key": "BOOK2222", "itemType": "book", "title": "B"},
            {
                "key": "FILE2222",
                "itemType": "attachment",
                "parentItem": "BOOK2222",
                "linkMode": "imported_file",
            },
        ],
        "fulltext": {"FILE2222": {"content": "text", "indexedPages": 2, "totalPages": 2}},
    }
    lib = StandinLibrary.from_dict(data)
    items_version = max(d["version"] for d in lib.items.values())
    assert (
        lib.fulltext_since(0)[1] == {"FILE2222": items_version + 1}
        and lib.version == items_version + 1
    )


def test_synthetic_libraries_can_carry_attachment_text():
    lib = synthetic_library(2000, seed=3, children_ratio=0.4, fulltext=50)
    version, texts = lib.fulltext_since(0)
    assert len(texts) == 50 and version == lib.version
    assert all(lib.items[k]["linkMode"] == "imported_file" for k in texts)
    with pytest.raises(ValueError, match="only"):
        synthetic_library(100, fulltext=1000)


def test_latency_delays_every_answer_fixed_or_jittered(srv):
    srv.latency(0.2)
    get(srv, "/groups/42/items")
    get(srv, "/groups/42/collections")
    assert all(r.duration_ms >= 200 for r in srv.requests)
    srv.latency(0.2, jitter=0.1)
    delays = {srv._delay() for _ in range(50)}
    assert all(0.1 <= d <= 0.3 for d in delays) and len(delays) > 40
    srv.latency(0)
    with pytest.raises(ValueError):
        srv.latency(-1)


def test_peak_concurrency_counts_overlapping_requests(srv):
    srv.latency(0.3)
    threads = [threading.Thread(target=get, args=(srv, "/groups/42/items")) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert srv.peak_concurrency == 3
    srv.reset_counts()
    get(srv, "/groups/42/items")
    assert srv.peak_concurrency == 1


def test_incomplete_answers_leave_objects_out_with_headers_unchanged(zot, srv, lib):
    keys = ",".join(sorted(lib.items))
    srv.incomplete()
    assert zot.items(itemKey=keys) == []
    srv.incomplete(keep=1, match="itemKey")
    assert len(zot.items(itemKey=keys)) == 1
    assert len(zot.items(itemKey=keys)) == 3  # the fault was used up
    assert srv.requests[0].fault == "incomplete"


def test_deleted_can_be_answered_empty_or_malformed(zot, srv):
    srv.malformed_deleted()
    assert get(srv, "/groups/42/deleted", since=0).json() == {}
    srv.malformed_deleted(b'{"items": "ABCD2345"}', times=2)
    assert json.loads(get(srv, "/groups/42/deleted", since=0).content) == {"items": "ABCD2345"}
    assert zot.deleted(since=0) == {"items": "ABCD2345"}
    assert set(zot.deleted(since=0)) == {"collections", "searches", "items", "tags", "settings"}


def test_fulltext_of_a_missing_text_is_an_error_for_pyzotero(zot):
    with pytest.raises(ze.ResourceNotFoundError):
        zot.fulltext_item("PDF22222")
