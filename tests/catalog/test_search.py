"""Search through the app on the synced sample library: word forms, relevance, snippets,
the query language, friendly errors, attachments' full text and the index migration.

Full text: the sync keeps attachments' text in ``item_fulltext`` (its own migration,
``0005_item_fulltext``). Where that table is absent these tests create it with the same
columns, fill it as the sync would, and let a real sync through the stand-in announce
the changed attachment, so the index is exercised exactly as in production.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from urllib.parse import urlencode

import pytest

from biblio import storage
from biblio.catalog import search
from biblio.storage import ddl
from biblio.storage.migrations import MIGRATIONS
from biblio.sync.run import run_sync


def found(client, q: str, **args) -> list[dict]:
    r = client.get("/items.json?" + urlencode({"q": q, "_size": 1000, **args}))
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["rows"]


def keys(client, q: str, **args) -> list[str]:
    return [row["key"] for row in found(client, q, **args)]


def test_word_forms_find_the_same_items(client):
    singular, plural = keys(client, "paraprofessional"), keys(client, "paraprofessionals")
    assert len(singular) >= 12 and set(singular) == set(plural)
    assert set(keys(client, "unionization")) == set(keys(client, "unions"))
    # Accents fold, prefixes and phrases still work.
    assert keys(client, "librar*") and set(keys(client, '"faculty status"')) <= set(
        keys(client, "faculty status")
    )


def test_a_search_is_sorted_by_relevance_unless_asked_otherwise(client):
    ranked = found(client, "faculty status")
    assert "faculty status" in ranked[0]["title"].lower()
    titled = [i for i, r in enumerate(ranked) if "faculty status" in r["title"].lower()]
    assert titled == list(range(len(titled)))  # every title match above the rest
    body = client.get("/items.json?q=faculty+status").get_json()
    assert body["description"].endswith('matching "faculty status", sorted by relevance')
    by_date = found(client, "faculty status", _sort="added")
    added = [r["date_added"] for r in by_date]
    assert added == sorted(added, reverse=True) and {r["key"] for r in by_date} == {
        r["key"] for r in ranked
    }
    # Without a search, "relevance" is the default order.
    assert (
        client.get("/items.json?_sort=relevance&_size=5")
        .get_json()["description"]
        .endswith("sorted by date added, newest first")
    )


def test_owning_faculty_status_is_no_longer_fifth(client):
    assert keys(client, "faculty status").index("7KH6FARE") < 2


def test_snippets_mark_the_matched_words_in_safe_html(client):
    rows = found(client, "abstract:phenomenological")
    snippet = rows[0]["snippet"]
    assert snippet["field"] == "abstract" and snippet["label"] == "In the abstract"
    assert "<mark>phenomenological</mark>" in snippet["html"].lower()
    html = client.get("/items?q=abstract:phenomenological").get_data(as_text=True)
    assert (
        '<p class="snippet snippet-abstract"><span class="snippet-source">In the abstract:</span>'
        in html
    )
    # A match in the title alone has no snippet: the title already shows it.
    assert found(client, "title:manifesto")[0]["snippet"] is None


def test_hostile_text_in_a_snippet_is_escaped_before_it_is_marked(library, tmp_path, zotero):
    from tests.web.test_browse import _fresh_client

    key = library.add_item(
        {
            "itemType": "book",
            "title": "Plain",
            "abstractNote": (
                '<script>alert(1)</script> the zymurgy <b onclick="x">of</b> \x02 \x03 brewing'
            ),
        }
    )
    client = _fresh_client(tmp_path, zotero)
    [row] = found(client, "zymurgy")
    assert row["key"] == key
    html = row["snippet"]["html"]
    assert "<script>" not in html and "<b " not in html and "&lt;script&gt;" in html
    assert html.count("<mark>") == html.count("</mark>") == 1
    page = client.get("/items?q=zymurgy").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    "q,check",
    [
        ("tenure OR unionization", lambda a, b: a >= b),
        ("faculty NOT tenure", lambda a, b: a < b),
        ("title:paraprofessional", lambda a, b: a < b),
    ],
)
def test_operators_and_fields_narrow_or_widen(client, q, check):
    base = q.split()[0].split(":")[-1]
    assert check(len(keys(client, q)), len(keys(client, base)))


def test_tag_and_creator_scopes(client, sample_data):
    item = next(i for i in sample_data["items"] if i.get("key") == "ZZTQEL7B")
    assert "ZZTQEL7B" in keys(client, 'tag:"vocational awe"')
    by_creator = keys(client, f"creator:{item['creators'][0]['lastName']}")
    assert "ZZTQEL7B" in by_creator and len(by_creator) < 5
    assert "ZZTQEL7B" not in keys(client, 'title:"vocational awe" -creator:ettarh')


@pytest.mark.parametrize(
    "q,message",
    [
        ("*", "A * on its own searches for nothing"),
        ("(tenure OR promotion", "An opening parenthesis is never closed"),
        ('"faculty status', "A quotation mark is never closed"),
        ("x" * 520, "at most 500 can be searched"),
    ],
)
def test_bad_syntax_is_explained_on_the_list_page_with_the_query_kept(client, q, message):
    r = client.get("/items?" + urlencode({"q": q, "prong": "pathways"}))
    assert r.status_code == 400 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert message in html
    kept = q.replace('"', "&#34;")
    assert f'value="{kept}"' in html  # the search box holds what was typed
    assert 'aria-invalid="true"' in html and "<title>400 · " in html
    assert '<option value="relevance" selected>' in html  # still a search, once fixed
    assert "where prong is Pathways" in html and 'class="items"' in html  # still a list
    j = client.get("/items.json?" + urlencode({"q": q}))
    body = j.get_json()
    assert j.status_code == 400 and body == {"ok": False, "error": body["error"], "status": 400}
    assert message in body["error"]


@pytest.mark.parametrize(
    "q", ["\x00", "a\x07b", "\ufffe", "NEAR(", "{title}: x", "a:b:c", "^x", "x" * 500]
)
def test_no_input_causes_a_server_error(client, q):
    for path in ("/items", "/items.json", "/items.atom", "/items.csv", "/bibliography"):
        r = client.get(path, query_string={"q": q})
        assert r.status_code in (200, 400), (path, q, r.status_code)


def test_attachment_full_text_is_found_on_its_parent_and_marked_as_such(
    library, settings, synced, client
):
    parent = "ZZTQEL7B"
    attachment = library.add_item(
        {
            "itemType": "attachment",
            "parentItem": parent,
            "linkMode": "imported_file",
            "title": "Full text PDF",
            "contentType": "application/pdf",
        }
    )
    run_sync(synced, settings)
    assert keys(client, "quixotically") == []
    # Zotero indexes the PDF; the sync fetches its text and re-indexes the parent.
    library.set_fulltext(attachment, "Workers quixotically defend the institution.")
    run_sync(synced, settings)
    [row] = found(client, "quixotic")  # word forms reach the full text too
    assert row["key"] == parent
    assert row["snippet"]["field"] == "fulltext" and row["snippet"]["label"] == "In the full text"
    assert "<mark>quixotically</mark>" in row["snippet"]["html"]
    html = client.get("/items?q=quixotically").get_data(as_text=True)
    assert 'class="snippet snippet-fulltext"' in html and "In the full text:" in html
    assert keys(client, "fulltext:quixotically") == [parent]
    assert keys(client, "title:quixotically") == []
    # Full text ranks below the metadata: a title match of the same word comes first.
    library.add_item({"itemType": "book", "title": "Quixotically Yours"})
    run_sync(synced, settings)
    assert found(client, "quixotically")[0]["title"] == "Quixotically Yours"
    # The attachment goes with its text; the sync names its parent as changed and the
    # index forgets the text.
    library.delete_item(attachment)
    run_sync(synced, settings)
    assert parent not in keys(client, "quixotically")


def test_a_long_note_does_not_bury_a_title_match(library, settings, synced, client):
    long_note = "<p>" + " ".join(["filler words about something else"] * 3000) + " xylograph</p>"
    short = library.add_item(
        {"itemType": "book", "title": "Abstracts", "abstractNote": "A xylograph."}
    )
    noted = library.add_item({"itemType": "book", "title": "The Xylograph"})
    library.add_item({"itemType": "note", "parentItem": noted, "note": long_note})
    run_sync(synced, settings)
    assert keys(client, "xylograph")[:2] == [noted, short]


def test_migration_0007_rebuilds_an_old_index_from_its_own_rows(synced, settings, tmp_path):
    """A cache from before 0007 (the FTS5 table without stemming or full text) upgrades
    on open, without a sync, and then finds word forms."""
    path = storage.sqlite_path(settings["database"]["url"])
    storage.dispose_all()
    with closing(sqlite3.connect(path)) as db:
        before = db.execute("SELECT count(*) FROM items_fts").fetchone()[0]
        rows = db.execute(
            "SELECT key, title, creators, abstract, publication, tags, notes FROM items_fts"
        ).fetchall()
        db.execute("DROP TABLE items_fts")
        db.execute("DROP TABLE items_rank")
        db.execute(
            "CREATE VIRTUAL TABLE items_fts USING fts5(key UNINDEXED, title, creators, "
            "abstract, publication, tags, notes, tokenize = 'unicode61 remove_diacritics 2', "
            "prefix = '2 3')"
        )
        db.executemany("INSERT INTO items_fts VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("DELETE FROM migrations WHERE name = '0007_search_v2'")
        db.commit()
        version = db.execute("SELECT library_version FROM sync_state").fetchone()
    engine = storage.open_database(settings["database"]["url"])
    with storage.connect(engine) as conn:
        assert ddl.fts_is_current(conn)
        assert conn.exec_driver_sql("SELECT count(*) FROM items_fts").scalar() == before
        assert (
            conn.exec_driver_sql(
                "SELECT count(*) FROM sync_state WHERE library_version = ?", version
            ).scalar()
            == 1
        )
        applied = conn.exec_driver_sql("SELECT name FROM migrations").scalars().all()
        assert "0007_search_v2" in applied and "0007_search_v2" in dict(MIGRATIONS)
        singular = {
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT key FROM items_fts WHERE items_fts MATCH ?",
                (search.fts_query("paraprofessionals"),),
            )
        }
        plural = {
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT key FROM items_fts WHERE items_fts MATCH ?",
                (search.fts_query("paraprofessional"),),
            )
        }
        assert singular == plural and len(singular) >= 12
        ranked = search.ranked_rowids(conn, "faculty status")
        assert ranked and min(score for _, score, _ in ranked) < 0  # items_rank was filled


@pytest.mark.postgres
def test_the_query_language_works_on_postgresql_titles_first(tmp_path, zotero, postgres_database):
    """Without FTS5 the same tree compiles to ILIKE: operators and scopes keep their
    meaning, and a search is ordered with title matches first."""
    from biblio import create_app
    from tests.conftest import make_settings

    url = postgres_database()
    settings = make_settings(tmp_path, zotero, database={"url": url})
    try:
        run_sync(storage.open_database(url), settings)
        client = create_app(settings).test_client()
        ranked = found(client, "faculty status")
        titled = [i for i, r in enumerate(ranked) if "faculty status" in r["title"].lower()]
        assert titled and titled == list(range(len(titled)))
        assert set(keys(client, "faculty NOT tenure")) < set(keys(client, "faculty"))
        assert set(keys(client, "tenure OR unions")) >= set(keys(client, "unions"))
        assert "ZZTQEL7B" in keys(client, 'tag:"vocational awe"')
        assert client.get("/items.json?q=(tenure").status_code == 400
    finally:
        storage.dispose_all()
