"""The same sync and pages on PostgreSQL: the database is a settings change.

Runs when ``BIBLIO_TEST_POSTGRES_URL`` names an empty database that the test may
reset (``.ci/run`` starts a PostgreSQL server on loopback and sets it).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from biblio import create_app
from biblio import storage as st
from biblio.sync.run import run_sync
from tests.conftest import make_settings
from tests.sync.test_run import assert_equal_to_source

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_settings(tmp_path, zotero, postgres_database):
    return make_settings(tmp_path, zotero, database={"url": postgres_database()})


def test_sync_and_pages_on_postgresql(pg_settings, library):
    engine = st.open_database(pg_settings["database"]["url"])
    assert engine.dialect.name == "postgresql"
    run_sync(engine, pg_settings)
    assert_equal_to_source(engine, library)

    keys = [k for k, d in library.items.items() if not d.get("parentItem")]
    library.update_item(keys[0], title="Edited on the PostgreSQL side")
    library.delete_item(keys[1])
    library.trash_item(keys[2])
    result = run_sync(engine, pg_settings)
    assert result.counts.updated >= 1 and result.counts.deleted >= 1
    assert_equal_to_source(engine, library)
    with st.connect(engine) as conn:
        assigned = conn.execute(select(st.item_prongs.c.prong)).scalars().all()
    assert {"mlis-access", "pathways", "worker-equity"} <= set(assigned)

    client = create_app(pg_settings).test_client()
    for url in ("/", "/items", "/prongs", "/-/sync", "/bibliography", "/join", f"/items/{keys[0]}"):
        assert client.get(url).status_code == 200, url
    found = client.get("/items.json?q=PostgreSQL").get_json()
    assert [row["key"] for row in found["rows"]] == [keys[0]]
    bib = client.get("/items.bib?prong=pathways").get_data(as_text=True)
    assert bib.count("@") >= 5
