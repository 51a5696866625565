"""Owners' prong overrides: add or remove a prong on one item, audited.

Overrides live in ``prong_overrides``, apart from the computed ``item_prongs``,
so no sync or retag ever touches them; ``catalog.effective_prongs`` applies them
on read. Each change writes an ``audit_log`` row (actor, action, subject
``item:KEY``, old and new state as JSON) in the same transaction. The CLI uses
these functions now; the owners' web area calls the same ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from biblio import audit
from biblio import storage as st
from biblio.catalog.items import effective_prongs
from biblio.prongs.rules import load_rules

ACTIONS = ("add", "remove")


class OverrideError(ValueError):
    """The override cannot be applied (unknown item or prong, bad action or actor)."""


def _state(conn: Connection, key: str, prong: str) -> dict[str, Any]:
    row = (
        conn.execute(
            select(st.prong_overrides).where(
                st.prong_overrides.c.item_key == key, st.prong_overrides.c.prong == prong
            )
        )
        .mappings()
        .first()
    )
    effective = [p["prong"] for p in effective_prongs(conn, [key])[key]]
    return {
        "prong": prong,
        "override": row["action"] if row else None,
        "note": row["note"] if row else None,
        "effective": effective,
    }


def _check(
    conn: Connection, settings: Mapping[str, Any] | None, key: str, prong: str, by: str
) -> None:
    if not isinstance(by, str) or not by.strip():
        raise OverrideError("an override needs the owner who makes it (by)")
    ids = load_rules(settings).ids()
    if prong not in ids:
        raise OverrideError(f"unknown prong {prong!r} (prongs: {', '.join(ids)})")
    found = conn.execute(select(st.items.c.key).where(st.items.c.key == key)).first()
    if found is None:
        raise OverrideError(f"no item {key!r} in the cache")


def _audit(
    conn: Connection, by: str, action: str, key: str, old: dict[str, Any], new: dict[str, Any]
) -> None:
    audit.record(
        conn,
        by.strip(),
        action,
        f"item:{key}",
        old=json.dumps(old, ensure_ascii=False),
        new=json.dumps(new, ensure_ascii=False),
    )


def set_override(
    engine: Engine,
    key: str,
    prong: str,
    action: str,
    by: str,
    note: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> bool:
    """Add or remove ``prong`` on item ``key`` for good; False if nothing changed."""
    if action not in ACTIONS:
        raise OverrideError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    note = (note or "").strip() or None
    with st.transaction(engine) as conn:
        _check(conn, settings, key, prong, by)
        old = _state(conn, key, prong)
        if old["override"] == action and old["note"] == note:
            return False
        values = {"action": action, "by": by.strip(), "at": st.utcnow(), "note": note}
        o = st.prong_overrides.c
        if old["override"] is None:
            conn.execute(insert(st.prong_overrides).values(item_key=key, prong=prong, **values))
        else:
            conn.execute(
                update(st.prong_overrides)
                .where(o.item_key == key, o.prong == prong)
                .values(**values)
            )
        _audit(conn, by, f"prong.{action}", key, old, _state(conn, key, prong))
    return True


def clear_override(
    engine: Engine, key: str, prong: str, by: str, settings: Mapping[str, Any] | None = None
) -> bool:
    """Drop the owners' override of ``prong`` on ``key`` (back to the computed prongs)."""
    with st.transaction(engine) as conn:
        _check(conn, settings, key, prong, by)
        old = _state(conn, key, prong)
        if old["override"] is None:
            return False
        o = st.prong_overrides.c
        conn.execute(delete(st.prong_overrides).where(o.item_key == key, o.prong == prong))
        _audit(conn, by, "prong.clear", key, old, _state(conn, key, prong))
    return True


def list_overrides(engine: Engine, key: str | None = None) -> list[dict[str, Any]]:
    """Every override (of one item, if ``key``), newest first."""
    o = st.prong_overrides.c
    query = select(st.prong_overrides).order_by(o.at.desc(), o.item_key, o.prong)
    if key is not None:
        query = query.where(o.item_key == key)
    with st.connect(engine) as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
