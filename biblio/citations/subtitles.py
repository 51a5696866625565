"""Capitalised subtitles in APA-family styles, as Zotero has citeproc-js print them.

APA wants titles in sentence case with the first word of a subtitle capitalised ("Age and
sustainability: A meta-analysis"). Zotero turns on citeproc-js's ``uppercase_subtitles``
option for the styles whose id (or whose parent's id) matches :data:`STYLE_IDS`; citeproc-js
then splits ``title`` and ``container-title`` into main title and subtitle (at ": ", "? ",
"! ", ". ", dashes; or where ``title-short`` ends) and capitalises the first word of each
subtitle that is all lower case (``CSL.extractTitleAndSubtitle`` and
``CSL.titlecaseSentenceOrNormal``). :func:`uppercase_subtitles` is a port for plain text.
"""

from __future__ import annotations

import re

from .casing import capitalize_first

__all__ = ["STYLE_IDS", "title_split", "uppercase_subtitles", "wants_uppercase_subtitles"]

#: Zotero's test on a style's short id (``apa``, ``apa-6th-edition``...)
STYLE_IDS = re.compile(r"^apa($|-)|^academy-of-management($|-)|^(freshwater-science)")

_SPLITS = r"\.\s+|\!\s+|\?\s+|\s*::*\s+|\s*—\s*|\s+\-\s+|\s*\-\-\-*\s*"
_ANY = re.compile(f"({_SPLITS})")
_FIRST = re.compile(f"^({_SPLITS})")


def wants_uppercase_subtitles(style_id: str | None) -> bool:
    """Whether Zotero capitalises subtitles for a style id (a URL or a short id)."""
    short = (style_id or "").rstrip("/").rsplit("/", 1)[-1]
    return bool(STYLE_IDS.search(short))


def title_split(text: str) -> list[str]:
    """citeproc-js CSL.TITLE_SPLIT: title parts with their separators between them; a
    part ending in a capital letter ("U.S. history") is not split off."""
    parts = _ANY.split(text)
    found, seps = parts[0::2], parts[1::2]
    for i in range(len(found) - 2, -1, -1):
        found[i] = found[i].strip()
        if found[i] and found[i][-1].lower() != found[i][-1]:
            found[i] = found[i] + seps[i] + found[i + 1]
            del found[i + 1]
        else:
            found.insert(i + 1, seps[i])
    return found


def _main_and_sub(title: str, short: str | None) -> tuple[str, str, str]:
    """citeproc-js extractTitleAndSubtitle: (main title, joiner, subtitle)."""
    main, join, sub = title, "", ""
    if short and short.lower() == title.lower():
        return main, join, sub
    matched = False
    if short:
        tail = title[len(short.rstrip("?!")) :]
        top = title.replace(tail.lstrip("?!"), "", 1).strip()
        m = _FIRST.match(tail)
        if m and top.lower() == short.lower():
            main, join, sub = top, re.sub(r"[?!]+(\s*)$", r"\1", m.group(1)), tail[m.end() :]
            matched = True
    if not matched:
        parts = title_split(title)
        if len(parts) == 3:
            main, join, sub = parts
    if join and re.search(r"[?!]", join):
        space = re.search(r"(\s*)$", join)
        main, join = main + join.strip(), space.group(1) if space else ""
    if join:
        if ":" in join:
            join = ": "
        if "-" in join or "—" in join:
            join = "—"
    return main, join, sub


def uppercase_subtitles(title: str, short: str | None = None, main_title: bool = True) -> str:
    """``title`` with the first word of each subtitle capitalised (when all lower case).

    ``main_title``: split off one main title first, as citeproc-js does for ``title``
    (not for ``container-title``, whose every part is capitalised).
    """
    main, join, sub = _main_and_sub(title, short) if main_title else (title, "", "")
    if main and sub:
        return main + join + str(capitalize_first(sub))
    parts = title_split(title)
    for i in range(0, len(parts), 2):
        parts[i] = str(capitalize_first(parts[i]))
    for i in range(1, len(parts) - 1, 2):
        m = re.search(r"([:?!] )", parts[i])
        if m:
            parts[i] = m.group(1)
        if "-" in parts[i] or "—" in parts[i]:
            parts[i] = "—"
    return "".join(parts)
