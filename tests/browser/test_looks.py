"""How the pages look and read, in real Chromium at 1280 and 375 px.

Every public page (home, items, an item, search results, a bibliography, reading lists
new, edit and view, join, a join request's status) and every owners' page is opened at
both widths, checked with axe-core (no serious or critical violations), checked not to
scroll sideways, and shot into ``test-artifacts/looks-<page>-<width>.png``. Then the flows
the layout exists for: on a phone the filters come before the results and open with a
tap; an item page shows its citation and abstract before the folded prong scoring; a
style is picked by its common name from a menu or a URL, and numbered styles keep the
space after their label on the page and in the copied citation.
"""

from __future__ import annotations

import re

import pytest

from biblio import reading_lists as rl
from biblio.catalog.items import iter_items
from biblio.membership import owners
from biblio.membership import requests as jr
from tests.browser import test_browse as browse_checks
from tests.browser.harness import serving, shot

#: axe-core, installed once per session by the browse tests' fixture (shared here).
axe_script = browse_checks.axe_script
_accessible = browse_checks._accessible

pytestmark = pytest.mark.browser

OWNER, PASSWORD = "owner@example.org", "a long owner passphrase"
#: The elements that reach past the right edge (what to fix when a page scrolls sideways).
WIDER = """(width) => [...document.querySelectorAll("body *")]
  .filter(e => e.getBoundingClientRect().right > width + 1)
  .slice(-4)
  .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""
WIDTHS = {1280: {"width": 1280, "height": 900}, 375: {"width": 375, "height": 812}}


@pytest.fixture
def site(app, synced):
    """The served app with an owner, a reading list of three items and a join request."""
    owners.create_owner(synced, OWNER, PASSWORD)
    keys = [r["key"] for r in iter_items(synced)][:3]
    slug, token = rl.create_list(synced, "Pay equity, a starter", "For the worker-equity prong.")
    rl.add_items(synced, slug, keys)
    values, errors = jr.validate(
        {
            "name": "Octavia Applicant",
            "email": "octavia@example.org",
            "zotero_user_id": "8123456",
            "reason": "I study apprenticeships as a route into librarian jobs.",
            "consent": "yes",
        },
        ["pathways"],
    )
    assert not errors, errors
    submitted = jr.submit(synced, app.config["BIBLIO"], values, lambda t: f"/join/status/{t}")
    with serving(app) as url:
        yield {
            "url": url,
            "key": keys[0],
            "slug": slug,
            "token": token,
            "status": submitted.token,
            "request": submitted.id,
        }


def _page(browser, site, width):
    from playwright.sync_api import expect

    expect.set_options(timeout=15000)
    context = browser.new_context(base_url=site["url"], viewport=WIDTHS[width])
    page = context.new_page()
    page.set_default_timeout(15000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return page, problems


def _public_pages(site):
    key, slug = site["key"], site["slug"]
    return [
        ("home", "/"),
        ("items", "/items"),
        ("item", f"/items/{key}"),
        ("search", "/items?q=faculty+status"),
        ("bibliography", "/bibliography?prong=pathways"),
        ("lists-new", "/lists/new"),
        ("lists-edit", f"/lists/{slug}/edit?token={site['token']}"),
        ("lists-view", f"/lists/{slug}"),
        ("lists-mine", "/lists/mine"),
        ("lists-add", f"/lists/add?key={key}"),
        ("lists-delete", f"/lists/{slug}/delete?token={site['token']}"),
        ("join", "/join"),
        ("join-status", f"/join/status/{site['status']}"),
        ("prongs", "/prongs"),
        ("styles", "/styles?q=harvard"),
        ("cite", f"/items/{key}/cite?_style=ieee"),
        ("sync", "/-/sync"),
    ]


def _owner_pages(site):
    return [
        ("admin-queue", "/-/admin/"),
        ("admin-request", f"/-/admin/requests/{site['request']}"),
        ("admin-audit", "/-/admin/audit"),
        ("admin-overrides", "/-/admin/prongs"),
        ("admin-review", "/-/admin/prongs/review"),
        ("admin-outbox", "/-/admin/outbox"),
        ("admin-sync", "/-/admin/sync"),
    ]


def _look(page, axe_script, name, width):
    overflow = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(WIDER, width) if overflow > width else []
    assert overflow <= width, f"{page.url} scrolls sideways ({overflow}px at {width}px): {wide}"
    _accessible(page, axe_script)
    shot(page, f"looks-{name}-{width}")


@pytest.mark.parametrize("width", [1280, 375])
def test_every_page_reads_well_at_desk_and_phone_widths(site, browser, axe_script, width):
    page, problems = _page(browser, site, width)
    for name, path in _public_pages(site):
        response = page.goto(path)
        assert response.status == 200, (path, response.status)
        _look(page, axe_script, name, width)
    # The 400 for an unknown style, which offers a way back.
    response = page.goto("/bibliography?prong=pathways&_style=vancuver")
    assert response.status == 400
    _look(page, axe_script, "bad-style", width)

    page.goto("/-/admin/login")
    _look(page, axe_script, "admin-login", width)
    page.get_by_label("Email").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/-/admin/")
    for name, path in _owner_pages(site):
        response = page.goto(path)
        assert response.status == 200, (path, response.status)
        _look(page, axe_script, name, width)
    assert problems == []


def test_on_a_phone_the_filters_come_before_the_results_and_open_with_a_tap(
    site, browser, axe_script
):
    from playwright.sync_api import expect

    page, problems = _page(browser, site, 375)
    page.goto("/items")
    panel = page.locator("details.filter-panel")
    first_result = page.locator("ol.items > li.item").first
    panel_top = panel.bounding_box()["y"]
    result_top = first_result.bounding_box()["y"]
    assert panel_top < result_top, (panel_top, result_top)
    assert panel_top < 812, f"the filters start below the first screen ({panel_top}px)"
    assert panel.get_attribute("open") is None  # folded: the results stay near the top
    facet = page.locator(".facet-prong a", has_text="Pathways")
    expect(facet).to_be_hidden()
    panel.locator("summary").click()
    expect(facet).to_be_visible()
    shot(page, "looks-phone-filters-open")
    _accessible(page, axe_script)
    facet.click()
    page.wait_for_url("**/items?prong=pathways")
    expect(page.locator(".filter-count")).to_have_text("1 active")
    # The header is compact: brand, links and search in three short rows.
    assert page.locator("header.site").bounding_box()["height"] < 140
    # On a wide screen the same panel is an open side column beside the results.
    wide, _ = _page(browser, site, 1280)
    wide.goto("/items")
    column = wide.locator("details.filter-panel")
    expect(column).to_have_attribute("open", "")
    expect(wide.locator(".facet-prong a", has_text="Pathways")).to_be_visible()
    box, results = column.bounding_box(), wide.locator(".results").bounding_box()
    assert box["x"] + box["width"] <= results["x"]
    assert problems == []


def test_an_item_page_shows_the_citation_and_abstract_before_the_folded_scoring(
    site, browser, axe_script
):
    from playwright.sync_api import expect

    for width in (1280, 375):
        page, problems = _page(browser, site, width)
        page.goto(f"/items/{site['key']}")
        citation = page.locator("#citation").bounding_box()["y"]
        scoring = page.locator("details.prong-scoring")
        assert citation < scoring.bounding_box()["y"]
        if page.locator(".abstract").count():
            assert page.locator(".abstract").bounding_box()["y"] < scoring.bounding_box()["y"]
        assert scoring.get_attribute("open") is None
        expect(scoring.locator(".score, .reasons").first).to_be_hidden()
        scoring.locator("summary").click()
        expect(scoring.locator(".score, .reasons").first).to_be_visible()
        _accessible(page, axe_script)
        assert problems == []


def test_a_style_is_chosen_by_its_common_name_from_a_menu_or_the_url(site, browser, axe_script):
    from playwright.sync_api import expect

    page, problems = _page(browser, site, 1280)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    # The bibliography's style box: type the name people use.
    page.goto("/bibliography?prong=pathways")
    expect(page.get_by_label("Citation style")).to_have_value("APA 7th edition")
    page.get_by_label("Citation style").fill("vancouver")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"_style=vancouver"))
    expect(page.locator(".sentence strong")).to_have_text("Vancouver (NLM)")
    expect(page.get_by_label("Citation style")).to_have_value("Vancouver (NLM)")
    first = page.locator(".csl-entry .csl-text").first.inner_text()
    assert re.match(r"1\. \S", first), first
    assert "_style=nlm-citation-sequence" in page.get_by_role(
        "link", name="Word (DOCX)"
    ).get_attribute("href")
    _accessible(page, axe_script)
    shot(page, "looks-style-by-name")

    # The item page's menu shows labels; IEEE keeps the space after its label, also when
    # the citation is copied.
    page.goto(f"/items/{site['key']}")
    page.get_by_label("Citation style").select_option(label="IEEE")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**_style=ieee")
    shown = page.locator("#citation").inner_text().strip()
    assert re.match(r"\[1\] \S", shown), shown
    page.get_by_role("button", name="Copy citation").click()
    expect(page.locator(".copy-status")).to_have_text("Citation copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert re.match(r"\[1\] \S", copied), copied
    shot(page, "looks-item-ieee")

    # By URL, in any case, on any page that takes a style.
    page.goto("/bibliography?prong=pathways&_style=chicago")
    expect(page.locator(".sentence strong")).to_have_text("Chicago 18th, author-date")
    page.goto(f"/items/{site['key']}/cite?_style=APA")
    expect(page.locator("#formatted-heading")).to_have_text("APA 7th edition")
    text = page.locator("#cite-text").input_value()
    page.goto(f"/items/{site['key']}/cite?_style=ieee")
    assert re.match(r"\[1\] \S", page.locator("#cite-text").input_value())
    assert re.match(r"\[1\] \S", page.locator("#cite-formatted").inner_text().strip())
    assert text and not text.startswith("[")

    # An unknown style: a 400 that offers the close one and leads back.
    page.goto("/bibliography?prong=pathways&_style=vancuver")
    page.get_by_role("link", name="Vancouver (NLM)").click()
    expect(page.locator(".sentence strong")).to_have_text("Vancouver (NLM)")
    page.goto("/bibliography?prong=pathways&_style=vancuver")
    page.get_by_role("link", name="Back to the page in the default style").click()
    expect(page.locator(".sentence strong")).to_have_text("APA 7th edition")
    assert problems == []


@pytest.mark.parametrize("width", [1280, 375])
def test_the_home_pages_cards_line_up_and_its_year_labels_stand_apart(site, browser, width):
    page, problems = _page(browser, site, width)
    page.goto("/")
    cards = page.locator(".prong-card")
    boxes = [cards.nth(i).bounding_box() for i in range(cards.count())]
    links = [cards.nth(i).locator(".count").bounding_box() for i in range(cards.count())]
    if width == 1280:  # side by side: one height, the links on one line
        assert len({round(b["y"]) for b in boxes}) == 1
        assert len({round(b["height"]) for b in boxes}) == 1
        assert len({round(link["y"]) for link in links}) == 1
    labels = page.locator("figure.chart svg text[text-anchor=middle]")
    boxes = [labels.nth(i).bounding_box() for i in range(labels.count())]
    spans = sorted((b["x"], b["x"] + b["width"]) for b in boxes if b)  # shown ones
    sizes = [b["height"] for b in boxes if b]
    assert min(sizes) >= 8, f"year labels {sizes} px high at {width} px"
    assert len(spans) >= 3
    assert all(right < left for (_, right), (left, _) in zip(spans, spans[1:])), spans
    assert problems == []
