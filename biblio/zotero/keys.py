"""Zotero object keys: the one definition of their alphabet and pattern.

Zotero names every item and collection with eight characters from an alphabet
without the look-alikes 0, 1 and O. The stand-in makes keys from it, the web
refuses anything else before touching the database, and reading lists find keys
(bare, or inside an item's URL) in pasted text with it.
"""

from __future__ import annotations

import re

#: Zotero's key alphabet: digits 2-9 and capitals without O.
KEY_ALPHABET = "23456789ABCDEFGHIJKLMNPQRSTUVWXYZ"
KEY_LENGTH = 8
KEY_RE = re.compile(f"[{KEY_ALPHABET}]{{{KEY_LENGTH}}}")
# A key standing alone in pasted text (letters or digits around it make it a longer word).
_IN_TEXT = re.compile(f"(?<![0-9A-Za-z])([{KEY_ALPHABET}]{{{KEY_LENGTH}}})(?![0-9A-Za-z])")


def is_key(value: str) -> bool:
    """Whether ``value`` is a well-formed Zotero object key (exactly, upper case)."""
    return KEY_RE.fullmatch(value) is not None


def keys_in_text(text: str) -> list[str]:
    """The keys in pasted text, in order, without repeats."""
    return list(dict.fromkeys(_IN_TEXT.findall(text or "")))
