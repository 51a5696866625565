"""Real-browser tests: Debian's Chromium (Playwright) against the app on a real server thread.

A visitor loads the synced sample library, clicks a facet, searches, opens an item
(with its Connector metadata and copy button), follows the Atom feed link and views
the list at phone width. Each page is checked with axe-core (installed from npm into
``test-artifacts/node``; if npm cannot fetch it, a small equivalent check runs instead)
and must raise no CSP violation. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.browser

FALLBACK_CHECK = """() => {
  const v = [];
  if (!document.documentElement.lang) v.push("html has no lang");
  if (!document.querySelector("main")) v.push("no main landmark");
  if (!document.title.trim()) v.push("empty title");
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const named = (el.id && document.querySelector(`label[for="${el.id}"]`))
      || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (!named) v.push("unlabelled control " + el.outerHTML.slice(0, 80));
  }
  for (const a of document.querySelectorAll("a[href], button")) {
    const name = a.innerText.trim() || a.getAttribute("aria-label");
    if (!name && a.offsetParent) v.push("unnamed " + a.outerHTML.slice(0, 80));
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) v.push("img without alt");
  }
  const ids = [...document.querySelectorAll("[id]")].map(e => e.id);
  if (new Set(ids).size !== ids.length) v.push("duplicate ids");
  return v;
}"""


@pytest.fixture(scope="session")
def axe_script() -> Path | None:
    """axe.min.js from npm, installed once into test-artifacts/node (None if unavailable)."""
    prefix = ARTIFACTS / "node"
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    prefix.mkdir(parents=True, exist_ok=True)
    # xdist workers share the folder: one installs while the others wait for it.
    with open(prefix / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not script.exists():
            try:
                subprocess.run(
                    [
                        "npm",
                        "install",
                        "--prefix",
                        str(prefix),
                        "--no-audit",
                        "--no-fund",
                        "--silent",
                        "axe-core@4",
                    ],
                    check=True,
                    timeout=180,
                    capture_output=True,
                )
            except (OSError, subprocess.SubprocessError):
                return None
    return script if script.exists() else None


@pytest.fixture
def server(app):
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join(timeout=10)


def _page(browser, base, **context):
    from playwright.sync_api import expect

    expect.set_options(timeout=15000)
    ctx = browser.new_context(base_url=base, **context)
    page = ctx.new_page()
    page.set_default_timeout(15000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page, problems


def _accessible(page, axe_script) -> None:
    if axe_script is not None:
        # Injected through DevTools evaluation: a <script> tag would be (rightly) blocked
        # by the site's CSP.
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(axe_script.read_text(encoding="utf-8") + "\n;undefined")
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        bad = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == [], f"{page.url}: {bad}"
    else:
        assert page.evaluate(FALLBACK_CHECK) == [], page.url


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"browse-{name}.png"), full_page=True)


def test_browse_facet_search_item_feed(server, browser, axe_script):
    page, problems = _page(browser, server)
    page.goto("/")
    assert page.locator("h1").inner_text().strip()
    assert page.locator("figure.chart svg[role=img]").count() == 1
    _accessible(page, axe_script)
    _shot(page, "landing")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Items").click()
    page.wait_for_url("**/items")
    total = page.locator(".sentence").inner_text()
    facet = page.locator(".facet-prong a", has_text="Pathways")
    expected = facet.locator("xpath=..").locator(".facet-count").inner_text()
    facet.click()
    page.wait_for_url("**/items?prong=pathways")
    sentence = page.locator(".sentence").inner_text()
    assert sentence.startswith(f"{expected} items where prong is Pathways"), sentence
    assert sentence != total
    _accessible(page, axe_script)
    _shot(page, "facet")

    page.fill("#q", "librar*")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=librar*")
    assert "prong=pathways" in page.url  # the search keeps the facet
    assert 'matching "librar*"' in page.locator(".sentence").inner_text()
    first = page.locator("a.item-title").first
    title = first.inner_text()
    assert page.locator("span.Z3988").count() == page.locator("a.item-title").count()
    _shot(page, "search")

    first.click()
    page.wait_for_selector("#item-title")
    assert page.locator("#item-title").inner_text() == title
    assert page.locator('meta[name="citation_title"]').count() == 1
    from playwright.sync_api import expect

    if page.locator("#citation").count():
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.get_by_role("button", name="Copy citation").click()
        expect(page.locator(".copy-status")).to_have_text("Citation copied.")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator("#citation").inner_text().strip()
    _accessible(page, axe_script)
    _shot(page, "item")

    page.go_back()
    page.wait_for_selector(".sentence")
    link = page.get_by_role("link", name="Atom feed of new and changed items")
    href = link.get_attribute("href")
    assert "prong=pathways" in href and "q=librar" in href
    # contextlib.suppress: Chromium may offer an Atom document as a download.
    with (
        page.expect_response(lambda r: "/items.atom" in r.url) as info,
        contextlib.suppress(Exception),
    ):
        link.click()
    response = info.value
    assert response.status == 200 and "atom+xml" in response.headers["content-type"]
    feed = ET.fromstring(response.body())
    assert feed.tag == "{http://www.w3.org/2005/Atom}feed"
    assert not [p for p in problems if "Content Security Policy" in p], problems


def test_phone_width(server, browser, axe_script):
    page, problems = _page(
        browser, server, viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True
    )
    for path, name in (("/items?prong=worker-equity", "phone-list"), ("/", "phone-landing")):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 375, f"{path} scrolls sideways ({overflow}px)"
        _shot(page, name)
    # On a phone the filters come first, folded, so the results follow right after them.
    results = page.goto("/items") and page.locator(".results").bounding_box()
    panel = page.locator("details.filter-panel").bounding_box()
    assert panel["y"] < results["y"] < panel["y"] + panel["height"] + 100
    _accessible(page, axe_script)
    assert not [p for p in problems if "Content Security Policy" in p], problems


def test_keyboard_reaches_search_and_facets(server, browser):
    page, _ = _page(browser, server)
    page.goto("/items")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    focused = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()")
        )
    assert "q" in focused and "sort" in focused


def test_owner_reviews_borderline_prongs(server, browser, axe_script, synced):
    """An owner signs in, opens Prong review, answers the most uncertain item, and it leaves
    the list as an override (kept across retags)."""
    import re

    from playwright.sync_api import expect

    from biblio import storage as st
    from biblio.membership import owners

    owners.create_owner(synced, "owner@example.org", "a long owner passphrase")
    page, problems = _page(browser, server)
    page.goto("/-/admin/prongs/review")
    page.get_by_label("Email").fill("owner@example.org")
    page.get_by_label("Password").fill("a long owner passphrase")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Prong review").click()
    expect(page.get_by_role("heading", name="Prong review")).to_be_visible()
    _accessible(page, axe_script)
    _shot(page, "admin-review")
    total = int(re.search(r"(\d+) to review", page.content()).group(1))
    assert total > 0
    first = page.get_by_role("button", name=re.compile(r"^Belongs: ")).first
    label = first.get_attribute("aria-label")
    key = label.rsplit(" ", 1)[-1]
    first.click()
    expect(page.get_by_text(f"{total - 1} to review")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Override add .* saved\."))).to_be_visible()
    with st.connect(synced) as conn:
        actions = (
            conn.execute(st.prong_overrides.select().where(st.prong_overrides.c.item_key == key))
            .mappings()
            .all()
        )
    assert [a["action"] for a in actions] == ["add"]
    assert actions[0]["note"].startswith("prong review:")
    assert not [p for p in problems if "Content Security Policy" in p], problems


@pytest.mark.parametrize("width", [1280, 375])
def test_search_finds_word_forms_best_first_with_snippets(server, browser, axe_script, width):
    """A researcher types a plural into the header's search box: the singular's items are
    found, the best match first, each hit with its matched words marked; a search with
    bad syntax is explained on the same page with the search kept."""
    from playwright.sync_api import expect

    page, problems = _page(browser, server, viewport={"width": width, "height": 900})
    page.goto("/items?q=paraprofessional")
    singular = page.locator(".sentence").inner_text()
    page.goto("/")
    page.get_by_label("Search the library").fill("paraprofessionals")
    page.get_by_label("Search the library").press("Enter")
    page.wait_for_url("**/items?q=paraprofessionals")
    sentence = page.locator(".sentence").inner_text()
    assert sentence.split()[0] == singular.split()[0], (sentence, singular)  # same count
    assert sentence.endswith("sorted by relevance")
    expect(page.locator("#sort")).to_have_value("relevance")
    assert "paraprofessional" in page.locator("a.item-title").first.inner_text().lower()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    _accessible(page, axe_script)
    _shot(page, f"search-{width}")

    page.fill("#q", "abstract:phenomenological")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=abstract*")
    snippet = page.locator("p.snippet").first
    expect(snippet).to_be_visible()
    expect(snippet.locator(".snippet-source")).to_have_text("In the abstract:")
    assert snippet.locator("mark").first.inner_text().lower() == "phenomenological"
    _shot(page, f"search-snippets-{width}")

    page.fill("#q", "(tenure OR promotion")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("parenthesis is never closed")
    expect(page.locator("#q")).to_have_value("(tenure OR promotion")
    assert page.locator("ol.items > li").count() > 0  # still a list to browse
    _accessible(page, axe_script)
    _shot(page, f"search-error-{width}")

    page.goto("/items?q=vocational+awe")
    page.locator("a.item-title").first.click()
    page.wait_for_selector("#item-title")
    node = page.evaluate(
        "JSON.parse(document.querySelector('script[type=\"application/ld+json\"]').textContent)"
    )
    assert node["@context"] == "https://schema.org" and node["name"]
    assert page.locator('link[rel="search"]').get_attribute("href") == "/opensearch.xml"
    # (The 400 of the bad search and a missing favicon are logged as failed loads.)
    assert not [p for p in problems if "Failed to load resource" not in p], problems
