"""Render bibliographies and single references with citeproc-py plus biblio's set-level rules.

The pipeline per request: normalise each CSL-JSON item under an internal key (so ids that
differ only in case stay apart), sort as citeproc-js does, disambiguate the citations of
items that cite alike (add-names, the ``disambiguate`` test, year suffixes in sort order,
as citeproc-js's disambiguator), render each entry on its own (one failure yields a
flagged fallback entry, never a broken list), apply ``subsequent-author-substitute`` by
its rule, then write HTML (escaped), plain text or RTF.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from citeproc import Citation, CitationStylesBibliography
from citeproc.string import String

from .compiled import BoundCitationItem
from .engine import CSL_NS, BiblioStyle, state
from .markup import MarkerFormatter, finish, strip_markers
from .sorting import sort_items
from .source import BiblioSource, normalise_item
from .styles import StyleError, checkout_style, resolve_locale

log = logging.getLogger(__name__)

FORMATS = ("html", "text", "rtf")


@dataclass
class Entry:
    """One formatted bibliography entry; ``error`` is set when the fallback was used."""

    id: str
    text: str
    sort_key: str
    error: str | None = None


def _suffix(n: int) -> str:
    letters = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(97 + r) + letters
    return letters


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


def _fallback(item: Any, fmt: str) -> str:
    """A plain "Authors (Year). Title. Container." line for items the engine cannot do."""
    try:
        return _fallback_text(item, fmt)
    except Exception:  # the fallback must never fail: it is what failure looks like
        return "[unreadable item]"


def _fallback_text(item: Any, fmt: str) -> str:
    if not isinstance(item, dict):
        return "[unreadable item]"
    names = []
    creators = item.get("author") or item.get("editor") or []
    for n in creators if isinstance(creators, list) else []:
        if isinstance(n, dict):
            names.append(
                n.get("literal") or ", ".join(p for p in (n.get("family"), n.get("given")) if p)
            )
    year = ""
    issued = item.get("issued")
    if isinstance(issued, dict):
        parts = issued.get("date-parts") or [[]]
        year = str(parts[0][0]) if parts and parts[0] else str(issued.get("literal") or "")
    elif isinstance(issued, str | int):
        year = str(issued)
    bits = [
        "; ".join(names),
        f"({year})" if year else "",
        str(item.get("title") or "[untitled]")
        if not isinstance(item.get("title"), list | dict)
        else "[untitled]",
        str(item.get("container-title") or ""),
    ]
    text = ". ".join(b for b in (" ".join(x for x in bits[:2] if x), *bits[2:]) if b) + "."
    if fmt == "html":
        return html.escape(text, quote=True)
    if fmt == "rtf":
        return finish(text, "rtf")
    return text


class _Renderer:
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
        self.disambiguate_test = bool(
            root.xpath(
                "//cs:if[@disambiguate] | //cs:else-if[@disambiguate]", namespaces={"cs": CSL_NS}
            )
        )

    def finish(self, text: str) -> str:
        return finish(text, self.fmt, self.quotes, self.piq)

    def run(self, csl_items: list[dict]) -> list[Entry]:
        style = self.style
        source = BiblioSource()
        ids: dict[str, str] = {}
        raw: dict[str, Any] = {}
        errors: dict[str, str] = {}
        keys: list[str] = []
        for n, item in enumerate(csl_items):
            key = f"k{n}"
            keys.append(key)
            raw[key] = item
            ids[key] = str(item.get("id", "")) if isinstance(item, dict) else ""
            try:
                source.add(normalise_item(item, key))
            except Exception as exc:
                errors[key] = f"could not read item: {exc}"
                log.info("item %r not renderable: %s", ids[key], exc)
        good = [k for k in keys if k not in errors]
        bib = CitationStylesBibliography(style, source, MarkerFormatter)
        citation = Citation([BoundCitationItem(k, source[k]) for k in good])
        bib.register(citation)
        ordered, sort_keys = sort_items(style, bib.items)
        bib.items = ordered
        bib.keys = [it.key for it in ordered]
        suffixes, names_shown = self._disambiguate(bib, ordered)
        # citeproc-js carries add-names results into the bibliography when the citation
        # also adds given names (citeStart, "weird and delicate")
        if self.cite_el is None or (
            self.cite_el.get("disambiguate-add-givenname", "false").lower() != "true"
        ):
            names_shown = {}

        texts: dict[str, str] = {}
        prev_names: tuple | None = None
        substitute = (
            self.bib_el.get("subsequent-author-substitute") if (self.bib_el is not None) else None
        )
        rule = (
            self.bib_el.get("subsequent-author-substitute-rule", "complete-all")
            if self.bib_el is not None
            else "complete-all"
        )
        for item in ordered:
            try:
                shown = names_shown.get(item.key)
                text, names = self._render_item(item, suffixes.get(item.key), None, shown)
                positions = _substituted(rule, names, prev_names) if substitute else None
                if positions is not None:
                    text, _ = self._render_item(
                        item, suffixes.get(item.key), substitute, shown, positions or None
                    )
                if names:
                    # entries without their own names leave the remembered ones alone
                    prev_names = names
                if not strip_markers(text).strip():
                    raise ValueError("style rendered nothing for this item")
                texts[item.key] = self._write(text)
            except Exception as exc:
                log.info("render failed for %r", ids[item.key], exc_info=True)
                errors[item.key] = f"{type(exc).__name__}: {exc}"
                prev_names = None
            finally:
                state.reset()

        entries = []
        order = [it.key for it in ordered] + [k for k in keys if k in errors and k not in good]
        for key in order:
            if key in texts:
                entries.append(Entry(ids[key], texts[key], sort_keys.get(key, "")))
            else:
                entries.append(
                    Entry(
                        ids[key],
                        _fallback(raw[key], self.fmt),
                        sort_keys.get(key, "~"),
                        errors.get(key, "not rendered"),
                    )
                )
        return entries

    def _cite(
        self, bib, item, add_names: int | None = None, disambiguate: bool = False
    ) -> tuple[str, tuple] | None:
        """The item's citation text at a disambiguation level, and the names it printed."""
        try:
            state.reset("cite")
            state.add_names = add_names
            state.disambiguate = disambiguate
            # what Layout.render_citation does for one registered item, without its
            # list scans of every key in the bibliography
            cite = BoundCitationItem(item.key, item.reference)
            Citation([cite]).bibliography = bib
            layout = self.cite_el.layout
            self.cite_el.cites = []
            layout.repressed = {}
            out = layout.render_children(cite)
            text = layout.format(layout.wrap(out)) if out is not None else None
            names = state.cite_names or ()
        except Exception:
            log.debug("citation render failed for %s", item.key, exc_info=True)
            return None
        finally:
            state.reset()
        return (strip_markers(str(text)), names) if text else None

    def _disambiguate(self, bib, ordered) -> tuple[dict[str, str], dict[str, int]]:
        """Year suffixes and add-names counts for items whose citations look alike."""
        if self.cite_el is None or self.bib_el is None:
            return {}, {}
        add_names = self.cite_el.get("disambiguate-add-names", "false").lower() == "true"
        add_year = self.cite_el.get("disambiguate-add-year-suffix", "false").lower() == "true"
        if not (add_names or add_year):
            return {}, {}
        cites: dict[str, tuple[str, tuple]] = {}
        clashes: dict[str, list] = {}
        for item in ordered:
            cite = self._cite(bib, item)
            if cite is not None:
                cites[item.key] = cite
                clashes.setdefault(cite[0], []).append(item)
        names_shown: dict[str, int] = {}
        resolved: set[str] = set()
        if add_names:
            for members in clashes.values():
                if len(members) > 1:
                    shown, done = self._add_names(bib, members)
                    names_shown.update(shown)
                    resolved |= done
        suffixes: dict[str, str] = {}
        if add_year:
            # items whose citations look alike but whose name lists differ are told apart
            # by names (add-names, add-givenname); then by the style's disambiguate="true"
            # branches; the rest by a suffix in bibliography order (citeproc-js disYears)
            groups: dict[tuple, list] = {}
            for item in ordered:
                if item.key in cites and item.key not in resolved:
                    groups.setdefault(cites[item.key], []).append(item)
            for members in groups.values():
                if len(members) < 2:
                    continue
                if self.disambiguate_test:
                    extra = [self._cite(bib, item, disambiguate=True) for item in members]
                    texts = [c[0] if c else None for c in extra]
                    if len(set(texts)) == len(texts):
                        continue
                for n, item in enumerate(members):
                    suffixes[item.key] = _suffix(n)
            if self.style.explicit_year_suffix:
                for item in ordered:
                    if item.key in suffixes:
                        item.reference["year_suffix"] = String(suffixes[item.key])
        return suffixes, names_shown

    def _add_names(self, bib, members: list) -> tuple[dict[str, int], set[str]]:
        """citeproc-js disNames: show one more name at a time until a citation is unique.

        Every still-ambiguous item is rendered with ``n`` names; those whose citation then
        differs from the others' keep ``n`` and are resolved; the rest go on to ``n + 1``
        until their name lists run out. Those keep the last count that resolved anything
        (citeproc-js's "betterbase") and are left to the year suffix.
        """
        shown: dict[str, int] = {}
        pending = list(members)
        longest = max(len(names) for names in self._name_lists(members))
        best = None
        n = 2
        while len(pending) > 1 and n <= longest:
            rendered = {item.key: self._cite(bib, item, n) for item in pending}
            texts = [r[0] for r in rendered.values() if r is not None]
            still = []
            for item in pending:
                r = rendered[item.key]
                if r is not None and texts.count(r[0]) == 1:
                    shown[item.key] = best = n
                else:
                    still.append(item)
            pending = still
            n += 1
        resolved = set(shown)
        if best is not None:
            for item in pending:
                shown[item.key] = best
        return shown, resolved

    @staticmethod
    def _name_lists(members: list) -> list[list]:
        lists = []
        for item in members:
            ref = item.reference
            found = [
                v for k, v in ref.items() if isinstance(v, list) and v and hasattr(v[0], "parts")
            ]
            lists.append(max(found, key=len) if found else [])
        return lists

    def _render_item(
        self,
        item,
        suffix: str | None,
        substitute: str | None = None,
        shown: int | None = None,
        positions: set[int] | None = None,
    ):
        state.reset("bib")
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

    def _write(self, text: str) -> str:
        if "\x00" in text:
            left, right = text.split("\x00", 1)
            if self.fmt == "html":
                return (
                    f'<div class="csl-left-margin">{self.finish(left)}</div>'
                    f'<div class="csl-right-inline">{self.finish(right)}</div>'
                )
            return self.finish(left) + " " + self.finish(right)
        return self.finish(text)


def render_bibliography(
    csl_items: list[dict],
    style: str = "apa",
    locale: str = "en-US",
    fmt: str = "html",
    styles_dir: Path | str | None = None,
) -> list[Entry]:
    """Format ``csl_items`` as a bibliography in ``style``; one :class:`Entry` per item.

    Entries come in the style's order. An item the engine cannot render is still listed,
    rendered by a simple fallback, with ``error`` set. Raises :class:`StyleError` for an
    unknown or broken style and ``ValueError`` for an unknown ``fmt``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    code = resolve_locale(locale)
    if code is None:
        log.info("unknown locale %r, using en-US", locale)
        code = "en-US"
    with checkout_style(style, code, styles_dir) as parsed:
        try:
            return _Renderer(parsed, fmt).run(list(csl_items))
        finally:
            state.reset()


def render_citation(
    csl_item: dict,
    style: str = "apa",
    locale: str = "en-US",
    fmt: str = "html",
    styles_dir: Path | str | None = None,
) -> str:
    """The single-item bibliography entry for a "cite as" box."""
    entries = render_bibliography([csl_item], style, locale, fmt, styles_dir)
    return entries[0].text if entries else ""


__all__ = ["Entry", "render_bibliography", "render_citation", "StyleError", "CSL_NS"]
