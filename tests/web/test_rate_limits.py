"""Rate limits hold as configured: across gunicorn's workers with the default ``biblio
run``, across machines through a real ``redis-server``, per real client behind a
trusted proxy; a form with errors costs no quota, and a refused form keeps what was
typed."""

from __future__ import annotations

import re

import pytest
from werkzeug.exceptions import TooManyRequests

from biblio import create_app
from biblio.membership import owners
from tests.conftest import make_settings
from tests.web.servers import Client, biblio_run, redis_server

OWNER, PASSWORD = "owner@example.org", "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _server_settings(synced, zotero, **web: str) -> str:
    lines = [
        "[zotero]",
        f"library_id = {zotero.library.group_id}",
        f'base_url = "{zotero.url}"',
        "[database]",
        f'url = "{synced.url}"',
        "[mail]",
        "enabled = false",
        "[auth]",
        'login_rate_limit = "6 per hour"',
        "[web]",
        *[f'{k} = "{v}"' for k, v in web.items()],
    ]
    return "\n".join(lines) + "\n"


def _wrong_logins(base: str, count: int) -> list[int]:
    """``count`` wrong-password logins, each on a new connection and session (so
    gunicorn hands them to whichever worker is free)."""
    statuses = []
    for n in range(count):
        visitor = Client(base)
        answer = visitor.post_form(
            "/-/admin/login",
            "/-/admin/login",
            {"email": f"guess{n}@example.org", "password": "not the password"},
        )
        statuses.append(answer.status)
    return statuses


def test_the_login_limit_holds_across_two_gunicorn_workers(tmp_path, zotero, synced):
    """`biblio run` with its defaults (two workers): 6 per hour is 6, not 12."""
    with biblio_run(tmp_path, _server_settings(synced, zotero)) as (base, _log):
        statuses = _wrong_logins(base, 12)
    assert statuses.count(401) == 6 and statuses.count(429) == 6, statuses


def test_limits_are_shared_across_machines_through_redis(tmp_path, zotero, synced):
    """Two `biblio run` processes (two machines, one worker each) sharing one Redis:
    one limit between them. Each process alone, counting in its memory, would allow
    its own 6."""
    with redis_server(tmp_path) as url:
        conf = _server_settings(synced, zotero, rate_limit_storage=url)
        with (
            biblio_run(tmp_path, conf, workers=1, name="one") as (one, _),
            biblio_run(tmp_path, conf, workers=1, name="two") as (two, _),
        ):
            statuses = _wrong_logins(one, 4) + _wrong_logins(two, 4)
    assert statuses == [401] * 6 + [429] * 2, statuses


def test_each_process_counts_alone_with_memory_storage(tmp_path, zotero, synced):
    """The counter-check of the Redis test: memory:// in two processes allows twice."""
    conf = _server_settings(synced, zotero, rate_limit_storage="memory://")
    with (
        biblio_run(tmp_path, conf, workers=1, name="one") as (one, _),
        biblio_run(tmp_path, conf, workers=1, name="two") as (two, _),
    ):
        statuses = _wrong_logins(one, 4) + _wrong_logins(two, 4)
    assert statuses.count(429) == 0, statuses


def _login(client, address: str, forwarded: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    env = {"REMOTE_ADDR": address}
    page = client.get("/-/admin/login", environ_base=env, headers=headers)
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    return client.post(
        "/-/admin/login",
        data={"email": "guess@example.org", "password": "nope", "csrf_token": token},
        environ_base=env,
        headers=headers,
    )


@pytest.mark.parametrize("proxies", [0, 1])
def test_behind_a_trusted_proxy_limits_key_on_the_real_client(tmp_path, zotero, synced, proxies):
    """Behind nginx every request comes from the proxy's address: with
    `trusted_proxies = 1` the limit keys on X-Forwarded-For's client; without it the
    header is ignored (anyone could send one) and the proxy's address is the key."""
    conf = make_settings(
        tmp_path,
        zotero,
        web={"trusted_proxies": proxies},
        auth={"login_rate_limit": "2 per hour", "lockout_failures": 100},
    )
    client = create_app(conf).test_client()
    nginx = "127.0.0.1"
    assert _login(client, nginx, "203.0.113.1").status_code == 401
    assert _login(client, nginx, "203.0.113.1").status_code == 401
    assert _login(client, nginx, "203.0.113.1").status_code == 429
    other_visitor = _login(client, nginx, "198.51.100.2").status_code
    assert other_visitor == (401 if proxies else 429)


def _join(client, **fields: str):  # type: ignore[no-untyped-def]
    token = CSRF.search(client.get("/join").get_data(as_text=True)).group(1)
    data = {
        "name": "Ada Applicant",
        "email": "ada@example.org",
        "zotero_user_id": "8000001",
        "reason": "I study alternative credentials.",
        "consent": "yes",
        "prongs": ["pathways"],
        "csrf_token": token,
        **fields,
    }
    return client.post("/join", data=data)


def test_a_form_with_errors_spends_no_quota_and_a_refusal_keeps_the_form(tmp_path, zotero, synced):
    conf = make_settings(
        tmp_path,
        zotero,
        mail={"enabled": False},
        join={"rate_limit": "2 per hour", "email_rate_limit": "10 per day"},
    )
    client = create_app(conf).test_client()
    for _ in range(4):  # typos: the per-address quota of 2 is untouched
        assert _join(client, email="not an address").status_code == 400
    assert _join(client, email="a@example.org").status_code == 303
    assert _join(client, email="b@example.org").status_code == 303
    refused = _join(client, email="c@example.org", name="Cecilia Typed-This")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many attempts" in html and 'value="Cecilia Typed-This"' in html
    assert 'value="c@example.org"' in html and "I study alternative credentials." in html


def test_a_new_reading_list_refused_by_its_limit_keeps_the_title(tmp_path, zotero, synced):
    conf = make_settings(tmp_path, zotero, lists={"create_rate_limit": "1 per hour"})
    client = create_app(conf).test_client()

    def create(title: str):  # type: ignore[no-untyped-def]
        token = CSRF.search(client.get("/lists/new").get_data(as_text=True)).group(1)
        return client.post("/lists/new", data={"title": title, "csrf_token": token})

    assert create("").status_code == 400  # no title: no quota spent
    assert create("First list").status_code == 303
    refused = create("Second list, typed")
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    html = refused.get_data(as_text=True)
    assert 'value="Second list, typed"' in html and "Too many attempts" in html


def test_a_refused_login_keeps_the_email(tmp_path, zotero, synced):
    conf = make_settings(tmp_path, zotero, auth={"login_rate_limit": "1 per hour"})
    owners.create_owner(synced, OWNER, PASSWORD)
    client = create_app(conf).test_client()
    assert _login(client, "192.0.2.1").status_code == 401
    refused = _login(client, "192.0.2.1")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 429 and 'value="guess@example.org"' in html
    assert "Too many attempts" in html


def test_a_429_outside_a_form_is_the_site_error_page(app):
    """Any other limit (a decorated route, a heavy page) answers with biblio's error
    page, its Retry-After kept."""

    @app.get("/-/test-limited")
    def limited():  # type: ignore[no-untyped-def]
        raise TooManyRequests("10 per 1 minute", retry_after=42)

    resp = app.test_client().get("/-/test-limited")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "42"
    assert "<h1>Too many requests</h1>" in html and 'role="alert">10 per 1 minute' in html
    assert 'href="/static/style.css"' in html
