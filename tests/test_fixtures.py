"""The shared fixtures keep their promise: a copied synced cache holds exactly what the
test's own sync would have written, and a test that changed its library first gets a
real sync instead of a copy."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from biblio import storage as st
from biblio.sync.run import run_sync
from tests.conftest import make_settings
from tests.sync.test_run import assert_equal_to_source


def contents(engine) -> dict[str, list]:
    """Every table's rows, sorted, without timestamps and run ids (which differ by run)."""
    tables = {}
    with st.connect(engine) as conn:
        for table in st.metadata.sorted_tables:
            rows = []
            for row in conn.execute(select(table)).mappings():
                rows.append(
                    sorted(
                        (k, repr(v))
                        for k, v in row.items()
                        if not isinstance(v, datetime) and k != "id"
                    )
                )
            tables[table.name] = sorted(rows)
        tables["items_fts"] = sorted(conn.exec_driver_sql("SELECT * FROM items_fts").all())
    return tables


def test_a_synced_copy_holds_what_a_sync_writes(synced, tmp_path, zotero, library):
    (tmp_path / "real").mkdir()
    settings = make_settings(tmp_path / "real", zotero)
    engine = st.open_database(settings["database"]["url"])
    run_sync(engine, settings)
    copied, real = contents(synced), contents(engine)
    assert copied["items"] and copied["item_prongs"] and copied["items_fts"]
    assert copied == real


def test_a_changed_library_is_synced_for_real(request, library, zotero):
    key = library.add_item({"itemType": "book", "title": "Added before the sync", "creators": []})
    synced = request.getfixturevalue("synced")
    assert_equal_to_source(synced, library)
    with st.connect(synced) as conn:
        assert (
            conn.execute(select(st.items.c.title).where(st.items.c.key == key)).scalar_one()
            == "Added before the sync"
        )
    assert any("itemKey" in r.query or "start" in r.query for r in zotero.requests)
