"""The rendered-citation cache: get-or-render bibliography entries, per item.

Rendering costs milliseconds per item with citeproc-py, so each entry is kept in
``rendered_citations`` per (item key, style, locale, format) together with the item
version it was rendered from and a *context*. Bibliography order and disambiguation are
set-level, but their effects are confined to items that share their first names (year
suffixes "2020a/2020b" and ``subsequent-author-substitute`` only ever relate items with
identical names, or identical titles when there are none). So items are grouped by that
*group key*; a singleton's context is just the style file's stamp, a group member's
context also names every member (key and version). An entry is reused only when its
version and context still match; otherwise the stale items, always whole groups, are
rendered together, which gives them exactly the text they have in the full set. The
order is then rebuilt from the cached sort keys and the style's sort directions.

Numbered styles (IEEE, Vancouver, Nature...) print each entry's position, so their
entries are rendered with a placeholder for the number and numbered when the set is
assembled (:func:`assemble`); only styles that sort by the citation number itself or
print it in another form than digits are rendered whole every time.

The phases are public for the callers that schedule the work: :func:`assess` (what is
missing, without rendering), :func:`render_stale` (render and store it, progressively
or across a process pool) and :func:`assemble`; :func:`render` does all three.
:mod:`.prerender` fills the cache after each sync, :mod:`.flight` shares and budgets
the renders requests ask for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

import biblio.citations
import biblio.zotero.csljson
from biblio import storage as st
from biblio.citations import Entry, StyleError, render_bibliography
from biblio.citations.pipeline import NUMBER_PLACEHOLDER
from biblio.citations.pool import render_parallel
from biblio.citations.styles import resolve_locale, style_path
from biblio.zotero.csljson import to_csl

log = logging.getLogger(__name__)

FORMATS = ("html", "text", "rtf")
CSL_NS = "{http://purl.org/net/xbiblio/csl}"
#: The name variables citeproc-py's set-level rules compare, in the order they look.
NAME_VARS = ("author", "editor", "translator", "director", "composer")
_CHUNK = 500
BATCH = 100
#: Rendered entries stored per transaction while a big set renders in this process.
STORE_EVERY = 500
#: Stale entries above which :func:`render_stale` uses a process pool (when allowed).
POOL_THRESHOLD = 400
PLACEHOLDER = str(NUMBER_PLACEHOLDER)
#: Forms of ``citation-number`` that print the number as digits (others: rendered whole).
_DIGIT_FORMS = (None, "numeric")


@dataclass(frozen=True)
class StyleMeta:
    """What the cache needs to know about a style file."""

    stamp: str  # changes when the .csl file changes
    directions: tuple[bool, ...] | None  # per sort key: descending?; None = no sort
    numbered: bool  # entries print their position: cached with a placeholder
    cacheable: bool = True  # False: rendered whole every time


@dataclass
class RenderStats:
    cached: int = 0
    rendered: int = 0


#: Entries rendered and served from the cache by this process, all callers together.
TOTALS = RenderStats()
_totals_lock = threading.Lock()


def _parse_meta(path: str, mtime: float) -> StyleMeta:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        root = etree.parse(path, parser).getroot()  # noqa: S320 (entities off, no network)
    except (OSError, etree.XMLSyntaxError) as exc:
        raise StyleError(f"style {os.path.basename(path)!r} cannot be parsed: {exc}") from None
    bib = root.find(f"{CSL_NS}bibliography")
    sort = bib.find(f"{CSL_NS}sort") if bib is not None else None
    directions = None
    if sort is not None:
        directions = tuple(
            k.get("sort", "ascending") == "descending" for k in sort.findall(f"{CSL_NS}key")
        )
    # anywhere in the style: a bibliography may print the number through a macro
    numbers = [el for el in root.iter() if el.get("variable") == "citation-number"]
    sorts_by_number = sort is not None and any(
        k.get("variable") == "citation-number" for k in sort.findall(f"{CSL_NS}key")
    )
    cacheable = not sorts_by_number and all(el.get("form") in _DIGIT_FORMS for el in numbers)
    stamp = hashlib.sha1(
        f"{path}\0{mtime}\0{renderer_stamp()}".encode(), usedforsecurity=False
    ).hexdigest()[:16]
    return StyleMeta(stamp, directions, bool(numbers), cacheable)


@lru_cache(maxsize=1)
def renderer_stamp() -> str:
    """A digest of the code that renders: biblio's citation layer and citeproc-py.

    Part of every entry's context, so an upgrade that changes output (a fidelity fix,
    a new citeproc-py) re-renders cached entries instead of serving stale ones.
    """
    digest = hashlib.sha1(usedforsecurity=False)
    sources = sorted(Path(biblio.citations.__file__).parent.glob("*.py"))
    for source in [*sources, Path(biblio.zotero.csljson.__file__)]:
        digest.update(source.read_bytes())
    digest.update(version("citeproc-py").encode())
    return digest.hexdigest()[:16]


_meta_cache = lru_cache(maxsize=64)(_parse_meta)


def style_meta(style: str, styles_dir: str | Path | None = None) -> StyleMeta:
    """The :class:`StyleMeta` of a style name; :class:`StyleError` if unknown or broken."""
    path = style_path(style, styles_dir)
    try:
        mtime = os.path.getmtime(path)
    except OSError:
        raise StyleError(f"unknown style {style!r}") from None
    return _meta_cache(path, mtime)


def group_key(csl: Mapping[str, Any]) -> str:
    """Items with equal keys may influence each other's text in a bibliography."""
    for var in NAME_VARS:
        names = csl.get(var)
        if names:
            return "n:" + json.dumps(
                [sorted(n.items()) if isinstance(n, dict) else str(n) for n in names],
                ensure_ascii=False,
                sort_keys=True,
            )
    title = csl.get("title-short") or csl.get("title") or ""
    return "t:" + " ".join(str(title).casefold().split())


def _digest(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode(), usedforsecurity=False).hexdigest()


def _field_key(value: str, descending: bool) -> tuple:
    # Entry.sort_key holds the primary collation value of each cs:key, "\x1f"-separated;
    # numbers compare as numbers, text as text, and an empty value sorts last either way.
    if value.lstrip("-").isdigit():
        return (0, -int(value)) if descending else (0, int(value))
    if descending:
        return (1, tuple(-ord(c) for c in value) + (1,))
    return (1, value)


def order_entries(entries: list[Entry], meta: StyleMeta) -> list[Entry]:
    """Entries in the style's bibliography order (input order for unsorted styles)."""
    if meta.directions is None:
        return list(entries)
    order = list(entries)
    for i in range(len(meta.directions) - 1, -1, -1):
        desc = meta.directions[i]

        def field(e: Entry, i: int = i) -> str:
            parts = (e.sort_key or "").split("\x1f")
            return parts[i] if i < len(parts) else ""

        present = [e for e in order if field(e)]
        missing = [e for e in order if not field(e)]
        present.sort(key=lambda e, desc=desc: _field_key(field(e), desc))  # type: ignore[misc]
        order = present + missing
    return order


def _load(
    engine: Engine, keys: list[str], style: str, locale: str, fmt: str
) -> dict[str, dict[str, Any]]:
    rc = st.rendered_citations.c
    found: dict[str, dict[str, Any]] = {}
    with st.connect(engine) as conn:
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            rows = conn.execute(
                select(
                    rc.item_key,
                    rc.item_version,
                    rc.text,
                    rc.sort_key,
                    rc.context,
                    rc.group_key,
                    rc.error,
                ).where(
                    rc.item_key.in_(chunk), rc.style == style, rc.locale == locale, rc.fmt == fmt
                )
            ).mappings()
            for row in rows:
                found[row["item_key"]] = dict(row)
    return found


def _store(engine: Engine, rows: list[dict[str, Any]], style: str, locale: str, fmt: str) -> None:
    """Best effort: a cache write never fails an export (e.g. an item deleted meanwhile)."""
    if not rows:
        return
    rc = st.rendered_citations.c
    try:
        with st.transaction(engine) as conn:
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                conn.execute(
                    delete(st.rendered_citations).where(
                        and_(
                            rc.item_key.in_([r["item_key"] for r in chunk]),
                            rc.style == style,
                            rc.locale == locale,
                            rc.fmt == fmt,
                        )
                    )
                )
                conn.execute(
                    insert(st.rendered_citations),
                    [{**r, "style": style, "locale": locale, "fmt": fmt} for r in chunk],
                )
    except SQLAlchemyError as exc:
        log.info("render cache not written (%s)", type(exc).__name__)


@dataclass
class Assessment:
    """What a set of item rows needs from the cache in one style, locale and format:
    which entries are cached and current, and which (``stale``, whole groups) are not."""

    style: str
    locale: str
    fmt: str
    meta: StyleMeta
    keys: list[str]
    items: dict[str, Mapping[str, Any]]
    cached: dict[str, dict[str, Any]]
    groups_of: dict[str, str]
    context: dict[str, str]
    stale: list[str]
    csl: dict[str, dict[str, Any]]
    grouped: bool = True  # groups_of, context and stale are worked out

    @property
    def whole(self) -> bool:
        """Rendered whole every time, never cached (see :attr:`StyleMeta.cacheable`)."""
        return not self.meta.cacheable

    @property
    def missing(self) -> int:
        """Entries that must be rendered before the set can be shown."""
        return len(self.keys) if self.whole else len(self.stale)

    def csl_of(self, key: str) -> dict[str, Any]:
        if key not in self.csl:
            self.csl[key] = to_csl(self.items[key]["data"], key)
        return self.csl[key]


def assess(
    engine: Engine,
    rows: Iterable[Mapping[str, Any]],
    style: str = "apa",
    locale: str = "en-US",
    fmt: str = "html",
    styles_dir: str | Path | None = None,
) -> Assessment:
    """Look ``rows`` (``key``, ``version`` and, if at hand, ``data``) up in the cache
    without rendering; the data of rows without it is read when it is needed.

    Raises :class:`~biblio.citations.StyleError` for an unknown or broken style and
    ``ValueError`` for an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    meta = style_meta(style, styles_dir)
    code = resolve_locale(locale) or "en-US"
    items = {str(r["key"]): r for r in rows}
    keys = list(items)
    found = Assessment(style, code, fmt, meta, keys, items, {}, {}, {}, [], {})
    if found.whole:
        _with_data(engine, items, keys)
        return found
    found.cached = _load(engine, keys, style, code, fmt)
    if found.cached:
        _group(engine, found)
    else:  # nothing cached: everything is missing, and grouping waits for the render
        found.stale = list(keys)
        found.grouped = False
    return found


def _with_data(engine: Engine, items: dict[str, Mapping[str, Any]], keys: list[str]) -> None:
    """Read the data of the ``keys`` among ``items`` that came without it (rows of
    :func:`biblio.catalog.items.item_versions`)."""
    wanted = [k for k in keys if "data" not in items[k]]
    i = st.items.c
    with st.connect(engine) as conn:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for key, data in conn.execute(select(i.key, i.data).where(i.key.in_(chunk))):
                items[key] = {**items[key], "data": data}
    for key in wanted:  # deleted meanwhile: rendered by the fallback, never stored
        if "data" not in items[key]:
            items[key] = {**items[key], "data": {}}


def _group(engine: Engine, found: Assessment) -> None:
    """Group keys and contexts of ``found``, and its stale entries (whole groups)."""
    items, keys, cached, meta = found.items, found.keys, found.cached, found.meta
    misses = [
        k for k in keys if k not in cached or cached[k]["item_version"] != items[k]["version"]
    ]
    _with_data(engine, items, misses)
    missed = set(misses)
    groups_of = found.groups_of
    for key in keys:
        if key in missed:
            groups_of[key] = group_key(found.csl_of(key))
        else:
            groups_of[key] = cached[key]["group_key"]
    members: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        members[groups_of[key]].append(key)
    context = found.context
    for group in members.values():
        if len(group) == 1:
            context[group[0]] = meta.stamp
        else:
            sig = _digest(meta.stamp, *sorted(f"{k}:{items[k]['version']}" for k in group))
            for key in group:
                context[key] = sig
    stale_groups = {
        groups_of[k]
        for k in keys
        if k not in cached
        or cached[k]["item_version"] != items[k]["version"]
        or cached[k]["context"] != context[k]
    }
    found.stale = [k for k in keys if groups_of[k] in stale_groups]
    found.grouped = True
    _with_data(engine, items, found.stale)


def identity(found: Assessment) -> str:
    """One name for the work of rendering this set: equal for identical requests."""
    return _digest(
        found.style,
        found.locale,
        found.fmt,
        found.meta.stamp,
        *sorted(f"{k}:{found.items[k]['version']}" for k in found.keys),
    )


def render_stale(
    engine: Engine,
    found: Assessment,
    styles_dir: str | Path | None = None,
    *,
    workers: int = 1,
    nice: int = 0,
    stats: RenderStats | None = None,
) -> dict[str, Entry]:
    """Render and store the stale entries of ``found``; returns them by key.

    In this process, whole groups in batches stored as they come (so others see the
    progress), or, with ``workers`` > 1 and more than a few batches, all at once across
    a process pool (:func:`~biblio.citations.pool.render_parallel`) and stored at the end.
    """
    stats = stats if stats is not None else RenderStats()
    fresh: dict[str, Entry] = {}
    if found.whole or not found.stale:
        return fresh
    if not found.grouped:
        _group(engine, found)
    placeholder = found.meta.numbered
    if workers > 1 and len(found.stale) > POOL_THRESHOLD:
        rendered = render_parallel(
            [found.csl_of(k) for k in found.stale],
            found.style,
            found.locale,
            found.fmt,
            styles_dir,
            workers=workers,
            nice=nice,
            placeholder_numbers=placeholder,
        )
        fresh.update((e.id, e) for e in rendered)
        _store_fresh(engine, found, found.stale, fresh)
    else:
        pending: list[str] = []
        for batch in _batches(found.stale, found.groups_of):
            for entry in render_bibliography(
                [found.csl_of(k) for k in batch],
                found.style,
                found.locale,
                found.fmt,
                styles_dir,
                placeholder_numbers=placeholder,
            ):
                fresh[entry.id] = entry
            pending += batch
            if len(pending) >= STORE_EVERY:
                _store_fresh(engine, found, pending, fresh)
                pending = []
        _store_fresh(engine, found, pending, fresh)
    _count(stats, rendered=len(fresh))
    return fresh


def _store_fresh(
    engine: Engine, found: Assessment, keys: list[str], fresh: Mapping[str, Entry]
) -> None:
    _store(
        engine,
        [
            {
                "item_key": k,
                "item_version": found.items[k]["version"],
                "text": fresh[k].text,
                "sort_key": fresh[k].sort_key,
                "context": found.context[k],
                "group_key": found.groups_of[k],
                "error": fresh[k].error,
            }
            for k in keys
            if k in fresh
        ],
        found.style,
        found.locale,
        found.fmt,
    )


def assemble(found: Assessment, fresh: Mapping[str, Entry], order: str = "style") -> list[Entry]:
    """The entries of ``found`` from the cache and ``fresh``, in the style's order (or the
    rows' with ``order="input"``), numbered by position in numbered styles."""
    entries = []
    for key in found.keys:
        if key in fresh:
            entries.append(fresh[key])
        else:
            hit = found.cached[key]
            entries.append(Entry(key, hit["text"], hit["sort_key"] or "", hit["error"]))
    ordered = order_entries(entries, found.meta)
    if found.meta.numbered:
        ordered = [
            Entry(e.id, e.text.replace(PLACEHOLDER, str(n)), e.sort_key, e.error)
            for n, e in enumerate(ordered, 1)
        ]
    return ordered if order == "style" else _input_order(ordered, found.keys)


def render(
    engine: Engine,
    rows: Iterable[Mapping[str, Any]],
    style: str = "apa",
    locale: str = "en-US",
    fmt: str = "html",
    styles_dir: str | Path | None = None,
    *,
    order: str = "style",
    stats: RenderStats | None = None,
) -> list[Entry]:
    """The bibliography of item ``rows`` (``key``, ``version``, ``data``), cached per item.

    Returns one :class:`~biblio.citations.Entry` per row (``id`` is the item key) in the
    style's order, or in the rows' order when ``order="input"`` (reading lists). Raises
    :class:`~biblio.citations.StyleError` for an unknown or broken style.
    """
    stats = stats if stats is not None else RenderStats()
    found = assess(engine, rows, style, locale, fmt, styles_dir)
    if found.whole:
        entries = render_bibliography(
            [found.csl_of(k) for k in found.keys], style, found.locale, fmt, styles_dir
        )
        _count(stats, rendered=len(entries))
        return entries if order == "style" else _input_order(entries, found.keys)
    fresh = render_stale(engine, found, styles_dir, stats=stats)
    _count(stats, cached=len(found.keys) - len(fresh))
    return assemble(found, fresh, order)


def _count(stats: RenderStats, rendered: int = 0, cached: int = 0) -> None:
    stats.rendered += rendered
    stats.cached += cached
    with _totals_lock:
        TOTALS.rendered += rendered
        TOTALS.cached += cached


def _batches(keys: list[str], groups_of: dict[str, str]) -> Iterator[list[str]]:
    """Whole groups in batches of about ``BATCH`` items: groups render independently, and
    the parsed style (one thread at a time) is free again between batches."""
    by_group: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        by_group[groups_of[key]].append(key)
    batch: list[str] = []
    for members in by_group.values():
        batch.extend(members)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _input_order(entries: list[Entry], keys: list[str]) -> list[Entry]:
    by_id = {e.id: e for e in entries}
    return [by_id[k] for k in keys if k in by_id]


def clear(engine: Engine, style: str | None = None) -> int:
    """Drop cached entries (of one style, or all); returns how many."""
    stmt = delete(st.rendered_citations)
    if style is not None:
        stmt = stmt.where(st.rendered_citations.c.style == style)
    with st.transaction(engine) as conn:
        return conn.execute(stmt).rowcount or 0


def style_use(engine: Engine) -> dict[str, int]:
    """How many items the group has had formatted in each style: the cache is the record
    of use (numbered styles included: their entries are kept without the number)."""
    rc = st.rendered_citations.c
    stmt = select(rc.style, func.count()).where(rc.fmt == "html").group_by(rc.style)
    with st.connect(engine) as conn:
        return {str(style): int(n) for style, n in conn.execute(stmt)}
