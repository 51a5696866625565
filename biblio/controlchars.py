"""Control characters: the one definition of what no text biblio stores or shows may hold.

Zotero data carries them (a vertical tab pasted from Word, a lone surrogate from a
broken import) and so can hostile form input. None of them is valid in XML 1.0
(Atom feeds, DOCX), most break RIS and BibTeX lines, and in an email header a line
break is an injection. :data:`CONTROL` matches the C0 and C1 controls other than tab,
line feed and carriage return, DEL, the two noncharacters U+FFFE/U+FFFF and lone
surrogates; :func:`strip` removes them, :func:`one_line` also folds line breaks and
tabs into single spaces, and :func:`has_control` says whether a value holds any.
"""

from __future__ import annotations

import re

#: Characters never kept: C0/C1 controls but tab, LF and CR; DEL; U+FFFE/U+FFFF; surrogates.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]+")


def strip(text: str) -> str:
    """``text`` without control characters (tab, line feed and carriage return kept)."""
    return CONTROL.sub("", text)


def one_line(text: str) -> str:
    """``text`` on one line: every run of control characters, line breaks and tabs
    included, becomes one space (email headers, CSV cells, log lines)."""
    return _BREAKS.sub(" ", text)


def has_control(text: str, *, allow_breaks: bool = False) -> bool:
    """Whether ``text`` holds a control character; line breaks and tabs count unless
    ``allow_breaks`` (multi-line form fields)."""
    return bool((CONTROL if allow_breaks else _ANY_CONTROL).search(text))
