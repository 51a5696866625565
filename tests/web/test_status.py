"""``/-/health`` for load balancers and monitors, and what ``/-/versions.json`` tells.

Health answers 200 with the success envelope when the database answers, the last good
sync is recent and no email is overdue, and 503 with the reasons otherwise: a stale or
missing sync, an overdue outbox (mail enabled), a database that does not answer (a
real PostgreSQL URL on a port where nothing listens). It names no secret, path, host
or version; production's ``/-/versions.json`` names biblio's version only.
"""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest
from sqlalchemy import update

from biblio import __version__, create_app, mail
from biblio import storage as st
from biblio.storage.engine import create_db_engine
from tests.conftest import make_settings

PUBLIC_URL = "https://biblio.example.org"


def health(client):
    resp = client.get("/-/health")
    twin = client.get("/-/health.json")
    assert (twin.status_code, twin.get_json()) == (resp.status_code, resp.get_json())
    assert resp.is_json and resp.headers["Cache-Control"] == "no-store"
    return resp.status_code, resp.get_json()


def by_check(body) -> dict[str, dict]:
    return {row["check"]: row for row in body["rows"]}


def set_last_sync(engine, when) -> None:
    with st.transaction(engine) as conn:
        conn.execute(update(st.sync_state).values(last_success_at=when))


def test_a_freshly_synced_site_is_healthy(client, synced):
    status, body = health(client)
    assert status == 200
    assert body["ok"] is True and body["count"] == 3 and body["next"] is None
    checks = by_check(body)
    assert set(checks) == {"database", "sync", "outbox"}
    assert all(row["ok"] for row in checks.values())
    assert 0 <= checks["sync"]["age_seconds"] < checks["sync"]["max_age_seconds"]
    assert checks["sync"]["max_age_seconds"] == 3 * 60 * 60  # three hourly syncs


def test_a_stale_sync_is_503_with_the_reason(client, synced, settings):
    set_last_sync(synced, st.utcnow() - timedelta(hours=5))
    status, body = health(client)
    assert status == 503 and body["ok"] is False and body["status"] == 503
    assert body["error"] == "sync: the last good sync was 5.0 h ago"
    assert by_check(body)["database"]["ok"] is True
    settings["health"]["max_sync_age_minutes"] = 6 * 60  # the owners allow longer
    assert health(client)[0] == 200


def test_a_site_that_never_synced_is_not_healthy(tmp_path, zotero, engine):
    client = create_app(make_settings(tmp_path, zotero)).test_client()
    status, body = health(client)
    assert status == 503 and "no sync has succeeded yet" in body["error"]
    assert by_check(body)["sync"]["last_success_at"] is None


def test_overdue_email_is_503_while_mail_is_enabled_and_not_when_it_is_off(
    client, synced, settings
):
    with st.transaction(synced) as conn:
        mail.enqueue(conn, "reader@example.org", "Hello", "Body\n")
        mail.enqueue(conn, "other@example.org", "Hello", "Body\n")
        conn.execute(
            update(st.outbox)
            .where(st.outbox.c.to_addr == "reader@example.org")
            .values(next_attempt_at=st.utcnow() - timedelta(hours=2))
        )
    status, body = health(client)
    assert status == 503 and body["error"] == "outbox: 1 email(s) overdue"
    outbox = by_check(body)["outbox"]
    assert (outbox["pending"], outbox["overdue"], outbox["failed"]) == (2, 1, 0)
    settings["mail"]["enabled"] = False  # queued on purpose: nothing is wrong
    assert health(client)[0] == 200


def test_a_database_that_does_not_answer_is_503_and_says_nothing_about_it(client, app, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    secret_url = f"postgresql+psycopg://biblio:hunter2@127.0.0.1:{port}/biblio?connect_timeout=2"
    app.extensions["biblio.engine"] = create_db_engine(secret_url)
    status, body = health(client)
    assert status == 503
    assert body["error"].startswith("database: does not answer")
    assert [row["ok"] for row in body["rows"]] == [False, False, False]
    text = json.dumps(body)
    for secret in ("hunter2", "biblio:", str(port), "127.0.0.1", "psycopg", "postgres"):
        assert secret not in text


def test_health_names_no_path_host_or_version(client, synced, settings):
    text = client.get("/-/health").get_data(as_text=True)
    for leak in (str(settings["database"]["url"]), "sqlite", __version__, "localhost", "/tmp"):
        assert leak not in text


def test_versions_in_development_and_biblio_only_in_production(client, tmp_path, zotero, synced):
    dev = client.get("/-/versions.json").get_json()
    assert dev["biblio"] == __version__ and "flask" in dev and "sqlalchemy" in dev
    conf = make_settings(tmp_path, zotero, web={"env": "production", "public_url": PUBLIC_URL})
    prod = create_app(conf).test_client().get("/-/versions.json")
    assert prod.status_code == 200 and prod.get_json() == {"ok": True, "biblio": __version__}


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_health_takes_only_get(client, method):
    assert getattr(client, method)("/-/health.json").status_code == 405
