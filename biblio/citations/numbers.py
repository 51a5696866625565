"""Number variables the way citeproc-js reads them: plurality for labels and range dashes.

citeproc-js splits a number-like value (``issue``, ``volume``, ``number``…) on its joiners
("&", "and", ", ", "; " and hyphens) before deciding anything. A label is plural only when
there are several parts and they are numbers ("1-2", "3 & 4"), so "7/8", "US 1,234,567" and
"2.0" stay singular. A hyphen between two plain numbers is a range and prints with the
locale's ``page-range-delimiter`` (an en dash). A legal case's docket ``number`` is an
identifier, not a range: its hyphens are kept and never make it plural.
"""

from __future__ import annotations

import re

# variables citeproc-js runs through its number parser
NUMBER_VARS = frozenset(
    {
        "chapter-number",
        "collection-number",
        "edition",
        "issue",
        "number",
        "number-of-pages",
        "number-of-volumes",
        "part-number",
        "supplement-number",
        "volume",
    }
)
# variables whose hyphenated numeric ranges get the range delimiter
RANGE_VARS = frozenset({"edition", "issue", "number", "volume"})

_JOINER = re.compile(r"(\s*&\s*|,\s+and\s+|\s+and\s+|;\s+|,\s+|\s*[-\u2013]+\s*)")
_HYPHEN = re.compile(r"^\s*[-\u2013]+\s*$")
_PLAIN = re.compile(r"^(?:[0-9]+|[ivxlcmIVXLCM]+)$")
_LEADING_INT = re.compile(r"^\s*[-+]?\d")
_ROMAN = re.compile(r"^[ivxlcmIVXLCM]+$")


def _parts(value: str, variable: str, item_type: str | None) -> list[str]:
    """Alternating values and joiners: ``["1", "-", "2"]``."""
    if variable == "number" and item_type == "legal_case":
        return [value.strip()]
    return _JOINER.split(value.strip())


def is_plural(value: object, variable: str, item_type: str | None = None) -> bool:
    """Several numbers in one value ("1-2", "3, 5", "4 & 6"), as citeproc-js counts them."""
    text = str(value)
    if variable.startswith("number-of-"):
        try:
            return int(text.strip()) > 1
        except ValueError:
            return False
    parts = _parts(text, variable, item_type)
    return len(parts) > 1 and _numeric_start(parts[0])


def _numeric_start(first: str) -> bool:
    # parseInt() succeeds, or a roman numeral
    first = first.strip()
    return bool(_LEADING_INT.match(first) or _ROMAN.match(first))


def dash_ranges(value: str, variable: str, item_type: str | None, delimiter: str) -> str:
    """Hyphens between two plain numbers become ``delimiter`` ("1-2" to "1–2")."""
    if variable not in RANGE_VARS or "-" not in value:
        return value
    parts = _parts(value, variable, item_type)
    if len(parts) < 3 or not _numeric_start(parts[0]):
        # citeproc-js treats the parts as one group: "EDO-IR-95-4" is an identifier
        return value
    out = [parts[0]]
    for i in range(1, len(parts) - 1, 2):
        joiner, before, after = parts[i], parts[i - 1].strip(), parts[i + 1].strip()
        if _HYPHEN.match(joiner) and _PLAIN.match(before) and _PLAIN.match(after):
            joiner = delimiter
        out += [joiner, parts[i + 1]]
    return "".join(out)
