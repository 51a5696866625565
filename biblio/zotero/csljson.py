"""Zotero item ``data`` dicts to CSL-JSON, following Zotero's own mapping.

The mapping tables (item types, text fields, base fields, creator types, date fields) come
from the ``csl`` section of the Zotero schema shipped in ``biblio/data/zotero-schema.json``,
loaded lazily once. The conversion mirrors ``Zotero.Utilities.Item.itemToCSLJSON``: the first
non-empty Zotero field (or its type-specific variant of a base field) wins for each CSL
variable, the primary creator type becomes ``author``, dates become ``date-parts`` (with
seasons, ranges, and Zotero's SQL-ish ``"2019-00-00 2019"`` form) and ``Key: value`` lines in
``extra`` set CSL variables that the item does not already have (``type`` always wins).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from biblio.zotero.schema import schema as zotero_schema

__all__ = ["to_csl", "parse_date", "schema_item_types"]

SEASONS = {"spring": 1, "summer": 2, "autumn": 3, "fall": 3, "winter": 4}
MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}

# CSL variables (1.0.2) that may be set from "Key: value" lines in Extra, beyond the ones in
# the schema's own field mapping; Zotero and citeproc-js honour all of these.
CSL_NAME_VARS = {
    "author", "chair", "collection-editor", "compiler", "composer", "container-author",
    "contributor", "curator", "director", "editor", "editor-translator", "editorial-director",
    "executive-producer", "guest", "host", "illustrator", "interviewer", "narrator",
    "organizer", "original-author", "performer", "producer", "recipient", "reviewed-author",
    "script-writer", "series-creator", "translator",
}  # fmt: skip
CSL_DATE_VARS = {"accessed", "available-date", "event-date", "issued", "original-date",
                 "submitted"}  # fmt: skip
CSL_TEXT_VARS = {
    "abstract", "annote", "archive", "archive_collection", "archive_location", "archive-place",
    "authority", "call-number", "chapter-number", "citation-key", "citation-label",
    "collection-number", "collection-title", "container-title", "container-title-short",
    "dimensions", "division", "DOI", "edition", "event", "event-place", "event-title", "genre",
    "ISBN", "ISSN", "issue", "jurisdiction", "language", "license", "locator", "medium",
    "note", "number", "number-of-pages", "number-of-volumes", "original-publisher",
    "original-publisher-place", "original-title", "page", "page-first", "part", "part-number",
    "part-title", "PMCID", "PMID", "printing", "publisher", "publisher-place", "references",
    "reviewed-genre", "reviewed-title", "scale", "section", "source", "status", "supplement",
    "title", "title-short", "URL", "version", "volume", "volume-title", "year-suffix",
}  # fmt: skip
_UPPER_VARS = {"doi": "DOI", "isbn": "ISBN", "issn": "ISSN", "pmid": "PMID", "pmcid": "PMCID",
               "url": "URL"}  # fmt: skip


@cache
def _tables() -> dict[str, Any]:
    """Derive lookup tables from the schema once."""
    schema = zotero_schema()
    csl = schema["csl"]
    type_map = {z: c for c, zs in csl["types"].items() for z in zs}
    by_type: dict[str, dict[str, Any]] = {}
    for entry in schema["itemTypes"]:
        base_to_field: dict[str, str] = {}
        field_to_base: dict[str, str] = {}
        for f in entry["fields"]:
            if "baseField" in f:
                base_to_field[f["baseField"]] = f["field"]
                field_to_base[f["field"]] = f["baseField"]
        primary = [c["creatorType"] for c in entry["creatorTypes"] if c.get("primary")]
        by_type[entry["itemType"]] = {
            "fields": {f["field"] for f in entry["fields"]},
            "base_to_field": base_to_field,
            "field_to_base": field_to_base,
            "primary": primary[0] if primary else "author",
        }
    # Zotero field name (or base field) -> CSL text variable, for "Field Name: value" in Extra
    field_to_var: dict[str, str] = {}
    for var, fields in csl["fields"]["text"].items():
        for f in fields:
            field_to_var.setdefault(f.lower(), var)
    for var, f in csl["fields"]["date"].items():
        field_to_var.setdefault(f.lower(), var)
    return {
        "types": type_map,
        "text": csl["fields"]["text"],
        "date": csl["fields"]["date"],
        "names": csl["names"],
        "by_type": by_type,
        "field_to_var": field_to_var,
    }


def schema_item_types() -> list[str]:
    """All Zotero item types in the shipped schema."""
    return [t["itemType"] for t in zotero_schema()["itemTypes"]]


# --- dates --------------------------------------------------------------------------------

_SQL_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{2}:\d{2}(?::\d{2})?(?:\.\d+)?Z?)?$")
_SQLISH = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (.*)$")
_ISO = re.compile(r"^(-?\d{1,4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?$")
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_RANGE_SPLIT = re.compile(r"\s*(?:/|–|—|\s-\s|(?<=\d{4})-(?=\d{4}\b))\s*")


def _single_date(text: str) -> dict[str, Any] | None:
    """Parse one date (no range) into ``{"parts": [...], "season": n}`` or None."""
    s = text.strip().strip(",")
    if not s:
        return None
    m = _SQL_DATE.match(s)
    if m:
        parts = [int(m.group(1)), int(m.group(2)), int(m.group(3))]
        return {"parts": _trim_zero(parts)}
    m = _ISO.match(s)
    if m:
        parts = [int(g) for g in m.groups() if g is not None]
        if len(parts) > 1 and not 1 <= parts[1] <= 12:
            return None
        return {"parts": _trim_zero(parts)}
    m = _DMY.match(s)
    if m:
        a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        # Zotero reads ambiguous numeric dates as US month/day/year
        md = (a, b) if a <= 12 else (b, a)
        return {"parts": _trim_zero([y, *md])}
    words = re.findall(r"[A-Za-z]+\.?|\d+", s)
    year: int | None = None
    month: int | None = None
    day: int | None = None
    season: int | None = None
    for w in words:
        lw = w.lower().rstrip(".")
        if lw.isdigit():
            n = int(lw)
            if len(lw) == 4 and year is None:
                year = n
            elif day is None and 1 <= n <= 31:
                day = n
            elif year is None:
                year = n
        elif lw in MONTHS and month is None:
            month = MONTHS[lw]
        elif lw in SEASONS and season is None:
            season = SEASONS[lw]
        elif lw in ("st", "nd", "rd", "th", "of"):
            continue
    if year is None:
        return None
    parts = [year]
    if month:
        parts.append(month)
        if day:
            parts.append(day)
    out: dict[str, Any] = {"parts": parts}
    if season and not month:
        out["season"] = season
    return out


def _trim_zero(parts: list[int]) -> list[int]:
    # Zotero writes unknown month/day as 00
    out = [parts[0]]
    for p in parts[1:]:
        if not p:
            break
        out.append(p)
    return out


def parse_date(value: str) -> dict[str, Any] | None:
    """Parse a Zotero date string into a CSL-JSON date object.

    Handles ISO and SQL dates, Zotero's multipart ``"2019-03-00 March 2019"``, month names,
    seasons (``"Spring 2019"`` -> ``season: 1``), ranges (``"2019-2020"``, ``a/b``) and falls back
    to ``{"literal": value}`` when no year can be found (as Zotero does).
    """
    if value is None:
        return None
    s = str(value).strip()
    if not s:
        return None
    m = _SQLISH.match(s)
    if m and not re.match(r"^\d{2}:\d{2}", m.group(4)):
        y, mo, d, rest = int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4)
        # Zotero's multipart form: the SQL part is authoritative, but a season only lives
        # in the user's original text
        out: dict[str, Any] = {"date-parts": [_trim_zero([y, mo, d])]}
        if y and not mo:
            extra = _single_date(rest)
            if extra and extra.get("season"):
                out["season"] = extra["season"]
        if y:
            return out
        s = rest
    if not _SQL_DATE.match(s):
        pieces = [p for p in _RANGE_SPLIT.split(s) if p]
        if len(pieces) == 2:
            first, second = _single_date(pieces[0]), _single_date(pieces[1])
            if first and second:
                return {"date-parts": [first["parts"], second["parts"]]}
    single = _single_date(s)
    if single is None:
        return {"literal": s}
    out = {"date-parts": [single["parts"]]}
    if "season" in single:
        out["season"] = single["season"]
    return out


# --- names --------------------------------------------------------------------------------


def _split_particles(name: dict[str, str]) -> dict[str, str]:
    """Move lowercase leading family words ("van der") and trailing given words into
    particles, as Zotero's ``parseParticles`` does before handing names to citeproc-js."""
    family, given = name.get("family", ""), name.get("given", "")
    if len(family) > 1 and family.startswith('"') and family.endswith('"'):
        name["family"] = family[1:-1]
        return name
    words = family.split(" ")
    ndp = []
    while len(words) > 1 and words[0][:1].islower():
        ndp.append(words.pop(0))
    if ndp:
        name["non-dropping-particle"] = " ".join(ndp)
        name["family"] = " ".join(words)
    gwords = given.split(" ")
    dp: list[str] = []
    while len(gwords) > 1 and gwords[-1][:1].islower():
        dp.insert(0, gwords.pop())
    if dp:
        name["dropping-particle"] = " ".join(dp)
        name["given"] = " ".join(gwords)
    return name


def _creator_to_name(creator: dict[str, Any]) -> dict[str, str] | None:
    if creator.get("lastName") or creator.get("firstName"):
        name = {"family": creator.get("lastName") or "", "given": creator.get("firstName") or ""}
        if name["family"] and name["given"]:
            name = _split_particles(name)
        return {k: v for k, v in name.items() if v}
    if creator.get("name"):
        return {"literal": creator["name"]}
    return None


def _parse_extra_name(value: str) -> dict[str, str]:
    if "||" in value:
        family, given = (p.strip() for p in value.split("||", 1))
        return {k: v for k, v in {"family": family, "given": given}.items() if v}
    return {"literal": value.strip()}


# --- main conversion ----------------------------------------------------------------------

_EXTRA_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z_ -]*?)\s*:\s*(.+?)\s*$")


def _extra_key(key: str) -> str | None:
    """Map an Extra key (CSL variable, Zotero field, or its label) to a CSL variable."""
    tables = _tables()
    k = key.strip()
    low = k.lower()
    if low in _UPPER_VARS:
        return _UPPER_VARS[low]
    dashed = re.sub(r"[ _]+", "-", low)
    if dashed == "type":
        return "type"
    for pool in (CSL_NAME_VARS, CSL_DATE_VARS, CSL_TEXT_VARS):
        if dashed in pool:
            return dashed
        if low in pool:  # archive_location keeps its underscore
            return low
    squashed = re.sub(r"[ _-]+", "", low)
    return tables["field_to_var"].get(squashed) or tables["field_to_var"].get(low)


def _apply_extra(extra: str, csl: dict[str, Any]) -> str:
    """Set CSL variables from ``Key: value`` lines; return the remaining note text."""
    kept: list[str] = []
    valid_types = set(_tables()["types"].values()) | {
        "article", "classic", "collection", "event", "figure", "legal_case", "musical_score",
        "pamphlet", "performance", "periodical", "regulation", "review", "review-book",
        "treaty", "entry", "document",
    }  # fmt: skip
    for line in extra.splitlines():
        m = _EXTRA_LINE.match(line)
        var = _extra_key(m.group(1)) if m else None
        if not m or var is None:
            kept.append(line)
            continue
        value = m.group(2)
        if var == "type":
            if value.strip() in valid_types:
                csl["type"] = value.strip()
            else:
                kept.append(line)
        elif var in CSL_NAME_VARS:
            csl.setdefault(var, []).append(_parse_extra_name(value))
        elif var in CSL_DATE_VARS:
            if var not in csl:
                date = parse_date(value)
                if date:
                    csl[var] = date
        elif var not in csl:
            csl[var] = value
    return "\n".join(kept).strip()


def _first_isbn(value: str) -> str:
    m = re.match(r"^(?:97[89]-?)?(?:\d-?){9}[\dx](?!-)\b", value, re.I)
    return m.group(0) if m else value


def _field_value(data: dict[str, Any], field: str, info: dict[str, Any]) -> Any:
    if data.get(field):
        return data[field]
    specific = info["base_to_field"].get(field)
    if specific and data.get(specific):
        return data[specific]
    return None


def _note_title(note: str) -> str:
    text = re.sub(r"<[^>]+>", "\n", note)
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:120]
    return ""


def to_csl(data: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """Convert one Zotero item ``data`` dict to a CSL-JSON item.

    ``id`` is ``key`` (or ``data["key"]``). Unknown item types become ``document``; creator
    types Zotero has no CSL name for are kept as ``contributor`` rather than dropped.
    """
    tables = _tables()
    item_type = data.get("itemType", "document")
    info = tables["by_type"].get(item_type) or tables["by_type"]["document"]
    csl: dict[str, Any] = {
        "id": key or data.get("key") or "",
        "type": tables["types"].get(item_type, "document"),
    }
    for var, fields in tables["text"].items():
        if var == "shortTitle":  # Zotero reads both but writes only title-short
            continue
        for field in fields:
            value = _field_value(data, field, info)
            if not value or not isinstance(value, str | int | float):
                continue
            value = str(value).strip()
            if field == "ISBN":
                value = _first_isbn(value)
            if len(value) > 1 and value[0] == '"' and value.find('"', 1) == len(value) - 1:
                value = value[1:-1]
            if field == "extra":
                break  # handled below
            csl[var] = value
            break
    if "journalAbbreviation" in csl:
        # citeproc-js reads Zotero's journalAbbreviation as container-title-short
        csl.setdefault("container-title-short", csl.pop("journalAbbreviation"))

    if item_type not in ("attachment", "note", "annotation"):
        for creator in data.get("creators") or []:
            ctype = creator.get("creatorType") or "author"
            if ctype == info["primary"]:
                ctype = "author"
            var = tables["names"].get(ctype, "contributor")
            name = _creator_to_name(creator)
            if name:
                csl.setdefault(var, []).append(name)

    for var, field in tables["date"].items():
        value = _field_value(data, field, info)
        if value:
            date = parse_date(str(value))
            if date:
                csl[var] = date

    if item_type == "note" and data.get("note"):
        csl["title"] = _note_title(data["note"])
    if item_type == "annotation" and data.get("annotationText"):
        csl["title"] = str(data["annotationText"])[:120]

    extra = data.get("extra")
    if isinstance(extra, str) and extra.strip():
        note = _apply_extra(extra, csl)
        if note:
            csl["note"] = note
    return csl
