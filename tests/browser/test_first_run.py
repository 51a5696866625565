"""The first run, whole, in real Chromium: ``biblio demo`` (a real process: stand-in,
mail catcher, scheduler and web app) prints an owner login; an applicant signs in with
Zotero on the stand-in's authorize page and sends a request without typing an ID and is
told truly that the confirmation went out; the owner reads the caught mail (the notice
links with the full URL), approves, accepts the invitation on the stand-in, and the
request reaches "member"; the outbox shows every message sent; ``biblio mail list``
prints them. Screenshots at 1280 and 375 px go to test-artifacts/."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.browser import test_browse as browse_checks
from tests.browser.harness import shot
from tests.smtp_server import free_port

#: axe-core, installed once per session by the browse tests' fixture (shared here).
axe_script = browse_checks.axe_script
_accessible = browse_checks._accessible

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}


@pytest.fixture
def demo(tmp_path):
    """``biblio demo`` on a free port: (base URL, its output so far, settings file)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIBLIO_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "biblio", "demo", "--port", str(port), "--instance", str(tmp_path)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    try:
        deadline = time.time() + 90
        while time.time() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("  biblio --settings") and line.rstrip().endswith(" sync"):
                break
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/-/sync.json", timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        yield url, "".join(lines), tmp_path / "settings.toml"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)


def test_the_demo_takes_an_applicant_to_member_with_zotero_sign_in_and_caught_mail(
    demo, browser, axe_script
):
    from playwright.sync_api import expect

    expect.set_options(timeout=20000)
    url, printed, settings_file = demo
    login = re.search(r"sign in as (\S+), password (\S+)", printed)
    assert login, printed

    # 1. The applicant signs in with Zotero (the stand-in plays zotero.org) and applies.
    applicant = browser.new_context(viewport=PHONE).new_page()
    applicant.goto(f"{url}/join")
    shot(applicant, "first-run-join-375")
    applicant.get_by_role("button", name="Sign in with Zotero").click()
    expect(applicant.get_by_role("heading", name=re.compile("^Allow"))).to_be_visible()
    assert "identity=1" in applicant.url
    shot(applicant, "first-run-zotero-authorize-375")
    applicant.get_by_label("Zotero user ID").fill("8123456")
    applicant.get_by_label("Zotero username").fill("octavia_b")
    applicant.get_by_role("button", name="Accept").click()
    expect(
        applicant.get_by_text(re.compile("Zotero confirmed your account: octavia_b"))
    ).to_be_visible()
    expect(applicant.get_by_label("Zotero user ID", exact=True)).to_have_count(0)
    applicant.get_by_label("Name (required)", exact=True).fill("Octavia Butler")
    applicant.get_by_label("Email (required)", exact=True).fill("octavia@example.org")
    applicant.get_by_label("Why would you like to join?").fill(
        "Apprenticeships into librarianship."
    )
    applicant.get_by_label(re.compile("I agree")).check()
    _accessible(applicant, axe_script)
    shot(applicant, "first-run-join-signed-in-375")
    applicant.get_by_role("button", name="Send request").click()
    expect(applicant.locator("[data-status]")).to_have_text("pending review")
    expect(applicant.get_by_text("We have emailed you this private link")).to_be_visible()
    status_url = applicant.url.split("?")[0]

    # 2. The owner signs in with the printed login and reads the caught mail.
    owner = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    owner.goto(f"{url}/-/admin/mail")
    owner.get_by_label("Email").fill(login.group(1))
    owner.get_by_label("Password").fill(login.group(2))
    owner.get_by_role("button", name="Sign in").click()
    expect(owner.get_by_role("heading", name="Caught mail")).to_be_visible()
    notice = owner.locator("article.caught", has_text="new request to join")
    expect(notice).to_have_count(1)
    review = notice.locator(f'a[href^="{url}/-/admin/requests/"]')  # a full link
    expect(review).to_have_count(1)
    expect(owner.locator("article.caught", has_text=status_url)).to_have_count(1)
    _accessible(owner, axe_script)
    shot(owner, "first-run-caught-mail-1280")
    review.click()  # the full link in the owner's email works
    expect(owner.get_by_role("heading", name=re.compile("Octavia Butler"))).to_be_visible()
    expect(owner.get_by_text("Zotero user ID confirmed by Sign in with Zotero")).to_be_visible()
    owner.get_by_label(re.compile("^Reason")).fill("Welcome!")
    owner.get_by_role("button", name="Approve").click()

    # 3. The demo plays zotero.org: the applicant accepts; the sync confirms.
    owner.get_by_role("link", name="Caught mail", exact=True).click()
    owner.get_by_role("button", name="Accept the invitation as Octavia Butler").click()
    expect(
        owner.get_by_text(re.compile(r"User 8123456 joined the stand-in group; sync"))
    ).to_be_visible()
    expect(owner.locator("article.caught", has_text="Welcome to")).to_have_count(1)
    shot(owner, "first-run-accepted-1280")
    owner.set_viewport_size(PHONE)
    shot(owner, "first-run-caught-mail-375")
    owner.get_by_role("link", name="Outbox", exact=True).click()
    expect(owner.locator("td[data-status=sent]")).to_have_count(
        4
    )  # confirm, notice, approve, welcome
    owner.set_viewport_size({"width": 1280, "height": 900})
    _accessible(owner, axe_script)
    shot(owner, "first-run-outbox-1280")

    applicant.goto(status_url)
    expect(applicant.locator("[data-status]")).to_have_text("member (confirmed)")
    shot(applicant, "first-run-member-375")

    listed = subprocess.run(
        [sys.executable, "-m", "biblio", "--settings", str(settings_file), "mail", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("BIBLIO_")},
    )
    assert listed.returncode == 0, listed.stderr
    assert "octavia@example.org" in listed.stdout and "4 sent, 0 pending, 0 failed" in listed.stdout
