"""Hostile Zotero text: a real work whose fields were pasted from Word (a vertical tab,
a form feed, an escape) and whose title carries markup, synced through the stand-in.
The Atom feed stays valid XML (parsed here with ``xml.etree``), no page or export
carries a raw control character, and the title's markup stays escaped or sanitized
on the list, the item page, the feed and in every export."""

from __future__ import annotations

import copy
import io
import re
import xml.etree.ElementTree as ET
import zipfile

import pytest

from biblio import controlchars, exports
from biblio.standin.library import StandinLibrary

KEY = "HST2VT34"
ATOM = "{http://www.w3.org/2005/Atom}"
TITLE = (
    "Learning the Ropes:\x0b<script>alert('ropes')</script> How <i>Freshmen</i> "
    "Conduct\x0cCourse Research <img src=x onerror=alert(1)>"
)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def library(sample_data) -> StandinLibrary:
    """The sample library plus one of its real works, as pasted from Word."""
    lib = StandinLibrary.from_dict(copy.deepcopy(sample_data), copy=False)
    work = copy.deepcopy(
        next(i for i in sample_data["items"] if i["title"].startswith("Learning the Ropes"))
    )
    work.update(
        key=KEY,
        title=TITLE,
        abstractNote=work["abstractNote"].replace(" ", "\x0b", 3) + "\x1b[31m",
        creators=[{**work["creators"][0], "lastName": "Head\x0b"}],
        tags=[{"tag": "information\x0bliteracy"}, {"tag": "transition"}],
        place="Seattle,\x0bWA",
    )
    lib.add_item(work)
    return lib


def _clean(label: str, text: str, *, markup: bool = True) -> None:
    """No raw control character; with ``markup`` (HTML, XML documents) no live tag
    from the title either (the site's own scripts are not the title's)."""
    assert not controlchars.CONTROL.search(text), f"{label}: raw control character"
    if markup:
        assert "<script>alert" not in text, f"{label}: live script"
        assert "<img src=x" not in text, f"{label}: live image tag"


def test_the_atom_feed_is_valid_xml_without_the_raw_characters(client, synced):
    feed = client.get("/items.atom")
    assert feed.status_code == 200
    body = feed.get_data()
    root = ET.fromstring(body)  # raises on a vertical tab: invalid XML 1.0
    [entry] = [e for e in root.iter(f"{ATOM}entry") if KEY in e.findtext(f"{ATOM}id", "")]
    title = entry.findtext(f"{ATOM}title")
    assert title.startswith("Learning the Ropes:") and "Freshmen" in title
    assert "<script" not in title and "<i>" not in title  # plain text, tags gone
    assert [c.get("term") for c in entry.iter(f"{ATOM}category")].count("informationliteracy")
    _clean("feed", body.decode())


@pytest.mark.parametrize(
    "url",
    [
        f"/items/{KEY}",
        "/items?q=ropes",
        "/items?tag=transition",
        f"/items/{KEY}/cite",
        "/bibliography?q=ropes",
        "/bibliography?q=ropes&_style=ieee",
    ],
)
def test_pages_show_no_raw_control_character_and_no_live_markup(client, synced, url):
    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200, url
    assert "Freshmen" in html, url
    _clean(url, html)
    if url == f"/items/{KEY}":
        assert "<i>Freshmen</i>" in html  # Zotero's own markup is kept, sanitized


def test_a_reading_list_with_the_item_is_clean(client, synced):
    token = CSRF.search(client.get("/lists/new").get_data(as_text=True)).group(1)
    made = client.post("/lists/new", data={"title": "Pasted", "csrf_token": token})
    edit = made.headers["Location"]
    slug, secret = re.search(r"/lists/([^/]+)/edit\?token=([^&]+)", edit).groups()
    token = CSRF.search(client.get(edit).get_data(as_text=True)).group(1)
    client.post(
        f"/lists/{slug}/edit",
        data={"token": secret, "action": "add", "keys": KEY, "csrf_token": token},
    )
    for url in (f"/lists/{slug}", edit):
        html = client.get(url).get_data(as_text=True)
        assert "Freshmen" in html, url
        _clean(url, html)


@pytest.mark.parametrize("suffix", sorted(set(exports.BY_SUFFIX) - {"html"}))  # /bibliography
def test_every_export_format_is_clean(client, synced, suffix):
    resp = client.get(f"/items.{suffix}?q=ropes")
    assert resp.status_code == 200, suffix
    body = resp.get_data()
    if body[:2] == b"PK":  # docx, xlsx: the XML parts inside must parse and be clean
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            parts = [n for n in archive.namelist() if n.endswith(".xml")]
            texts = [archive.read(n).decode("utf-8") for n in parts]
        for name, text in zip(parts, texts, strict=True):
            ET.fromstring(text)
            _clean(f"{suffix}:{name}", text)
        assert any("Freshmen" in t for t in texts), suffix
        return
    text = body.decode("utf-8")
    assert "Freshmen" in text, suffix
    if "html" in resp.content_type:
        _clean(suffix, text)
    else:  # text formats, RTF: the title's markup is inert text, never served as a page
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        _clean(suffix, text, markup=False)
