"""Mail that owners and applicants can trust: full links in owners' emails, an honest
"we have emailed you", the outbox with its failures (/-/admin/outbox, ``biblio mail
list|show``), the demo's mail catcher (/-/admin/mail, a real aiosmtpd server writing a
Maildir) and the demo's "accept the invitation" control, through real SMTP on loopback."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from click.testing import CliRunner

from biblio import audit, create_app, mail
from biblio import storage as st
from biblio.cli import cli
from biblio.mailcatcher import MailCatcher, caught
from biblio.membership import digests, owners
from biblio.membership import requests as jr
from biblio.web.admin.mail import DEMO_GROUP
from tests.conftest import make_settings
from tests.smtp_server import body, free_port

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
OWNER, PASSWORD = "owner@example.org", "a long owner passphrase"


def csrf(client, url):
    return TOKEN_RE.search(client.get(url).get_data(as_text=True)).group(1)


def apply(client, email="ada@example.org", uid="8000001"):
    return client.post(
        "/join",
        data={
            "csrf_token": csrf(client, "/join"),
            "name": "Ada Applicant",
            "email": email,
            "zotero_user_id": uid,
            "reason": "I study alternative credentials.",
            "consent": "yes",
        },
    )


def signed_in(app, engine):
    owners.create_owner(engine, OWNER, PASSWORD)
    client = app.test_client()
    resp = client.post(
        "/-/admin/login",
        data={
            "csrf_token": csrf(client, "/-/admin/login"),
            "email": OWNER,
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 303
    return client


def app_for(tmp_path, zotero, **sections):
    app = create_app(make_settings(tmp_path, zotero, **sections))
    app.config.update(TESTING=True)
    return app


def test_owners_emails_link_with_the_full_url_and_the_applicant_is_told_it_was_sent(
    tmp_path, zotero, synced, smtp
):
    app = app_for(
        tmp_path,
        zotero,
        mail={"host": "127.0.0.1", "port": smtp.port},
        web={"public_url": "https://biblio.example"},
    )
    owners.create_owner(synced, OWNER, PASSWORD)
    client = app.test_client()
    resp = apply(client)
    assert resp.status_code == 303
    request_id = jr.list_requests(synced)[0]["id"]
    messages = smtp.collector.wait_for(2)
    [notice] = [m for m in messages if m["To"] == OWNER]
    link = f"Review the request at https://biblio.example/-/admin/requests/{request_id}"
    assert link in body(notice)
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'data-mailed="sent"' in page and "We have emailed you this private link" in page


def test_with_the_mail_server_down_the_applicant_is_not_told_we_emailed(tmp_path, zotero, synced):
    app = app_for(tmp_path, zotero, mail={"host": "127.0.0.1", "port": free_port()})
    client = app.test_client()
    resp = apply(client)
    mail.wait_for_background()
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "We have emailed you" not in page
    assert 'data-mailed="failing"' in page and "We could not email you" in page
    assert "Bookmark this page now" in page


def test_with_mail_switched_off_the_page_only_asks_to_bookmark(tmp_path, zotero, synced):
    client = app_for(tmp_path, zotero, mail={"enabled": False}).test_client()
    page = client.get(apply(client).headers["Location"]).get_data(as_text=True)
    assert 'data-mailed="off"' in page and "We have emailed you" not in page


def test_owners_see_the_outbox_its_failures_and_retry_it(tmp_path, zotero, synced, smtp):
    down = free_port()
    app = app_for(tmp_path, zotero, mail={"host": "127.0.0.1", "port": down})
    apply(app.test_client())
    mail.wait_for_background()
    owner = signed_in(app, synced)
    assert app.test_client().get("/-/admin/outbox").status_code == 303  # login first
    page = owner.get("/-/admin/outbox").get_data(as_text=True)
    assert "ada@example.org" in page and "ConnectionRefusedError" in page
    assert "Retry now" in page and "/join/status/" not in page  # no bodies, no secret links
    listed = owner.get("/-/admin/outbox.json?status=pending").get_json()
    assert listed["ok"] and listed["count"] == 1 and listed["rows"][0]["last_error"]
    assert "body" not in listed["rows"][0] and listed["totals"]["pending"] == 1
    assert owner.get("/-/admin/outbox?status=bogus").status_code == 400

    app.config["BIBLIO"]["mail"]["port"] = smtp.port  # the mail server is back
    resp = owner.post("/-/admin/outbox/retry", data={"csrf_token": csrf(owner, "/-/admin/outbox")})
    assert resp.status_code == 303
    assert smtp.collector.wait_for(1)[0]["To"] == "ada@example.org"
    assert owner.get("/-/admin/outbox.json").get_json()["rows"][0]["status"] == "sent"
    [entry] = audit.entries(synced, action="outbox.retry")
    assert entry["actor"] == OWNER and "1 sent" in entry["detail"]


def test_the_demo_catcher_keeps_mail_that_owners_read_with_links(tmp_path, zotero, synced):
    with MailCatcher(tmp_path / "mail") as catcher:
        app = app_for(
            tmp_path,
            zotero,
            mail={"host": "127.0.0.1", "port": catcher.port},
            demo={"mailbox": str(tmp_path / "mail")},
            web={"public_url": "http://demo.example"},
        )
        resp = apply(app.test_client(), email="bo@example.org")
        mail.wait_for_background()
        token = resp.headers["Location"].split("/join/status/")[1].split("?")[0]
        [message] = caught(tmp_path / "mail")
        assert message.to == "bo@example.org" and f"/join/status/{token}" in message.body
        owner = signed_in(app, synced)
        page = owner.get("/-/admin/mail").get_data(as_text=True)
        link = f"http://demo.example/join/status/{token}"
        assert f'<a href="{link}">{link}</a>' in page and "Caught mail" in page
        rows = owner.get("/-/admin/mail.json").get_json()["rows"]
        assert [r["to"] for r in rows] == ["bo@example.org"] and link in rows[0]["body"]


def test_caught_mail_is_escaped_and_only_http_links_are_made(tmp_path, zotero, synced):
    with MailCatcher(tmp_path / "mail") as catcher:
        app = app_for(
            tmp_path,
            zotero,
            mail={"host": "127.0.0.1", "port": catcher.port},
            demo={"mailbox": str(tmp_path / "mail")},
        )
        with st.transaction(synced) as conn:
            mail.enqueue(
                conn,
                "x@example.org",
                "<b>hi</b>",
                'javascript:alert(1) <script>x</script> https://ok.example/a"onmouseover=1',
            )
        assert mail.deliver_pending(synced, app.config["BIBLIO"]).sent == 1
        page = signed_in(app, synced).get("/-/admin/mail").get_data(as_text=True)
    assert "<script>x" not in page and "&lt;script&gt;" in page and "&lt;b&gt;hi" in page
    assert 'href="javascript' not in page and '<a href="https://ok.example/a">' in page


def test_without_a_catcher_the_mail_page_says_where_mail_goes(tmp_path, zotero, synced):
    app = app_for(tmp_path, zotero)
    owner = signed_in(app, synced)
    page = owner.get("/-/admin/mail").get_data(as_text=True)
    assert "No mail catcher runs here" in page and "Accept the invitation" not in page
    assert owner.get("/-/admin/mail.json").get_json() == {
        "ok": True,
        "rows": [],
        "count": 0,
        "next": None,
    }
    token = csrf(owner, "/-/admin/mail")
    resp = owner.post("/-/admin/mail/member", data={"csrf_token": token, "user_id": "8000001"})
    assert resp.status_code == 404  # only the demo's stand-in can be changed


def test_in_the_demo_an_owner_accepts_the_invitation_and_the_sync_confirms_it(
    tmp_path, zotero, synced, library
):
    app = app_for(tmp_path, zotero, mail={"enabled": False})
    app.extensions[DEMO_GROUP] = library  # as biblio demo does
    apply(app.test_client(), uid="8000777")
    request_id = jr.list_requests(synced)[0]["id"]
    owner = signed_in(app, synced)
    assert "Accept the invitation" not in owner.get("/-/admin/mail").get_data(as_text=True)
    jr.decide(synced, app.config["BIBLIO"], request_id, "approve", OWNER)
    page = owner.get("/-/admin/mail").get_data(as_text=True)
    assert "Accept the invitation as Ada Applicant" in page
    token = TOKEN_RE.search(page).group(1)
    bad = owner.post("/-/admin/mail/member", data={"csrf_token": token, "user_id": "12ab"})
    assert bad.status_code == 303 and 8000777 not in library.group["members"]
    resp = owner.post("/-/admin/mail/member", data={"csrf_token": token, "user_id": "8000777"})
    assert resp.status_code == 303
    assert 8000777 in library.group["members"]
    assert jr.get_request(synced, request_id)["status"] == "member"
    assert audit.entries(synced, action="demo.member")[0]["subject"] == "zotero-user:8000777"


def test_mail_list_and_show_print_the_outbox(tmp_path, zotero, synced):
    conf = make_settings(tmp_path, zotero, mail={"enabled": False})
    with st.transaction(synced) as conn:
        first = mail.enqueue(conn, "ada@example.org", "Hello Ada", "Line one\nhttp://x/y\n")
    path = tmp_path / "settings.toml"
    path.write_text(
        f'[zotero]\nlibrary_id = {zotero.library.group_id}\n[database]\nurl = "'
        f'{conf["database"]["url"]}"\n[mail]\nenabled = false\n'
    )
    runner = CliRunner()
    listed = runner.invoke(cli, ["--settings", str(path), "mail", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"{first}\tpending\t" in listed.output and "Hello Ada" in listed.output
    assert "0 sent, 1 pending, 0 failed" in listed.output
    shown = runner.invoke(cli, ["--settings", str(path), "mail", "show", str(first)])
    assert shown.exit_code == 0 and "Subject: Hello Ada" in shown.output
    assert "Line one\nhttp://x/y" in shown.output
    missing = runner.invoke(cli, ["--settings", str(path), "mail", "show", "999"])
    assert missing.exit_code == 1 and "no message 999" in missing.output


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        (
            "https://biblio.example/",
            "Review them at https://biblio.example/-/admin/?status=pending",
        ),
        # Unset (development): the address biblio run serves, never a request's Host.
        ("", "Review them at http://127.0.0.1:5000/-/admin/?status=pending"),
    ],
)
def test_the_digest_links_in_full_from_configuration(
    tmp_path, zotero, synced, public_url, expected
):
    conf = make_settings(tmp_path, zotero, mail={"enabled": False}, web={"public_url": public_url})
    apply(create_app(conf).test_client())
    later = st.utcnow() + timedelta(days=30)
    assert digests.digest(synced, conf, [OWNER], now=later) == 1
    [message] = [m for m in mail.messages(synced) if m["to_addr"] == OWNER]
    assert expected in message["body"]
