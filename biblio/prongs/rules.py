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

import itertools
import re
import re._constants as _c
import re._parser as _parser
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from biblio.prongs.model import BUILTIN, ModelError, TextModel, load_model
from biblio.settings import Settings, SettingsError

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "data" / "prong_rules.toml"

#: Fields a pattern can look at (see :mod:`biblio.prongs.tagger` for their sources).
FIELDS = ("title", "abstract", "tags", "collections", "publication", "type", "notes")
DEFAULT_FIELDS = ("title", "abstract", "tags", "publication")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_TOP_KEYS = {
    "tag_prefix",
    "field_weights",
    "default_fields",
    "model",
    "model_assign",
    "model_confirm",
}
_PRONG_KEYS = {"label", "description", "threshold", "tags", "collections", "patterns"}
_PATTERN_KEYS = {"phrase", "regex", "weight", "fields", "group", "note"}
_SEPARATOR = r"[\s\-\u2010-\u2015/]+"
_WORD_RE = re.compile(r"\w+")
#: Distinct words whose pre-check bits are remembered (then the cache starts over).
_TOKEN_CACHE = 200_000
#: The tagger's field separator (see biblio.prongs.tagger): no literal spans it.
_JOIN = "\n\x00\n"
#: The learned vocabulary's probabilities when the settings do not name them.
MODEL_ASSIGN, MODEL_CONFIRM = 0.5, 0.3
#: At most this many literal sets from one alternation (see _branch_requirements).
_MAX_BRANCH_SETS = 16


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
    #: Every such set found in the pattern (``literals`` first): a match contains one
    #: string of each, so the search is skipped unless all of them are satisfied.
    requires: tuple[frozenset[str], ...] = ()
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


class _Plan(NamedTuple):
    #: Literals of word characters (and gate words), by their first two characters:
    #: (literal, bits of the sets it is in, the literals it gates).
    by_bigram: dict[str, tuple[tuple[str, int, tuple[tuple[str, int], ...]], ...]]
    #: Literals tested in every field (no word of two characters or more).
    always: tuple[tuple[str, int], ...]
    #: Every pattern in rules order: (prong index, pattern, the bits it needs, its fields).
    entries: tuple[tuple[int, Pattern, int, tuple[str, ...]], ...]
    #: Bit of a required set -> entries whose first required set it is.
    by_bit: dict[int, tuple[int, ...]]
    #: Entries without a required set (always searched).
    unconditional: tuple[int, ...]
    #: Words seen so far; those holding a literal, and their findings.
    seen: set[str]
    hit_words: set[str]
    hits: dict[str, tuple[int, tuple[tuple[str, int], ...]]]


@dataclass(frozen=True)
class Rules:
    prongs: tuple[Prong, ...]
    tag_prefix: str  # casefolded; "" turns prefix tags off
    field_weights: Mapping[str, float] = field(default_factory=dict)
    #: The learned vocabulary (None: rules only), and its two probabilities: at or above
    #: ``model_assign`` it assigns a prong by itself; below ``model_confirm`` it vetoes
    #: a rules match (ground-truth tags, collections and owners' overrides are never vetoed).
    model: TextModel | None = None
    model_assign: float = MODEL_ASSIGN
    model_confirm: float = MODEL_CONFIRM

    @cached_property
    def literals(self) -> tuple[str, ...]:
        """Every pre-check literal of every pattern, once."""
        return tuple(
            sorted(
                {
                    lit
                    for prong in self.prongs
                    for p in prong.patterns
                    for req in p.requires
                    for lit in req
                }
            )
        )

    @cached_property
    def _plan(self) -> _Plan:
        """The pre-check, compiled once: every required set of every pattern gets a bit."""
        bit_of: dict[frozenset[str], int] = {}
        for prong in self.prongs:
            for p in prong.patterns:
                for req in p.requires:
                    bit_of.setdefault(req, 1 << len(bit_of))
        words: dict[str, int] = {}
        others: dict[str, int] = {}
        for req, bit in bit_of.items():
            for lit in req:
                table = words if _WORD_RE.fullmatch(lit) else others
                table[lit] = table.get(lit, 0) | bit
        # A literal with other characters (spaces, apostrophes) is only tested when
        # its longest word occurs in the text; without one of 2+ characters, always.
        gated: dict[str, list[tuple[str, int]]] = {}
        always = []
        for lit, bits in sorted(others.items()):
            runs = [r for r in _WORD_RE.findall(lit) if len(r) >= 2]
            if runs:
                gated.setdefault(max(runs, key=len), []).append((lit, bits))
            else:
                always.append((lit, bits))
        by_bigram: dict[str, list[tuple[str, int, tuple[tuple[str, int], ...]]]] = {}
        for lit in sorted(set(words) | set(gated)):
            by_bigram.setdefault(lit[:2], []).append(
                (lit, words.get(lit, 0), tuple(gated.get(lit, ())))
            )
        # Every pattern (by its position in rules order) under the bit of its first
        # required set; those with none are always candidates.
        entries: list[tuple[Any, ...]] = []
        by_bit: dict[int, list[int]] = {}
        unconditional = []
        for pi, prong in enumerate(self.prongs):
            for p in prong.patterns:
                need = sum(bit_of[req] for req in set(p.requires))
                if p.requires:
                    by_bit.setdefault(bit_of[p.requires[0]], []).append(len(entries))
                else:
                    unconditional.append(len(entries))
                entries.append((pi, p, need, p.fields))
        return _Plan(
            {k: tuple(v) for k, v in by_bigram.items()},
            tuple(always),
            tuple(entries),
            {k: tuple(v) for k, v in by_bit.items()},
            tuple(unconditional),
            set(),
            set(),
            {},
        )

    def _word_bits(self, token: str) -> tuple[int, tuple[tuple[str, int], ...]]:
        """The bits of the word literals in ``token``, and the gated literals to test."""
        plan = self._plan
        found = 0
        gated: list[tuple[str, int]] = []
        for i in range(len(token) - 1):
            for lit, bits, gates in plan.by_bigram.get(token[i : i + 2], ()):
                if token.startswith(lit, i):
                    found |= bits
                    gated.extend(gates)
        return found, tuple(gated)

    def field_bits(self, fields: Mapping[str, str]) -> dict[str, int]:
        """Per non-empty field, the bits of the required sets with a member in it.

        A literal made only of word characters occurs in a text exactly when it occurs
        inside one of the text's words, so those are found word by word, with each
        distinct word's findings cached across items; the others by substring test.
        Under IGNORECASE a regex's ``i`` also matches the dotless ``ı`` (which
        casefolding keeps): such text is also looked at with ``ı`` read as ``i``.
        """
        plan = self._plan
        seen, hit_words, hits = plan.seen, plan.hit_words, plan.hits
        if len(seen) > _TOKEN_CACHE:
            seen.clear()
            hit_words.clear()
            hits.clear()
        out: dict[str, int] = {}
        for name, text in fields.items():
            if not text:
                continue
            if "\u0131" in text:
                text = f"{text}{_JOIN}{text.replace(chr(0x131), 'i')}"
            tokens = set(_WORD_RE.findall(text))
            for token in tokens - seen:
                found = self._word_bits(token)
                if found[0] or found[1]:
                    hits[token] = found
                    hit_words.add(token)
                seen.add(token)
            bits = 0
            for token in tokens & hit_words:
                # (another thread may have just started the cache over)
                word_bits, gated = hits.get(token) or self._word_bits(token)
                bits |= word_bits
                for lit, lit_bits in gated:
                    if bits & lit_bits != lit_bits and lit in text:
                        bits |= lit_bits
            for lit, lit_bits in plan.always:
                if bits & lit_bits != lit_bits and lit in text:
                    bits |= lit_bits
            out[name] = bits
        return out

    def plan(self, field_bits: Mapping[str, int]) -> list[list[Pattern]]:
        """Per prong (rules order), the patterns that can match, given :meth:`field_bits`.

        A match lies within one field, so some field the pattern searches must hold a
        member of each of its required sets; the rest are skipped unsearched.
        """
        plan = self._plan
        union = 0
        for bits in field_bits.values():
            union |= bits
        picked = list(plan.unconditional)
        by_bit = plan.by_bit
        rest = union
        while rest:
            low = rest & -rest
            rest ^= low
            found = by_bit.get(low)
            if found:
                picked.extend(found)
        picked.sort()
        get = field_bits.get
        out: list[list[Pattern]] = [[] for _ in self.prongs]
        entries = plan.entries
        for index in picked:
            pi, p, need, names = entries[index]
            if union & need != need:
                continue
            for n in names:
                if get(n, 0) & need == need:
                    out[pi].append(p)
                    break
        return out

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


def _best(sets: list[frozenset[str]]) -> frozenset[str]:
    """The most selective of some literal sets (longest shortest member)."""
    return max(sets, key=lambda c: min(len(s) for s in c))


def _branch_requirements(parts: list[list[frozenset[str]]]) -> list[frozenset[str]]:
    """(A1 and A2 ...) or (B1 and ...) or ...: every union of one set per alternative.

    Each union is a necessary condition; when there would be too many, only the
    union of each alternative's best set is kept.
    """
    count = 1
    for part in parts:
        count *= len(part)
    if count > _MAX_BRANCH_SETS:
        return [frozenset().union(*(_best(p) for p in parts))]
    return [frozenset().union(*combo) for combo in itertools.product(*parts)]


def _seq_requirements(seq: Any) -> list[frozenset[str]]:
    """Sets of strings such that every match of this parsed sequence contains a member
    of each set (an AND of ORs); [] if none is known."""
    found: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in seq:
        if op is _c.LITERAL:
            run.append(chr(arg))
            continue
        if run:
            found.append(frozenset({"".join(run)}))
            run = []
        if op is _c.SUBPATTERN:
            found.extend(_seq_requirements(arg[-1]))
        elif op is _c.BRANCH:
            parts = [_seq_requirements(branch) for branch in arg[1]]
            if all(parts):
                found.extend(_branch_requirements(parts))
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and arg[0] >= 1:
            found.extend(_seq_requirements(arg[2]))
    if run:
        found.append(frozenset({"".join(run)}))
    return found


def _seq_literals(seq: Any) -> frozenset[str] | None:
    """The best set of strings one of which every match of this parsed sequence contains."""
    found = _seq_requirements(seq)
    return _best(found) if found else None


def pattern_requirements(compiled: re.Pattern[str]) -> tuple[frozenset[str], ...]:
    """Lower-cased literal sets every match contains one member of each, best first.

    Derived from the parsed regex: literal runs, groups, branches (one member per
    alternative) and repeats of at least one. Sets with a member shorter than two
    characters (nearly always present) or holding a line break or NUL (the tagger's
    field separator) are left out; an unparseable pattern gets none (always searched).
    """
    try:
        found = _seq_requirements(_parser.parse(compiled.pattern, compiled.flags))
    except Exception:  # noqa: BLE001 - an optimisation only: fall back to searching
        return ()
    useful = []
    for req in found:
        folded = frozenset(s.casefold() for s in req)
        if (
            min(len(s) for s in req) >= 2
            and min(len(s) for s in folded) >= 2
            and not any("\n" in s or "\x00" in s for s in folded)
            and folded not in useful
        ):
            useful.append(folded)
    # A set holding another required set is implied by it.
    useful = [req for req in useful if not any(other < req for other in useful)]
    if not useful:
        return ()
    first = useful.index(max(useful, key=lambda c: min(len(s) for s in c)))
    return (useful[first], *useful[:first], *useful[first + 1 :])


def required_literals(compiled: re.Pattern[str]) -> frozenset[str] | None:
    """Lower-cased strings one of which every match must contain, or None if unknown.

    Lets the tagger skip a pattern with a substring test (fast, in C) instead of a
    regex search; patterns are matched against lower-cased text, so literals are too.
    """
    requires = pattern_requirements(compiled)
    return requires[0] if requires else None


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


def _no_unknown_keys(raw: Mapping[str, Any], allowed: Iterable[str], name: str) -> None:
    """A typo in the rules must be an error naming the key, not a silently ignored line."""
    unknown = set(raw) - set(allowed)
    if unknown:
        raise SettingsError(
            f"{name} has unknown key {sorted(unknown)[0]!r} (keys: {', '.join(sorted(allowed))})"
        )


def _pattern(
    raw: Any, name: str, default_fields: tuple[str, ...], index: int, weights: Mapping[str, float]
) -> Pattern:
    if isinstance(raw, str):
        raw = {"phrase": raw}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{name} must be a table or a string, got {raw!r}")
    _no_unknown_keys(raw, _PATTERN_KEYS, name)
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
    requires = pattern_requirements(compiled)
    literals = requires[0] if requires else None
    order = tuple(sorted(fields, key=lambda f: -weights.get(f, 1.0)))
    anchored = kind == "regex" and bool(re.search(r"[\^$]|\\[AZz]", text.replace("[^", "")))
    return Pattern(
        text=text,
        kind=kind,
        weight=weight,
        fields=fields,
        group=group,
        regex=compiled,
        literals=literals,
        requires=requires,
        order=order,
        anchored=anchored,
    )


def _prong(
    pid: str, raw: Any, where: str, default_fields: tuple[str, ...], weights: Mapping[str, float]
) -> Prong:
    name = f"{where}: [prongs.{pid}]"
    if not _ID_RE.match(pid):
        raise SettingsError(f"{name} is not a valid prong id (lower-case letters, digits, -)")
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{name} must be a table, got {raw!r}")
    _no_unknown_keys(raw, _PRONG_KEYS, name)
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
    patterns = tuple(
        _pattern(p, f"{name} patterns[{i}]", default_fields, i, weights)
        for i, p in enumerate(raw_patterns)
    )
    return Prong(
        id=pid,
        label=label,
        description=description,
        threshold=threshold,
        tags=frozenset(t.strip().casefold() for t in tags if t.strip()),
        collections=frozenset(c.strip().casefold() for c in colls if c.strip()),
        patterns=patterns,
    )


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
    default_fields = (
        _fields(table["default_fields"], f"{where}: [prongs] default_fields")
        if "default_fields" in table
        else DEFAULT_FIELDS
    )
    prongs = []
    for key, value in table.items():
        if key in _TOP_KEYS:
            continue
        if not isinstance(value, Mapping):
            raise SettingsError(
                f"{where}: [prongs] unknown key {key!r} "
                f"(keys: {', '.join(sorted(_TOP_KEYS))}, or a prong table)"
            )
        prongs.append(_prong(key, value, where, default_fields, weights))
    if not prongs:
        raise SettingsError(f"{where}: [prongs] defines no prong")
    model = _model(table.get("model", ""), where)
    assign = _probability(
        table.get("model_assign", MODEL_ASSIGN), f"{where}: [prongs] model_assign"
    )
    confirm = _probability(
        table.get("model_confirm", MODEL_CONFIRM), f"{where}: [prongs] model_confirm"
    )
    if confirm > assign:
        raise SettingsError(
            f"{where}: [prongs] model_confirm ({confirm:g}) must not be above "
            f"model_assign ({assign:g})"
        )
    return Rules(
        prongs=tuple(prongs),
        tag_prefix=prefix.strip().casefold(),
        field_weights=weights,
        model=model,
        model_assign=assign,
        model_confirm=confirm,
    )


def _probability(value: Any, name: str) -> float:
    number = _number(value, name)
    if not 0 < number < 1:
        raise SettingsError(f"{name} must be a probability between 0 and 1, got {value!r}")
    return number


def _model(value: Any, where: str) -> TextModel | None:
    """The learned vocabulary named by ``[prongs] model``: "builtin", a file, or "" (off)."""
    if not isinstance(value, str):
        raise SettingsError(
            f'{where}: [prongs] model must be a string ("builtin", a file '
            f'path, or "" for rules only), got {value!r}'
        )
    value = value.strip()
    if not value:
        return None
    path = BUILTIN if value == "builtin" else Path(value).expanduser()
    if not path.is_absolute() and where.endswith(".toml"):
        path = Path(where).resolve().parent / path  # relative to the settings file
    try:
        return load_model(path)
    except ModelError as exc:
        raise SettingsError(f"{where}: [prongs] model: {exc}") from None


def load_rules(settings: Settings | Mapping[str, Any] | None) -> Rules:
    """The compiled rules for ``settings`` (shipped defaults when it has no ``[prongs]``)."""
    return parse_rules(merged_table(settings), _where(settings))
