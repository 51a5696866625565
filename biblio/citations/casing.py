"""CSL ``text-case`` the way citeproc-js applies it, on citeproc-py's (Mixed)Strings.

citeproc-py title-cases only words it splits on spaces, skips any word that starts with a
quote or marker, and treats labels as non-English. Here text is handled character by
character so formatting markers and quotes are transparent, ``<span class="nocase">`` parts
(citeproc-py ``NoCase`` segments) are left alone, hyphenated parts are cased separately, and
the stop-word list is citeproc-js's (prepositions, articles, conjunctions).
"""

from __future__ import annotations

import re

from citeproc.string import MixedString, NoCase, String

from .markup import ALL_MARKERS
from .state import state

_STOP = """about above across afore after against along alongside amid amidst among amongst
anenst apropos apud around as aside astride at athwart atop barring before behind below
beneath beside besides between beyond but by circa despite down during except for forenenst
from given in inside into lest like modulo near next notwithstanding of off on onto out over
per plus pro qua sans since than through thru throughout thruout till to toward towards under
underneath until unto up upon versus vs. v. vs v via vis-à-vis with within without or yet so
and nor a an the de d' von van c et ca"""
STOP_WORDS = frozenset(_STOP.split())
_SKIP_CHARS = set(ALL_MARKERS) | set("\"'“”‘’«»([{¿¡")


def _flatten(text) -> list[tuple[str, bool]]:
    if isinstance(text, MixedString):
        out: list[tuple[str, bool]] = []
        for seg in text:
            out.extend(_flatten(seg))
        return out
    nocase = isinstance(text, NoCase)
    return [(ch, nocase) for ch in str(text)]


def _rebuild(chars: list[tuple[str, bool]]):
    segments: list[tuple[list[str], bool]] = []
    for ch, nocase in chars:
        if segments and segments[-1][1] == nocase:
            segments[-1][0].append(ch)
        else:
            segments.append(([ch], nocase))
    parts = [NoCase("".join(c)) if nc else String("".join(c)) for c, nc in segments]
    if len(parts) == 1:
        return parts[0]
    return MixedString(parts) if parts else String("")


def _words(chars):
    """Yield (start, end) index pairs of space-separated words."""
    i, n = 0, len(chars)
    while i < n:
        while i < n and chars[i][0].isspace():
            i += 1
        start = i
        while i < n and not chars[i][0].isspace():
            i += 1
        if start < i:
            yield start, i


def _first_letter(chars, start, end):
    for k in range(start, end):
        ch = chars[k][0]
        if ch in _SKIP_CHARS:
            continue
        return k if ch.isalpha() else None
    return None


def _upper_at(chars, k):
    ch, nocase = chars[k]
    if not nocase:
        chars[k] = (ch.upper(), nocase)


def _plain(chars, start, end) -> str:
    return "".join(c for c, _ in chars[start:end] if c not in _SKIP_CHARS)


def title_case(text):
    chars = _flatten(text)
    first = True
    after_colon = False
    for start, end in _words(chars):
        word = _plain(chars, start, end)
        # hyphenated words are cased part by part
        part_start = start
        for k in range(start, end + 1):
            if k == end or (
                chars[k][0] in "-\u2010/:." and k + 1 < end and chars[k + 1][0].isalpha()
            ):
                core = _plain(chars, part_start, k)
                lowered = core.rstrip(".,;:!?").lower()
                if core and core == core.lower():
                    # citeproc-js capitalises words of two or more letters that are not
                    # stop words, a single letter only first, after a colon or before a
                    # hyphen ("y/Our", "X-ray")
                    wanted = len(lowered) > 1 and lowered not in STOP_WORDS
                    before_hyphen = k < end and chars[k][0] in "-\u2010"
                    if wanted or first or after_colon or (before_hyphen and len(lowered) == 1):
                        idx = _first_letter(chars, part_start, k)
                        if idx is not None:
                            _upper_at(chars, idx)
                part_start = k + 1
                first = False if core else first
        after_colon = bool(re.search(r"[:?!.]$", word))
    return _rebuild(chars)


def sentence_case(text):
    chars = _flatten(text)
    letters = [c for c, nc in chars if c.isalpha() and not nc]
    if letters and all(c.isupper() for c in letters):
        chars = [(c.lower() if not nc else c, nc) for c, nc in chars]
    return capitalize_first(_rebuild(chars))


def capitalize_first(text):
    chars = _flatten(text)
    for start, end in _words(chars):
        idx = _first_letter(chars, start, end)
        # a word that already has capitals ("arXiv", "iPhone") stays as it is (citeproc-js)
        word = _plain(chars, start, end)
        if idx is not None and chars[idx][0].islower() and word == word.lower():
            _upper_at(chars, idx)
        break
    return _rebuild(chars)


def capitalize_all(text):
    chars = _flatten(text)
    for start, end in _words(chars):
        idx = _first_letter(chars, start, end)
        word = _plain(chars, start, end)
        if idx is not None and word == word.lower():
            _upper_at(chars, idx)
    return _rebuild(chars)


def apply_case(text, text_case: str | None, english: bool = True):
    if not text_case or text is None:
        return text
    if text_case in ("lowercase", "uppercase"):
        change = str.lower if text_case == "lowercase" else str.upper
        return _rebuild([(c if nc else change(c), nc) for c, nc in _flatten(text)])
    if text_case == "capitalize-first":
        return capitalize_first(text)
    if text_case == "capitalize-all":
        return capitalize_all(text)
    if text_case == "title":
        return title_case(text) if english else text
    if text_case == "sentence":
        return sentence_case(text)
    return text


class CaseMixin:
    """Replaces citeproc-py's ``TextCased.case`` on the element classes we register."""

    def case(self, text, language=None):
        text_case = self.get("text-case") if self.mutable_attributes else self.attr("text-case")
        if not text_case:
            return text
        lang = language if language is not None else state.language
        english = not lang or str(lang).lower().startswith("en")
        return apply_case(text, text_case, english)
