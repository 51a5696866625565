"""Facets, orders and the sentence above a list: the decade and year facets agree with the
lists they link to, items without creators sort last, every year can be shown, and the
sentence reads labels with the right plural and no doubled quotes."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from biblio.cli import cli


def _facet(html: str, name: str) -> list[tuple[str, str, int]]:
    """(href, label, count) of each value of facet ``name`` on a list page."""
    section = html.split(f'class="facet facet-{name}"')[1].split("</section>")[0]
    return [
        (href.replace("&amp;", "&"), label.strip(), int(count))
        for href, label, count in re.findall(
            r'<a href="([^"]+)"[^>]*>(?:<span[^>]*>[^<]*</span>)?([^<]+)</a>\s*'
            r'<span class="facet-count">(\d+)</span>',
            section,
        )
    ]


def _count(client, href: str) -> int:
    path, _, query = href.partition("?")
    return client.get(f"{path}.json?{query}").get_json()["count"]


def test_every_decade_link_gives_the_count_it_shows_when_a_year_is_chosen(client):
    html = client.get("/items?year=2021").get_data(as_text=True)
    decades = _facet(html, "decade")
    assert len(decades) > 1
    for href, label, count in decades:
        args = parse_qs(urlsplit(href).query)
        assert "year" not in args, href  # choosing a decade clears the year
        assert _count(client, href) == count, (label, href)
    # With a consistent decade chosen, the year facet narrows within it.
    within = _facet(client.get("/items?decade=2010").get_data(as_text=True), "year")
    assert within and all(2010 <= int(label) <= 2019 for _, label, _ in within)
    for href, _, count in within:
        assert parse_qs(urlsplit(href).query)["decade"] == ["2010"]
        assert _count(client, href) == count


def test_the_year_facet_offers_every_year(client, sample_data):
    years = {
        int(m.group(0))
        for i in sample_data["items"]
        if not i.get("parentItem") and (m := re.search(r"\d{4}", i.get("date") or ""))
    }
    assert len(years) > 15, "the sample library spans more than 15 years"
    html = client.get("/items").get_data(as_text=True)
    assert len(_facet(html, "year")) == 15 and "Show all year values" in html
    full = client.get("/items?_facet_size=max").get_data(as_text=True)
    shown = {int(label) for _, label, _ in _facet(full, "year")}
    assert len(shown) > 15 and "Show all year values" not in full
    # An old year, once chosen, stays shown (to be removed) on the short list.
    oldest = min(shown)
    chosen = _facet(client.get(f"/items?year={oldest}").get_data(as_text=True), "year")
    assert str(oldest) in [label for _, label, _ in chosen]


@pytest.mark.parametrize("sort", ["creator", "-creator"])
def test_items_without_creators_come_last_in_both_creator_orders(client, sort):
    rows = client.get(f"/items.json?_sort={sort}&_size=1000").get_json()["rows"]
    named = [r["creators"] for r in rows if r["creators"]]
    assert rows[0]["creators"] and not rows[-1]["creators"]
    assert [r["creators"] for r in rows[: len(named)]] == named  # the unnamed all at the end
    assert named == sorted(named, key=str.lower, reverse=sort.startswith("-"))


def test_the_sentence_reads_labels_plurals_and_quotes_once(client):
    body = client.get("/items.json?prong=mlis-access&type=journalArticle").get_json()
    assert "prong is MLIS access and type is Journal Article" in body["description"]
    one = client.get('/items.json?q=title:"Owning Faculty Status"').get_json()
    assert one["count"] == 1
    assert one["description"] == (
        '1 item matching title:"Owning Faculty Status", sorted by relevance'
    )
    plain = client.get("/items.json?q=faculty+status").get_json()["description"]
    assert 'matching "faculty status"' in plain and '""' not in plain
    html = client.get("/items?prong=mlis-access&type=journalArticle").get_data(as_text=True)
    assert "prong is MLIS access and type is Journal Article" in html
    atom = client.get("/items.atom?prong=mlis-access&type=book").get_data(as_text=True)
    assert "where prong is MLIS access and type is Book" in atom
    bib = client.get("/bibliography?prong=worker-equity").get_data(as_text=True)
    assert "prong is Worker equity" in bib


def test_the_export_command_describes_its_selection_in_labels(app, runner, tmp_path):
    out = tmp_path / "list.html"
    result = runner.invoke(
        cli,
        ["export", "--format", "html", "--prong", "pathways", "--type", "book", "-o", str(out)],
        env={
            "BIBLIO_SETTINGS": str(tmp_path / "settings.toml"),
            "BIBLIO_DATABASE__URL": app.config["BIBLIO"]["database"]["url"],
        },
    )
    assert result.exit_code == 0, result.output
    assert "where prong is Pathways and type is Book" in out.read_text(encoding="utf-8")
