"""Prongs: tag every cached item with the group's research prongs, with reasons.

``rules`` reads and validates the ``[prongs]`` settings (shipped defaults in
``biblio/data/prong_rules.toml``), ``tagger`` scores one item, ``store`` retags the
cache and hooks into every sync, ``overrides`` records owners' audited decisions,
and ``cli`` is ``biblio prongs``. :func:`subscribe` connects the tagger to every
sync (:data:`biblio.events.sync_saved`); nothing here imports the sync package.
"""

from __future__ import annotations

from biblio import events
from biblio.prongs.overrides import (
    OverrideError,
    clear_override,
    list_overrides,
    set_override,
)
from biblio.prongs.rules import Pattern, Prong, Rules, load_rules, parse_rules
from biblio.prongs.store import RetagResult, explain_item, on_sync_saved, retag, retag_conn
from biblio.prongs.tagger import Assignment, Evaluation, evaluate_item, tag_item


def subscribe() -> None:
    """Tag what every sync changed, in its transaction (idempotent)."""
    events.sync_saved.connect(on_sync_saved)


__all__ = [
    "Assignment",
    "Evaluation",
    "OverrideError",
    "Pattern",
    "Prong",
    "RetagResult",
    "Rules",
    "clear_override",
    "evaluate_item",
    "explain_item",
    "list_overrides",
    "load_rules",
    "parse_rules",
    "retag",
    "retag_conn",
    "set_override",
    "subscribe",
    "tag_item",
]
