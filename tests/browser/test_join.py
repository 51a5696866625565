"""The whole join flow in real Chromium (Playwright) against a real server thread:
an applicant submits a request and gets the confirmation email (aiosmtpd), an owner
signs in and approves it with a reason, the stand-in Zotero group gains the member
(as if approved on zotero.org), "Sync now" confirms it, and the applicant's private
status link shows "member". Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import pytest

from biblio import create_app, mail
from biblio.membership import owners
from tests.browser import harness as browsing
from tests.conftest import make_settings
from tests.smtp_server import body

pytestmark = pytest.mark.browser

OWNER, PASSWORD = "owner@example.org", "a long owner passphrase"
USER_ID = 8123456


@pytest.fixture
def live(tmp_path, zotero, smtp, synced):
    conf = make_settings(tmp_path, zotero, mail={"host": "127.0.0.1", "port": smtp.port})
    app = create_app(conf)
    owners.create_owner(synced, OWNER, PASSWORD)
    with browsing.serving(app) as url:
        yield url
    mail.wait_for_background()


def to_applicant(smtp, count):
    """The first ``count`` messages to the applicant (owners get their own notices)."""
    # the owner's "new request" notice makes one more message in all
    mine = [m for m in smtp.collector.wait_for(count + 1) if m["To"] == "octavia@example.org"]
    assert len(mine) >= count
    return mine[:count]


def shot(page, name):
    browsing.shot(page, f"join-{name}")


def test_join_approve_sync_member(live, browser, smtp, library):
    from playwright.sync_api import expect

    # 1. The applicant asks to join.
    applicant = browser.new_context(viewport={"width": 390, "height": 844})  # phone width
    page = applicant.new_page()
    page.goto(f"{live}/join")
    expect(page.get_by_role("heading", name="Join the group")).to_be_visible()
    page.get_by_label("Name (required)", exact=True).fill("Octavia <em>Applicant</em>")
    page.get_by_label("Email (required)", exact=True).fill("octavia@example.org")
    page.get_by_label("Zotero user ID", exact=True).fill(str(USER_ID))
    page.get_by_label("Affiliation").fill("Bibliothèque publique")
    page.get_by_label("Pathways and credentials").check()
    page.get_by_label("Why would you like to join?").fill(
        "I study apprenticeships as a route into librarian jobs."
    )
    page.get_by_label(re.compile("I agree")).check()
    shot(page, "1-form")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("[data-status]")).to_have_text("pending review")
    expect(page.get_by_text("Octavia <em>Applicant</em>", exact=False)).to_be_visible()
    shot(page, "2-pending")

    [confirmation] = to_applicant(smtp, 1)
    notices = [m for m in smtp.collector.messages if m["To"] == OWNER]
    assert len(notices) == 1 and "new request" in notices[0]["Subject"]
    status_link = re.search(r"http://\S+/join/status/\S+", body(confirmation)).group(0)

    # 2. An owner signs in (redirected from the queue) and approves with a reason.
    owner = browser.new_context().new_page()
    owner.goto(f"{live}/-/admin/")
    expect(owner.get_by_role("heading", name="Owners' sign-in")).to_be_visible()
    owner.get_by_label("Email").fill(OWNER)
    owner.get_by_label("Password").fill(PASSWORD)
    owner.get_by_role("button", name="Sign in").click()
    expect(owner.get_by_role("heading", name="Join requests")).to_be_visible()
    shot(owner, "3-queue")
    owner.get_by_role("link", name=re.compile(r"^#\d+$")).first.click()
    expect(owner.get_by_role("heading", name=re.compile("Octavia"))).to_be_visible()
    owner.get_by_label(re.compile("^Reason")).fill("Welcome, your research fits pathways.")
    owner.get_by_role("button", name="Approve").click()
    expect(owner.get_by_text(re.compile("approved. Now approve the person"))).to_be_visible()
    members_link = owner.get_by_role("link", name=re.compile("members settings"))
    assert f"/groups/{library.group_id}/settings/members" in members_link.first.get_attribute(
        "href"
    )
    shot(owner, "4-approved")

    decision = to_applicant(smtp, 2)[1]
    assert "approved" in decision["Subject"] and "fits pathways" in body(decision)
    page.goto(status_link)
    expect(page.locator("[data-status]")).to_have_text(re.compile("approved"))

    # 3. The owner approves on zotero.org (the stand-in gains the member); sync now.
    library.add_member(USER_ID)
    owner.get_by_role("button", name="Sync now").click()
    expect(owner.get_by_text(re.compile("sync (ok|unchanged)"))).to_be_visible()
    expect(owner.locator("[data-status]")).to_have_attribute("data-status", "member")
    shot(owner, "5-synced")

    # 4. The applicant's private link now says member.
    page.goto(status_link)
    expect(page.locator("[data-status]")).to_have_text("member (confirmed)")
    expect(page.get_by_role("button", name="Withdraw my request")).to_have_count(0)
    shot(page, "6-member")
    welcome = to_applicant(smtp, 3)[2]
    assert welcome["Subject"].startswith("Welcome")

    # 5. The audit log shows the whole story.
    owner.goto(f"{live}/-/admin/audit")
    for action in (
        "request.submit",
        "owner.login",
        "request.approve",
        "sync.now",
        "request.member",
    ):
        expect(owner.get_by_role("cell", name=action, exact=True).first).to_be_visible()
    shot(owner, "7-audit")
