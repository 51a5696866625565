"""Exports and reading lists in real Chromium against a real server thread: pick a
style, download a Word bibliography, build a reading list through its forms and
export it. What arrives is parsed back with the libraries a member would use."""

from __future__ import annotations

import re

import pytest
import rispy
from docx import Document

from tests.browser.harness import serving, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def live(app):
    with serving(app) as url:
        yield url


def test_pick_a_style_and_download_a_word_bibliography(live, browser, client, tmp_path):
    from playwright.sync_api import expect

    expected = client.get("/items.json?prong=pathways&_size=1000").get_json()["count"]
    page = browser.new_page()
    page.goto(f"{live}/bibliography?prong=pathways")
    entries = page.locator(".csl-entry")
    expect(entries).to_have_count(expected)
    apa_first = entries.first.inner_text()

    page.get_by_label("Citation style").fill("modern-language-association")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"_style=modern-language-association"))
    expect(entries).to_have_count(expected)
    assert entries.first.inner_text() != apa_first  # MLA, not APA, now
    shot(page, "export-bibliography-mla")

    with page.expect_download() as info:
        page.get_by_role("link", name="Word (DOCX)").click()
    download = info.value
    assert re.fullmatch(
        r"biblio-pathways-modern-language-association-[\d-]+\.docx", download.suggested_filename
    )
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    paragraphs = [p.text for p in Document(str(path)).paragraphs if p.text.strip()]
    assert sum(1 for text in paragraphs if text.endswith(".")) >= expected


def test_build_a_reading_list_and_export_it(live, browser, client, tmp_path):
    from playwright.sync_api import expect

    rows = client.get("/items.json?prong=worker-equity&_size=3").get_json()["rows"]
    keys = [row["key"] for row in rows]
    page = browser.new_page()
    page.goto(f"{live}/lists/new")
    page.get_by_label("Title").fill("Pay & classification <b>seminar</b>")
    page.get_by_label("Short introduction").fill("Three readings for the first meeting.")
    page.get_by_role("button", name="Create the list").click()
    expect(page.get_by_role("heading", name="Edit reading list")).to_be_visible()
    edit_url = page.url
    assert "token=" in edit_url

    page.get_by_label("Item keys or item page links").fill(
        f"{keys[0]}\n{live}/items/{keys[1]}\n{keys[2]}"
    )
    page.get_by_role("button", name="Add").click()
    page.get_by_label("Note").first.fill("Start here.")
    page.get_by_role("button", name="Save note").first.click()
    page.get_by_role("link", name="View the public page").click()

    expect(
        page.get_by_role("heading", name="Pay & classification <b>seminar</b>")
    ).to_be_visible()  # the title is text, never markup
    expect(page.locator("ol.list-items > li.csl-entry")).to_have_count(3)
    expect(page.get_by_text("Start here.")).to_be_visible()
    shot(page, "export-reading-list")
    public_url = page.url
    assert "token" not in public_url

    with page.expect_download() as info:
        page.get_by_role("link", name="RIS").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.suffix == ".ris" and "seminar" in path.name
    records = rispy.loads(path.read_text(encoding="utf-8"))
    assert len(records) == 3

    # Without the secret link, the list cannot be edited.
    response = page.goto(edit_url.split("?")[0])
    assert response.status in (403, 404)
