"""Set-level sorting of bibliography entries with locale-aware collation.

citeproc-py compares sort keys by code point, so "Gödel" sorts after "Guzman" and "de"
after "Zhang". We let citeproc-py compute each ``cs:key`` per item (names in sort order,
macros rendered with sort options; dates come back as citeproc-js's ``1YYYYMMDD`` values from
:class:`~.engine.BiblioDate`), then order items as citeproc-js does: its collation
(``localeCompare`` with base sensitivity, punctuation ignored, numeric), missing values
last whatever the direction, and input order for entries that tie on every key.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import cmp_to_key, lru_cache
from typing import Any

from citeproc import NAMES, NUMBERS
from citeproc.model import Key

from .dates import DATE_MARK, date_sort_key
from .engine import CSL_NS, state
from .markup import strip_markers

log = logging.getLogger(__name__)

# letters that do not decompose in NFKD but collate as their base letters
_EXTRA_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l",
                             "þ": "th", "ð": "d", "ı": "i", "Æ": "ae", "Œ": "oe", "Ø": "o",
                             "Đ": "d", "Ł": "l", "Þ": "th", "Ð": "d"})  # fmt: skip
_IGNORABLE = re.compile(r"[\u2018\u2019\u201c\u201d\"'`\u00ab\u00bb\[\]()]")


_RUN = re.compile(r"(\d+)|(\s+)|([^\d\s]+)")


@lru_cache(maxsize=1 << 16)  # names, years and titles recur across a library
def collation_key(text: str) -> tuple:
    """Compare as citeproc-js does: ``localeCompare`` with base sensitivity, punctuation
    ignored and numeric ordering, on keys whose words are separated by ``|``.

    Case and accents do not count (ties go on to the next key), punctuation is skipped,
    a word break sorts before any letter or digit (so "Association." comes before
    "Association Committee") and digit runs compare by value ("Vol 9" before "Vol 10").
    """
    plain = strip_markers(text).translate(_EXTRA_FOLD)
    decomposed = unicodedata.normalize("NFKD", plain)
    base = "".join(
        ch
        for ch in decomposed
        if not unicodedata.combining(ch) and not unicodedata.category(ch).startswith("P")
    )
    runs: list[tuple] = []
    for digits, space, word in _RUN.findall(base.casefold().strip()):
        if digits:
            runs.append((1, int(digits), ""))
        elif space:
            runs.append((0, 0, ""))
        else:
            runs.append((2, 0, word))
    return tuple(runs)


def _value_key(value: Any) -> tuple:
    if value is None:
        return ()
    text = str(value).strip()
    if not text:
        return ()
    return collation_key(text)


def _item_key(key_el: Key, item, layout) -> Any:
    variable = key_el.get("variable")
    if variable:
        var = variable.replace("-", "_")
        if var not in NAMES and var not in NUMBERS and var in item.reference:
            value = item.reference.get(var)
            if hasattr(value, "sort_key"):
                return date_sort_key(value)
            if isinstance(value, list):  # CSL 1.0.2 name variables citeproc-py doesn't list
                return ";".join(
                    ", ".join(p for p in (n.get("family"), n.get("given")) if p)
                    or n.get("literal", "")
                    for n in value
                )
            return str(value)
    layout.repressed = {}
    if not _has_date(key_el):
        return key_el.sort_keys([item], layout)[0]
    # citeproc-js keeps only the dates of a sort macro that has a cs:date: "n.d." (or
    # anything else the macro prints) is no key, and the item sorts last either way
    state.date_macro = True
    try:
        text = key_el.sort_keys([item], layout)[0]
    finally:
        state.date_macro = False
    dates = _DATES.findall(str(text)) if text is not None else []
    return "".join(dates) or None


_DATES = re.compile(f"{DATE_MARK}(.*?){DATE_MARK}")


def _has_date(key_el: Key) -> bool:
    """Whether a key's macro holds a cs:date (citeproc-js macro-has-date: the macro's
    own elements, not the macros it calls)."""
    d = key_el.__dict__
    if "_memo_has_date" not in d:
        macro = key_el.get("macro")
        found = macro and key_el.get_macro(macro).find(f".//{{{CSL_NS}}}date") is not None
        d["_memo_has_date"] = bool(found)
    return d["_memo_has_date"]


def _readable(key: tuple) -> str:
    return "".join(str(n) if kind == 1 else word or " " for kind, n, word in key)


def _compare(a: list, b: list, directions: list[bool]) -> int:
    """citeproc-js Registry.Comparifier: key by key, a missing value last either way."""
    for x, y, descending in zip(a, b, directions, strict=False):
        if x == y:
            continue
        if x == ():
            return 1
        if y == ():
            return -1
        cmp = -1 if x < y else 1
        return -cmp if descending else cmp
    return 0


def sort_keys(style) -> list[Key]:
    """The ``cs:key`` elements of the style's bibliography sort (empty: input order)."""
    bib = style.root.bibliography
    sort = bib.find(f"{{{CSL_NS}}}sort") if bib is not None else None
    return [] if sort is None else sort.findall(f"{{{CSL_NS}}}key")


def is_number_key(key_el: Key) -> bool:
    """A key on ``citation-number``: its value is the item's position, known only to the
    whole set (see :func:`number_key`)."""
    return key_el.get("variable") == "citation-number"


def number_key(number: int) -> tuple:
    return _value_key(number)


def item_keys(style, key_els: list[Key], item) -> list[tuple]:
    """The collation key of each ``cs:key`` for one item; ``()`` for a missing value.

    A key is rendered from the item alone, so keys can be computed for any subset of a
    bibliography (in another process, say) and compared later. ``citation-number`` keys
    come back empty: the caller puts :func:`number_key` in their place.
    """
    if not key_els:
        return []
    layout = style.root.bibliography.layout
    keys = []
    for key_el in key_els:
        if is_number_key(key_el):
            keys.append(())
            continue
        state.reset("sort")
        try:
            keys.append(_value_key(_item_key(key_el, item, layout)))
        except Exception:  # one bad item must not break the list: sort it by nothing
            log.debug("sort key failed for %s", item.key, exc_info=True)
            keys.append(())
    state.reset()
    return keys


def order(rows: list[tuple[int, list[tuple]]], key_els: list[Key]) -> list[int]:
    """Positions of ``rows`` (input position, keys) in bibliography order.

    citeproc-js numbers items in input order before sorting and breaks ties with it.
    """
    directions = [k.get("sort", "ascending") == "descending" for k in key_els]
    if not key_els:
        return [n for n, _ in rows]

    def compare(a: tuple, b: tuple) -> int:
        return _compare(a[1], b[1], directions)

    return [n for n, _ in sorted(rows, key=cmp_to_key(compare))]


def printable(keys: list[tuple]) -> str:
    """The ``Entry.sort_key`` form of an item's keys."""
    return "\x1f".join(map(_readable, keys))
