"""Browse pages through the Flask test client: every route and format, facets, full-text
search, sorting, pagination, 400s for bad parameters, Connector metadata, and that hostile
Zotero values never reach a page unescaped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest

from biblio import create_app
from biblio.sync.run import run_sync
from tests.conftest import make_settings

ATOM = "{http://www.w3.org/2005/Atom}"


def _json(client, url, status=200):
    r = client.get(url)
    assert r.status_code == status, (url, r.data[:300])
    assert r.is_json
    return r.get_json()


def _all_rows(client, url):
    rows, nxt = [], url
    while nxt:
        body = _json(client, nxt)
        rows += body["rows"]
        nxt = body["next"] and urlsplit(body["next"])._replace(scheme="", netloc="").geturl()
    return rows


def test_list_json_envelope_counts_and_pagination(client, sample_data):
    body = _json(client, "/items.json?_size=7")
    assert body["ok"] is True and body["count"] > 100
    assert len(body["rows"]) == 7 and body["next"].startswith("http://localhost/items.json?")
    rows = _all_rows(client, "/items.json?_size=40")
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == body["count"]
    top_level = {
        i["key"]
        for i in sample_data["items"]
        if i["itemType"] not in ("note", "attachment", "annotation")
        and not i.get("parentItem")
        and not i.get("deleted")
    }
    assert set(keys) == top_level


@pytest.mark.parametrize(
    "sort,key,reverse",
    [
        ("title", lambda r: r["title"].lower(), False),
        ("-title", lambda r: r["title"].lower(), True),
        ("added", lambda r: r["date_added"], True),
        ("-added", lambda r: r["date_added"], False),
    ],
)
def test_sorting(client, sort, key, reverse):
    rows = _json(client, f"/items.json?_sort={sort}&_size=1000")["rows"]
    values = [key(r) for r in rows]
    assert values == sorted(values, reverse=reverse)


def test_sort_by_year_puts_undated_last(client):
    years = [r["year"] for r in _json(client, "/items.json?_sort=year&_size=1000")["rows"]]
    dated = [y for y in years if y is not None]
    assert dated == sorted(dated) and years[: len(dated)] == dated


def test_prong_filter_and_sentence(client):
    everything = _json(client, "/items.json?_size=1000")["rows"]
    expected = {r["key"] for r in everything if "pathways" in r["prongs"]}
    body = _json(client, "/items.json?prong=pathways&_sort=year&_size=1000")
    assert {r["key"] for r in body["rows"]} == expected and body["count"] == len(expected)
    assert body["description"] == (
        f"{len(expected)} items where prong is Pathways, sorted by year, oldest first"
    )
    html = client.get("/items?prong=pathways&_sort=year").get_data(as_text=True)
    assert f"{len(expected)} items where prong is Pathways, sorted by year" in html


def test_facets_count_and_toggle(client):
    html = client.get("/items").get_data(as_text=True)
    for label in ("Prong", "Collection", "Item type", "Decade", "Tag", "Creator"):
        assert f">{label}</h2>" in html
    # The item-type facet's count equals the filtered list's count.
    m = re.search(
        r'<a href="(/items\?type=journalArticle)"[^>]*>\s*Journal Article</a>\s*'
        r'<span class="facet-count">(\d+)</span>',
        html,
    )
    assert m, "journal article facet value"
    body = _json(client, "/items.json?type=journalArticle")
    assert body["count"] == int(m.group(2))
    # Selected values link back to the unfiltered list.
    selected = client.get("/items?type=journalArticle").get_data(as_text=True)
    assert 'href="/items" aria-current="true"' in selected


def test_collection_filter_includes_subcollections(client, sample_data):
    colls = {c["key"]: c for c in sample_data["collections"]}
    parent = next(
        k for k, c in colls.items() if any(d.get("parentCollection") == k for d in colls.values())
    )
    tree = {parent} | {k for k, c in colls.items() if c.get("parentCollection") == parent}
    tree |= {k for k, c in colls.items() if c.get("parentCollection") in tree}
    expected = {
        i["key"]
        for i in sample_data["items"]
        if set(i.get("collections") or []) & tree
        and not i.get("parentItem")
        and i["itemType"] not in ("note", "attachment")
        and not i.get("deleted")
    }
    rows = _json(client, f"/items.json?collection={parent}&_size=1000")["rows"]
    assert {r["key"] for r in rows} == expected
    html = client.get(f"/items?collection={parent}").get_data(as_text=True)
    assert f"where collection is {colls[parent]['name']}".replace("&", "&amp;") in html


def test_year_and_decade(client):
    rows = _json(client, "/items.json?decade=2010&_size=1000")["rows"]
    assert rows and all(2010 <= r["year"] <= 2019 for r in rows)
    year = rows[0]["year"]
    assert all(r["year"] == year for r in _json(client, f"/items.json?year={year}")["rows"])


def test_fulltext_prefix_phrase_and_fields(client, sample_data):
    prefix = _json(client, "/items.json?q=librar*&_size=1000")["count"]
    exact = _json(client, "/items.json?q=library&_size=1000")["count"]
    assert prefix > exact > 0
    phrase = _json(client, '/items.json?q="faculty status"&_size=1000')["rows"]
    words = _json(client, "/items.json?q=faculty status&_size=1000")["rows"]
    assert phrase and {r["key"] for r in phrase} <= {r["key"] for r in words}
    # Tags and creators are searched too.
    tag = next(
        t["tag"]
        for i in sample_data["items"]
        for t in i.get("tags") or []
        if " " not in t["tag"] and t["tag"].isalpha()
    )
    assert _json(client, f"/items.json?q={tag}")["count"] > 0


def test_search_finds_child_note_text_on_the_parent(library, tmp_path, zotero):
    parent = library.add_item({"itemType": "book", "title": "A plain title", "creators": []})
    library.add_item(
        {
            "itemType": "note",
            "parentItem": parent,
            "note": "<p>Mentions the word zanzibarite only here.</p>",
        }
    )
    client = _fresh_client(tmp_path, zotero)
    rows = _json(client, "/items.json?q=zanzibarite")["rows"]
    assert [r["key"] for r in rows] == [parent]
    # An incremental sync re-indexes the parent when its note changes.
    note = [k for k, v in library.items.items() if v.get("parentItem") == parent][0]
    library.update_item(note, note="<p>Now it says quokkaology.</p>")
    run_sync(client.application.extensions["biblio.engine"], client.application.config["BIBLIO"])
    assert _json(client, "/items.json?q=zanzibarite")["count"] == 0
    assert [r["key"] for r in _json(client, "/items.json?q=quokka*")["rows"]] == [parent]


@pytest.mark.parametrize(
    "url,needle",
    [
        ("/items.json?prong=nope", "unknown prong"),
        ("/items.json?year=abc", "year must be a whole number"),
        ("/items.json?decade=1995", "decade must be a year ending in 0"),
        ("/items.json?_size=1000000000", "_size must be between"),
        ("/items.json?_size=0", "_size must be between"),
        ("/items.json?_next=garbage!!", "is not a page token"),
        ("/items.json?_sort=colour", "unknown _sort"),
        ('/items.json?q="', "quotation mark is never closed"),
        ("/items.json?q=***", "A * on its own"),
        ("/items.json?q=-", "no words to search for"),
        ("/items.json?q=(tenure", "parenthesis is never closed"),
        ("/items.atom?prong=nope", "unknown prong"),
    ],
)
def test_bad_parameters_are_400_with_a_message(client, url, needle):
    if ".json" in url:
        body = _json(client, url, status=400)
        assert body == {"ok": False, "error": body["error"], "status": 400}
        assert needle in body["error"]
    else:
        r = client.get(url)
        assert r.status_code == 400 and needle in r.get_data(as_text=True)


def test_bad_parameters_html_page(client):
    r = client.get("/items?year=abc")
    assert r.status_code == 400 and "text/html" in r.content_type
    assert "year must be a whole number" in r.get_data(as_text=True)


@pytest.mark.parametrize(
    "q",
    [
        'a"b',
        "NEAR(x y)",
        "title:foo",
        "-x",
        "x OR",
        "^start",
        "(",
        "*a",
        "AND",
        "o'brien",
        "ünïcödé",
        "x" * 400,
    ],
)
def test_search_never_fails_on_fts_syntax(client, q):
    r = client.get("/items.json", query_string={"q": q})
    assert r.status_code in (200, 400) and r.is_json


def test_item_page_and_json(client, sample_data):
    item = next(
        i
        for i in sample_data["items"]
        if i.get("DOI") and i.get("tags") and i.get("abstractNote") and not i.get("parentItem")
    )
    r = client.get(f"/items/{item['key']}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert item["abstractNote"][:40].replace("&", "&amp;").replace("'", "&#39;") in html
    assert f'href="https://doi.org/{item["DOI"]}"' in html
    assert '<meta name="citation_title"' in html and 'class="Z3988"' in html
    assert 'meta name="citation_doi" content="' + item["DOI"] in html
    for tag in item["tags"][:3]:
        assert "/items?tag=" in html
    body = _json(client, f"/items/{item['key']}.json")
    row = body["rows"][0]
    assert body["count"] == 1 and row["key"] == item["key"] and row["doi"] == item["DOI"]
    assert row["url"] == f"http://localhost/items/{item['key']}"


def test_item_page_shows_prongs_with_reasons_and_citation(client):
    rows = _json(client, "/items.json?prong=worker-equity&_size=5")["rows"]
    body = _json(client, f"/items/{rows[0]['key']}.json")
    assert "worker-equity" in [p["prong"] for p in body["rows"][0]["prongs"]]
    html = client.get(f"/items/{rows[0]['key']}").get_data(as_text=True)
    assert "Research prongs" in html and 'class="reasons"' in html
    if body["rows"][0]["citation"]:  # the citation layer is present
        assert "Cite as" in html and 'data-copy="citation"' in html
        other = client.get(f"/items/{rows[0]['key']}?_style=modern-language-association")
        assert other.status_code == 200
    assert client.get(f"/items/{rows[0]['key']}?_style=no-such-style").status_code == 400


def test_missing_items_are_404(client):
    assert _json(client, "/items/ZZZZZZZZ.json", status=404)["ok"] is False
    assert client.get("/items/ZZZZZZZZ").status_code == 404
    assert client.get("/items/not-a-key").status_code == 404


def test_atom_feed_overall_and_per_prong_and_tag(client):
    r = client.get("/items.atom")
    assert r.status_code == 200 and r.mimetype == "application/atom+xml"
    feed = ET.fromstring(r.data)
    entries = feed.findall(f"{ATOM}entry")
    assert 0 < len(entries) <= 50
    updated = [e.find(f"{ATOM}updated").text for e in entries]
    assert updated == sorted(updated, reverse=True)
    link = entries[0].find(f"{ATOM}link").get("href")
    assert client.get(urlsplit(link).path).status_code == 200
    prong = ET.fromstring(client.get("/items.atom?prong=pathways").data)
    for e in prong.findall(f"{ATOM}entry"):
        assert "pathways" in [c.get("term") for c in e.findall(f"{ATOM}category")]
    assert "where prong is Pathways" in prong.find(f"{ATOM}title").text
    tagged = ET.fromstring(client.get("/items.atom?tag=diversity").data)
    for e in tagged.findall(f"{ATOM}entry"):
        assert "diversity" in [c.get("term") for c in e.findall(f"{ATOM}category")]


def test_landing_prongs_chart_and_status(client):
    html = client.get("/").get_data(as_text=True)
    for text in (
        "Research prongs",
        "Recently added",
        "How to join",
        "Last synced",
        'href="/join"',
        "<svg",
        "<table",
        "application/atom+xml",
    ):
        assert text in html
    for pid in ("mlis-access", "pathways", "worker-equity"):
        assert f"/items?prong={pid}" in html
    prongs = _json(client, "/prongs.json")
    assert [p["id"] for p in prongs["rows"]] == ["mlis-access", "pathways", "worker-equity"]
    for p in prongs["rows"]:
        assert p["count"] == _json(client, f"/items.json?prong={p['id']}")["count"]
        assert sum(row[p["id"]] for row in prongs["per_year"]) <= p["count"]
    assert client.get("/prongs").status_code == 200
    status = client.get("/-/sync").get_data(as_text=True)
    assert "Library version" in status and "Recent runs" in status and ">ok" in status
    assert _json(client, "/-/sync.json")["runs"][0]["status"] == "ok"


def test_public_pages_set_no_cookie_and_carry_security_headers(client, sample_data):
    key = next(i["key"] for i in sample_data["items"] if not i.get("parentItem"))
    for url in (
        "/",
        "/items",
        "/items.json",
        f"/items/{key}",
        f"/items/{key}.json",
        "/prongs",
        "/items.atom",
        "/-/sync",
        "/items?year=abc",
    ):
        r = client.get(url)
        assert "Set-Cookie" not in r.headers, url
        assert "default-src 'self'" in r.headers["Content-Security-Policy"]


def test_list_links_are_shareable_get_urls(client):
    html = client.get("/items?prong=pathways&_sort=title&_size=5").get_data(as_text=True)
    nxt = re.search(r'<a rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    args = parse_qs(urlsplit(nxt).query)
    assert args["prong"] == ["pathways"] and args["_sort"] == ["title"] and "_next" in args
    page2 = client.get(nxt).get_data(as_text=True)
    assert 'rel="prev"' in page2 and "Showing 6–10" in page2


def _fresh_client(tmp_path, zotero):
    settings = make_settings(tmp_path, zotero)
    from biblio import storage

    run_sync(storage.open_database(settings["database"]["url"]), settings)
    app = create_app(settings)
    app.config.update(TESTING=True)
    return app.test_client()


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.seen = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, dict(attrs)))


HOSTILE = '<script>alert("x")</script><img src=x onerror="alert(1)">'


def test_hostile_zotero_values_are_escaped(library, tmp_path, zotero):
    key = library.add_item(
        {
            "itemType": "journalArticle",
            "title": f"Rich <i>italic</i> <b>bold</b> H<sub>2</sub>O x<sup>2</sup> "
            f'<span class="nocase">iPhone</span> '
            f'<span style="font-variant:small-caps;">Caps</span> {HOSTILE}',
            "creators": [{"creatorType": "author", "lastName": HOSTILE, "firstName": "Eve"}],
            "abstractNote": f"Abstract {HOSTILE}",
            "publicationTitle": HOSTILE,
            "url": "javascript:alert(1)",
            "DOI": HOSTILE,
            "tags": [{"tag": HOSTILE}],
            "date": "2020",
        }
    )
    library.add_item(
        {
            "itemType": "note",
            "parentItem": key,
            "note": f'<p>Note <a href="javascript:alert(1)">link</a> {HOSTILE}</p>',
        }
    )
    library.update_group(description=f"<p>Group <b>description</b> {HOSTILE}</p>")
    client = _fresh_client(tmp_path, zotero)
    pages = [
        f"/items/{key}",
        "/items",
        "/",
        "/items?q=italic",
        f"/items/{key}.json",
        "/items.json",
        "/items.atom",
        f"/items?tag={HOSTILE}",
    ]
    for url in pages:
        r = client.get(url)
        assert r.status_code == 200, url
        text = r.get_data(as_text=True)
        if url.endswith((".json", ".atom")):
            assert "<script" not in text and "<img" not in text, url  # JSON escapes "<"
            continue
        tags = _Tags()
        tags.feed(text)
        assert [t for t, _ in tags.seen if t in ("img", "iframe", "object")] == [], url
        lists_js = {"src": "/static/lists.js", "defer": None}
        scripts = [
            a for t, a in tags.seen if t == "script" and a.get("type") != "application/ld+json"
        ]
        assert scripts in (
            [lists_js],
            [lists_js, {"src": "/static/copy.js", "defer": None}],
            [lists_js, {"src": "/static/filters.js", "defer": None}],
        ), url
        for tag, attrs in tags.seen:
            assert not any(name.startswith("on") for name in attrs), (url, tag, attrs)
            assert "javascript:" not in (attrs.get("href") or ""), (url, tag, attrs)
    html = client.get(f"/items/{key}").get_data(as_text=True)
    assert (
        "Rich <i>italic</i> <b>bold</b> H<sub>2</sub>O x<sup>2</sup> "
        '<span class="nocase">iPhone</span> <span class="smallcaps">Caps</span>'
    ) in html
    assert "Group <b>description</b>" in client.get("/").get_data(as_text=True)
    # JSON carries the raw Zotero value, safely encoded as a JSON string.
    body = _json(client, f"/items/{key}.json")
    assert HOSTILE in body["rows"][0]["data"]["title"]


def test_list_page_links_exports_with_its_filters(client):
    html = client.get("/items?prong=pathways&type=journalArticle&_sort=title&_size=5")
    html = html.get_data(as_text=True).replace("&amp;", "&")
    for path in (
        "/items.bib",
        "/items.ris",
        "/items.csljson",
        "/items.csv",
        "/items.xlsx",
        "/items.txt",
        "/items.rtf",
        "/items.docx",
        "/bibliography",
    ):
        links = re.findall(rf'href="({re.escape(path)}\?[^"]*)"', html)
        assert links, path
        args = parse_qs(urlsplit(links[0]).query)
        # The filters travel; the page's own sort, size and page token do not.
        assert args == {"prong": ["pathways"], "type": ["journalArticle"]}, links[0]
        assert client.get(links[0]).status_code == 200, links[0]
    styled = re.findall(r'href="(/bibliography\?[^"]*_style=[^"]*)"', html)
    assert styled and parse_qs(urlsplit(styled[0]).query)["prong"] == ["pathways"]
    unfiltered = client.get("/items").get_data(as_text=True)
    assert 'href="/items.bib"' in unfiltered and 'href="/bibliography"' in unfiltered


def test_item_page_links_cite_and_reading_lists(client):
    key = _json(client, "/items.json?_size=1")["rows"][0]["key"]
    html = client.get(f"/items/{key}").get_data(as_text=True)
    assert f'href="/items/{key}/cite"' in html and f'href="/lists/add?key={key}"' in html
    assert client.get(f"/items/{key}/cite").status_code == 200


def test_prong_labels_on_pages_ids_in_urls_and_json(app, client):
    from biblio.prongs import load_rules

    labels = {p.id: p.label for p in load_rules(app.config["BIBLIO"]).prongs}
    assert labels["pathways"] != "pathways"
    row = _json(client, "/items.json?prong=pathways&_size=1")["rows"][0]
    assert "pathways" in row["prongs"]  # JSON keeps ids
    badge = f'<a class="prong prong-pathways" href="/items?prong=pathways">{labels["pathways"]}</a>'
    assert badge in client.get("/items?prong=pathways").get_data(as_text=True)
    assert badge in client.get(f"/items/{row['key']}").get_data(as_text=True)


def test_list_caches_follow_syncs_retags_and_overrides(library, tmp_path, zotero):
    from sqlalchemy import update

    from biblio import storage
    from biblio.prongs.overrides import set_override

    client = _fresh_client(tmp_path, zotero)
    app = client.application
    engine, settings = app.extensions["biblio.engine"], app.config["BIBLIO"]
    for _ in range(2):  # the second answer comes from the caches
        before = _json(client, "/items.json?tag=zzcachetag")["count"]
        page = client.get("/items?tag=zzcachetag").get_data(as_text=True)
    assert before == 0 and "No items match" in page
    # A sync brings a new tagged item: counts, rows, facets and the HTML page follow.
    key = library.add_item(
        {"itemType": "book", "title": "Cache buster", "tags": [{"tag": "zzcachetag"}]}
    )
    run_sync(engine, settings)
    body = _json(client, "/items.json?tag=zzcachetag")
    assert body["count"] == 1 and body["rows"][0]["key"] == key
    page = client.get("/items?tag=zzcachetag").get_data(as_text=True)
    assert "Cache buster" in page and "Showing 1–1 of 1" in page
    assert 'href="/items" aria-current="true"' in page  # the tag facet selected
    # A retag that moves an item between prongs keeps counts and versions the same.
    # (an item of pathways that lacks another prong, to move it there)
    candidates = [
        (r["key"], set(r["prongs"])) for r in _all_rows(client, "/items.json?prong=pathways")
    ]
    moved, others = next((k, ps) for k, ps in candidates if {"mlis-access", "worker-equity"} - ps)
    client.get("/items?prong=pathways")
    with storage.transaction(engine) as conn:
        p = storage.item_prongs.c
        target = next(x for x in ("mlis-access", "worker-equity") if x not in others)
        conn.execute(
            update(storage.item_prongs)
            .where(p.item_key == moved, p.prong == "pathways")
            .values(prong=target)
        )
    assert moved not in {r["key"] for r in _all_rows(client, "/items.json?prong=pathways")}
    assert moved in {r["key"] for r in _all_rows(client, f"/items.json?prong={target}")}
    assert f'href="/items/{moved}"' not in client.get("/items?prong=pathways&_size=1000").get_data(
        as_text=True
    )
    # An owner's override shows at once too.
    set_override(engine, moved, "pathways", "add", by="owner@example.org", settings=settings)
    assert moved in {r["key"] for r in _all_rows(client, "/items.json?prong=pathways")}
    assert f'href="/items/{moved}"' in client.get("/items?prong=pathways&_size=1000").get_data(
        as_text=True
    )


def test_item_page_shows_reason_weights_and_the_threshold(client):
    rows = _json(client, "/items.json?prong=mlis-access&_size=50")["rows"]
    for row in rows:
        body = _json(client, f"/items/{row['key']}.json")["rows"][0]
        rule = next(
            (p for p in body["prongs"] if p["prong"] == "mlis-access" and p["source"] == "rules"),
            None,
        )
        if rule:
            break
    assert rule, "some mlis-access item is tagged by the rules"
    html = client.get(f"/items/{row['key']}").get_data(as_text=True)
    counted = [
        r for r in rule["reasons"] if r.get("counted", True) and (r.get("contribution") or 0) > 0
    ]
    assert f"score {rule['score']:g}, threshold" in html
    assert f"(+{counted[0]['contribution']:g})" in html


def test_page_cache_is_bounded_in_bytes(client, monkeypatch):
    from biblio.web import pagecache

    monkeypatch.setattr(pagecache.pages, "max_size", 200_000)
    for size in (40, 60, 80, 100, 120, 140):
        assert client.get(f"/items?_size={size}").status_code == 200
    cached = sum(len(text) for text, _ in pagecache.pages._data.values())
    assert 0 < cached <= 200_000
    assert pagecache.pages._size == cached
    # a cached page is still served whole
    assert "Showing 1–140" in client.get("/items?_size=140").get_data(as_text=True)


def test_truncated_facets_link_to_all_their_values(client, sample_data):
    page = client.get("/items").get_data(as_text=True)
    distinct = {
        t["tag"]
        for d in sample_data["items"]
        if not d.get("parentItem")
        for t in d.get("tags", [])
        if not t["tag"].startswith("prong:")
    }
    assert len(distinct) > 15, "the sample library has more than 15 tags"
    assert "Show all tag values" in page and "_facet_size=max" in page
    full = client.get("/items?_facet_size=max").get_data(as_text=True)
    assert "Show all tag values" not in full
    assert full.count('class="facet facet-tag"') == 1
    shown = full.split('class="facet facet-tag"')[1].split("</section>")[0].count("<li")
    assert shown > 15
    assert client.get("/items?_facet_size=abc").status_code == 400
    assert client.get("/items?_facet_size=100000").status_code == 400
