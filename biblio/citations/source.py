"""Input normalisation: CSL-JSON items to citeproc-py references, tolerant of real data.

citeproc-py's own ``CiteProcJSON`` only knows CSL 1.0.1 name variables (``director`` or
``host`` crash it), lowercases ids (so ``ABC`` and ``abc`` collide), takes seasons as raw
strings and prints rich text literally. Here every item gets an internal key, every name
variable of CSL 1.0.2 is accepted, dates are checked and repaired (seasons as 1–4, ``raw``
strings parsed, open ranges), and titles' inline HTML (``<i>``, ``<b>``, ``<sup>``, ``<sub>``,
small caps, ``<span class="nocase">``) and straight quotes become markers (see
:mod:`.markup`), so that the output formatter can render or strip them and escape the rest.
"""

from __future__ import annotations

import html
import re
from typing import Any

from citeproc.source import (
    BibliographySource,
    Date,
    DateRange,
    LiteralDate,
    Name,
    Reference,
    VariableError,
)
from citeproc.string import MixedString, NoCase, String

from biblio.zotero.csljson import CSL_DATE_VARS, CSL_NAME_VARS, SEASONS, parse_date

from .markup import BOLD, ITALIC, QUOTE, SMALLCAPS, SUB, SUP, scrub_input
from .names import parse_particles
from .notefields import apply_note_fields

NAME_PARTS = ("family", "given", "dropping-particle", "non-dropping-particle", "suffix")
DATE_VARS = CSL_DATE_VARS | {"container", "event-date"}
# values that are codes, not prose: never parsed for markup or quotes
RAW_VARS = {"language", "URL", "DOI", "ISBN", "ISSN", "PMID", "PMCID", "id", "type"}


class BiblioReference(Reference):
    """A reference accepting every CSL 1.0.2 variable (citeproc-py warns on unknown ones)."""

    def __init__(self, key: str, type: str, **args: Any) -> None:  # noqa: A002
        self.update(args, key=key, type=type)
        # read as attributes on every cs:if type test: kept as plain attributes too
        self.__dict__["key"] = key
        self.__dict__["type"] = type

    # a missing variable raises citeproc-py's VariableError, via dict's own lookup
    __getitem__ = dict.__getitem__  # type: ignore[assignment]

    def __missing__(self, key: str) -> Any:
        raise VariableError(key)


class BiblioSource(BibliographySource):
    """A citeproc-py bibliography source built from already-normalised references."""


# --- rich text -------------------------------------------------------------------------

_TAG = re.compile(
    r"<(/?)(i|em|b|strong|sup|sub|sc|span)((?:\s+[a-z-]+\s*=\s*\"[^\"]*\")*)\s*>", re.I
)
_TAG_PAIRS = {
    "i": ITALIC, "em": ITALIC, "b": BOLD, "strong": BOLD, "sup": SUP, "sub": SUB,
    "sc": SMALLCAPS,
}  # fmt: skip


_QUOTE_CHARS = frozenset("\"'\u201c\u201d")


def _quotes(text: str) -> str:
    """Straight quotes to markers / typographic apostrophes, as citeproc-js does."""
    if _QUOTE_CHARS.isdisjoint(text):
        return text
    out = []
    open_double = False
    for i, ch in enumerate(text):
        prev = text[i - 1] if i else " "
        if ch == "\u201c" or (ch == "\u201d" and open_double):
            out.append(QUOTE[0] if ch == "\u201c" else QUOTE[1])
            open_double = ch == "\u201c"
        elif ch == '"':
            if not open_double and (prev.isspace() or prev in "([{-–—/" or i == 0):
                out.append(QUOTE[0])
                open_double = True
            elif open_double:
                out.append(QUOTE[1])
                open_double = False
            else:
                out.append(ch)
        elif ch == "'" and prev.isalnum():
            out.append("\u2019")
        elif ch == "'":
            out.append("\u2018")
        else:
            out.append(ch)
    if open_double:  # unbalanced: keep the character the user typed
        idx = len(out) - 1 - out[::-1].index(QUOTE[0])
        out[idx] = '"'
    return "".join(out)


def rich_text(value: Any) -> MixedString | String:
    """Parse a field value with inline HTML into citeproc-py strings carrying markers."""
    text = scrub_input(str(value))
    if "<" not in text and "&" not in text:
        return String(_quotes(text))
    segments: list[String] = []
    stack: list[str] = []  # closing marker (or "nocase"/"" for spans)
    nocase_depth = 0
    pos = 0
    buf = ""

    def emit(chunk: str) -> None:
        nonlocal buf
        buf += chunk

    def cut() -> None:
        nonlocal buf
        if buf:
            cls = NoCase if nocase_depth else String
            segments.append(
                cls(_quotes(html.unescape(buf)) if not nocase_depth else html.unescape(buf))
            )
            buf = ""

    def close() -> None:
        """Close the innermost open tag (a nocase span ends its segment)."""
        nonlocal nocase_depth
        top = stack.pop()
        if top == "nocase":
            cut()
            nocase_depth -= 1
        else:
            emit(top)

    for m in _TAG.finditer(text):
        emit(text[pos : m.start()])
        pos = m.end()
        closing, tag, attrs = m.group(1), m.group(2).lower(), m.group(3).lower()
        if not closing:
            if tag == "span":
                if 'class="nocase"' in attrs.replace(" ", ""):
                    cut()
                    nocase_depth += 1
                    stack.append("nocase")
                elif "small-caps" in attrs:
                    emit(SMALLCAPS[0])
                    stack.append(SMALLCAPS[1])
                else:
                    stack.append("")
            else:
                emit(_TAG_PAIRS[tag][0])
                stack.append(_TAG_PAIRS[tag][1])
        elif stack:
            close()
        else:
            emit(m.group(0))  # stray closing tag: show what the user typed
    emit(text[pos:])
    while stack:
        close()
    cut()
    if len(segments) == 1:
        return segments[0]
    return MixedString(segments) if segments else String("")


# --- names and dates ---------------------------------------------------------------------


def _name_text(value: Any) -> str:
    text = scrub_input(str(value)).strip()
    return re.sub(r"(?<=\w)'", "\u2019", text)


def normalise_name(raw: Any) -> Name | None:
    if isinstance(raw, str):
        raw = {"literal": raw}
    if not isinstance(raw, dict):
        return None
    if raw.get("literal"):
        return Name(literal=_name_text(raw["literal"]))
    parts = {k: _name_text(raw[k]) for k in NAME_PARTS if raw.get(k)}
    if not parts.get("family") and parts.get("given"):
        # a lone given name is a mononym; citeproc-js prints it as such
        parts = {"family": parts["given"]}
    # "van der Maaten", "Ludwig van": particles read out as citeproc-js reads them
    parts = parse_particles(parts)
    if not parts:
        return None
    return Name(**parts)


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _date_from_parts(parts: list[Any], season: Any = None, circa: bool = False):
    nums = [_int(p) for p in parts[:3]]
    if not nums or nums[0] is None:
        return None
    args: dict[str, Any] = {"year": nums[0]}
    if len(nums) > 1 and nums[1] and 1 <= nums[1] <= 12:
        args["month"] = nums[1]
        if len(nums) > 2 and nums[2] and 1 <= nums[2] <= 31:
            args["day"] = nums[2]
    elif len(nums) > 1 and nums[1] and 13 <= nums[1] <= 16:
        args["season"] = nums[1] - 12  # CSL-JSON's month 13–16 are seasons
    if season is not None and "month" not in args:
        s = _int(season)
        if s is None:
            s = SEASONS.get(str(season).strip().lower())
        if s and 1 <= s <= 4:
            args["season"] = s
    return Date(circa=circa, **args)


def normalise_date(raw: Any):
    if isinstance(raw, str | int):
        raw = parse_date(str(raw))
    if not isinstance(raw, dict):
        return None
    if "date-parts" not in raw and raw.get("raw"):
        parsed = parse_date(str(raw["raw"])) or {}
        raw = {**parsed, **{k: v for k, v in raw.items() if k != "raw"}}
    circa = bool(raw.get("circa")) and str(raw.get("circa")).lower() not in ("0", "false")
    parts = raw.get("date-parts")
    if isinstance(parts, list) and parts and isinstance(parts[0], list | tuple):
        begin = _date_from_parts(list(parts[0]), raw.get("season"), circa)
        if begin is None:
            pass
        elif len(parts) > 1 and isinstance(parts[1], list | tuple) and parts[1]:
            end = _date_from_parts(list(parts[1]))
            if end is not None and (end.year, end.get("month", 0), end.get("day", 0)) != (
                begin.year,
                begin.get("month", 0),
                begin.get("day", 0),
            ):
                return DateRange(begin=begin, end=end, circa=circa)
            return begin
        else:
            return begin
    if raw.get("literal"):
        return LiteralDate(scrub_input(str(raw["literal"])), circa=circa)
    return None


# --- items ------------------------------------------------------------------------------


def normalise_item(item: dict[str, Any], key: str) -> BiblioReference:
    """One CSL-JSON item to a citeproc-py reference under the internal ``key``."""
    if not isinstance(item, dict):
        raise TypeError("item is not a CSL-JSON object")
    item = apply_note_fields(item)
    ref_type = str(item.get("type") or "document").strip()
    data: dict[str, Any] = {}
    for var, value in item.items():
        if var in ("id", "type", "key") or value is None or value == "" or value == []:
            continue
        py = var.replace("-", "_")
        if var == "shortTitle":
            py = "title_short"
        elif var == "journalAbbreviation":
            py = "container_title_short"
        if var in CSL_NAME_VARS or (
            isinstance(value, list) and value and isinstance(value[0], dict)
        ):
            names = [n for n in (normalise_name(v) for v in value) if n is not None]
            if names:
                # citeproc-py looks names up by the CSL name ("reviewed-author") in
                # cs:names and by the Python name ("reviewed_author") elsewhere
                data[py] = names
                data[var] = names
        elif var in DATE_VARS or isinstance(value, dict):
            date = normalise_date(value)
            if date is not None:
                data[py] = date
        elif isinstance(value, list | dict):
            continue
        elif var == "language":
            data[py] = str(value).strip().lower()
        elif var in RAW_VARS:
            data[py] = String(scrub_input(str(value)).strip())
        else:
            data[py] = rich_text(str(value).strip())
    return BiblioReference(key, ref_type, **data)
