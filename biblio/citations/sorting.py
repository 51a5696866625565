"""Set-level sorting of bibliography entries with locale-aware collation.

citeproc-py compares sort keys by code point, so "Gödel" sorts after "Guzman" and "de"
after "Zhang". We let citeproc-py compute each ``cs:key`` per item (names in sort order,
macros rendered with sort options; dates come back as ``YYYYMMDD``-style values from
:class:`~.engine.BiblioDate`), then order items ourselves: a Unicode collation key
(diacritics and case ignored at the first level, as ICU does for ``en``), numbers compared as
numbers, missing values last whatever the direction, and input order as the final tie-break.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

from citeproc import NAMES, NUMBERS
from citeproc.model import Key

from .engine import CSL_NS, state
from .markup import strip_markers

log = logging.getLogger(__name__)

# letters that do not decompose in NFKD but collate as their base letters
_EXTRA_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l",
                             "þ": "th", "ð": "d", "ı": "i", "Æ": "ae", "Œ": "oe", "Ø": "o",
                             "Đ": "d", "Ł": "l", "Þ": "th", "Ð": "d"})  # fmt: skip
_IGNORABLE = re.compile(r"[\u2018\u2019\u201c\u201d\"'`\u00ab\u00bb\[\]()]")


def collation_key(text: str) -> tuple[str, str]:
    """A (primary, tertiary) key: base letters first, then case and accents."""
    plain = strip_markers(text).translate(_EXTRA_FOLD)
    plain = _IGNORABLE.sub("", plain)
    decomposed = unicodedata.normalize("NFKD", plain)
    base = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    primary = " ".join(base.casefold().split())
    # ICU puts lower case before upper case at the tertiary level
    tertiary = plain.swapcase()
    return primary, tertiary


def _value_key(value: Any) -> tuple:
    if value is None:
        return ()
    text = str(value).strip()
    if not text:
        return ()
    if re.fullmatch(r"-?\d+", text):
        return (0, int(text), "")
    return (1, *collation_key(text))


def _item_key(key_el: Key, item, layout) -> Any:
    variable = key_el.get("variable")
    if variable:
        var = variable.replace("-", "_")
        if var not in NAMES and var not in NUMBERS and var in item.reference:
            value = item.reference.get(var)
            if hasattr(value, "sort_key"):
                return value.sort_key()
            if isinstance(value, list):  # CSL 1.0.2 name variables citeproc-py doesn't list
                return ";".join(
                    ", ".join(p for p in (n.get("family"), n.get("given")) if p)
                    or n.get("literal", "")
                    for n in value
                )
            return str(value)
    layout.repressed = {}
    return key_el.sort_keys([item], layout)[0]


def itemgetter_at(i: int):
    def get(row: tuple) -> tuple:
        return row[2][i]

    return get


def sort_items(style, items: list) -> tuple[list, dict[str, str]]:
    """Return ``items`` in the style's bibliography order and a printable key per item."""
    bib = style.root.bibliography
    sort = bib.find(f"{{{CSL_NS}}}sort") if bib is not None else None
    if sort is None:
        return list(items), {it.key: f"{n:06d}" for n, it in enumerate(items)}
    layout = bib.layout
    key_els = sort.findall(f"{{{CSL_NS}}}key")
    rows = []
    for n, item in enumerate(items):
        keys = []
        for key_el in key_els:
            state.reset("sort")
            try:
                keys.append(_value_key(_item_key(key_el, item, layout)))
            except Exception:  # one bad item must not break the list: sort it by nothing
                log.debug("sort key failed for %s", item.key, exc_info=True)
                keys.append(())
        rows.append((n, item, keys))
    state.reset()
    order = list(rows)
    for i in range(len(key_els) - 1, -1, -1):
        descending = key_els[i].get("sort", "ascending") == "descending"
        present = [r for r in order if r[2][i] != ()]
        missing = [r for r in order if r[2][i] == ()]
        present.sort(key=itemgetter_at(i), reverse=descending)
        order = present + missing
    printable = {
        item.key: "\x1f".join(str(k[1]) if k else "" for k in keys) for _, item, keys in order
    }
    return [r[1] for r in order], printable
