"""Read side of the cache: the library's items as the rest of biblio sees them.

Live items are top-level, regular items not in Zotero's trash, selected by the
:class:`~biblio.catalog.filters.Filters` of :mod:`biblio.catalog.filters`. Prongs
shown here are the effective ones: computed by the tagger, then the owners'
overrides applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from biblio import storage as st
from biblio.catalog.filters import Filters


def effective_prongs(conn: Connection, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``{key: [{prong, score, source, reasons}]}`` with owners' overrides applied."""
    result: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in keys}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for row in conn.execute(
            select(st.item_prongs).where(st.item_prongs.c.item_key.in_(chunk))
        ).mappings():
            result[row["item_key"]][row["prong"]] = {
                "prong": row["prong"],
                "score": row["score"],
                "source": row["source"],
                "reasons": row["reasons"],
            }
        for row in conn.execute(
            select(st.prong_overrides).where(st.prong_overrides.c.item_key.in_(chunk))
        ).mappings():
            entry = result[row["item_key"]]
            if row["action"] == "remove":
                entry.pop(row["prong"], None)
            else:
                entry[row["prong"]] = {
                    "prong": row["prong"],
                    "score": None,
                    "source": "override",
                    "reasons": [
                        {
                            "kind": "override",
                            "by": row["by"],
                            "at": row["at"].isoformat(),
                            "note": row["note"],
                        }
                    ],
                }
    return {k: sorted(v.values(), key=lambda e: e["prong"]) for k, v in result.items()}


def iter_items(
    engine: Engine, filters: Filters | None = None, batch: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every live item matching ``filters``, in key order, with ``prongs``; streamed."""
    filters = filters or Filters()
    i = st.items.c
    last = ""
    while True:
        with st.connect(engine) as conn:
            rows = (
                conn.execute(
                    select(i.key, i.version, i.item_type, i.data, i.meta)
                    .where(filters.where(), i.key > last)
                    .order_by(i.key)
                    .limit(batch)
                )
                .mappings()
                .all()
            )
            if not rows:
                return
            prongs = effective_prongs(conn, [r["key"] for r in rows])
        for row in rows:
            yield {**dict(row), "prongs": prongs[row["key"]]}
        last = rows[-1]["key"]


def item_versions(engine: Engine, filters: Filters | None = None) -> list[dict[str, Any]]:
    """``key`` and ``version`` of every live item matching ``filters``, in key order: what
    the render cache needs to tell whether a bibliography is ready, without the items'
    data (which it reads for the entries it must render)."""
    filters = filters or Filters()
    i = st.items.c
    with st.connect(engine) as conn:
        rows = conn.execute(select(i.key, i.version).where(filters.where()).order_by(i.key))
        return [{"key": key, "version": version} for key, version in rows]


def get_item(conn: Connection, key: str) -> dict[str, Any] | None:
    row = conn.execute(select(st.items).where(st.items.c.key == key)).mappings().first()
    return dict(row) if row else None


def group(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(st.group_info)).mappings().first()
    return dict(row) if row else None
