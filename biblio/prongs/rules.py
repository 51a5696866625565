"""Prong rules: read, validate and compile the ``[prongs]`` settings section.

The group tunes the tagger without code: each prong is a table ``[prongs.<id>]``
with a label, a description, a threshold, Zotero tags and collections taken as
ground truth, and weighted patterns. A pattern is either a ``phrase`` (words matched
case-insensitively on word boundaries; a trailing ``*`` truncates, as in a library
catalogue; spaces also match hyphens) or a ``regex``; it may be limited to some
fields and may share a ``group`` with others, in which case the group counts once
(its heaviest match) so near-synonyms do not add up. Negative weights mark false
friends. The defaults ship in ``biblio/data/prong_rules.toml``; the settings file's
``[prongs]`` tables are merged over them key by key (lists replace). Every problem
raises a one-line :class:`~biblio.settings.SettingsError` naming the key.
"""

from __future__ import annotations

import re
import re._constants as _c
import re._parser as _parser
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from biblio.settings import Settings, SettingsError

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "data" / "prong_rules.toml"

#: Fields a pattern can look at (see :mod:`biblio.prongs.tagger` for their sources).
FIELDS = ("title", "abstract", "tags", "collections", "publication", "type", "notes")
DEFAULT_FIELDS = ("title", "abstract", "tags", "publication")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_TOP_KEYS = {"tag_prefix", "field_weights", "default_fields"}
_PRONG_KEYS = {"label", "description", "threshold", "tags", "collections", "patterns"}
_PATTERN_KEYS = {"phrase", "regex", "weight", "fields", "group", "note"}
_SEPARATOR = r"[\s\-\u2010-\u2015/]+"


@dataclass(frozen=True)
class Pattern:
    """One weighted pattern of a prong, compiled for lower-cased, normalised text."""

    text: str  # as written in the settings
    kind: str  # phrase | regex
    weight: float
    fields: tuple[str, ...]
    group: str
    regex: re.Pattern[str]
    #: Strings one of which any match contains: a cheap pre-check before the search.
    literals: frozenset[str] | None = None
    #: ``fields`` by falling field weight: the order the tagger searches them in.
    order: tuple[str, ...] = ()
    #: Anchors (^, $) make a regex field-specific: never searched on joined fields.
    anchored: bool = False


@dataclass(frozen=True)
class Prong:
    id: str
    label: str
    description: str
    threshold: float
    tags: frozenset[str]  # casefolded Zotero tag names that mean "this prong"
    collections: frozenset[str]  # casefolded collection names that mean "this prong"
    patterns: tuple[Pattern, ...]


@dataclass(frozen=True)
class Rules:
    prongs: tuple[Prong, ...]
    tag_prefix: str  # casefolded; "" turns prefix tags off
    field_weights: Mapping[str, float] = field(default_factory=dict)

    @cached_property
    def literals(self) -> tuple[str, ...]:
        """Every pre-check literal of every pattern, once."""
        return tuple(sorted({lit for prong in self.prongs for p in prong.patterns
                             for lit in p.literals or ()}))

    @cached_property
    def _by_literal(self) -> dict[str, tuple[list[int], dict[str, list[int]]]]:
        index: dict[str, tuple[list[int], dict[str, list[int]]]] = {}
        for prong in self.prongs:
            always: list[int] = []
            by_lit: dict[str, list[int]] = {}
            for i, p in enumerate(prong.patterns):
                if p.literals is None:
                    always.append(i)
                for lit in p.literals or ():
                    by_lit.setdefault(lit, []).append(i)
            index[prong.id] = (always, by_lit)
        return index

    def candidates(self, prong: Prong, present: set[str]) -> list[Pattern]:
        """The prong's patterns worth searching, given the literals present in the text."""
        always, by_lit = self._by_literal[prong.id]
        picked = set(always)
        for lit in present:
            picked.update(by_lit.get(lit, ()))
        return [prong.patterns[i] for i in sorted(picked)]

    def ids(self) -> list[str]:
        return [p.id for p in self.prongs]

    def get(self, prong_id: str) -> Prong | None:
        return next((p for p in self.prongs if p.id == prong_id), None)


def phrase_regex(phrase: str) -> str:
    """The regex source for a phrase: words on word boundaries, ``*`` truncation."""
    words = unicodedata.normalize("NFKC", phrase).casefold().split()
    parts = []
    for word in words:
        stem = word.rstrip("*")
        piece = _SEPARATOR.join(re.escape(w) for w in re.split(r"-+", stem) if w)
        parts.append(piece + (r"\w*" if word.endswith("*") else ""))
    return r"(?<!\w)" + _SEPARATOR.join(parts) + r"(?!\w)"


def _seq_literals(seq: Any) -> frozenset[str] | None:
    """The best set of strings one of which every match of this parsed sequence contains."""
    candidates: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in seq:
        if op is _c.LITERAL:
            run.append(chr(arg))
            continue
        if run:
            candidates.append(frozenset({"".join(run)}))
            run = []
        found: frozenset[str] | None = None
        if op is _c.SUBPATTERN:
            found = _seq_literals(arg[-1])
        elif op is _c.BRANCH:
            parts = [_seq_literals(branch) for branch in arg[1]]
            if all(parts):
                found = frozenset().union(*parts)  # type: ignore[arg-type]
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and arg[0] >= 1:
            found = _seq_literals(arg[2])
        if found:
            candidates.append(found)
    if run:
        candidates.append(frozenset({"".join(run)}))
    if not candidates:
        return None
    return max(candidates, key=lambda c: min(len(s) for s in c))


def required_literals(compiled: re.Pattern[str]) -> frozenset[str] | None:
    """Lower-cased strings one of which every match must contain, or None if unknown.

    Lets the tagger skip a pattern with a substring test (fast, in C) instead of a
    regex search; patterns are matched against lower-cased text, so literals are too.
    """
    try:
        found = _seq_literals(_parser.parse(compiled.pattern, compiled.flags))
    except Exception:  # noqa: BLE001 - an optimisation only: fall back to searching
        return None
    if not found or min(len(s) for s in found) < 2:
        return None
    return frozenset(s.casefold() for s in found)


def default_rules_table() -> dict[str, Any]:
    """The shipped defaults, as parsed TOML (the ``[prongs]`` table)."""
    with DEFAULTS_FILE.open("rb") as fh:
        return dict(tomllib.load(fh)["prongs"])


def merged_table(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Shipped defaults with the settings' ``[prongs]`` merged over them."""
    table = default_rules_table()
    extra = (settings or {}).get("prongs") or {}
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(table.get(key), Mapping):
            table[key] = {**table[key], **value}
        else:
            table[key] = value
    return table


def _where(settings: Mapping[str, Any] | None) -> str:
    return getattr(settings, "source", None) or "settings"


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingsError(f"{name} must be a number, got {value!r}")
    return float(value)


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{name} must be a list of strings, got {value!r}")
    return value


def _fields(value: Any, name: str) -> tuple[str, ...]:
    names = _strings(value, name)
    for f in names:
        if f not in FIELDS:
            raise SettingsError(f"{name} has unknown field {f!r} (fields: {', '.join(FIELDS)})")
    if not names:
        raise SettingsError(f"{name} must name at least one field")
    return tuple(dict.fromkeys(names))


def _pattern(raw: Any, name: str, default_fields: tuple[str, ...], index: int,
             weights: Mapping[str, float]) -> Pattern:
    if isinstance(raw, str):
        raw = {"phrase": raw}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{name} must be a table or a string, got {raw!r}")
    unknown = set(raw) - _PATTERN_KEYS
    if unknown:
        raise SettingsError(f"{name} has unknown key {sorted(unknown)[0]!r} "
                            f"(keys: {', '.join(sorted(_PATTERN_KEYS))})")
    if ("phrase" in raw) == ("regex" in raw):
        raise SettingsError(f"{name} needs exactly one of phrase or regex")
    kind = "phrase" if "phrase" in raw else "regex"
    text = raw[kind]
    if not isinstance(text, str) or not text.strip() or not text.strip("* "):
        raise SettingsError(f"{name}.{kind} must be a non-empty string, got {text!r}")
    source = phrase_regex(text) if kind == "phrase" else text
    try:
        compiled = re.compile(source if kind == "phrase" else f"(?i:{source})")
    except re.error as exc:
        raise SettingsError(f"{name}.regex is not a valid regular expression ({exc})") from None
    weight = _number(raw.get("weight", 1.0), f"{name}.weight")
    fields = _fields(raw["fields"], f"{name}.fields") if "fields" in raw else default_fields
    group = raw.get("group", f"#{index}")
    if not isinstance(group, str) or not group:
        raise SettingsError(f"{name}.group must be a non-empty string, got {group!r}")
    literals = required_literals(compiled)
    order = tuple(sorted(fields, key=lambda f: -weights.get(f, 1.0)))
    anchored = kind == "regex" and bool(re.search(r"[\^$]|\\[AZz]", text.replace("[^", "")))
    return Pattern(text=text, kind=kind, weight=weight, fields=fields, group=group,
                   regex=compiled, literals=literals, order=order,
                   anchored=anchored)


def _prong(pid: str, raw: Any, where: str, default_fields: tuple[str, ...],
           weights: Mapping[str, float]) -> Prong:
    name = f"{where}: [prongs.{pid}]"
    if not _ID_RE.match(pid):
        raise SettingsError(f"{name} is not a valid prong id (lower-case letters, digits, -)")
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{name} must be a table, got {raw!r}")
    unknown = set(raw) - _PRONG_KEYS
    if unknown:
        raise SettingsError(f"{name} has unknown key {sorted(unknown)[0]!r} "
                            f"(keys: {', '.join(sorted(_PRONG_KEYS))})")
    label = raw.get("label", pid)
    description = raw.get("description", "")
    for key, value in (("label", label), ("description", description)):
        if not isinstance(value, str):
            raise SettingsError(f"{name} {key} must be a string, got {value!r}")
    threshold = _number(raw.get("threshold", 1.0), f"{name} threshold")
    if threshold <= 0:
        raise SettingsError(f"{name} threshold must be greater than 0, got {threshold!r}")
    tags = _strings(raw.get("tags", []), f"{name} tags")
    colls = _strings(raw.get("collections", []), f"{name} collections")
    raw_patterns = raw.get("patterns", [])
    if not isinstance(raw_patterns, list):
        raise SettingsError(f"{name} patterns must be a list, got {raw_patterns!r}")
    patterns = tuple(_pattern(p, f"{name} patterns[{i}]", default_fields, i, weights)
                     for i, p in enumerate(raw_patterns))
    return Prong(id=pid, label=label, description=description, threshold=threshold,
                 tags=frozenset(t.strip().casefold() for t in tags if t.strip()),
                 collections=frozenset(c.strip().casefold() for c in colls if c.strip()),
                 patterns=patterns)


def parse_rules(table: Mapping[str, Any], where: str = "settings") -> Rules:
    """Validate and compile a ``[prongs]`` table; raise SettingsError naming the key."""
    prefix = table.get("tag_prefix", "prong:")
    if not isinstance(prefix, str):
        raise SettingsError(f"{where}: [prongs] tag_prefix must be a string, got {prefix!r}")
    weights_raw = table.get("field_weights", {})
    if not isinstance(weights_raw, Mapping):
        raise SettingsError(f"{where}: [prongs] field_weights must be a table")
    weights = {}
    for key, value in weights_raw.items():
        if key not in FIELDS:
            raise SettingsError(f"{where}: [prongs] field_weights has unknown field {key!r}")
        weights[key] = _number(value, f"{where}: [prongs] field_weights.{key}")
    default_fields = (_fields(table["default_fields"], f"{where}: [prongs] default_fields")
                      if "default_fields" in table else DEFAULT_FIELDS)
    prongs = []
    for key, value in table.items():
        if key in _TOP_KEYS:
            continue
        if not isinstance(value, Mapping):
            raise SettingsError(f"{where}: [prongs] unknown key {key!r} "
                                f"(keys: {', '.join(sorted(_TOP_KEYS))}, or a prong table)")
        prongs.append(_prong(key, value, where, default_fields, weights))
    if not prongs:
        raise SettingsError(f"{where}: [prongs] defines no prong")
    return Rules(prongs=tuple(prongs), tag_prefix=prefix.strip().casefold(),
                 field_weights=weights)


def load_rules(settings: Settings | Mapping[str, Any] | None) -> Rules:
    """The compiled rules for ``settings`` (shipped defaults when it has no ``[prongs]``)."""
    return parse_rules(merged_table(settings), _where(settings))
