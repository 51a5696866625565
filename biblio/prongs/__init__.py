"""Prongs: tag every cached item with the group's research prongs, with reasons.

``rules`` reads and validates the ``[prongs]`` settings (shipped defaults in
``biblio/data/prong_rules.toml``), ``tagger`` scores one item, ``store`` retags the
cache and hooks into every sync, ``overrides`` records owners' audited decisions,
and ``cli`` is ``biblio prongs``. Nothing here imports the sync package, which
registers :func:`sync_hook` itself.
"""

from __future__ import annotations

from biblio.prongs.overrides import (
    OverrideError,
    clear_override,
    list_overrides,
    set_override,
)
from biblio.prongs.rules import Pattern, Prong, Rules, load_rules, parse_rules
from biblio.prongs.store import RetagResult, explain_item, retag, retag_conn, sync_hook
from biblio.prongs.tagger import Assignment, Evaluation, evaluate_item, tag_item

__all__ = [
    "Assignment", "Evaluation", "OverrideError", "Pattern", "Prong", "RetagResult", "Rules",
    "clear_override", "evaluate_item", "explain_item", "list_overrides", "load_rules",
    "parse_rules", "retag", "retag_conn", "set_override", "sync_hook", "tag_item",
]
