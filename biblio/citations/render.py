"""Render bibliographies and single references with citeproc-py plus biblio's set-level rules.

The pipeline (:mod:`.pipeline`) per request: normalise each CSL-JSON item under an internal
key (so ids that differ only in case stay apart), sort as citeproc-js does, disambiguate the
citations of items that cite alike (add-names, the ``disambiguate`` test, year suffixes in
sort order, as citeproc-js's disambiguator), render each entry on its own (one failure
yields a flagged fallback entry, never a broken list), apply
``subsequent-author-substitute`` by its rule, then write HTML (escaped), plain text or RTF.
Here every phase runs in this thread; :mod:`.pool` runs the per-item phases in processes.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine import CSL_NS, state
from .markup import finish
from .pipeline import Result, renderer_for, run
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


def entries(csl_items: list[Any], result: Result, fmt: str) -> list[Entry]:
    """The :class:`Entry` list of a pipeline result: rendered entries in order, then the
    items that could not be read (each by the fallback, with its error)."""
    unread = [i for i in range(len(csl_items)) if i in result.errors and i not in result.order]
    out = []
    for index in result.order + unread:
        item = csl_items[index]
        ident = str(item.get("id", "")) if isinstance(item, dict) else ""
        if index in result.texts:
            out.append(Entry(ident, result.texts[index], result.sort_keys.get(index, "")))
        else:
            error = result.errors.get(index, "not rendered")
            out.append(Entry(ident, _fallback(item, fmt), result.sort_keys.get(index, "~"), error))
    return out


def render_bibliography(
    csl_items: list[dict],
    style: str = "apa",
    locale: str = "en-US",
    fmt: str = "html",
    styles_dir: Path | str | None = None,
    *,
    placeholder_numbers: bool = False,
) -> list[Entry]:
    """Format ``csl_items`` as a bibliography in ``style``; one :class:`Entry` per item.

    Entries come in the style's order. An item the engine cannot render is still listed,
    rendered by a simple fallback, with ``error`` set. Raises :class:`StyleError` for an
    unknown or broken style and ``ValueError`` for an unknown ``fmt``. With
    ``placeholder_numbers`` citation numbers print as
    :data:`~.pipeline.NUMBER_PLACEHOLDER`, for the caller to number the entries.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    code = resolve_locale(locale)
    if code is None:
        log.info("unknown locale %r, using en-US", locale)
        code = "en-US"
    items = list(csl_items)
    with checkout_style(style, code, styles_dir) as parsed:
        renderer = renderer_for(parsed, fmt)
        renderer.items = {}  # normalise each item once for all phases
        try:
            result = run(
                renderer,
                items,
                renderer.prepare,
                renderer.render,
                placeholder_numbers=placeholder_numbers,
            )
        finally:
            renderer.items = None
            state.reset()
    return entries(items, result, fmt)


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
