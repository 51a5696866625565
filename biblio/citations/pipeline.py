"""The bibliography pipeline in phases, so that its per-item work can run anywhere.

A bibliography is mostly per-item work with a little set-level work in between:

1. **prepare** (per item): normalise the CSL-JSON item, compute its sort keys and the
   citation text disambiguation compares;
2. **plan** (whole set, cheap): order the items, number them, find the citations that
   clash and settle their year suffixes and added names (:mod:`.disambiguation`);
3. **render** (per item): each entry with its number, suffix and names shown;
4. **substitute** (whole set, cheap): ``subsequent-author-substitute`` compares each
   entry's names with the previous entry's; the entries it applies to are rendered again
   with the substitute (phase 3 once more, for those only).

:func:`run` drives the phases through two *map* callables that take a list of jobs and
return their results in order. :func:`biblio.citations.render_bibliography` passes plain
in-process calls; :mod:`.pool` passes a process pool. Both produce the same entries
because every phase-1 and phase-3 result depends on its own item and job only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from citeproc import Citation, CitationStylesBibliography
from citeproc.string import String

from . import disambiguation, sorting
from .compiled import BoundCitationItem
from .disambiguation import SettleMap
from .engine import CSL_NS, BiblioStyle, state
from .markup import MarkerFormatter, finish, strip_markers
from .source import BiblioSource, normalise_item

log = logging.getLogger(__name__)

EMPTY = "ValueError: style rendered nothing for this item"
#: What a citation number prints as when entries are rendered to be numbered later (the
#: render cache keeps numbered styles' entries per item and numbers them by position).
NUMBER_PLACEHOLDER = 918273645


@dataclass
class Prepared:
    """Phase 1 result for one item (by its input position)."""

    index: int
    error: str | None = None
    keys: list[tuple] = field(default_factory=list)
    cite: tuple[str, tuple, tuple] | None = None


@dataclass
class Job:
    """One entry to render (phase 3): its number, year suffix, names shown and, for a
    second pass, the positions of the names to replace by the substitute string."""

    index: int
    item: Any
    number: int
    suffix: str | None = None
    shown: int | None = None
    substitute: bool = False
    positions: tuple[int, ...] | None = None
    full_given: bool = False


@dataclass
class Rendered:
    """Phase 3 result: the finished text (None on failure), the names it printed first,
    whether it came out empty, and the error."""

    index: int
    text: str | None
    names: tuple | None
    empty: bool = False
    error: str | None = None


def _substituted(rule: str, names: tuple | None, prev: tuple | None) -> set[int] | None:
    """Which names ``subsequent-author-substitute`` replaces; an empty set means the whole
    name list (complete-all), None means nothing (citeproc-js util_substitute.js)."""
    if not names or not prev:
        return None
    if rule in ("partial-each", "partial-first"):
        same = 0
        while same < min(len(names), len(prev)) and names[same] == prev[same]:
            same += 1
            if rule == "partial-first":
                break
        return set(range(same)) or None
    if names != prev:
        return None
    return set(range(len(names))) if rule == "complete-each" else set()


class Renderer:
    """A parsed style with what its phases need; used by one thread at a time."""

    def __init__(self, style: BiblioStyle, fmt: str) -> None:
        self.style = style
        self.fmt = fmt
        self.quotes = (
            style.term("open-quote", "\u201c"),
            style.term("close-quote", "\u201d"),
            style.term("open-inner-quote", "\u2018"),
            style.term("close-inner-quote", "\u2019"),
        )
        self.piq = style.punctuation_in_quote()
        root = style.root
        self.bib_el = root.bibliography
        self.cite_el = root.citation
        layout = self.bib_el if self.bib_el is not None else self.cite_el
        self.layout = layout.layout
        self.second_field = self.bib_el is not None and self.bib_el.get("second-field-align")
        self.key_els = sorting.sort_keys(style) if self.bib_el is not None else []
        self.substitute = (
            self.bib_el.get("subsequent-author-substitute") if self.bib_el is not None else None
        )
        self.rule = (
            self.bib_el.get("subsequent-author-substitute-rule", "complete-all")
            if self.bib_el is not None
            else "complete-all"
        )
        self.disambiguation = disambiguation.Disambiguation(self)
        # a citation that prints citation numbers cannot be rendered before the order is
        # known, so its disambiguation runs in the plan phase
        self.numbered_cites = bool(
            self.cite_el is not None
            and root.xpath("//cs:text[@variable='citation-number']", namespaces={"cs": CSL_NS})
        )
        self.bib = CitationStylesBibliography(style, BiblioSource(), MarkerFormatter)
        self.items: dict[int, BoundCitationItem] | None = None

    # -- items ---------------------------------------------------------------------------

    def item(self, index: int, csl: Any) -> BoundCitationItem:
        """The citeproc-py item for input position ``index`` (normalised once per run
        when the renderer keeps items, see :func:`run`)."""
        if self.items is not None and index in self.items:
            return self.items[index]
        cite = BoundCitationItem(f"k{index}", normalise_item(csl, f"k{index}"))
        Citation([cite]).bibliography = self.bib
        if self.items is not None:
            self.items[index] = cite
        return cite

    # -- phase 1 -------------------------------------------------------------------------

    def prepare(self, jobs: list[tuple[int, Any]]) -> list[Prepared]:
        out = []
        for index, csl in jobs:
            try:
                item = self.item(index, csl)
            except Exception as exc:
                out.append(Prepared(index, error=f"could not read item: {exc}"))
                log.info("item %r not renderable: %s", _id(csl), exc)
                continue
            item.__dict__["number"] = None
            prepared = Prepared(index, keys=sorting.item_keys(self.style, self.key_els, item))
            if self.disambiguation.enabled and not self.numbered_cites:
                prepared.cite = self.disambiguation.cite(item)
            out.append(prepared)
        return out

    # -- phase 3 -------------------------------------------------------------------------

    def render(self, jobs: list[Job]) -> list[Rendered]:
        out = []
        for job in jobs:
            try:
                item = self.item(job.index, job.item)
                item.__dict__["number"] = job.number
                if job.suffix and self.style.explicit_year_suffix:
                    item.reference["year_suffix"] = String(job.suffix)
                positions = set(job.positions) if job.positions else None
                substitute = self.substitute if job.substitute else None
                state.reset("bib")
                state.full_given = job.full_given
                text, names = self._render_item(item, job.suffix, substitute, job.shown, positions)
                if not strip_markers(text).strip():
                    out.append(Rendered(job.index, None, names, empty=True, error=EMPTY))
                else:
                    out.append(Rendered(job.index, self._write(text), names))
            except Exception as exc:
                log.info("render failed for %r", _id(job.item), exc_info=True)
                out.append(Rendered(job.index, None, None, error=f"{type(exc).__name__}: {exc}"))
            finally:
                state.reset()
        return out

    def _render_item(self, item, suffix, substitute=None, shown=None, positions=None):
        full_given = state.full_given
        state.reset("bib")
        state.full_given = full_given
        state.substitute_positions = positions
        state.add_names = shown
        state.language = item.reference.get("language")
        if suffix and not self.style.explicit_year_suffix:
            state.year_suffix = suffix
        state.substitute = substitute
        self.layout.repressed = {}
        out = self.layout.render_bibliography([item])
        text = str(out[0]) if out else ""
        names = state.first_names
        if self.second_field and text:
            first = self._first_field(item)
            if first and text.startswith(first):
                text = first + "\x00" + text[len(first) :].lstrip()
        return text, names

    def _first_field(self, item) -> str | None:
        children = list(self.layout.iterchildren())
        if not children:
            return None
        saved = state.year_suffix, state.substitute, state.substitute_positions
        state.reset("bib")
        state.year_suffix, state.substitute, state.substitute_positions = saved
        self.layout.repressed = {}
        try:
            first = children[0].render(item)
        except Exception:
            return None
        prefix = self.layout.get("prefix", "")
        return prefix + str(first) if first is not None else None

    def finish(self, text: str) -> str:
        return finish(text, self.fmt, self.quotes, self.piq)

    def _write(self, text: str) -> str:
        if "\x00" in text:
            left, right = text.split("\x00", 1)
            if self.fmt == "html":
                # The space between the label and the entry is text, not only layout: a
                # page that shows the divs inline, a copied citation and a DOCX run all
                # keep "[1] J. Couture", never "[1]J. Couture".
                return (
                    f'<div class="csl-left-margin">{self.finish(left)}</div> '
                    f'<div class="csl-right-inline">{self.finish(right)}</div>'
                )
            return self.finish(left) + " " + self.finish(right)
        return self.finish(text)


def renderer_for(style: BiblioStyle, fmt: str) -> Renderer:
    """The :class:`Renderer` of a parsed style and format, built once and kept on it."""
    cache = style.__dict__.setdefault("renderers", {})
    if fmt not in cache:
        cache[fmt] = Renderer(style, fmt)
    return cache[fmt]


def _id(csl: Any) -> str:
    return str(csl.get("id", "")) if isinstance(csl, dict) else ""


PrepareMap = Callable[[list[tuple[int, Any]]], list[Prepared]]
RenderMap = Callable[[list[Job]], list[Rendered]]


@dataclass
class Result:
    """What :func:`run` hands back: the order, texts and errors by input position."""

    order: list[int]
    texts: dict[int, str]
    errors: dict[int, str]
    sort_keys: dict[int, str]


def run(
    renderer: Renderer,
    csl_items: list[Any],
    prepare: PrepareMap,
    render: RenderMap,
    settle: SettleMap | None = None,
    *,
    placeholder_numbers: bool = False,
) -> Result:
    """All four phases; ``prepare`` and ``render`` map phase-1 and phase-3 jobs, ``settle``
    the clash groups of the plan (in this thread when None). With ``placeholder_numbers``
    every entry prints :data:`NUMBER_PLACEHOLDER` as its citation number (the plan still
    sees the real ones, so numbered citations never clash)."""
    prepared = prepare(list(enumerate(csl_items)))
    errors = {p.index: p.error for p in prepared if p.error is not None}
    good = [p for p in prepared if p.error is None]
    number_keys = [n for n, k in enumerate(renderer.key_els) if sorting.is_number_key(k)]
    for position, p in enumerate(good):
        for n in number_keys:  # citation-number keys are input positions among good items
            p.keys[n] = sorting.number_key(position + 1)
    order = sorting.order([(p.index, p.keys) for p in good], renderer.key_els)
    by_index = {p.index: p for p in good}
    if renderer.key_els:
        sort_keys = {i: sorting.printable(by_index[i].keys) for i in order}
    else:
        sort_keys = {i: f"{n:06d}" for n, i in enumerate(order)}
    numbers = {i: n + 1 for n, i in enumerate(order)}
    plan = renderer.disambiguation.plan(
        [(i, csl_items[i], numbers[i], by_index[i].cite) for i in order], settle
    )
    jobs = [
        Job(
            i,
            csl_items[i],
            NUMBER_PLACEHOLDER if placeholder_numbers else numbers[i],
            plan.suffixes.get(i),
            plan.shown.get(i),
            full_given=i in plan.full_given,
        )
        for i in order
    ]
    first = {r.index: r for r in render(jobs)}
    second: dict[tuple[int, tuple[int, ...]], Rendered] = {}
    while True:
        # subsequent-author-substitute runs down the ordered entries; an entry that fails
        # makes the next one compare with nothing, which may change the later decisions,
        # hence the loop (it ends once every needed second pass is rendered)
        texts: dict[int, str] = {}
        failed: dict[int, str] = {}
        wanted: list[Job] = []
        prev: tuple | None = None
        for job in jobs:
            r = first[job.index]
            if r.text is None and not r.empty:
                failed[job.index] = r.error or "not rendered"
                prev = None
                continue
            positions = _substituted(renderer.rule, r.names, prev) if renderer.substitute else None
            final = r
            if positions is not None:
                key = (job.index, tuple(sorted(positions)))
                if key not in second:
                    # rendered in the next round; until then assume it succeeds
                    wanted.append(
                        Job(
                            job.index,
                            job.item,
                            job.number,
                            job.suffix,
                            job.shown,
                            True,
                            key[1],
                            job.full_given,
                        )
                    )
                    if r.names:
                        prev = r.names
                    continue
                final = second[key]
            if final.text is None:
                failed[job.index] = final.error or "not rendered"
                prev = None
                continue
            texts[job.index] = final.text
            if r.names:
                prev = r.names
        if not wanted:
            break
        for job, r in zip(wanted, render(wanted), strict=True):
            second[(job.index, job.positions or ())] = r
    errors.update(failed)
    return Result(order, texts, errors, sort_keys)
