"""The rendered-citation cache: get-or-render bibliography entries, and pre-rendering.

Rendering costs about 10 ms per item with citeproc-py, so each entry is kept in
``rendered_citations`` per (item key, style, locale, format) together with the item
version it was rendered from and a *context*. Bibliography order and disambiguation are
set-level, but their effects are confined to items that share their first names (year
suffixes "2020a/2020b" and ``subsequent-author-substitute`` only ever relate items with
identical names, or identical titles when there are none). So items are grouped by that
*group key*; a singleton's context is just the style file's stamp, a group member's
context also names every member (key and version). An entry is reused only when its
version and context still match; otherwise the stale items, always whole groups, are
rendered together in one :func:`biblio.citations.render_bibliography` call, which gives
them exactly the text they have in the full set. The order is then rebuilt from the
cached sort keys and the style's sort directions. Styles that print citation numbers
are rendered whole every time (their text depends on position). After each sync a
background thread pre-renders the default style (:func:`install` hooks it in).
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
from biblio import events
from biblio import storage as st
from biblio.catalog.items import iter_items
from biblio.citations import Entry, StyleError, render_bibliography
from biblio.citations.styles import resolve_locale, style_path
from biblio.settings import Settings
from biblio.zotero.csljson import to_csl

log = logging.getLogger(__name__)

FORMATS = ("html", "text", "rtf")
CSL_NS = "{http://purl.org/net/xbiblio/csl}"
#: The name variables citeproc-py's set-level rules compare, in the order they look.
NAME_VARS = ("author", "editor", "translator", "director", "composer")
_CHUNK = 500
BATCH = 100


@dataclass(frozen=True)
class StyleMeta:
    """What the cache needs to know about a style file."""

    stamp: str  # changes when the .csl file changes
    directions: tuple[bool, ...] | None  # per sort key: descending?; None = no sort
    numbered: bool  # prints citation numbers: position-dependent, never cached


@dataclass
class RenderStats:
    cached: int = 0
    rendered: int = 0


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
    numbered = any(el.get("variable") == "citation-number" for el in root.iter())
    stamp = hashlib.sha1(
        f"{path}\0{mtime}\0{renderer_stamp()}".encode(), usedforsecurity=False
    ).hexdigest()[:16]
    return StyleMeta(stamp, directions, numbered)


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
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    stats = stats if stats is not None else RenderStats()
    meta = style_meta(style, styles_dir)
    code = resolve_locale(locale) or "en-US"
    items = {str(r["key"]): r for r in rows}
    keys = list(items)
    if meta.numbered:
        entries = render_bibliography(
            [to_csl(items[k]["data"], k) for k in keys], style, code, fmt, styles_dir
        )
        stats.rendered += len(entries)
        return entries if order == "style" else _input_order(entries, keys)

    cached = _load(engine, keys, style, code, fmt)
    csl: dict[str, dict[str, Any]] = {}
    groups_of: dict[str, str] = {}
    for key in keys:
        hit = cached.get(key)
        if hit is not None and hit["item_version"] == items[key]["version"]:
            groups_of[key] = hit["group_key"]
        else:
            csl[key] = to_csl(items[key]["data"], key)
            groups_of[key] = group_key(csl[key])
    members: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        members[groups_of[key]].append(key)
    context: dict[str, str] = {}
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
    stale = [k for k in keys if groups_of[k] in stale_groups]
    fresh: dict[str, Entry] = {}
    if stale:
        for key in stale:
            if key not in csl:
                csl[key] = to_csl(items[key]["data"], key)
        for batch in _batches(stale, groups_of):
            for entry in render_bibliography([csl[k] for k in batch], style, code, fmt, styles_dir):
                fresh[entry.id] = entry
        _store(
            engine,
            [
                {
                    "item_key": k,
                    "item_version": items[k]["version"],
                    "text": fresh[k].text,
                    "sort_key": fresh[k].sort_key,
                    "context": context[k],
                    "group_key": groups_of[k],
                    "error": fresh[k].error,
                }
                for k in stale
                if k in fresh
            ],
            style,
            code,
            fmt,
        )
    stats.rendered += len(fresh)
    stats.cached += len(keys) - len(fresh)

    entries = []
    for key in keys:
        if key in fresh:
            entries.append(fresh[key])
        else:
            hit = cached[key]
            entries.append(Entry(key, hit["text"], hit["sort_key"] or "", hit["error"]))
    return order_entries(entries, meta) if order == "style" else entries


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
    of use (styles that number their entries are never cached, so they count 0)."""
    rc = st.rendered_citations.c
    stmt = select(rc.style, func.count()).where(rc.fmt == "html").group_by(rc.style)
    with st.connect(engine) as conn:
        return {str(style): int(n) for style, n in conn.execute(stmt)}


# -- pre-rendering after a sync -------------------------------------------------------


def prerender(engine: Engine, settings: Settings, formats: tuple[str, ...] = ("html",)) -> int:
    """Render the default style for every live item now; returns how many were rendered."""
    cit = settings["citations"]
    rows = list(iter_items(engine))
    stats = RenderStats()
    for fmt in formats:
        render(
            engine, rows, cit["default_style"], cit["locale"], fmt, cit["styles_dir"], stats=stats
        )
    log.info(
        "pre-rendered %d citations in %s (%d already cached)",
        stats.rendered,
        cit["default_style"],
        stats.cached,
    )
    return stats.rendered


_lock = threading.Lock()
_threads: dict[str, threading.Thread] = {}
_again: set[str] = set()


def _worker(url: str, engine: Engine, settings: Settings) -> None:
    while True:
        try:
            prerender(engine, settings)
        except Exception:  # a background task must never take the process down
            log.exception("pre-rendering citations failed")
        with _lock:
            if url not in _again:
                _threads.pop(url, None)
                return
            _again.discard(url)


def prerender_in_background(engine: Engine, settings: Settings) -> threading.Thread:
    """Start (or queue one more round of) pre-rendering for this database."""
    url = str(engine.url)
    with _lock:
        running = _threads.get(url)
        if running is not None and running.is_alive():
            _again.add(url)
            return running
        thread = threading.Thread(
            target=_worker, args=(url, engine, settings), name="biblio-prerender", daemon=True
        )
        _threads[url] = thread
        thread.start()
        return thread


def wait_for_prerender(timeout: float | None = None) -> bool:
    """Wait for every pre-rendering thread; True if none is left running."""
    while True:
        with _lock:
            threads = [t for t in _threads.values() if t.is_alive()]
        if not threads:
            return True
        threads[0].join(timeout)
        if threads[0].is_alive():
            return False


def on_sync_committed(settings: Settings, *, engine: Engine, changed: set[str]) -> None:
    """Pre-render when something changed; a receiver of :data:`biblio.events.sync_committed`."""
    if settings["sync"]["prerender"] and changed:
        prerender_in_background(engine, settings)


def subscribe() -> None:
    """Pre-render after every sync that changed items, if ``[sync] prerender`` (idempotent)."""
    events.sync_committed.connect(on_sync_committed)
