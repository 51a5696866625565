"""Production as a visitor meets it, in real Chromium: the shipped nginx site over TLS in
front of ``biblio run`` (real gunicorn, ``[web] env = "production"``), at the public
name ``biblio.example.org`` (Chromium's host rules send it to loopback).

A visitor typing ``http://`` lands on https; the join form submits (CSRF with the
strict referrer check of an https site: the browser's Referer is the public URL); the
confirmation email (aiosmtpd) links to the public URL and opens the status page; HSTS
arrives; ``/-/health`` answers. At 1280 and 375 px, screenshots in test-artifacts/.
"""

from __future__ import annotations

import re

import pytest

from biblio import mail
from tests import prerequisites
from tests.browser import harness as browsing
from tests.browser.harness import CHROMIUM_ARGS
from tests.served import HAVE_NGINX, PUBLIC, serve_biblio, serve_nginx
from tests.smtp_server import body

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not HAVE_NGINX, reason="nginx and openssl are not installed"),
]


@pytest.fixture
def site(synced, settings, tmp_path, smtp):
    with (
        serve_biblio(settings, tmp_path, workers=2, mail_port=smtp.port) as app,
        serve_nginx(app, tmp_path / "nginx") as proxy,
    ):
        yield proxy
    mail.wait_for_background()


@pytest.fixture
def chromium(site):
    """Chromium that resolves the public name to the test's nginx."""
    from playwright.sync_api import sync_playwright  # optional, as in conftest.py

    rules = (
        f"MAP biblio.example.org:443 127.0.0.1:{site.https_port},"
        f"MAP biblio.example.org:80 127.0.0.1:{site.http_port}"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=prerequisites.chromium(),
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"],
        )
        yield browser
        browser.close()


@pytest.mark.parametrize("width, height", [(1280, 900), (375, 812)])
def test_a_visitor_joins_over_https_at_the_public_name(site, chromium, smtp, width, height):
    from playwright.sync_api import expect  # optional, as in conftest.py

    context = chromium.new_context(
        viewport={"width": width, "height": height}, ignore_https_errors=True
    )
    page = context.new_page()
    page.goto("http://biblio.example.org/join")  # typed without https
    assert page.url == f"{PUBLIC}/join"
    expect(page.get_by_role("heading", name="Join the group")).to_be_visible()
    email = f"reader{width}@example.org"
    page.get_by_label("Name (required)", exact=True).fill("Rosalind Reader")
    page.get_by_label("Email (required)", exact=True).fill(email)
    page.get_by_label("Zotero user ID", exact=True).fill(str(8200000 + width))
    page.get_by_label("Pathways and credentials").check()
    page.get_by_label("Why would you like to join?").fill("I study library career pathways.")
    page.get_by_label(re.compile("I agree")).check()
    with page.expect_response(lambda r: r.url == f"{PUBLIC}/join") as posted:
        page.get_by_role("button", name="Send request").click()
    assert posted.value.status == 303
    assert posted.value.headers["strict-transport-security"] == "max-age=31536000"
    expect(page.locator("[data-status]")).to_have_text("pending review")
    assert page.url.startswith(f"{PUBLIC}/join/status/")
    browsing.shot(page, f"production-join-status-{width}")

    [msg] = [m for m in smtp.collector.wait_for(1) if m["To"] == email]
    link = re.search(r"https://\S+/join/status/\S+", body(msg)).group(0)
    assert link.startswith(f"{PUBLIC}/join/status/")
    page.goto(link)
    expect(page.locator("[data-status]")).to_have_text("pending review")

    health = page.goto(f"{PUBLIC}/-/health")
    assert health.status == 200 and health.json()["ok"] is True
    browsing.shot(page, f"production-health-{width}")
    context.close()
