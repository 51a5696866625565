"""The owners' area through the Flask test client (CSRF on): login, lockout, guards,
the queue, decisions with audit and email, notes, bulk actions, CSV, membership
reconciliation at sync, "sync now", prong overrides and the digest."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from biblio import audit, create_app, mail
from biblio import storage as st
from biblio.membership import digests, owners
from biblio.membership import requests as join_requests
from biblio.sync.lock import sync_lock
from biblio.sync.run import run_sync
from tests.conftest import make_settings

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
OWNER, PASSWORD = "owner@example.org", "correct horse battery staple"
EVIL = '<script>alert("owned")</script>'


@pytest.fixture
def settings(tmp_path, zotero):
    return make_settings(
        tmp_path,
        zotero,
        mail={"enabled": False},
        join={"rate_limit": "100 per hour", "email_rate_limit": "100 per day"},
        auth={"login_rate_limit": "100 per minute", "lockout_failures": 3},
    )


@pytest.fixture
def owner(synced):
    return owners.create_owner(synced, OWNER, PASSWORD)


def csrf(client, url="/-/admin/login"):
    return TOKEN_RE.search(client.get(url).get_data(as_text=True)).group(1)


def login(client, email=OWNER, password=PASSWORD, next_url=None):
    data = {"email": email, "password": password, "csrf_token": csrf(client)}
    if next_url:
        data["next"] = next_url
    return client.post("/-/admin/login", data=data)


def post(client, url, data, page="/-/admin/"):
    return client.post(url, data={**data, "csrf_token": csrf(client, page)})


def apply(client, name="Ada", email="ada@example.org", uid="8000001", **extra):
    data = {
        "name": name,
        "email": email,
        "zotero_user_id": uid,
        "consent": "yes",
        "reason": "I research pathways into librarianship.",
        "prongs": ["pathways"],
        **extra,
    }
    resp = client.post("/join", data={**data, "csrf_token": csrf(client, "/join")})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return resp.headers["Location"].split("?")[0]


def request_id(engine, email):
    with st.connect(engine) as conn:
        return conn.execute(
            select(st.join_requests.c.id).where(st.join_requests.c.email == email)
        ).scalar_one()


OWNER_GETS = [
    "/-/admin/",
    "/-/admin/requests.json",
    "/-/admin/requests.csv",
    "/-/admin/requests/1",
    "/-/admin/requests/1.json",
    "/-/admin/audit",
    "/-/admin/audit.json",
    "/-/admin/prongs",
    "/-/admin/prongs/review",
]
OWNER_POSTS = [
    "/-/admin/requests/1/decide",
    "/-/admin/requests/1/note",
    "/-/admin/requests/bulk",
    "/-/admin/sync",
    "/-/admin/prongs",
]


def test_every_owner_page_needs_login(app, client, synced):
    app.config["WTF_CSRF_ENABLED"] = False  # reach the guard itself, not the CSRF check
    calls = [(client.get, url) for url in OWNER_GETS] + [(client.post, u) for u in OWNER_POSTS]
    for call, url in calls:
        resp = call(url)
        assert resp.status_code == 303, url
        assert resp.headers["Location"].startswith("/-/admin/login"), url
    with st.connect(synced) as conn:
        assert conn.execute(select(st.sync_runs)).all().__len__() == 1  # no sync ran


def test_login_flow_cookies_and_logout(tmp_path, zotero, synced, owner):
    conf = make_settings(
        tmp_path,
        zotero,
        web={"env": "production", "public_url": "https://biblio.example.org"},
        mail={"enabled": False},
    )
    client = create_app(conf).test_client()
    # Production is https: Flask-WTF checks that forms come from the site's own pages.
    client.environ_base["HTTP_REFERER"] = "https://biblio.example.org/-/admin/login"
    resp = login(client)
    assert resp.status_code == 303 and resp.headers["Location"] == "/-/admin/"
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/-/admin/")
    assert page.status_code == 200 and "Join requests" in page.get_data(as_text=True)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert client.post("/-/admin/logout").status_code == 400  # CSRF
    out = client.post("/-/admin/logout", data={"csrf_token": csrf(client, "/-/admin/")})
    assert out.status_code == 303
    assert client.get("/-/admin/").status_code == 303


def test_login_requires_csrf(client, owner):
    resp = client.post("/-/admin/login", data={"email": OWNER, "password": PASSWORD})
    assert resp.status_code == 400
    assert client.get("/-/admin/").status_code == 303


def test_wrong_password_and_lockout(client, synced, owner):
    """Failures lock the address they came from out of the account, even with the right
    password; the owner still signs in from elsewhere, and the lockout expires."""
    for _ in range(2):
        resp = login(client, password="wrong password here")
        assert resp.status_code == 401 and "Wrong email or password" in resp.get_data(True)
    assert login(client, email="nobody@example.org").status_code == 401
    assert login(client, password="wrong again").status_code == 401  # 3rd failure: locked
    refused = login(client)  # even the right password, while locked, from here
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 60
    actions = [e["action"] for e in audit.entries(synced)]
    assert "owner.locked" in actions and "owner.login_refused" in actions
    elsewhere = client.application.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert login(elsewhere).status_code == 303
    with st.transaction(synced) as conn:  # the lock expires
        conn.execute(
            update(st.login_throttle).values(locked_until=st.utcnow() - timedelta(seconds=1))
        )
    assert login(client).status_code == 303


def test_login_rate_limited(tmp_path, zotero, synced, owner):
    conf = make_settings(tmp_path, zotero, auth={"login_rate_limit": "2 per minute"})
    client = create_app(conf).test_client()
    login(client, password="bad one")
    login(client, password="bad two")
    assert login(client).status_code == 429


def test_next_must_be_local_admin_path(client, owner):
    assert login(client, next_url="https://evil.example/").headers["Location"] == "/-/admin/"
    client2 = client.application.test_client()
    assert login(client2, next_url="/-/admin/audit").headers["Location"] == "/-/admin/audit"


def test_queue_filters_sorts_and_escapes(client, synced, owner):
    apply(client, name=EVIL, email="evil@example.org", uid="8000011", affiliation=EVIL)
    apply(client, name="Bea", email="bea@example.org", uid="8000012")
    login(client)
    html = client.get("/-/admin/").get_data(as_text=True)
    assert "&lt;script&gt;alert" in html and EVIL not in html
    assert html.index("evil@example.org") < html.index("bea@example.org")  # oldest first
    newest = client.get("/-/admin/?_sort=-age").get_data(as_text=True)
    assert newest.index("bea@example.org") < newest.index("evil@example.org")
    assert "bea@example.org" not in client.get("/-/admin/?status=declined").get_data(True)
    assert client.get("/-/admin/?status=bogus").status_code == 400
    data = client.get("/-/admin/requests.json?status=pending").get_json()
    assert data["ok"] and data["count"] == 2 and "token_hash" not in data["rows"][0]
    rid = request_id(synced, "evil@example.org")
    detail = client.get(f"/-/admin/requests/{rid}").get_data(as_text=True)
    assert EVIL not in detail and "&lt;script&gt;" in detail
    assert "settings/members" in detail
    assert client.get("/-/admin/requests/9999").status_code == 404


def test_approve_decline_note_with_audit_and_email(client, synced, owner):
    ada = apply(client)
    bob = apply(client, name="Bob", email="bob@example.org", uid="8000002")
    login(client)
    ada_id, bob_id = request_id(synced, "ada@example.org"), request_id(synced, "bob@example.org")
    page = f"/-/admin/requests/{ada_id}"
    resp = post(client, f"{page}/decide", {"action": "approve", "reason": "Welcome aboard!"}, page)
    assert resp.status_code == 303 and resp.headers["Location"] == page
    assert "approved" in client.get(page).get_data(as_text=True)
    no_reason = post(client, f"/-/admin/requests/{bob_id}/decide", {"action": "decline"}, page)
    assert no_reason.status_code == 303
    assert join_requests.get_request(synced, bob_id)["status"] == "pending"
    post(
        client,
        f"/-/admin/requests/{bob_id}/decide",
        {"action": "decline", "reason": f"Out of scope {EVIL}"},
        page,
    )
    post(client, f"/-/admin/requests/{bob_id}/note", {"note": "Spoke by phone."}, page)
    again = post(client, f"/-/admin/requests/{bob_id}/decide", {"action": "approve"}, page)
    assert again.status_code == 303
    assert join_requests.get_request(synced, bob_id)["status"] == "declined"

    assert "approved" in client.get(ada).get_data(as_text=True)
    bob_html = client.get(bob).get_data(as_text=True)
    assert "declined" in bob_html and "Out of scope &lt;script&gt;" in bob_html
    assert "Spoke by phone" not in bob_html  # owners' notes stay private
    history = audit.entries(synced, subject=f"request:{bob_id}")
    assert [(e["action"], e["old"], e["new"]) for e in history][:2] == [
        ("request.note", None, "Spoke by phone."),
        ("request.decline", "pending", "declined"),
    ]
    assert history[1]["actor"] == OWNER
    subjects = [m["subject"] for m in mail.messages(synced)]
    assert any("was approved" in s for s in subjects)
    bodies = [m["body"] for m in mail.messages(synced) if m["to_addr"] == "bob@example.org"]
    assert any("Out of scope" in b for b in bodies)
    audit_html = client.get("/-/admin/audit").get_data(as_text=True)
    assert "request.decline" in audit_html and EVIL not in audit_html
    assert client.get("/-/admin/audit.json").get_json()["count"] >= 5


def test_bulk_actions(client, synced, owner):
    for i in range(3):
        apply(client, name=f"P{i}", email=f"p{i}@example.org", uid=str(8000020 + i))
    login(client)
    ids = [request_id(synced, f"p{i}@example.org") for i in range(3)]
    post(client, f"/-/admin/requests/{ids[0]}/decide", {"action": "decline", "reason": "No"})
    resp = post(
        client,
        "/-/admin/requests/bulk",
        {"ids": [str(i) for i in ids], "action": "approve", "reason": "Yes"},
    )
    assert resp.status_code == 303
    statuses = [join_requests.get_request(synced, i)["status"] for i in ids]
    assert statuses == ["declined", "approved", "approved"]
    html = client.get("/-/admin/").get_data(as_text=True)
    assert f"#{ids[0]} skipped" in html
    post(client, "/-/admin/requests/bulk", {"ids": [], "action": "approve"})
    assert "Select at least one" in client.get("/-/admin/").get_data(as_text=True)


def test_csv_export(client, synced, owner):
    apply(client, name='=HYPERLINK("http://evil")', email="csv@example.org", uid="8000031")
    login(client)
    resp = client.get("/-/admin/requests.csv?_dl=1")
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    [row] = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert row["email"] == "csv@example.org" and row["prongs"] == "pathways"
    assert row["name"].startswith("'=")  # no formula in spreadsheets
    assert "token_hash" not in row


def test_sync_confirms_membership_and_flags_unrequested(client, synced, owner, library):
    status_url = apply(client)
    login(client)
    rid = request_id(synced, "ada@example.org")
    post(client, f"/-/admin/requests/{rid}/decide", {"action": "approve", "reason": "Yes"})
    library.add_member(8000001)  # the owner approves on zotero.org
    library.add_member(8999999)  # someone added without a request
    resp = post(client, "/-/admin/sync", {"next": "/-/admin/audit"})
    assert resp.status_code == 303 and resp.headers["Location"] == "/-/admin/audit"
    assert join_requests.get_request(synced, rid)["status"] == "member"
    assert "member (confirmed)" in client.get(status_url).get_data(as_text=True)
    html = client.get("/-/admin/").get_data(as_text=True)
    assert "Members without a request" in html and "8999999" in html
    actions = {e["action"]: e for e in audit.entries(synced)}
    assert actions["request.member"]["actor"] == "sync"
    assert actions["sync.now"]["actor"] == OWNER
    assert "member.unrequested" in actions
    assert any(m["subject"].startswith("Welcome") for m in mail.messages(synced))
    run_sync(synced, client.application.config["BIBLIO"])  # idempotent: flagged once
    assert (
        len(audit.entries(synced, action="member.unrequested", subject="zotero-user:8999999")) == 1
    )


def test_sync_now_when_busy(client, owner, settings):
    login(client)
    with sync_lock(settings):
        resp = post(client, "/-/admin/sync", {})
    assert resp.status_code == 303
    assert "already running" in client.get("/-/admin/").get_data(as_text=True)


def test_prong_overrides_page(client, synced, owner):
    login(client)
    with st.connect(synced) as conn:
        key = conn.execute(
            select(st.items.c.key).where(st.items.c.parent_key.is_(None)).limit(1)
        ).scalar_one()
    resp = post(
        client,
        "/-/admin/prongs",
        {"key": key, "prong": "pathways", "action": "add", "note": "clearly relevant"},
        "/-/admin/prongs",
    )
    assert resp.status_code == 303
    html = client.get("/-/admin/prongs").get_data(as_text=True)
    assert key in html and "clearly relevant" in html
    bad = post(
        client,
        "/-/admin/prongs",
        {"key": "NOPE1234", "prong": "pathways", "action": "add"},
        "/-/admin/prongs",
    )
    assert bad.status_code == 303
    assert "no item" in client.get("/-/admin/prongs").get_data(as_text=True)
    assert any(e["action"] == "prong.add" and e["actor"] == OWNER for e in audit.entries(synced))


def test_prong_review_page_decides_borderline_items(client, synced, owner):
    from biblio.prongs.store import review_queue

    login(client)
    with st.connect(synced) as conn:
        rows, total = review_queue(conn, limit=5)
    assert total > 0, "the sample library has borderline verdicts under the shipped model"
    page = client.get("/-/admin/prongs/review").get_data(as_text=True)
    assert f"{total} to review" in page and rows[0]["item_key"] in page
    first = rows[0]
    target = f"/-/admin/prongs/review?prong={first['prong']}"
    resp = post(
        client,
        "/-/admin/prongs",
        {
            "key": first["item_key"],
            "prong": first["prong"],
            "action": "add",
            "note": "prong review",
            "next": target,
        },
        target,
    )
    assert resp.status_code == 303 and resp.headers["Location"].endswith(target)
    with st.connect(synced) as conn:
        rows2, total2 = review_queue(conn, limit=500)
    assert total2 == total - 1
    assert (first["item_key"], first["prong"]) not in {(r["item_key"], r["prong"]) for r in rows2}
    assert any(
        e["action"] == "prong.add" and first["item_key"] in e["subject"]
        for e in audit.entries(synced)
    )
    # filters, paging and hostile parameters
    vetoed = client.get("/-/admin/prongs/review?verdict=vetoed").get_data(as_text=True)
    assert "model-only:" not in vetoed
    for bad in ("prong=policy", "verdict=maybe", "_start=-1", "_start=abc"):
        assert client.get(f"/-/admin/prongs/review?{bad}").status_code == 400, bad
    evil = post(
        client,
        "/-/admin/prongs",
        {
            "key": first["item_key"],
            "prong": first["prong"],
            "action": "clear",
            "next": "//evil.example/x",
        },
        "/-/admin/prongs",
    )
    assert evil.headers["Location"].endswith("/-/admin/prongs")


def test_digest_lists_overdue_requests(client, synced, owner, settings):
    apply(client)
    apply(client, name="New", email="new@example.org", uid="8000040")
    assert digests.digest(synced, settings, [OWNER]) == 0  # nothing overdue yet
    with st.transaction(synced) as conn:
        conn.execute(
            update(st.join_requests)
            .where(st.join_requests.c.email == "ada@example.org")
            .values(created_at=st.utcnow() - timedelta(days=10))
        )
    assert digests.digest(synced, settings, [OWNER]) == 1
    # (the owner also got one "new request" notice per request; this is the digest)
    [msg] = [
        m
        for m in mail.messages(synced)
        if m["to_addr"] == OWNER and "pending more than" in m["subject"]
    ]
    assert "ada@example.org" in msg["body"] and "new@example.org" not in msg["body"]
    assert "more than 7 days" in msg["subject"]
    login(client)
    assert "overdue" in client.get("/-/admin/").get_data(as_text=True)


def test_password_change_and_removal_end_open_sessions(client, owner, synced):
    assert login(client).status_code == 303
    assert client.get("/-/admin/").status_code == 200
    owners.set_password(synced, OWNER, "a brand new passphrase")
    assert client.get("/-/admin/").status_code == 303  # the old session is gone
    assert login(client).status_code == 401  # the old password no longer works
    assert login(client, password="a brand new passphrase").status_code == 303
    assert client.get("/-/admin/").status_code == 200
    owners.remove_owner(synced, OWNER)
    assert client.get("/-/admin/").status_code == 303
    actions = [e["action"] for e in audit.entries(synced)]
    assert "owner.password" in actions and "owner.remove" in actions


def test_owners_cli_passwd_and_remove(runner, owner, synced, tmp_path):
    from biblio.cli import cli

    env = {
        "BIBLIO_SETTINGS": str(tmp_path / "settings.toml"),
        "BIBLIO_DATABASE__URL": str(synced.url),
    }
    short = runner.invoke(
        cli, ["owners", "passwd", OWNER, "--password-stdin"], input="short\n", env=env
    )
    assert short.exit_code == 1 and "too short" in short.output
    done = runner.invoke(
        cli,
        ["owners", "passwd", OWNER, "--password-stdin"],
        input="another long passphrase\n",
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert owners.authenticate(
        synced, runner.app.config["BIBLIO"], OWNER, "another long passphrase"
    )
    gone = runner.invoke(cli, ["owners", "remove", OWNER, "--yes"], env=env)
    assert gone.exit_code == 0 and owners.list_owners(synced) == []
    again = runner.invoke(cli, ["owners", "remove", OWNER, "--yes"], env=env)
    assert again.exit_code == 1 and "no owner" in again.output
