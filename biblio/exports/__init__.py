"""Exports of any selection of cached items, shared by the web and the CLI.

:data:`FORMATS` is the one registry of export formats (web, command line and docs
read it): each with its label, file and URL suffixes and media types;
:func:`export` turns item rows (as :func:`biblio.catalog.items.iter_items` yields them) into
the chunks of one format. Data formats (BibTeX, RIS, CSL-JSON, CSV) stream item by item;
XLSX is built whole; formatted bibliographies (HTML, plain text, RTF, DOCX) are
rendered through the render cache (:mod:`biblio.citations.cache`), since order and
disambiguation are set-level, then written out. :func:`filename` makes the meaningful
download names (``biblio-pathways-apa-2026-11-23.docx``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from biblio.catalog.items import group
from biblio.citations import Entry
from biblio.citations import cache as rendercache
from biblio.exports import bibtex, documents, ris, tables
from biblio.exports.documents import Bibliography
from biblio.storage import connect
from biblio.zotero.csljson import to_csl


@dataclass(frozen=True)
class Format:
    name: str  # the format's id: ``biblio export --format``, keys of FORMATS
    label: str  # for people: "Word (DOCX)"
    suffix: str  # of the downloaded file
    url_suffix: str  # of the web export: ``/items.<url_suffix>`` (html: ``/bibliography``)
    media_type: str  # for downloads
    inline_type: str  # shown in the browser (text/plain for .bib/.ris/.txt/.csv)
    binary: bool = False
    formatted: bool = False  # a bibliography in a CSL style

    @property
    def render_fmt(self) -> str:
        """The citation layer's output format behind this document format."""
        return {"text": "text", "rtf": "rtf"}.get(self.name, "html")


_PLAIN = "text/plain; charset=utf-8"
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("bibtex", "BibTeX", "bib", "bib", "application/x-bibtex; charset=utf-8", _PLAIN),
    Format("ris", "RIS", "ris", "ris", "application/x-research-info-systems; charset=utf-8",
           _PLAIN),
    Format("csljson", "CSL-JSON", "json", "csljson",
           "application/vnd.citationstyles.csl+json; charset=utf-8",
           "application/json; charset=utf-8"),
    Format("csv", "CSV", "csv", "csv", "text/csv; charset=utf-8", _PLAIN),
    Format("xlsx", "Excel (XLSX)", "xlsx", "xlsx",
           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", binary=True),
    Format("html", "HTML", "html", "html", "text/html; charset=utf-8",
           "text/html; charset=utf-8", formatted=True),
    Format("text", "Plain text", "txt", "txt", _PLAIN, _PLAIN, formatted=True),
    Format("rtf", "RTF", "rtf", "rtf", "application/rtf", "application/rtf", formatted=True),
    Format("docx", "Word (DOCX)", "docx", "docx",
           "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
           "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
           binary=True, formatted=True),
)}  # fmt: skip
#: URL suffix → format name (``/items.bib`` → ``bibtex``).
BY_SUFFIX = {f.url_suffix: f.name for f in FORMATS.values()}


@dataclass
class Options:
    """How to write a formatted bibliography, and what it is called."""

    style: str = "apa"
    locale: str = "en-US"
    styles_dir: str | Path | None = None
    title: str = "Bibliography"
    intro: str = ""
    description: str = ""
    notes: Mapping[str, str] | None = None  # a reading list's notes by key (None: no list)
    author: str = ""  # the document's author (DOCX); default: the group's name
    removed: Sequence[str] = ()
    order: str = "style"  # or "input": keep the rows' order (reading lists)
    prong_ids: Sequence[str] = ("mlis-access", "pathways", "worker-equity")


def _csljson(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    yield "["
    for n, item in enumerate(rows):
        yield (
            ("," if n else "")
            + "\n"
            + json.dumps(to_csl(item["data"], item["key"]), ensure_ascii=False, indent=1)
        )
    yield "\n]\n"


def bibliography(
    engine: Engine,
    rows: Iterable[Mapping[str, Any]],
    fmt: str,
    options: Options,
    entries: list[Entry] | None = None,
) -> Bibliography:
    """Render ``rows`` in the options' style (cached) as a :class:`Bibliography`; with
    ``entries``, the caller rendered them already (the web, through its budget)."""
    if entries is None:
        entries = rendercache.render(
            engine,
            list(rows),
            options.style,
            options.locale,
            fmt,
            options.styles_dir,
            order=options.order,
        )
    return Bibliography(
        title=options.title,
        entries=entries,
        intro=options.intro,
        notes=dict(options.notes or {}),
        removed=list(options.removed),
        description=options.description,
        author=options.author or _site_name(engine),
    )


def _site_name(engine: Engine) -> str:
    """The group's name, the site's name everywhere (documents name it as their author)."""
    with connect(engine) as conn:
        info = group(conn) or {}
    return str(info.get("name") or "biblio")


def export(
    engine: Engine,
    fmt: str,
    rows: Iterable[Mapping[str, Any]],
    options: Options | None = None,
    entries: list[Entry] | None = None,
) -> Iterator[str | bytes]:
    """The chunks of ``rows`` exported as ``fmt`` (a key of :data:`FORMATS`); a formatted
    format takes ready ``entries`` if given (in ``FORMATS[fmt].render_fmt``).

    Raises ``KeyError`` for an unknown format and
    :class:`~biblio.citations.StyleError` (before any chunk) for a bad style.
    """
    spec = FORMATS[fmt]
    options = options or Options()
    if spec.formatted:
        bib = bibliography(engine, rows, spec.render_fmt, options, entries)
        builders: dict[str, Callable[[Bibliography], str | bytes]] = {
            "html": documents.html_document,
            "text": documents.text_document,
            "rtf": documents.rtf_document,
            "docx": documents.docx_bytes,
        }
        builder = builders[fmt]
        return iter([builder(bib)])
    if fmt == "bibtex":
        return bibtex.entries(rows, options.notes)
    if fmt == "ris":
        return ris.records(rows, options.notes)
    if fmt == "csljson":
        return _csljson(rows)
    if fmt == "csv":
        return tables.csv_chunks(rows, options.prong_ids, options.notes)
    return iter([tables.xlsx_bytes(rows, options.prong_ids, notes=options.notes)])


def slug(text: str, limit: int = 60) -> str:
    """ASCII, lower case, dash-separated: a safe piece of a file name."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")[:limit].strip("-")


def filename(parts: Iterable[Any], fmt: str, today: date | None = None) -> str:
    """``biblio-<parts>-<date>.<suffix>``, e.g. ``biblio-pathways-apa-2026-11-23.docx``."""
    pieces = ["biblio", *(slug(str(p)) for p in parts if p not in (None, ""))]
    pieces.append((today or date.today()).isoformat())
    return "-".join(p for p in pieces if p) + "." + FORMATS[fmt].suffix


__all__ = [
    "BY_SUFFIX",
    "FORMATS",
    "Bibliography",
    "Format",
    "Options",
    "bibliography",
    "export",
    "filename",
    "slug",
]
