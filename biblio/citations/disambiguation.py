"""Disambiguation of citations that look alike, as citeproc-js's disambiguator does it.

Every item's citation is rendered once on its own (:meth:`Disambiguation.cite`, a per-item
job of the pipeline's first phase). Items whose citations are identical form a clash
group; only those are worked on further (:meth:`Disambiguation.plan`, on the whole set):
``disambiguate-add-names`` shows one more name at a time until a citation is unique, the
``disambiguate="true"`` branches of the style are tried, and what is still ambiguous gets
a year suffix in bibliography order (citeproc-js disNames, disYears).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .compiled import BoundCitationItem
from .engine import CSL_NS, state
from .markup import strip_markers
from .names import initialize


class Renderer(Protocol):
    """What disambiguation needs of :class:`.pipeline.Renderer` (which owns one of us)."""

    style: Any
    bib_el: Any
    cite_el: Any
    numbered_cites: bool

    def item(self, index: int, csl: Any) -> BoundCitationItem: ...


log = logging.getLogger(__name__)


def suffix_letters(n: int) -> str:
    """The ``n``-th year suffix: a, b, ..., z, aa, ab, ..."""
    letters = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(97 + r) + letters
    return letters


#: (input position, CSL item, citation number, cite of :meth:`Disambiguation.cite`)
Row = tuple[int, Any, int, tuple | None]
#: names shown, year suffixes and full given names of one clash group, by input position
Settled = tuple[dict[int, int], dict[int, str], set[int]]
SettleMap = Callable[[list[list[Row]]], list[Settled]]


@dataclass
class Plan:
    """Year suffixes, names shown and given names printed in full, by input position."""

    suffixes: dict[int, str] = field(default_factory=dict)
    shown: dict[int, int] = field(default_factory=dict)
    full_given: set[int] = field(default_factory=set)


class Disambiguation:
    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        cite_el, bib_el = renderer.cite_el, renderer.bib_el
        self.cite_el = cite_el
        self.add_names = self.add_year = False
        if cite_el is not None and bib_el is not None:
            self.add_names = cite_el.get("disambiguate-add-names", "false").lower() == "true"
            self.add_year = cite_el.get("disambiguate-add-year-suffix", "false").lower() == "true"
        self.add_given = (
            cite_el is not None
            and bib_el is not None
            and cite_el.get("disambiguate-add-givenname", "false").lower() == "true"
        )
        self.rule = (
            cite_el.get("givenname-disambiguation-rule", "by-cite") if cite_el is not None else ""
        )
        self.enabled = self.add_names or self.add_year
        # citeproc-js carries add-names results into the bibliography only when the
        # citation also adds given names (citeStart, "weird and delicate")
        self.names_in_bibliography = (
            cite_el is not None
            and cite_el.get("disambiguate-add-givenname", "false").lower() == "true"
        )
        self.test = bool(
            renderer.style.root.xpath(
                "//cs:if[@disambiguate] | //cs:else-if[@disambiguate]", namespaces={"cs": CSL_NS}
            )
        )

    def cite(
        self, item: BoundCitationItem, add_names: int | None = None, disambiguate: bool = False
    ) -> tuple[str, tuple, tuple] | None:
        """The item's citation text at a disambiguation level, the names of its first
        name variable and the names it showed."""
        try:
            state.reset("cite")
            state.add_names = add_names
            state.disambiguate = disambiguate
            # what Layout.render_citation does for one registered item, without its
            # list scans of every key in the bibliography
            layout = self.cite_el.layout
            self.cite_el.cites = []
            layout.repressed = {}
            out = layout.render_children(item)
            text = layout.format(layout.wrap(out)) if out is not None else None
            names = state.cite_names or ()
            shown = state.cite_shown
        except Exception:
            log.debug("citation render failed for %s", item.key, exc_info=True)
            return None
        finally:
            state.reset()
        return (strip_markers(str(text)), names, shown) if text else None

    def plan(self, rows: list[Row], settle: SettleMap | None = None) -> Plan:
        """Suffixes, names shown and full given names for ``rows`` (input position, CSL
        item, number, cite) given in bibliography order.

        Only items whose citations are identical can affect each other, so each such
        clash group is settled on its own, by ``settle`` (a map over lists of groups;
        :meth:`settle_groups` by default, a process pool in :mod:`.pool`).
        """
        plan = Plan()
        if not self.enabled:
            return plan
        if self.renderer.numbered_cites:
            rows = [(i, csl, n, self.cite(self._item((i, csl, n, None)))) for i, csl, n, _ in rows]
        clashes: dict[str, list[Row]] = {}
        for row in rows:
            if row[3] is not None:
                clashes.setdefault(row[3][0], []).append(row)
        groups = [members for members in clashes.values() if len(members) > 1]
        for shown, suffixes, full_given in (settle or self.settle_groups)(groups):
            plan.shown.update(shown)
            plan.suffixes.update(suffixes)
            plan.full_given |= full_given
        if not self.names_in_bibliography:
            plan.shown = {}
        return plan

    def settle_groups(self, groups: list[list[Row]]) -> list[Settled]:
        return [self.settle(members) for members in groups]

    def settle(self, members: list[Row]) -> Settled:
        """Names shown, year suffixes and full given names for one clash group."""
        full_given: set[int] = set()
        if self.add_given and self.names_in_bibliography:
            full_given = self._full_given(members)
        shown: dict[int, int] = {}
        resolved: set[int] = set()
        if self.add_names:
            shown, resolved = self._add_names([self._item(r) for r in members])
        suffixes: dict[int, str] = {}
        if self.add_year:
            # items whose citations look alike but whose name lists differ are told apart
            # by names (add-names, add-givenname); then by the style's disambiguate="true"
            # branches; the rest by a suffix in bibliography order (citeproc-js disYears)
            alike: dict[tuple, list[Row]] = {}
            for row in members:
                if row[0] not in resolved and row[3] is not None:
                    alike.setdefault(self._identity(row[3]), []).append(row)
            for same in alike.values():
                if len(same) < 2:
                    continue
                if self.test:
                    extra = [self.cite(self._item(r), disambiguate=True) for r in same]
                    texts = [c[0] if c else None for c in extra]
                    if len(set(texts)) == len(texts):
                        continue
                for n, row in enumerate(same):
                    suffixes[row[0]] = suffix_letters(n)
        return shown, suffixes, full_given

    def _item(self, row: Row) -> BoundCitationItem:
        cite = self.renderer.item(row[0], row[1])
        cite.__dict__["number"] = row[2]
        return cite

    def _givens(self, cite: tuple, initials: bool) -> tuple:
        """The given names givenname disambiguation can show (first name only for the
        primary-name rules), as initials or in full."""
        shown = cite[2][:1] if self.rule.startswith("primary-name") else cite[2]
        return tuple(
            initialize(str(parts[0] or ""), ".") if initials else str(parts[0] or "")
            for parts in shown
        )

    def _identity(self, cite: tuple) -> tuple:
        """What tells two look-alike citations apart once names are disambiguated:
        the citation text; the family names, when names can be added; the given names
        (as far as the rule lets them show), when given names can be added."""
        families = tuple(n[1] for n in cite[1]) if self.add_names else ()
        givens = self._givens(cite, self.rule.endswith("-with-initials")) if self.add_given else ()
        return (cite[0], families, givens)

    def _full_given(self, members: list) -> set[int]:
        """Members whose given names must print in full to tell them apart (citeproc-js
        raises them to level 2: initials are the same, the names differ)."""
        if len(members) < 2 or self.rule.endswith("-with-initials"):
            return set()
        keys = {r[0]: (self._givens(r[3], True), self._givens(r[3], False)) for r in members}
        return {
            i
            for i, (ini, full) in keys.items()
            if any(o != i and k[0] == ini and k[1] != full for o, k in keys.items())
        }

    def _add_names(self, members: list[BoundCitationItem]) -> tuple[dict[int, int], set[int]]:
        """citeproc-js disNames: show one more name at a time until a citation is unique.

        Every still-ambiguous item is rendered with ``n`` names; those whose citation then
        differs from the others' keep ``n`` and are resolved; the rest go on to ``n + 1``
        until their name lists run out. Those keep the last count that resolved anything
        (citeproc-js's "betterbase") and are left to the year suffix.
        """
        shown: dict[int, int] = {}
        pending = list(members)
        longest = max(len(names) for names in _name_lists(members))
        best = None
        n = 2
        while len(pending) > 1 and n <= longest:
            rendered = {item.key: self.cite(item, n) for item in pending}
            texts = [r[0] for r in rendered.values() if r is not None]
            still = []
            for item in pending:
                r = rendered[item.key]
                if r is not None and texts.count(r[0]) == 1:
                    shown[_index(item)] = best = n
                else:
                    still.append(item)
            pending = still
            n += 1
        resolved = set(shown)
        if best is not None:
            for item in pending:
                shown[_index(item)] = best
        return shown, resolved


def _index(item: BoundCitationItem) -> int:
    return int(item.key[1:])  # items are keyed "k<input position>"


def _name_lists(members: list) -> list[list]:
    lists = []
    for item in members:
        ref = item.reference
        found = [v for k, v in ref.items() if isinstance(v, list) and v and hasattr(v[0], "parts")]
        lists.append(max(found, key=len) if found else [])
    return lists
