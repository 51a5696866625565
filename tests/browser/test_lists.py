"""Building a reading list in real Chromium: "Add to reading list" on the item list and
on item pages (the first add starts a list; the browser remembers it, later adds are one
click each), the list bar, /lists/mine, deletion with confirmation, forgiving paste,
notes that survive moves, disabled buttons that look disabled, and the same add without
JavaScript. Pages are checked with axe-core and shot at 1280 and 375 px."""

from __future__ import annotations

import re

import pytest

from tests.browser import test_browse as browse_checks
from tests.browser.harness import serving, shot

#: axe-core, installed once per session by the browse tests' fixture (shared here).
axe_script = browse_checks.axe_script
_accessible = browse_checks._accessible

pytestmark = pytest.mark.browser

WIDTHS = {"1280": {"width": 1280, "height": 900}, "375": {"width": 375, "height": 812}}


@pytest.fixture
def live(app):
    with serving(app) as url:
        yield url


def _page(browser, live, width="1280", **context):
    from playwright.sync_api import expect

    expect.set_options(timeout=15000)
    page = browser.new_context(base_url=live, viewport=WIDTHS[width], **context).new_page()
    page.set_default_timeout(15000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Failed loads are judged by their responses below (a deleted list's 404 is expected).
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith(("/favicon.ico", ".json"))
            else None
        ),
    )
    return page, errors


def _rows(page):
    return page.locator("ol.items > li.item")


@pytest.mark.parametrize("width", ["1280", "375"])
def test_add_from_the_list_and_item_pages_then_export(live, browser, axe_script, width, client):
    from playwright.sync_api import expect

    page, errors = _page(browser, live, width)
    page.goto("/items")
    first_title = _rows(page).nth(0).locator("a.item-title").inner_text()
    # No list yet: the first add goes to the picker, which starts one with the item.
    _rows(page).nth(0).get_by_role("link", name=re.compile("^Add to reading list")).click()
    expect(page.get_by_role("heading", name="Add to a reading list")).to_be_visible()
    expect(page.get_by_text("This browser remembers no reading list yet.")).to_be_visible()
    _accessible(page, axe_script)
    shot(page, f"lists-picker-{width}")
    page.get_by_label("Title of the new list").fill("Seminar: pathways")
    page.get_by_role("button", name="Start the list").click()
    expect(page.get_by_role("heading", name="Edit reading list")).to_be_visible()
    expect(page.locator("[data-current-note]")).to_be_visible()  # remembered
    expect(page.locator("ol.list-items > li")).to_have_count(1)

    page.goto("/items")
    bar = page.locator("#list-bar")
    expect(bar).to_contain_text("Adding to “Seminar: pathways” (1 item)")
    expect(_rows(page).nth(0).locator(".in-list")).to_have_text("✓ In “Seminar: pathways”")
    for n in (1, 2):  # one click each
        _rows(page).nth(n).get_by_role("button", name=re.compile("^Add to reading list")).click()
        expect(_rows(page).nth(n).locator(".in-list")).to_be_visible()
    expect(bar).to_contain_text("(3 items)")
    expect(page.locator("#list-live")).to_have_text(re.compile(r"now 3 items\.$"))
    _accessible(page, axe_script)
    shot(page, f"lists-items-added-{width}")

    key = client.get("/items.json?_size=4").get_json()["rows"][3]["key"]
    page.goto(f"/items/{key}")
    page.get_by_role("button", name=re.compile("^Add to reading list")).click()
    expect(page.locator(".item-actions .in-list")).to_be_visible()
    expect(page.locator(".add-status")).to_contain_text("now 4 items")
    _accessible(page, axe_script)
    shot(page, f"lists-item-page-added-{width}")

    page.get_by_role("link", name="View and export").click()
    expect(page.locator("ol.list-items > li.csl-entry")).to_have_count(4)
    expect(page.locator("ol.list-items > li").first).to_contain_text(first_title[:30])
    with page.expect_download() as info:
        page.get_by_role("link", name="Word (DOCX)").click()
    assert info.value.suggested_filename.startswith("biblio-list-seminar-pathways-")
    assert errors == []


def test_my_lists_switch_pick_forget_and_delete(live, browser, axe_script, client):
    from playwright.sync_api import expect

    page, errors = _page(browser, live)
    for title in ("First list", "Second list"):
        page.goto("/lists/mine")
        page.get_by_label("Title").fill(title)
        page.get_by_role("button", name="Create the list").click()
        expect(page.get_by_role("heading", name="Edit reading list")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reading lists").click()
    mine = page.locator("ul.my-lists > li")
    expect(mine).to_have_count(2)
    expect(mine.first).to_contain_text("Second list")  # the newest first, new items go there
    expect(mine.first).to_contain_text("New items go here")
    _accessible(page, axe_script)
    shot(page, "lists-mine-1280")
    mine.nth(1).get_by_role("button", name="Add new items here").click()
    expect(mine.filter(has_text="First list")).to_contain_text("New items go here")
    page.goto("/items")
    expect(page.locator("#list-bar")).to_contain_text("Adding to “First list”")

    # The picker offers the remembered lists as buttons (here for an item page's key).
    key = client.get("/items.json?_size=1").get_json()["rows"][0]["key"]
    page.goto(f"/lists/add?key={key}")
    page.get_by_role("button", name="Add to “Second list”").click()
    expect(page.get_by_text("Added 1 item.")).to_be_visible()
    expect(page.get_by_label("Title", exact=True)).to_have_value("Second list")

    # Delete the second list with its edit link, after confirming.
    page.goto("/lists/mine")
    mine.filter(has_text="Second list").get_by_role("link", name="Edit").click()
    page.get_by_role("link", name="Delete this list…").click()
    expect(page.get_by_role("heading", name="Delete “Second list”?")).to_be_visible()
    shot(page, "lists-delete-confirm-1280")
    page.get_by_role("button", name="Delete the list").click()
    expect(page.get_by_text("Reading list “Second list” deleted.")).to_be_visible()
    expect(mine).to_have_count(1)  # gone from the server, so forgotten here
    mine.first.get_by_role("button", name=re.compile("^Forget")).click()
    expect(page.get_by_text("This browser remembers no reading list yet")).to_be_visible()
    assert errors == []


def test_forgiving_paste_notes_survive_moves_and_disabled_buttons_look_disabled(
    live, browser, axe_script, client
):
    from playwright.sync_api import expect

    keys = [r["key"] for r in client.get("/items.json?_size=3").get_json()["rows"]]
    page, errors = _page(browser, live)
    page.goto("/lists/mine")
    page.get_by_label("Title").fill("Paste test")
    page.get_by_role("button", name="Create the list").click()
    box = page.get_by_label("Item keys or item page links")
    box.fill(
        f"{keys[0].lower()}, https://www.zotero.org/groups/1/x/items/{keys[1]}/library\n"
        f"{keys[2]} ZZZZZZZZ what?"
    )
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("Added 3 items.")).to_be_visible()
    expect(page.get_by_text(re.compile("no item with key ZZZZZZZZ"))).to_be_visible()
    expect(box).to_have_value("ZZZZZZZZ\nwhat?")  # kept to fix, the rest went in
    expect(page.locator("ol.list-items > li")).to_have_count(3)

    notes = page.locator("ol.list-items textarea")
    notes.nth(0).fill("Start here.")
    notes.nth(2).fill("Last: the survey.")
    page.get_by_role("button", name=re.compile(r"^Move up: ")).nth(2).click()  # the third up
    expect(page.locator("ol.list-items > li")).to_have_count(3)
    assert [notes.nth(i).input_value() for i in range(3)] == [
        "Start here.",
        "Last: the survey.",
        "",
    ]

    up_first = page.get_by_role("button", name=re.compile(r"^Move up: ")).first
    down_first = page.get_by_role("button", name=re.compile(r"^Move down: ")).first
    expect(up_first).to_be_disabled()
    looks = "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).cursor]"
    assert up_first.evaluate(looks) != down_first.evaluate(looks)
    assert up_first.evaluate(looks)[1] == "not-allowed"
    _accessible(page, axe_script)
    shot(page, "lists-edit-1280")
    page.set_viewport_size(WIDTHS["375"])
    shot(page, "lists-edit-375")
    assert errors == []


def test_without_javascript_the_picker_adds_to_a_pasted_edit_link(live, browser, client):
    from playwright.sync_api import expect

    page, _ = _page(browser, live, java_script_enabled=False)
    page.goto("/lists/new")
    page.get_by_label(re.compile("^Title")).fill("No script")
    page.get_by_role("button", name="Create the list").click()
    edit_link = page.url
    page.goto("/items")
    expect(page.locator("#list-bar")).to_have_count(0)
    _rows(page).nth(1).get_by_role("link", name=re.compile("^Add to reading list")).click()
    page.get_by_label("Your list's edit link").fill(edit_link)
    page.get_by_role("button", name="Add to this list").click()
    expect(page.get_by_text("Added 1 item.")).to_be_visible()
    expect(page.locator("ol.list-items > li")).to_have_count(1)
