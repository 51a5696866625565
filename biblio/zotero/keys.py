"""Zotero object keys: the one definition of their alphabet and pattern.

Zotero names every item and collection with eight characters from an alphabet
without the look-alikes 0, 1 and O. The stand-in makes keys from it, the web
refuses anything else before touching the database, and reading lists read keys
from pasted text with :func:`read_keys`: bare keys in any case, this site's item
links and Zotero's own item URLs (``https://www.zotero.org/groups/…/items/KEY``,
``zotero://select/…/items/KEY``), separated by anything; what is neither is
handed back, so a caller can say what it did not understand.
"""

from __future__ import annotations

import re

#: Zotero's key alphabet: digits 2-9 and capitals without O.
KEY_ALPHABET = "23456789ABCDEFGHIJKLMNPQRSTUVWXYZ"
KEY_LENGTH = 8
KEY_RE = re.compile(f"[{KEY_ALPHABET}]{{{KEY_LENGTH}}}")
# A key in any case, as people retype or paste it; upper-cased before use.
_ANY_CASE = re.compile(f"[{KEY_ALPHABET}]{{{KEY_LENGTH}}}", re.IGNORECASE)
# The item key inside a URL: ``…/items/KEY`` (Zotero's web library, this site,
# ``zotero://select``), also Zotero's older ``…/items/itemKey/KEY``.
_IN_URL = re.compile(
    f"/items/(?:itemKey/)?([{KEY_ALPHABET}]{{{KEY_LENGTH}}})(?![0-9A-Za-z])", re.IGNORECASE
)
# Pasted text splits on white space, commas and semicolons; a token keeps its URL whole.
_SEPARATORS = re.compile(r"[\s,;]+")
# Quotes, brackets and sentence punctuation around a token are not part of it.
_WRAPPING = "\"'“”‘’«»()[]{}<>.:!?"
#: At most this many not-understood pieces are handed back (a pasted essay is not listed).
MAX_UNREAD = 20


def is_key(value: str) -> bool:
    """Whether ``value`` is a well-formed Zotero object key (exactly, upper case)."""
    return KEY_RE.fullmatch(value) is not None


def read_keys(text: str) -> tuple[list[str], list[str]]:
    """``(keys, not understood)`` from pasted text: keys upper-cased, in order, without
    repeats; the pieces that are neither a key nor a link to an item, in order, at most
    :data:`MAX_UNREAD` of them."""
    keys: list[str] = []
    unread: list[str] = []
    for raw in _SEPARATORS.split(text or ""):
        token = raw.strip(_WRAPPING)
        if not token:
            continue
        if "/" in token:
            found = _IN_URL.search(token)
            key = found.group(1).upper() if found else None
        else:
            key = token.upper() if _ANY_CASE.fullmatch(token) else None
        if key is not None:
            keys.append(key)
        elif len(unread) < MAX_UNREAD:
            unread.append(raw[:120])
    return list(dict.fromkeys(keys)), list(dict.fromkeys(unread))


def keys_in_text(text: str) -> list[str]:
    """The keys in pasted text, in order, without repeats (see :func:`read_keys`)."""
    return read_keys(text)[0]
