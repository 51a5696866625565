"""Styles by name on the web: every place that takes ``_style`` (the bibliography page and
its JSON, exports, "cite", item pages and their JSON, reading lists) accepts common names
and titles and says which style it used; an unknown style is a 400 that offers close
styles and a way back to the page in a working style; menus show labels, not ids."""

from __future__ import annotations

import io
import re
from html import unescape

import docx
import pytest

from biblio import reading_lists as rl
from biblio.catalog.items import iter_items
from biblio.web import export as web_export


@pytest.fixture
def key(synced):
    return next(iter_items(synced))["key"]


@pytest.mark.parametrize(
    ("asked", "style"),
    [
        ("vancouver", "nlm-citation-sequence"),
        ("APA", "apa"),
        ("chicago", "chicago-author-date"),
        ("Harvard", "harvard-cite-them-right"),
    ],
)
def test_common_names_are_accepted_everywhere_a_style_is(client, synced, key, asked, style):
    data = client.get(f"/bibliography.json?prong=pathways&_style={asked}").get_json()
    assert data["ok"] and data["style"] == style and data["rows"]
    page = client.get(f"/bibliography?prong=pathways&_style={asked}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"_style={style}" in html  # the export links name the resolved style
    cite = client.get(f"/items/{key}/cite.json?_style={asked}").get_json()
    assert cite["rows"][0]["style"] == style
    assert client.get(f"/items/{key}?_style={asked}").status_code == 200
    assert client.get(f"/items/{key}.json?_style={asked}").status_code == 200
    text = client.get(f"/items.txt?prong=pathways&_style={asked}")
    assert text.status_code == 200 and text.get_data(as_text=True).strip()
    dl = client.get(f"/items.docx?prong=pathways&_style={asked}")
    assert dl.status_code == 200 and f"-{style}-" in dl.headers["Content-Disposition"]
    slug, _ = rl.create_list(synced, "Styles by name")
    rl.add_items(synced, slug, [key])
    view = client.get(f"/lists/{slug}?_style={asked}")
    assert view.status_code == 200
    assert client.get(f"/lists/{slug}.docx?_style={asked}").status_code == 200


CITATION = re.compile(
    r'<div class="citation" id="citation">(.*?)</div>\s*<div class="cite-act', re.S
)


def test_vancouver_numbers_its_entries_with_a_space_on_the_page_and_in_docx(client, key):
    page = client.get(f"/items/{key}?_style=vancouver").get_data(as_text=True)
    citation = CITATION.search(page)
    text = unescape(re.sub(r"<[^>]+>", "", citation.group(1)))
    assert re.match(r"1\. \S", text), text
    ieee = client.get(f"/items/{key}?_style=ieee").get_data(as_text=True)
    citation = CITATION.search(ieee)
    assert re.match(r"\[1\] \S", unescape(re.sub(r"<[^>]+>", "", citation.group(1))))
    document = docx.Document(io.BytesIO(client.get("/items.docx?_style=ieee").data))
    numbered = [p.text for p in document.paragraphs if p.text.startswith("[")]
    assert numbered and all(re.match(r"\[\d+\] \S", t) for t in numbered), numbered[:3]


def test_the_item_page_menu_shows_labels_most_used_first(client, key):
    page = client.get(f"/items/{key}").get_data(as_text=True)
    menu = re.search(r'<select id="style" name="_style">(.*?)</select>', page, re.S).group(1)
    options = re.findall(r'<option value="([^"]+)"( selected)?>([^<]+)</option>', menu)
    assert [(v, label) for v, _, label in options][:2] == [
        ("apa", "APA 7th edition"),
        ("chicago-author-date", "Chicago 18th, author-date"),
    ]
    assert ("nlm-citation-sequence", "Vancouver (NLM)") in [(v, lb) for v, _, lb in options]
    assert len(options) == 10
    assert [v for v, selected, _ in options if selected] == ["apa"]


def test_the_bibliography_picker_shows_the_label_and_offers_labels(client):
    page = client.get("/bibliography?prong=pathways&_style=vancouver").get_data(as_text=True)
    assert 'name="_style" value="Vancouver (NLM)"' in page
    assert "formatted in <strong>Vancouver (NLM)</strong>" in page
    assert '<option value="APA 7th edition" label="apa">' in page
    # The label the box shows goes back in as it is.
    again = client.get("/bibliography.json?prong=pathways&_style=Vancouver+(NLM)").get_json()
    assert again["style"] == "nlm-citation-sequence"


def test_the_styles_page_finds_common_names(client):
    rows = client.get("/styles.json?q=vancouver").get_json()["rows"]
    assert rows[0]["name"] == "nlm-citation-sequence" and rows[0]["label"] == "Vancouver (NLM)"
    page = client.get("/styles?q=APA").get_data(as_text=True)
    assert "APA 7th edition" in page and "<code>apa</code>" in page


@pytest.mark.parametrize(
    "path",
    [
        "/bibliography?prong=pathways&_style=vancuver",
        "/items/{key}?_style=vancuver",
        "/items/{key}/cite?_style=vancuver",
        "/items.docx?prong=pathways&_style=vancuver",
    ],
)
def test_an_unknown_style_is_a_400_with_suggestions_and_a_way_back(client, key, path):
    url = path.format(key=key)
    resp = client.get(url)
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "No such citation style" in html
    offers = re.findall(r'<a class="button secondary" href="([^"]+)">([^<]+)</a>', html)
    assert offers[0][1] == "Vancouver (NLM)"
    assert unescape(offers[0][0]) == url.replace("vancuver", "nlm-citation-sequence")
    back = unescape(re.search(r'<a href="([^"]+)">Back to the page in the default style', html)[1])
    assert "_style" not in back and back.split("?")[0] == url.split("?")[0]
    for href in [back] + [unescape(h) for h, _ in offers]:
        assert client.get(href).status_code == 200, href


def test_an_unknown_style_in_json_keeps_the_error_shape_and_names_close_styles(client):
    resp = client.get("/bibliography.json?_style=chicgo")
    body = resp.get_json()
    assert resp.status_code == 400 and set(body) == {"ok", "error", "status"}
    assert "did you mean chicago-author-date" in body["error"]


def test_the_menus_put_the_styles_the_group_uses_first(client, key, monkeypatch):
    monkeypatch.setattr(web_export, "_USE_SECONDS", 0.0)  # each worker recounts every minute
    page = client.get(f"/items/{key}").get_data(as_text=True)
    assert "elsevier-harvard" not in page  # not among the ten most popular
    # Formatting the library in a style records its use (the cache of rendered entries).
    assert client.get("/bibliography?_style=elsevier-harvard").status_code == 200
    page = client.get(f"/items/{key}").get_data(as_text=True)
    menu = re.search(r'<select id="style" name="_style">(.*?)</select>', page, re.S).group(1)
    names = re.findall(r'<option value="([^"]+)"', menu)
    assert len(names) == 10 and names.index("elsevier-harvard") <= 1, names
