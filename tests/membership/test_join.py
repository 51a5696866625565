"""Applicants' side of joining: the form, validation, hostile input, duplicates, rate
limits, the private status link and withdrawal, through the Flask test client with
CSRF protection on, against the sample library synced from the loopback stand-in."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from biblio import create_app, mail
from biblio import storage as st
from biblio.membership import requests as join_requests
from tests.conftest import make_settings

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(tmp_path, zotero):
    return make_settings(
        tmp_path,
        zotero,
        mail={"enabled": False},
        join={"rate_limit": "100 per hour", "email_rate_limit": "100 per day"},
    )


def csrf(client, url="/join"):
    page = client.get(url)
    return TOKEN_RE.search(page.get_data(as_text=True)).group(1)


def form(**overrides):
    data = {
        "name": "Ada Applicant",
        "email": "ada@example.org",
        "zotero_user_id": "8000001",
        "zotero_username": "",
        "affiliation": "Somewhere Library",
        "prongs": ["pathways"],
        "reason": "I study alternative credentials.",
        "consent": "yes",
        "website": "",
    }
    data.update(overrides)
    return data


def submit(client, **overrides):
    data = form(**overrides)
    data["csrf_token"] = csrf(client)
    return client.post("/join", data=data)


def rows(engine):
    with st.connect(engine) as conn:
        return [dict(r) for r in conn.execute(select(st.join_requests)).mappings()]


def test_join_page_explains_group_and_prongs(client):
    page = client.get("/join")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for pid in join_requests.PRONGS:
        assert f'value="{pid}"' in html
    assert "Equity between worker classifications" in html
    assert 'name="csrf_token"' in html and 'name="website"' in html
    assert "user ID" in html and "consent" in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_submit_stores_request_queues_confirmation_and_shows_status(client, synced):
    resp = submit(client)
    assert resp.status_code == 303
    status_url = resp.headers["Location"]
    assert "/join/status/" in status_url
    token = status_url.split("/join/status/")[1].split("?")[0]
    [row] = rows(synced)
    assert row["status"] == "pending" and row["zotero_user_id"] == 8000001
    assert row["token_hash"] != token and token not in str(row)  # only the hash is stored
    [msg] = mail.messages(synced)
    assert msg["to_addr"] == "ada@example.org" and msg["status"] == "pending"
    assert f"/join/status/{token}" in msg["body"]

    page = client.get(status_url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "pending review" in html and "received" in html
    assert page.headers["Cache-Control"] == "no-store"
    as_json = client.get(f"/join/status/{token}.json").get_json()
    assert as_json["ok"] and as_json["rows"][0]["status"] == "pending"
    assert "email" not in as_json["rows"][0] and "owner_note" not in as_json["rows"][0]


def test_field_errors_are_clear(client, synced):
    resp = submit(
        client,
        name="",
        email="not-an-email",
        zotero_user_id="12ab",
        reason="short",
        consent="",
        prongs=["nonsense"],
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    for message in (
        "Name is required",
        "valid email address",
        "user ID is a number",
        "at least 10 characters",
        "Choose among the listed prongs",
        "agree to how we use",
    ):
        assert message in html
    assert 'aria-invalid="true"' in html
    assert rows(synced) == []


def test_user_id_or_username_is_required(client, synced):
    resp = submit(client, zotero_user_id="", zotero_username="")
    assert resp.status_code == 400
    assert "Give your Zotero user ID" in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    "email",
    [
        "a@b",
        "a b@example.org",
        "<x>@example.org",
        "ada@example.org\nBcc: x@evil.test",
        "@example.org",
    ],
)
def test_invalid_emails_rejected(client, synced, email):
    resp = submit(client, email=email)
    assert resp.status_code == 400
    assert rows(synced) == []


def test_hostile_input_is_stored_and_shown_escaped(client, synced):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    resp = submit(
        client,
        name=evil,
        affiliation=evil,
        reason=evil + " I want to join.",
        zotero_username="",
        zotero_user_id="8000002",
    )
    assert resp.status_code == 303
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert" in html
    [row] = rows(synced)
    assert row["name"] == evil  # stored as given, escaped on output


def test_hostile_input_redisplayed_escaped_on_error(client, synced):
    evil = '"><script>alert(1)</script>'
    resp = submit(client, name=evil, email=evil, reason=evil)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "<script>alert(1)</script>" not in html
    assert "&#34;&gt;&lt;script&gt;" in html or "&quot;&gt;&lt;script&gt;" in html


def test_unicode_is_kept(client, synced):
    resp = submit(
        client,
        name="Zoë Ñúñez 李小龍 🦉",
        affiliation="Bibliothèque",
        reason="Équité — 公平 for library workers ✊",
    )
    assert resp.status_code == 303
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Zoë Ñúñez 李小龍 🦉" in html


def test_long_fields_and_huge_bodies_rejected(client, synced):
    resp = submit(client, reason="x" * 5000)
    assert resp.status_code == 400 and "too long" in resp.get_data(as_text=True)
    token = csrf(client)
    resp = client.post("/join", data={**form(reason="y" * (1024 * 1024)), "csrf_token": token})
    assert resp.status_code == 413
    assert rows(synced) == []


def test_control_characters_rejected(client, synced):
    resp = submit(client, name="Ada\x00Lovelace")
    assert resp.status_code == 400 and "control characters" in resp.get_data(as_text=True)


def test_csrf_is_enforced(client, synced):
    resp = client.post("/join", data=form())
    assert resp.status_code == 400
    assert rows(synced) == []


def test_honeypot_swallows_bots(client, synced):
    resp = submit(client, website="http://spam.example")
    assert resp.status_code == 200 and "Request received" in resp.get_data(as_text=True)
    assert rows(synced) == [] and mail.messages(synced) == []


def test_withdraw_then_resubmit(client, synced):
    location = submit(client).headers["Location"].split("?")[0]
    token = location.rsplit("/", 1)[1]
    resp = client.post(
        f"/join/status/{token}/withdraw", data={"csrf_token": csrf(client, location)}
    )
    assert resp.status_code == 303
    html = client.get(location).get_data(as_text=True)
    assert "withdrawn" in html and "Withdraw my request" not in html
    again = client.post(f"/join/status/{token}/withdraw", data={"csrf_token": csrf(client)})
    assert again.status_code == 409
    assert submit(client).status_code == 303  # a withdrawn request is not open any more
    actions = [e["action"] for e in __import__("biblio.audit").audit.entries(synced)]
    assert "request.withdraw" in actions


def test_withdraw_requires_csrf(client, synced):
    token = submit(client).headers["Location"].split("?")[0].rsplit("/", 1)[1]
    assert client.post(f"/join/status/{token}/withdraw").status_code == 400
    assert rows(synced)[0]["status"] == "pending"


def test_status_link_reveals_nothing_else(client, synced):
    first = submit(client).headers["Location"].split("?")[0]
    submit(client, name="Bob Other", email="bob@example.org", zotero_user_id="8000003")
    html = client.get(first).get_data(as_text=True)
    assert "Bob Other" not in html and "bob@example.org" not in html
    for bad in ("nope", "x" * 43, "../1", "1"):
        resp = client.get(f"/join/status/{bad}")
        assert resp.status_code == 404
        assert "Bob" not in resp.get_data(as_text=True)
    assert client.get("/join/status/nope.json").get_json() == {
        "ok": False,
        "error": "No such request.",
        "status": 404,
    }
    assert (
        client.post("/join/status/nope/withdraw", data={"csrf_token": csrf(client)}).status_code
        == 404
    )


def test_public_pages_do_not_set_session_cookie(client, synced):
    client.get("/-/sync.json")
    client.get("/join/status/nope.json")
    client.get("/-/admin/")  # redirected to login, no session needed for that
    assert client.get_cookie("session") is None


def test_rate_limit_per_ip_and_email(tmp_path, zotero, synced):
    conf = make_settings(
        tmp_path,
        zotero,
        mail={"enabled": False},
        join={"rate_limit": "2 per hour", "email_rate_limit": "1 per day"},
    )
    app = create_app(conf)
    client = app.test_client()
    assert submit(client).status_code == 303
    # the same email again hits the per-email limit (before the duplicate check)
    second = submit(client, zotero_user_id="8000010")
    assert second.status_code == 429
    third = submit(client, email="c@example.org", zotero_user_id="8000011")
    assert third.status_code == 429  # a 3rd POST from this address: per-IP limit reached
