"""What search engines and browsers read: the sitemap (and its index past 50,000 URLs),
robots.txt, the OpenSearch description and the schema.org JSON-LD of item pages, each
parsed and checked against its rules."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit

from sqlalchemy import insert

from biblio import create_app
from biblio import storage as st
from biblio.catalog.sitemap import PER_FILE
from tests.conftest import make_settings

SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
# W3C Datetime, as the sitemap protocol asks for lastmod.
W3C = re.compile(r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?")


def _urlset(body: bytes) -> list[tuple[str, str | None]]:
    """The (loc, lastmod) of a sitemap file, checked against the protocol's rules."""
    assert len(body) <= 50 * 1024 * 1024
    root = ET.fromstring(body)
    assert root.tag == f"{SITEMAP}urlset"
    entries = []
    for url in root:
        assert url.tag == f"{SITEMAP}url"
        assert {child.tag for child in url} <= {f"{SITEMAP}loc", f"{SITEMAP}lastmod"}
        loc, lastmod = url.findtext(f"{SITEMAP}loc"), url.findtext(f"{SITEMAP}lastmod")
        assert loc and len(loc) < 2048 and urlsplit(loc).scheme in ("http", "https"), loc
        assert lastmod is None or W3C.fullmatch(lastmod), lastmod
        entries.append((loc, lastmod))
    assert 0 < len(entries) <= PER_FILE
    assert len({loc for loc, _ in entries}) == len(entries)
    return entries


def test_the_sitemap_lists_every_live_item_with_its_last_change(client, sample_data):
    r = client.get("/sitemap.xml")
    assert r.status_code == 200 and r.mimetype == "application/xml"
    entries = dict(_urlset(r.data))
    live = {
        i["key"]: i["dateModified"]
        for i in sample_data["items"]
        if not i.get("parentItem")
        and not i.get("deleted")
        and i["itemType"] not in ("note", "attachment", "annotation")
    }
    items = {
        urlsplit(loc).path.rsplit("/", 1)[1]: mod
        for loc, mod in entries.items()
        if "/items/" in loc
    }
    assert items == live  # lastmod is Zotero's dateModified
    assert "http://localhost/" in entries and "http://localhost/items?prong=pathways" in entries
    for loc in list(entries)[:8]:
        assert client.get(urlsplit(loc).path + "?" + urlsplit(loc).query).status_code == 200, loc


def test_a_large_library_gets_a_sitemap_index_of_parts(client, synced):
    """Past 50,000 URLs /sitemap.xml is an index naming parts of at most 50,000 each."""
    now = datetime(2024, 1, 1)
    with st.transaction(synced) as conn:
        conn.execute(
            insert(st.items),
            [
                {
                    "key": f"S{n:07d}",
                    "version": 1,
                    "item_type": "book",
                    "title": f"Synthetic {n}",
                    "date_modified": "2024-01-02T03:04:05Z",
                    "data": {},
                    "meta": {},
                    "synced_at": now,
                }
                for n in range(PER_FILE)
            ],
        )
    root = ET.fromstring(client.get("/sitemap.xml").data)
    assert root.tag == f"{SITEMAP}sitemapindex"
    parts = [s.findtext(f"{SITEMAP}loc") for s in root.findall(f"{SITEMAP}sitemap")]
    assert parts == ["http://localhost/sitemap-1.xml", "http://localhost/sitemap-2.xml"]
    assert all(W3C.fullmatch(s.findtext(f"{SITEMAP}lastmod")) for s in root)
    first, second = (_urlset(client.get(urlsplit(p).path).data) for p in parts)
    assert len(first) == PER_FILE and len(second) > 100
    assert not {loc for loc, _ in first} & {loc for loc, _ in second}
    assert client.get("/sitemap-3.xml").status_code == 404
    assert client.get("/sitemap-0.xml").status_code == 404


def test_robots_keeps_crawlers_out_of_owners_and_secret_links_and_names_the_sitemap(
    tmp_path, zotero, synced
):
    settings = make_settings(tmp_path, zotero, web={"public_url": "https://biblio.example.org/"})
    client = create_app(settings).test_client()
    r = client.get("/robots.txt")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    lines = r.get_data(as_text=True).splitlines()
    assert lines[0] == "User-agent: *"
    disallowed = [line.split(": ", 1)[1] for line in lines if line.startswith("Disallow: ")]
    assert {"/-/admin/", "/lists/*/edit", "/join/status/"} <= set(disallowed)
    assert "Sitemap: https://biblio.example.org/sitemap.xml" in lines
    # public_url makes every sitemap URL absolute on the public host.
    locs = [loc for loc, _ in _urlset(client.get("/sitemap.xml").data)]
    assert all(loc.startswith("https://biblio.example.org/") for loc in locs)


def test_opensearch_is_linked_from_every_page_and_describes_the_search(client):
    for path in ("/", "/items", "/prongs", "/join", "/lists/new"):
        html = client.get(path).get_data(as_text=True)
        assert (
            '<link rel="search" type="application/opensearchdescription+xml"' in html
            and 'href="/opensearch.xml"' in html
        ), path
    r = client.get("/opensearch.xml")
    assert r.mimetype == "application/opensearchdescription+xml"
    root = ET.fromstring(r.data)
    assert root.tag == f"{OPENSEARCH}OpenSearchDescription"
    assert 0 < len(root.findtext(f"{OPENSEARCH}ShortName")) <= 16
    assert len(root.findtext(f"{OPENSEARCH}Description")) <= 1024
    templates = {u.get("type"): u.get("template") for u in root.findall(f"{OPENSEARCH}Url")}
    assert templates["text/html"] == "http://localhost/items?q={searchTerms}"
    assert templates["application/json"] == "http://localhost/items.json?q={searchTerms}"
    for kind in ("text/html", "application/json", "application/atom+xml"):
        url = templates[kind].replace("{searchTerms}", "faculty+status")
        answer = client.get(url.removeprefix("http://localhost"))
        assert answer.status_code == 200 and kind.split("/")[1].split("+")[0] in answer.mimetype


class _JsonLd(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[str] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        self._in = tag == "script" and dict(attrs).get("type") == "application/ld+json"
        if self._in:
            self.blocks.append("")

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.blocks[-1] += data


def _json_ld(client, key: str) -> dict:
    parser = _JsonLd()
    parser.feed(client.get(f"/items/{key}").get_data(as_text=True))
    [block] = parser.blocks
    return json.loads(block)


def test_item_pages_carry_schema_org_json_ld_beside_highwire(client, sample_data):
    by_type = {}
    for item in sample_data["items"]:
        if not item.get("parentItem") and not item.get("deleted"):
            by_type.setdefault(item["itemType"], item)
    expected = {
        "journalArticle": "ScholarlyArticle",
        "book": "Book",
        "bookSection": "Chapter",
        "thesis": "Thesis",
        "report": "Report",
        "webpage": "WebPage",
        "blogPost": "BlogPosting",
        "conferencePaper": "ScholarlyArticle",
    }
    for zotero_type, schema_type in expected.items():
        item = by_type[zotero_type]
        node = _json_ld(client, item["key"])
        assert node["@context"] == "https://schema.org" and node["@type"] == schema_type
        assert node["url"] == f"http://localhost/items/{item['key']}"
        assert node["name"] and isinstance(node.get("author", []), list)
        for person in node.get("author", []):
            assert person["@type"] in ("Person", "Organization") and person["name"]
        if "datePublished" in node:
            assert re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", node["datePublished"])
    chapter = _json_ld(client, by_type["bookSection"]["key"])
    assert chapter["isPartOf"] == {
        "@type": "Book",
        "name": by_type["bookSection"]["bookTitle"],
        **({"isbn": by_type["bookSection"]["ISBN"]} if by_type["bookSection"].get("ISBN") else {}),
    }
    article = _json_ld(client, by_type["journalArticle"]["key"])
    assert article["isPartOf"]["name"] == by_type["journalArticle"]["publicationTitle"]
    html = client.get(f"/items/{by_type['journalArticle']['key']}").get_data(as_text=True)
    assert '<meta name="citation_title"' in html  # Highwire stays beside it


def test_json_ld_cannot_break_out_of_its_script(library, tmp_path, zotero):
    key = library.add_item(
        {
            "itemType": "journalArticle",
            "title": "</script><script>alert(1)</script> & <!-- x",
            "creators": [{"creatorType": "author", "lastName": "</script>", "firstName": "E"}],
            "DOI": "10.1000/xyz&<",
        }
    )
    from tests.web.test_browse import _fresh_client

    client = _fresh_client(tmp_path, zotero)
    html = client.get(f"/items/{key}").get_data(as_text=True)
    block = html.split('<script type="application/ld+json">')[1].split("</script>")[0]
    node = json.loads(block)
    assert node["name"] == "alert(1) & <!-- x"  # Zotero's markup removed, the rest kept
    assert "<" not in block and "&" not in block
    assert node["identifier"] == {
        "@type": "PropertyValue",
        "propertyID": "DOI",
        "value": "10.1000/xyz&<",
    }
