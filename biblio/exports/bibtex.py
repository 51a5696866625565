"""BibTeX export of cached Zotero items, after Zotero's own BibTeX translator.

Item types and fields map as Zotero's ``BibTeX.js`` maps them (``journalArticle`` →
``@article`` with ``journal``, ``bookSection`` → ``@incollection`` with ``booktitle``,
``thesis`` → ``@phdthesis``/``@mastersthesis`` with ``school``, ...). Citation keys follow
Zotero's default ``[auth:lower]_[veryshorttitle:lower]_[year]``, ASCII only, made unique
with ``a``/``b`` suffixes. Values stay UTF-8; the characters BibTeX and LaTeX treat
specially (``\\ { } # $ % & _ ~ ^``) are escaped so every field is balanced and literal,
and Zotero's rich-text tags become ``\\emph``/``\\textbf``/``\\textsuperscript``/
``\\textsubscript``. A reading list's note on an item is its ``annote`` field.
:func:`entries` yields one entry per item, so exports stream.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from biblio import controlchars

TYPES = {
    "journalArticle": "article", "magazineArticle": "article", "newspaperArticle": "article",
    "book": "book", "bookSection": "incollection", "encyclopediaArticle": "incollection",
    "dictionaryEntry": "incollection", "conferencePaper": "inproceedings",
    "thesis": "phdthesis", "report": "techreport", "manuscript": "unpublished",
    "patent": "patent", "preprint": "misc", "webpage": "misc", "blogPost": "misc",
}  # fmt: skip
#: BibTeX field ← Zotero fields, first non-empty wins.
FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("title", ("title",)),
    ("journal", ("publicationTitle",)),
    ("booktitle", ("bookTitle", "proceedingsTitle", "encyclopediaTitle", "dictionaryTitle")),
    ("series", ("series",)),
    ("volume", ("volume",)),
    ("number", ("issue", "reportNumber", "number", "patentNumber")),
    ("pages", ("pages",)),
    ("edition", ("edition",)),
    ("publisher", ("publisher", "label", "distributor", "network", "studio", "company")),
    ("address", ("place",)),
    ("type", ("thesisType", "reportType", "websiteType", "manuscriptType", "genre")),
    ("isbn", ("ISBN",)),
    ("issn", ("ISSN",)),
    ("doi", ("DOI",)),
    ("url", ("url",)),
    ("urldate", ("accessDate",)),
    ("language", ("language",)),
    ("abstract", ("abstractNote",)),
    ("note", ("extra",)),
)
#: Fields whose "publisher" is really an institution, as Zotero writes them.
INSTITUTION = {"thesis": "school", "report": "institution"}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "#": r"\#", "$": r"\$",
            "%": r"\%", "&": r"\&", "_": r"\_", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}"}  # fmt: skip
_RICH = re.compile(r"<(/?)(i|em|b|strong|sup|sub)>", re.I)
_RICH_CMD = {"i": r"\emph{", "em": r"\emph{", "b": r"\textbf{", "strong": r"\textbf{",
             "sup": r"\textsuperscript{", "sub": r"\textsubscript{"}  # fmt: skip
_STOP = {
    "a",
    "an",
    "the",
    "some",
    "from",
    "on",
    "in",
    "to",
    "of",
    "do",
    "with",
    "der",
    "die",
    "das",
    "ein",
    "eine",
    "einer",
    "eines",
    "einem",
    "einen",
    "un",
    "une",
    "la",
    "le",
    "l",
    "el",
    "las",
    "los",
    "al",
    "uno",
    "una",
    "unos",
    "unas",
    "de",
    "des",
    "del",
    "d",
}


def escape(text: str) -> str:
    """A literal BibTeX value: specials escaped, rich-text tags as LaTeX commands."""
    out: list[str] = []
    depth = 0
    pos = 0
    text = controlchars.strip(text)
    for m in _RICH.finditer(text):
        out.append(_escape_plain(text[pos : m.start()]))
        if m.group(1) and depth:
            out.append("}")
            depth -= 1
        elif not m.group(1):
            out.append(_RICH_CMD[m.group(2).lower()])
            depth += 1
        pos = m.end()
    out.append(_escape_plain(text[pos:]))
    out.append("}" * depth)
    return "".join(out)


def _escape_plain(text: str) -> str:
    return "".join(_SPECIAL.get(ch, ch) for ch in text)


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def _year(data: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    parsed = str(meta.get("parsedDate") or "")
    if re.match(r"^\d{4}", parsed):
        return parsed[:4]
    m = re.search(r"\b(\d{4})\b", str(data.get("date") or ""))
    return m.group(1) if m else ""


def cite_key(data: Mapping[str, Any], meta: Mapping[str, Any]) -> str:
    """Zotero's default key, e.g. ``kendrick_low_2017``."""
    creators = data.get("creators") or []
    author = ""
    if creators:
        author = _ascii_word(str(creators[0].get("lastName") or creators[0].get("name") or ""))
    words = [
        w
        for w in re.split(r"[\s\-–—:.,;!?/()\[\]\"']+", _RICH.sub("", str(data.get("title") or "")))
        if w
    ]
    title = next((_ascii_word(w) for w in words if w.lower() not in _STOP and _ascii_word(w)), "")
    return "_".join(p for p in (author, title, _year(data, meta)) if p) or "item"


def _names(creators: Iterable[Mapping[str, Any]], kinds: set[str]) -> str:
    names = []
    for c in creators:
        if c.get("creatorType", "author") not in kinds:
            continue
        if c.get("lastName") is not None and c.get("firstName") is not None:
            last, first = escape(str(c["lastName"])), escape(str(c["firstName"]))
            names.append(f"{last}, {first}" if first else last)
        else:  # single-field names (organisations) are braced so BibTeX keeps them whole
            names.append("{" + escape(str(c.get("name") or c.get("lastName") or "")) + "}")
    return " and ".join(n for n in names if n and n != "{}")


def entry(item: Mapping[str, Any], key: str, note: str = "") -> str:
    """One BibTeX entry for a cached item row (``item_type``, ``data``, ``meta``); a
    reading list's ``note`` on it becomes ``annote``."""
    data, meta = item["data"], item.get("meta") or {}
    item_type = item.get("item_type") or data.get("itemType", "document")
    kind = TYPES.get(item_type, "misc")
    if item_type == "thesis" and "master" in str(data.get("thesisType") or "").lower():
        kind = "mastersthesis"
    fields: list[tuple[str, str]] = []
    creators = data.get("creators") or []
    primary = {
        "author",
        "artist",
        "programmer",
        "presenter",
        "director",
        "interviewee",
        "inventor",
        "podcaster",
        "cartographer",
        "composer",
        "sponsor",
        "performer",
    }
    for name, kinds in (
        ("author", primary),
        ("editor", {"editor", "seriesEditor"}),
        ("translator", {"translator"}),
    ):
        value = _names(creators, kinds)
        if value:
            fields.append((name, value))
    for name, sources in FIELDS:
        value = next((str(data[s]) for s in sources if str(data.get(s) or "").strip()), "")
        if not value.strip():
            continue
        if name == "publisher" and item_type in INSTITUTION:
            name = INSTITUTION[item_type]
        if name == "journal" and kind != "article":
            name = "booktitle" if kind in ("incollection", "inproceedings") else "journal"
            if any(n == name for n, _ in fields):
                continue
        if name == "pages":
            value = re.sub(r"\s*[-–—]+\s*", "--", value)
        fields.append((name, escape(controlchars.strip(value).strip())))
    year = _year(data, meta)
    if year:
        fields.append(("year", year))
    month = re.match(r"^\d{4}-(\d{2})", str(meta.get("parsedDate") or ""))
    if month and 1 <= int(month.group(1)) <= 12:
        fields.append(("month", MONTHS[int(month.group(1)) - 1]))
    tags = [str(t.get("tag", "")) for t in data.get("tags") or [] if t.get("tag")]
    if tags:
        fields.append(("keywords", escape(", ".join(tags))))
    if note.strip():
        fields.append(("annote", escape(note.strip())))
    body = ",\n".join(f"\t{name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def entries(
    rows: Iterable[Mapping[str, Any]], notes: Mapping[str, str] | None = None
) -> Iterator[str]:
    """BibTeX entries for item rows, with unique citation keys, one string per item;
    ``notes`` (a reading list's, by item key) become ``annote`` fields."""
    notes = notes or {}
    seen: set[str] = set()
    for n, item in enumerate(rows):
        base = cite_key(item["data"], item.get("meta") or {})
        key, i = base, 0
        while key in seen:
            i += 1
            key = base + _suffix(i)
        seen.add(key)
        yield ("\n" if n else "") + entry(item, key, notes.get(item["key"], ""))


def _suffix(n: int) -> str:
    letters = ""
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(97 + r) + letters
    return letters
