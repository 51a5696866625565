"""Login throttling and rate-limit counters on PostgreSQL, under real concurrency: 24
threads at once lose no count (each counter moves in one atomic upsert), and the
owners' sessions end there as on SQLite.

Runs in its own schema of ``BIBLIO_TEST_POSTGRES_URL``'s database, so it never meets
the other PostgreSQL tests' tables, even when they run at the same time.
"""

from __future__ import annotations

import os
import threading

import pytest
from flask import Flask
from limits import parse
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from biblio import storage as st
from biblio.membership import owners, sessions
from biblio.settings import load_settings
from biblio.web import limitstore

URL = os.environ.get("BIBLIO_TEST_POSTGRES_URL")
pytestmark = pytest.mark.postgres
SCHEMA = "websec_counters"
OWNER, PASSWORD = "owner@example.org", "correct horse battery staple"


@pytest.fixture
def pg_engine():
    admin = st.create_db_engine(URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    admin.dispose()
    url = make_url(URL).update_query_dict({"options": f"-csearch_path={SCHEMA}"})
    engine = st.open_database(url.render_as_string(hide_password=False))
    yield engine
    st.dispose_all()


def _together(n: int, work) -> list:  # type: ignore[no-untyped-def]
    barrier, results, lock = threading.Barrier(n), [], threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        value = work(i)
        with lock:
            results.append(value)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_24_parallel_wrong_passwords_on_postgresql_lose_no_count(pg_engine, tmp_path):
    (tmp_path / "settings.toml").write_text("", encoding="utf-8")
    settings = load_settings(
        tmp_path / "settings.toml",
        overrides={"zotero": {"library_id": 1}, "auth": {"lockout_failures": 5}},
        environ={},
    )
    owners.create_owner(pg_engine, OWNER, PASSWORD)
    results = _together(
        24,
        lambda i: owners.authenticate(
            pg_engine, settings, OWNER, "wrong guess", address="203.0.113.1"
        ),
    )
    refused = [r for r in results if r.retry_after is not None]
    with st.connect(pg_engine) as conn:
        logged = dict(
            conn.execute(
                select(st.audit_log.c.action, func.count()).group_by(st.audit_log.c.action)
            ).all()
        )
    assert logged["owner.login_failed"] + logged["owner.login_refused"] == 24
    assert logged["owner.login_failed"] >= 5 and len(refused) == logged["owner.login_refused"]
    assert logged["owner.locked"] >= 1
    ok = owners.authenticate(pg_engine, settings, OWNER, PASSWORD, address="198.51.100.1")
    assert ok.owner is not None
    token = sessions.start(pg_engine, ok.owner.id, 1)
    assert sessions.owner_id(pg_engine, token) == ok.owner.id
    sessions.end(pg_engine, token)
    assert sessions.owner_id(pg_engine, token) is None


def test_rate_limit_counters_on_postgresql_count_every_hit(pg_engine):
    app = Flask(__name__)
    app.extensions["biblio.engine"] = pg_engine
    limiter = FixedWindowRateLimiter(limitstore.DatabaseStorage())
    item = parse("10 per hour")

    def hit(_i: int) -> bool:
        with app.app_context():
            return limiter.hit(item, "bench", "203.0.113.9")

    allowed = _together(24, hit)
    assert allowed.count(True) == 10 and allowed.count(False) == 14
