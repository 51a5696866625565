"""Read side of the cache: the library's items as the rest of biblio sees them.

Live items are top-level, regular items not in Zotero's trash. ``Filters`` turn
plain parameters (prong, tag, collection, type, year, creator, q) into one
parameterised WHERE clause *and* an English phrase, so a page or an export can say
what it shows. Prongs shown here are the effective ones: computed by the tagger,
then the owners' overrides applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import ColumnElement

from biblio import storage as st
from biblio.catalog import search

NON_REGULAR = ("note", "attachment", "annotation")


@dataclass(frozen=True)
class Filters:
    prong: str | None = None
    tag: str | None = None
    collection: str | None = None
    item_type: str | None = None
    year: int | None = None
    creator: str | None = None
    q: str | None = None
    decade: int | None = None  # e.g. 1990 for 1990-1999

    def where(self) -> ColumnElement[bool]:
        i = st.items.c
        clauses: list[ColumnElement[bool]] = [
            i.parent_key.is_(None), i.deleted == false(), i.item_type.not_in(NON_REGULAR)]
        if self.prong:
            clauses.append(prong_clause(self.prong))
        if self.tag:
            clauses.append(exists().where(st.item_tags.c.item_key == i.key,
                                          st.item_tags.c.tag == self.tag))
        if self.collection:  # the collection and its sub-collections, like Zotero's option
            clauses.append(exists().where(st.item_collections.c.item_key == i.key,
                                          st.item_collections.c.collection_key.in_(
                                              collection_tree(self.collection))))
        if self.item_type:
            clauses.append(i.item_type == self.item_type)
        if self.year is not None:
            clauses.append(i.year == self.year)
        if self.decade is not None:
            clauses.append(i.year.between(self.decade, self.decade + 9))
        if self.creator:
            clauses.append(exists().where(st.item_creators.c.item_key == i.key,
                                          st.item_creators.c.name == self.creator))
        if self.q:  # FTS5 on SQLite (prefix and phrase queries), ILIKE elsewhere
            clauses.append(search.match_clause(self.q))
        return and_(*clauses)

    def phrase(self, labels: dict[str, str] | None = None) -> str:
        """English for the filters; ``labels`` maps values (collection keys) to names."""
        labels = labels or {}
        parts = []
        decade = f"{self.decade}s" if self.decade is not None else None
        for label, value in (("prong", self.prong), ("tag", self.tag),
                             ("collection", labels.get(self.collection or "", self.collection)),
                             ("type", self.item_type), ("year", self.year),
                             ("decade", decade), ("creator", self.creator)):
            if value is not None and value != "":
                parts.append(f"{label} is {value}")
        if self.q:
            parts.append(f'matching "{self.q}"')
        return " and ".join(parts)


def collection_tree(key: str) -> Any:
    """A recursive CTE of ``key`` and all its sub-collections' keys."""
    c = st.collections.c
    tree = select(c.key).where(c.key == key).cte("collection_tree", recursive=True)
    tree = tree.union(select(c.key).where(c.parent_key == tree.c.key))
    return select(tree.c.key)


def prong_clause(prong: str) -> ColumnElement[bool]:
    """Items whose effective prongs include ``prong`` (computed, plus overrides)."""
    i, p, o = st.items.c, st.item_prongs.c, st.prong_overrides.c
    computed = exists().where(p.item_key == i.key, p.prong == prong)
    added = exists().where(o.item_key == i.key, o.prong == prong, o.action == "add")
    removed = exists().where(o.item_key == i.key, o.prong == prong, o.action == "remove")
    return and_(or_(computed, added), ~removed)


def effective_prongs(conn: Connection, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``{key: [{prong, score, source, reasons}]}`` with owners' overrides applied."""
    result: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in keys}
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for row in conn.execute(select(st.item_prongs).where(
                st.item_prongs.c.item_key.in_(chunk))).mappings():
            result[row["item_key"]][row["prong"]] = {
                "prong": row["prong"], "score": row["score"], "source": row["source"],
                "reasons": row["reasons"]}
        for row in conn.execute(select(st.prong_overrides).where(
                st.prong_overrides.c.item_key.in_(chunk))).mappings():
            entry = result[row["item_key"]]
            if row["action"] == "remove":
                entry.pop(row["prong"], None)
            else:
                entry[row["prong"]] = {
                    "prong": row["prong"], "score": None, "source": "override",
                    "reasons": [{"kind": "override", "by": row["by"],
                                 "at": row["at"].isoformat(), "note": row["note"]}]}
    return {k: sorted(v.values(), key=lambda e: e["prong"]) for k, v in result.items()}


def iter_items(engine: Engine, filters: Filters | None = None,
               batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every live item matching ``filters``, in key order, with ``prongs``; streamed."""
    filters = filters or Filters()
    i = st.items.c
    last = ""
    while True:
        with st.connect(engine) as conn:
            rows = conn.execute(
                select(i.key, i.version, i.item_type, i.data, i.meta)
                .where(filters.where(), i.key > last).order_by(i.key).limit(batch)
            ).mappings().all()
            if not rows:
                return
            prongs = effective_prongs(conn, [r["key"] for r in rows])
        for row in rows:
            yield {**dict(row), "prongs": prongs[row["key"]]}
        last = rows[-1]["key"]


def get_item(conn: Connection, key: str) -> dict[str, Any] | None:
    row = conn.execute(select(st.items).where(st.items.c.key == key)).mappings().first()
    return dict(row) if row else None


def group(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(select(st.group_info)).mappings().first()
    return dict(row) if row else None
