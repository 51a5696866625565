"""Owners' login against hostile use: the same work whatever the email, throttling that
never locks the real owner out from elsewhere, sessions that end on the server, a
configurable session lifetime, and no lost audit row or failure count when 24 wrong
passwords arrive at once at a real gunicorn."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from sqlalchemy import func, select, update

from biblio import audit
from biblio import storage as st
from biblio.membership import owners
from tests.conftest import make_settings
from tests.web.servers import Client, biblio_run

OWNER, PASSWORD = "owner@example.org", "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(tmp_path, zotero):
    return make_settings(
        tmp_path,
        zotero,
        mail={"enabled": False},
        auth={"login_rate_limit": "1000 per minute", "lockout_failures": 3, "account_failures": 8},
        web={"session_hours": 2},
    )


@pytest.fixture
def owner(synced):
    return owners.create_owner(synced, OWNER, PASSWORD)


def login(client, email=OWNER, password=PASSWORD, address="192.0.2.10"):  # type: ignore[no-untyped-def]
    env = {"REMOTE_ADDR": address}
    page = client.get("/-/admin/login", environ_base=env)
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    return client.post(
        "/-/admin/login",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base=env,
    )


@pytest.fixture
def hashes(monkeypatch):
    """How many password hashes the login computes: the real check, counted."""
    calls = []
    real = owners.check_password_hash

    def counted(stored: str, password: str) -> bool:
        calls.append(stored)
        return real(stored, password)

    monkeypatch.setattr(owners, "check_password_hash", counted)
    return calls


def test_every_login_attempt_costs_exactly_one_password_hash(client, owner, hashes):
    """Unknown email, wrong, empty and over-long passwords, a locked-out address and the
    right password: one scrypt computation each, so timing tells no owner apart."""
    attempts = [
        ("nobody@example.org", "some password"),
        ("nobody@example.org", ""),
        (OWNER, ""),
        (OWNER, "x" * 5000),
        (OWNER, "wrong password"),  # third failure: this address is now locked out
        (OWNER, PASSWORD),  # refused (locked), still one hash
    ]
    statuses = []
    for email, password in attempts:
        before = len(hashes)
        statuses.append(login(client, email, password).status_code)
        assert len(hashes) == before + 1, (email, password[:10])
    assert statuses == [401, 401, 401, 401, 401, 429]
    assert all(h.startswith("scrypt:") for h in hashes)
    assert login(client, address="198.51.100.1").status_code == 303
    assert len(hashes) == len(attempts) + 1


def test_unknown_emails_are_throttled_exactly_like_owners(client, owner):
    """Lockouts do not reveal which emails are accounts: the same answers for both."""
    known = [login(client, OWNER, "bad guess", "203.0.113.1").status_code for _ in range(4)]
    unknown = [
        login(client, "nobody@example.org", "bad guess", "203.0.113.1").status_code
        for _ in range(4)
    ]
    assert known == unknown == [401, 401, 401, 429]


def test_an_attacker_never_locks_the_owner_out_from_elsewhere(synced, settings, owner):
    """Today's attack, 3 (here) wrong passwords every lockout period from one address,
    for a day: the attacker's lockouts grow, the owner signs in from home every time."""
    start = st.utcnow()
    attacker, home = "203.0.113.66", "192.0.2.44"
    waits = []
    at = start
    for _ in range(6):
        for _ in range(3):
            owners.authenticate(synced, settings, OWNER, "guess", address=attacker, now=at)
        refused = owners.authenticate(synced, settings, OWNER, PASSWORD, address=attacker, now=at)
        assert refused.owner is None and refused.retry_after is not None
        waits.append(refused.retry_after)
        ok = owners.authenticate(synced, settings, OWNER, PASSWORD, address=home, now=at)
        assert ok.owner is not None and ok.owner.email == OWNER
        at += timedelta(seconds=refused.retry_after + 1)
    assert waits == [900 * 2**n for n in range(6)]  # 15 minutes, doubling each time


def test_a_spread_attack_lets_only_browsers_that_signed_in_before_try(client, owner):
    """Failures from many addresses past `account_failures`: a new browser, even with
    the right password, waits; the owner's own browser still signs in."""
    trusted = client.application.test_client()
    assert login(trusted, address="192.0.2.50").status_code == 303
    trusted.post(
        "/-/admin/logout",
        data={"csrf_token": CSRF.search(trusted.get("/-/admin/").get_data(True)).group(1)},
    )
    for n in range(8):
        assert login(client, password="guess", address=f"203.0.113.{n}").status_code == 401
    stranger = client.application.test_client()
    assert login(stranger, address="198.51.100.9").status_code == 429
    assert login(trusted, address="198.51.100.10").status_code == 303


def _session_cookie(client) -> str:  # type: ignore[no-untyped-def]
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_logout_ends_the_session_on_the_server(client, owner):
    assert login(client).status_code == 303
    stolen = _session_cookie(client)
    page = client.get("/-/admin/", environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert page.status_code == 200
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    out = client.post(
        "/-/admin/logout",
        data={"csrf_token": token},
        environ_base={"REMOTE_ADDR": "192.0.2.10"},
    )
    assert out.status_code == 303
    client.set_cookie("session", stolen)  # replay the cookie of before the logout
    replay = client.get("/-/admin/", environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert replay.status_code == 303 and "/-/admin/login" in replay.headers["Location"]


def test_a_new_password_ends_every_session_of_the_owner(client, synced, owner):
    assert login(client).status_code == 303
    env = {"REMOTE_ADDR": "192.0.2.10"}
    assert client.get("/-/admin/", environ_base=env).status_code == 200
    owners.set_password(synced, OWNER, "a brand new long passphrase")
    assert client.get("/-/admin/", environ_base=env).status_code == 303
    assert audit.entries(synced, action="owner.password")[0]["detail"] == "1 session(s) ended"


def test_a_session_lasts_session_hours(client, synced, owner):
    response = login(client)
    cookie = SimpleCookie(
        next(v for k, v in response.headers.items() if k == "Set-Cookie" and "session=" in v)
    )
    assert cookie["session"]["expires"]  # a lasting cookie, not one that dies with the tab
    with st.connect(synced) as conn:
        created, expires = conn.execute(
            select(st.owner_sessions.c.created_at, st.owner_sessions.c.expires_at)
        ).one()
    assert expires - created == timedelta(hours=2)
    env = {"REMOTE_ADDR": "192.0.2.10"}
    assert client.get("/-/admin/", environ_base=env).status_code == 200
    with st.transaction(synced) as conn:  # two hours later
        conn.execute(update(st.owner_sessions).values(expires_at=st.utcnow()))
    assert client.get("/-/admin/", environ_base=env).status_code == 303


def test_next_with_a_line_break_or_another_host_goes_to_the_queue(client, owner):
    for target in ("/-/admin/\r\nSet-Cookie: a=b", "/-/admin/\nx", "//evil.example/"):
        env = {"REMOTE_ADDR": "192.0.2.10"}
        page = client.get("/-/admin/login", query_string={"next": target}, environ_base=env)
        assert page.status_code in (200, 303)
        token = CSRF.search(page.get_data(as_text=True))
        if token is None:  # still signed in from the previous round
            continue
        resp = client.post(
            "/-/admin/login",
            data={"email": OWNER, "password": PASSWORD, "csrf_token": token.group(1)},
            query_string={"next": target},
            environ_base=env,
        )
        assert resp.status_code == 303 and resp.headers["Location"] == "/-/admin/"
        client.delete_cookie("session")


def test_24_parallel_wrong_passwords_lose_no_audit_row_and_no_count(tmp_path, zotero, synced):
    """A real gunicorn (`biblio run`, two workers, SQLite): 24 wrong passwords to one
    account at once from one address. No 5xx; every attempt has its audit row; the
    first `lockout_failures` are counted and lock the address; the rest are refused."""
    owners.create_owner(synced, OWNER, PASSWORD)
    conf = "\n".join(
        [
            "[zotero]",
            f"library_id = {zotero.library.group_id}",
            f'base_url = "{zotero.url}"',
            "[database]",
            f'url = "{synced.url}"',
            "[mail]",
            "enabled = false",
            "[auth]",
            'login_rate_limit = "1000 per minute"',
            "lockout_failures = 5",
        ]
    )
    with biblio_run(tmp_path, conf + "\n") as (base, _log):
        visitors = [Client(base) for _ in range(24)]
        tokens = [v.csrf("/-/admin/login") for v in visitors]
        statuses: list[int] = []
        barrier = threading.Barrier(24)

        def attempt(visitor: Client, token: str) -> None:
            barrier.wait()
            data = {"email": OWNER, "password": "wrong guess", "csrf_token": token}
            statuses.append(visitor.open("/-/admin/login", data).status)

        threads = [threading.Thread(target=attempt, args=p) for p in zip(visitors, tokens)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert len(statuses) == 24 and all(s < 500 for s in statuses), statuses
    with st.connect(synced) as conn:
        logged = conn.execute(
            select(st.audit_log.c.action, func.count())
            .where(st.audit_log.c.action.like("owner.login%"))
            .group_by(st.audit_log.c.action)
        ).all()
        locks = conn.execute(
            select(st.login_throttle.c.lockouts).where(
                st.login_throttle.c.account == OWNER, st.login_throttle.c.address == "127.0.0.1"
            )
        ).scalar()
    counts = dict(logged)
    assert counts.get("owner.login_failed", 0) == statuses.count(401) == 5
    assert counts.get("owner.login_refused", 0) == statuses.count(429) == 19
    assert locks == 1
