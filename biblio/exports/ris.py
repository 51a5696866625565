"""RIS export of cached Zotero items, after Zotero's own RIS translator.

Zotero item types map to RIS reference types (``journalArticle`` → ``JOUR``,
``bookSection`` → ``CHAP``, ``thesis`` → ``THES``, ``webpage`` → ``ELEC``, ...), creators
to ``AU``/``A2``/``A3``/``A4`` by role, the title of the container to ``T2``, dates to
``PY`` and ``DA`` (``YYYY/MM/DD``), pages to ``SP``/``EP``, every tag to its own ``KW``
line, a reading list's note as one more ``N1``. RIS is line-based, so line breaks
inside a value become spaces and control characters are dropped. :func:`records`
yields one record per item, so exports stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from biblio import controlchars

TYPES = {
    "artwork": "ART", "audioRecording": "SOUND", "bill": "BILL", "blogPost": "BLOG",
    "book": "BOOK", "bookSection": "CHAP", "case": "CASE", "computerProgram": "COMP",
    "conferencePaper": "CONF", "dictionaryEntry": "DICT", "encyclopediaArticle": "ENCYC",
    "film": "VIDEO", "hearing": "HEAR", "journalArticle": "JOUR", "letter": "PCOMM",
    "magazineArticle": "MGZN", "manuscript": "UNPB", "map": "MAP", "newspaperArticle": "NEWS",
    "patent": "PAT", "podcast": "SOUND", "presentation": "SLIDE", "report": "RPRT",
    "statute": "STAT", "thesis": "THES", "videoRecording": "VIDEO", "webpage": "ELEC",
    "dataset": "DATA", "standard": "STAND", "preprint": "JOUR",
}  # fmt: skip
#: RIS tag ← Zotero fields, first non-empty wins.
FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("TI", ("title",)),
    (
        "T2",
        (
            "publicationTitle",
            "bookTitle",
            "proceedingsTitle",
            "encyclopediaTitle",
            "dictionaryTitle",
            "websiteTitle",
            "blogTitle",
            "programTitle",
        ),
    ),
    ("T3", ("series", "seriesTitle")),
    ("J2", ("journalAbbreviation",)),
    ("VL", ("volume", "codeVolume", "reporterVolume")),
    ("IS", ("issue", "number", "reportNumber", "patentNumber")),
    ("ET", ("edition",)),
    (
        "PB",
        (
            "publisher",
            "university",
            "institution",
            "label",
            "studio",
            "network",
            "distributor",
            "company",
        ),
    ),
    ("CY", ("place",)),
    ("M3", ("thesisType", "reportType", "websiteType", "manuscriptType", "genre", "medium")),
    ("SN", ("ISBN", "ISSN")),
    ("DO", ("DOI",)),
    ("UR", ("url",)),
    ("Y2", ("accessDate",)),
    ("LA", ("language",)),
    ("AB", ("abstractNote",)),
    ("N1", ("extra",)),
)
ROLES = {"editor": "A2", "seriesEditor": "A3", "translator": "A4", "contributor": "A4",
         "bookAuthor": "A2", "reviewedAuthor": "A4"}  # fmt: skip


def _clean(value: Any) -> str:
    return " ".join(controlchars.strip(str(value)).split())


def _line(tag: str, value: Any) -> str:
    return f"{tag}  - {_clean(value)}\r\n"


def record(item: Mapping[str, Any], note: str = "") -> str:
    """One RIS record for a cached item row (``key``, ``item_type``, ``data``, ``meta``);
    a reading list's ``note`` on it is one more ``N1`` line."""
    data, meta = item["data"], item.get("meta") or {}
    item_type = item.get("item_type") or data.get("itemType", "document")
    lines = [_line("TY", TYPES.get(item_type, "GEN"))]
    for c in data.get("creators") or []:
        if c.get("lastName") is not None:
            name = ", ".join(p for p in (c.get("lastName"), c.get("firstName")) if p)
        else:
            name = c.get("name") or ""
        if _clean(name):
            lines.append(_line(ROLES.get(c.get("creatorType", "author"), "AU"), name))
    for tag, sources in FIELDS:
        value = next((data[s] for s in sources if _clean(data.get(s) or "")), None)
        if value is not None:
            lines.append(_line(tag, value))
    parsed = str(meta.get("parsedDate") or "")
    m = re.match(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", parsed)
    if m:
        lines.append(_line("PY", m.group(1)))
        lines.append(_line("DA", "/".join(p for p in m.groups() if p and p != "00")))
    elif _clean(data.get("date") or ""):
        lines.append(_line("DA", data["date"]))
    pages = _clean(data.get("pages") or "")
    if pages:
        parts = re.split(r"\s*[-–—]+\s*", pages, maxsplit=1)
        first, last = parts[0], parts[1] if len(parts) > 1 else ""
        lines.append(_line("SP", first))
        if last:
            lines.append(_line("EP", last))
    for tag in data.get("tags") or []:
        if _clean(tag.get("tag", "")):
            lines.append(_line("KW", tag["tag"]))
    if _clean(note):
        lines.append(_line("N1", note))
    lines.append(_line("ID", item.get("key") or data.get("key") or ""))
    lines.append("ER  - \r\n")
    return "".join(lines)


def records(
    rows: Iterable[Mapping[str, Any]], notes: Mapping[str, str] | None = None
) -> Iterator[str]:
    """RIS records for item rows, one string per item, separated by a blank line;
    ``notes`` (a reading list's, by item key) become ``N1`` lines."""
    notes = notes or {}
    for n, item in enumerate(rows):
        yield ("\r\n" if n else "") + record(item, notes.get(item.get("key") or "", ""))
