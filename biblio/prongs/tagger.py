"""The prong tagger: score one Zotero item against the compiled rules, with reasons.

It reads what Zotero gives: title, abstract, tags, collections (with their parent
collections), publication/series title, item type and, for patterns that ask for
them, the item's child notes. Text is normalised once per item (HTML removed,
entities decoded, Unicode folded, lower-cased), then each prong's patterns are
searched in their fields. A prong is assigned when its score reaches the prong's
threshold, or when a Zotero tag or collection names it (ground truth). Every
assignment carries its reasons: which phrase, regex, tag or collection matched,
in which field, with what weight, and whether it counted towards the score.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from biblio.prongs.fields import collection_paths, item_fields
from biblio.prongs.model import model_text
from biblio.prongs.rules import Pattern, Prong, Rules

_SNIPPET = 80
#: How many of the learned vocabulary's terms a model reason keeps.
REASON_TERMS = 6


@dataclass
class Assignment:
    """One prong given to an item: score, reasons and where it came from."""

    prong: str
    score: float
    reasons: list[dict[str, Any]]
    source: str  # rules | model | zotero-tag | zotero-collection

    def as_dict(self) -> dict[str, Any]:
        return {
            "prong": self.prong,
            "score": self.score,
            "source": self.source,
            "reasons": self.reasons,
        }


@dataclass
class Evaluation:
    """A prong's full verdict for an item, assigned or not (for ``explain``)."""

    prong: str
    score: float
    threshold: float
    assigned: bool
    source: str
    reasons: list[dict[str, Any]] = field(default_factory=list)
    probability: float | None = None  # the learned vocabulary's, when there is one


# Joins fields for one search per pattern; \x00 and the newlines stop a match from
# running across two fields (a match that still does is checked field by field).
_JOIN = "\n\x00\n"


class _Text:
    """One item's normalised fields and the rules' pre-check literals found in them."""

    def __init__(self, fields: Mapping[str, str], rules: Rules) -> None:
        self.fields = fields
        # Per prong, the patterns whose pre-check literals are all in the text: the
        # others cannot match, so most patterns are ruled out without a regex search.
        self.candidates = rules.plan(rules.field_bits(fields))
        self._joined: dict[tuple[str, ...], tuple[str, list[int], list[str]]] = {}

    def joined(self, order: tuple[str, ...]) -> tuple[str, list[int], list[str]]:
        """The non-empty fields of ``order`` joined, with each one's start offset."""
        found = self._joined.get(order)
        if found is None:
            names = [n for n in order if self.fields.get(n)]
            starts, pos = [], 0
            for n in names:
                starts.append(pos)
                pos += len(self.fields[n]) + len(_JOIN)
            found = self._joined[order] = (_JOIN.join(self.fields[n] for n in names), starts, names)
        return found


def _search(pattern: Pattern, text: _Text) -> tuple[str, str] | None:
    """(field, matched text) of the pattern's first match in its heaviest field, or None."""
    if not pattern.anchored:
        joined, starts, names = text.joined(pattern.order)
        match = pattern.regex.search(joined)
        if match is None:
            return None
        if "\x00" not in match.group(0):
            return names[bisect_right(starts, match.start()) - 1], match.group(0)
    for name in pattern.order:  # anchored, or a match across fields: field by field
        value = text.fields.get(name)
        match = pattern.regex.search(value) if value else None
        if match is not None:
            return name, match.group(0)
    return None


def _evaluate(
    prong: Prong,
    candidates: list[Pattern],
    text: _Text,
    tags: list[str],
    collection_names: list[str],
    rules: Rules,
    vector: Mapping[str, float] | None,
) -> Evaluation:
    reasons: list[dict[str, Any]] = []
    best: dict[str, tuple[float, int]] = {}  # group -> (contribution, reason index)
    for pattern in candidates:
        hit = _search(pattern, text)
        if hit is None:
            continue
        name, matched = hit
        contribution = pattern.weight * rules.field_weights.get(name, 1.0)
        reasons.append(
            {
                "kind": pattern.kind,
                "pattern": pattern.text,
                "weight": pattern.weight,
                "field": name,
                "match": matched[:_SNIPPET],
                "group": pattern.group,
                "contribution": round(contribution, 3),
                "counted": False,
            }
        )
        key = f"{pattern.group}{'+' if contribution >= 0 else '-'}"
        if key not in best or abs(contribution) > abs(best[key][0]):
            best[key] = (contribution, len(reasons) - 1)
    for _contribution, index in best.values():
        reasons[index]["counted"] = True
    score = round(sum(c for c, _ in best.values()), 3)

    source = "rules"
    folded = [(t, t.strip().casefold()) for t in tags]
    explicit = []
    if rules.tag_prefix:
        explicit += [
            {"kind": "prefix-tag", "tag": t}
            for t, f in folded
            if f.startswith(rules.tag_prefix) and f[len(rules.tag_prefix) :].strip() == prong.id
        ]
    explicit += [{"kind": "tag", "tag": t} for t, f in folded if f in prong.tags]
    if explicit:
        source = "zotero-tag"
    in_collections = [
        {"kind": "collection", "collection": c}
        for c in collection_names
        if c.strip().casefold() in prong.collections
    ]
    if in_collections and not explicit:
        source = "zotero-collection"
    explicit += in_collections
    by_rules = score >= prong.threshold
    assigned = bool(explicit) or by_rules
    probability = None
    model = rules.model
    if model is not None and vector is not None and (pm := model.prong(prong.id)) is not None:
        probability, parts = model.score(vector, pm, REASON_TERMS)
        probability = round(probability, 4)
        confirmed = by_rules and probability >= rules.model_confirm
        alone = probability >= rules.model_assign
        if not explicit:
            assigned = confirmed or alone
            source = "rules" if confirmed or not alone else "model"
        reasons.append(
            {
                "kind": "model",
                "probability": probability,
                "assign": rules.model_assign,
                "confirm": rules.model_confirm,
                "terms": [[t, round(c, 3)] for t, c in parts],
                "verdict": (
                    "assigns"
                    if alone
                    else "confirms"
                    if confirmed
                    else "vetoes"
                    if by_rules
                    else "silent"
                ),
                "counted": bool(alone or confirmed),
            }
        )
    return Evaluation(
        prong=prong.id,
        score=score,
        threshold=prong.threshold,
        assigned=assigned,
        source=source,
        reasons=explicit + reasons,
        probability=probability,
    )


#: How far below ``model_assign`` a probability still counts as a near miss.
NEAR_MISS = 0.1


def doubt(e: Evaluation, rules: Rules) -> str | None:
    """Why a verdict deserves an owner's look, or None when rules and model agree firmly.

    ``model-only``: the learned vocabulary assigned a prong no rule reached; ``vetoed``:
    it dropped a rules match; ``weak``: a rules match it only just confirmed; ``near-miss``:
    neither assigned it, but the model came close. Zotero's own tags and collections are
    ground truth and never doubtful.
    """
    p = e.probability
    if p is None or e.source not in ("rules", "model"):
        return None
    by_rules = e.score >= e.threshold
    if e.assigned:
        if not by_rules:
            return "model-only"
        return "weak" if p < rules.model_assign else None
    if by_rules:
        return "vetoed"
    return "near-miss" if p >= rules.model_assign - NEAR_MISS else None


def evaluate_item(
    data: Mapping[str, Any],
    collections_by_key: Mapping[str, Any],
    rules: Rules,
    notes: Iterable[str] = (),
) -> list[Evaluation]:
    """Every prong's verdict for one item (assigned or not), in rules order."""
    names = collection_paths(collections_by_key, data.get("collections") or [])
    fields, tags = item_fields(data, names, notes, rules.tag_prefix)
    text = _Text(fields, rules)
    vector = None
    if rules.model is not None:
        vector = rules.model.vector(model_text(data, rules.tag_prefix))
    return [
        _evaluate(p, found, text, tags, names, rules, vector)
        for p, found in zip(rules.prongs, text.candidates, strict=True)
    ]


def tag_item(
    data: Mapping[str, Any],
    collections_by_key: Mapping[str, Any],
    rules: Rules,
    notes: Iterable[str] = (),
) -> list[Assignment]:
    """The prongs of one item (Zotero ``data``), each with score, reasons and source."""
    return [
        Assignment(prong=e.prong, score=e.score, reasons=e.reasons, source=e.source)
        for e in evaluate_item(data, collections_by_key, rules, notes)
        if e.assigned
    ]
