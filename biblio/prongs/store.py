"""Computed prongs in the cache: retag items and keep ``item_prongs`` in step with sync.

:func:`retag` recomputes the prongs of some or all top-level items from the rules
in the settings and rebuilds their ``item_prongs`` rows in one transaction (owners'
overrides live in ``prong_overrides`` and are never touched here). :func:`on_sync_saved`
runs inside each sync's transaction: it retags the items that changed, the parents
of changed notes, and the items in collections that changed in this run.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, false, func, insert, select
from sqlalchemy.engine import Connection, Engine

from biblio import storage as st
from biblio.catalog.items import effective_prongs, get_item
from biblio.prongs.rules import Rules, load_rules
from biblio.prongs.tagger import doubt, evaluate_item

log = logging.getLogger(__name__)

NON_REGULAR = ("note", "attachment", "annotation")
CHUNK = 500


@dataclass
class RetagResult:
    items: int = 0
    assignments: int = 0
    per_prong: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    doubts: int = 0

    def summary(self) -> str:
        counts = ", ".join(f"{p} {n}" for p, n in sorted(self.per_prong.items())) or "none"
        review = f"; {self.doubts} borderline for owners to review" if self.doubts else ""
        return (
            f"retagged {self.items} items: {self.assignments} prong assignments "
            f"({counts}){review} in {self.seconds:.2f} s"
        )


def collection_map(conn: Connection) -> dict[str, dict[str, Any]]:
    """``{key: {name, parent_key}}`` of every cached collection."""
    c = st.collections.c
    return {
        key: {"name": name, "parent_key": parent}
        for key, name, parent in conn.execute(select(c.key, c.name, c.parent_key))
    }


def _notes(conn: Connection, keys: list[str] | None) -> dict[str, list[str]]:
    i = st.items.c
    query = select(i.parent_key, i.data).where(i.item_type == "note", i.deleted == false())
    found: dict[str, list[str]] = {}
    chunks: Iterable[list[str] | None] = (
        [None] if keys is None else (keys[s : s + CHUNK] for s in range(0, len(keys), CHUNK))
    )
    for chunk in chunks:
        q = query if chunk is None else query.where(i.parent_key.in_(chunk))
        for parent, data in conn.execute(q):
            found.setdefault(parent, []).append(str((data or {}).get("note") or ""))
    return found


def _uses_notes(rules: Rules) -> bool:
    return any("notes" in p.fields for prong in rules.prongs for p in prong.patterns)


def _top_level(keys: list[str] | None) -> Any:
    i = st.items.c
    query = select(i.key, i.version, i.data).where(
        i.parent_key.is_(None), i.item_type.not_in(NON_REGULAR)
    )
    return query if keys is None else query.where(i.key.in_(keys))


def _row_chunks(conn: Connection, keys: Iterable[str] | None) -> Iterator[list[Any]]:
    """(key, version, data) of the items to retag, CHUNK at a time, their old
    assignments deleted. All items stream from one scan: loading a large library's
    data (and its assignments) at once would take hundreds of MB."""
    if keys is None:
        conn.execute(delete(st.item_prongs))
        conn.execute(delete(st.prong_doubts))
        # The option goes on the statement: Connection.execution_options would make
        # every later statement stream too (PostgreSQL then refuses executemany).
        result = conn.execute(_top_level(None).execution_options(yield_per=CHUNK))
        try:
            for part in result.partitions():
                yield list(part)
        finally:
            result.close()
        return
    key_list = sorted(set(keys))
    for start in range(0, len(key_list), CHUNK):
        chunk = key_list[start : start + CHUNK]
        conn.execute(delete(st.item_prongs).where(st.item_prongs.c.item_key.in_(chunk)))
        conn.execute(delete(st.prong_doubts).where(st.prong_doubts.c.item_key.in_(chunk)))
        yield list(conn.execute(_top_level(chunk)).all())


def retag_conn(conn: Connection, rules: Rules, keys: Iterable[str] | None = None) -> RetagResult:
    """Recompute the prongs of ``keys`` (all top-level items if None) inside ``conn``."""
    started = time.perf_counter()
    result = RetagResult()
    colls = collection_map(conn)
    notes_for = _uses_notes(rules)
    for rows in _row_chunks(conn, keys):
        notes = _notes(conn, [r[0] for r in rows]) if notes_for else {}
        inserts, doubts = [], []
        for key, version, data in rows:
            for e in evaluate_item(data or {}, colls, rules, notes.get(key, ())):
                why = doubt(e, rules)
                if why is not None:
                    doubts.append(
                        {
                            "item_key": key,
                            "prong": e.prong,
                            "verdict": why,
                            "probability": e.probability,
                            "score": e.score,
                            "assigned": e.assigned,
                            "item_version": version,
                        }
                    )
                if not e.assigned:
                    continue
                inserts.append(
                    {
                        "item_key": key,
                        "prong": e.prong,
                        "score": e.score,
                        "source": e.source,
                        "reasons": e.reasons,
                        "item_version": version,
                    }
                )
                result.per_prong[e.prong] += 1
        result.items += len(rows)
        result.assignments += len(inserts)
        result.doubts += len(doubts)
        for table, rows_out in ((st.item_prongs, inserts), (st.prong_doubts, doubts)):
            for start in range(0, len(rows_out), CHUNK):
                conn.execute(insert(table), rows_out[start : start + CHUNK])
    result.seconds = time.perf_counter() - started
    return result


def retag(
    engine_or_conn: Engine | Connection,
    settings: Mapping[str, Any],
    keys: Iterable[str] | None = None,
) -> RetagResult:
    """Recompute prongs from the settings' rules for ``keys`` (None: every item)."""
    rules = load_rules(settings)
    if isinstance(engine_or_conn, Connection):
        result = retag_conn(engine_or_conn, rules, keys)
    else:
        with st.transaction(engine_or_conn) as conn:
            result = retag_conn(conn, rules, keys)
    log.info("%s", result.summary())
    return result


def _affected_keys(conn: Connection, changed: set[str]) -> set[str]:
    """Changed items, parents of changed child notes, and items of changed collections."""
    i, ic = st.items.c, st.item_collections.c
    keys = set(changed)
    changed_list = sorted(changed)
    for s in range(0, len(changed_list), CHUNK):
        chunk = changed_list[s : s + CHUNK]
        keys.update(
            p
            for (p,) in conn.execute(
                select(i.parent_key).where(i.key.in_(chunk), i.parent_key.is_not(None))
            )
        )
    # The sync hook runs before sync_state moves on, so it still holds the old version:
    # collections written in this run have a newer one (renames change ancestors' names).
    old = conn.execute(select(st.sync_state.c.library_version)).scalar() or 0
    touched = set(
        conn.execute(select(st.collections.c.key).where(st.collections.c.version > old)).scalars()
    )
    if touched and old:
        colls = collection_map(conn)
        descendants = set(touched)
        grew = True
        while grew:
            more = {k for k, c in colls.items() if c["parent_key"] in descendants} - descendants
            descendants |= more
            grew = bool(more)
        found = conn.execute(
            select(ic.item_key).where(ic.collection_key.in_(sorted(descendants)))
        ).scalars()
        keys.update(found)
    return keys


def on_sync_saved(
    settings: Mapping[str, Any], *, conn: Connection, changed: set[str], full: bool
) -> None:
    """Tag what a sync changed, inside the sync's transaction (all items on a full sync);
    a receiver of :data:`biblio.events.sync_saved`."""
    changed_keys = changed
    rules = load_rules(settings)
    if full:
        result = retag_conn(conn, rules, None)
    else:
        keys = _affected_keys(conn, changed_keys)
        if not keys:
            return
        # Orphans whose deleted collection went with save_deleted are caught by the
        # next full sync; everything else that can change an item's prongs is here.
        result = retag_conn(conn, rules, keys)
    log.info("sync: %s", result.summary())


def review_queue(
    conn: Connection,
    prong: str | None = None,
    verdict: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Borderline verdicts no owner has decided yet, most uncertain first, and their count."""
    d, o, i = st.prong_doubts.c, st.prong_overrides.c, st.items.c
    undecided = (
        ~select(o.item_key).where(and_(o.item_key == d.item_key, o.prong == d.prong)).exists()
    )
    where = [undecided, i.deleted == false()]
    if prong:
        where.append(d.prong == prong)
    if verdict:
        where.append(d.verdict == verdict)
    base = (
        select(st.prong_doubts, i.title, i.creator_summary, i.year)
        .join_from(st.prong_doubts, st.items, i.key == d.item_key)
        .where(*where)
    )
    total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    rows = (
        conn.execute(
            base.order_by(func.abs(d.probability - 0.5), d.item_key, d.prong)
            .limit(limit)
            .offset(offset)
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows], int(total)


def explain_item(conn: Connection, settings: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Stored effective prongs of one item and a live evaluation of every prong."""
    item = get_item(conn, key)
    if item is None:
        raise LookupError(key)
    rules = load_rules(settings)
    notes = _notes(conn, [key]).get(key, []) if _uses_notes(rules) else []
    live = evaluate_item(item["data"] or {}, collection_map(conn), rules, notes)
    overrides = (
        conn.execute(select(st.prong_overrides).where(st.prong_overrides.c.item_key == key))
        .mappings()
        .all()
    )
    return {
        "key": key,
        "title": item["title"],
        "item_type": item["item_type"],
        "prongs": effective_prongs(conn, [key])[key],
        "overrides": [dict(o) for o in overrides],
        "live": live,
        "labels": {p.id: p.label for p in rules.prongs},
    }


__all__ = ["RetagResult", "explain_item", "retag", "retag_conn", "on_sync_saved", "review_queue"]
