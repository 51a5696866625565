"""Shared and budgeted renders on PostgreSQL: the claim is an advisory lock, identical
requests render once, and a background render (its own process, its own connection)
fills the cache until the same URL answers 200.

Runs when ``BIBLIO_TEST_POSTGRES_URL`` names an empty database that the test may
reset (``.ci/run`` starts a PostgreSQL server on loopback and sets it).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from biblio import create_app
from biblio import storage as st
from biblio.catalog.items import iter_items
from biblio.citations import cache as rendercache
from biblio.citations import flight
from biblio.sync.run import run_sync
from tests.conftest import make_settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_app(tmp_path, zotero, postgres_database):
    url = postgres_database()
    conf = make_settings(tmp_path, zotero, database={"url": url})
    engine = st.open_database(url)
    run_sync(engine, conf)
    yield conf, engine
    flight.wait_for_background(300)
    st.dispose_all()


def test_a_claim_is_an_advisory_lock_seen_by_other_sessions(pg_app):
    _conf, engine = pg_app
    with flight.claim(engine, "ab" * 20, wait=0) as got:
        assert got
        assert flight.claimed_elsewhere(engine, "ab" * 20)
        assert not flight.claimed_elsewhere(engine, "cd" * 20)
    assert not flight.claimed_elsewhere(engine, "ab" * 20)


def test_identical_requests_render_once_and_big_ones_in_the_background(pg_app):
    conf, engine = pg_app
    conf["citations"]["render_budget_entries"] = 100_000
    app = create_app(conf)
    live = len(list(iter_items(engine)))
    start = threading.Barrier(4)

    def ask(_: int):  # type: ignore[no-untyped-def]
        client = app.test_client()
        start.wait(timeout=30)
        return client.get("/bibliography.json?_style=nature").status_code

    before = rendercache.TOTALS.rendered
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(ask, range(4))) == [200] * 4
    assert rendercache.TOTALS.rendered - before == live

    conf["citations"]["render_budget_entries"] = 10
    client = create_app(conf).test_client()
    assert client.get("/bibliography?_style=ieee").status_code == 202
    assert flight.wait_for_background(timeout=300)
    assert client.get("/bibliography?_style=ieee").status_code == 200
