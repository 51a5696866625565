"""Private-use markers that carry formatting through citeproc-py, and the output writers.

citeproc-py treats every field as plain text, so rich text in titles (``<i>``, ``<b>``,
``<sup>``, ``<sub>``, small caps) and the style's own formatting and quotes are carried
through the engine as single private-use characters that text-case rules leave alone. After
rendering, :func:`finish` turns them into HTML (escaping every field value), plain text or
RTF, and applies the typographic rules citeproc-js applies at the end: flip-flopping nested
italics/bold, alternating double/single quotes by depth, moving punctuation inside closing
quotes when the locale asks for it, and dropping a period after ``?``/``!``.
"""

from __future__ import annotations

import html
import re

from citeproc.string import String

# Paired markers: (open, close). Style formatting and user rich text share them so that
# nesting flips the same way citeproc-js does.
ITALIC = ("\ue000", "\ue001")
BOLD = ("\ue002", "\ue003")
SMALLCAPS = ("\ue004", "\ue005")
SUP = ("\ue006", "\ue007")
SUB = ("\ue008", "\ue009")
UNDERLINE = ("\ue00a", "\ue00b")
QUOTE = ("\ue00c", "\ue00d")
NOFORMAT = ("\ue00e", "\ue00f")  # "light" weight or explicit normal: kept as a plain span

MARKERS = (ITALIC, BOLD, SMALLCAPS, SUP, SUB, UNDERLINE, QUOTE, NOFORMAT)
ALL_MARKERS = "".join(a + b for a, b in MARKERS)
OPENERS = {pair[0]: pair for pair in MARKERS}
CLOSERS = {pair[1]: pair for pair in MARKERS}
_PUA = re.compile("[\ue000-\ue0ff]")
_STRIP_MARKERS = re.compile(f"[{ALL_MARKERS}]")


def strip_markers(text: str) -> str:
    return _STRIP_MARKERS.sub("", text)


def scrub_input(text: str) -> str:
    """Remove our marker range from user input so it cannot forge formatting."""
    return _PUA.sub("", text)


class _Wrap:
    """A formatter factory compatible with citeproc-py's ``formatter.Italic(text)`` calls."""

    def __init__(self, pair: tuple[str, str]) -> None:
        self.pair = pair

    def __call__(self, text):
        return String(self.pair[0]) + text + String(self.pair[1])


class MarkerFormatter:
    """The formatter handed to citeproc-py: every style format becomes a marker pair."""

    Italic = _Wrap(ITALIC)
    Oblique = _Wrap(ITALIC)
    Bold = _Wrap(BOLD)
    Light = _Wrap(NOFORMAT)
    Underline = _Wrap(UNDERLINE)
    Superscript = _Wrap(SUP)
    Subscript = _Wrap(SUB)
    SmallCaps = _Wrap(SMALLCAPS)

    @staticmethod
    def preformat(text):
        return text


# --- typographic clean-up on marker text ----------------------------------------------------

_CLOSE_CLASS = "".join(re.escape(p[1]) for p in MARKERS)
_OPEN_CLASS = "".join(re.escape(p[0]) for p in MARKERS)


def _typography(text: str, punctuation_in_quote: bool) -> str:
    q_close = re.escape(QUOTE[1])
    closers = f"[{_CLOSE_CLASS}]*"
    # "Why?." -> "Why?"; "end." + "." across markers -> "end."
    text = re.sub(f"([?!.])({closers})\\.(?!\\.)", _drop_period, text)
    if punctuation_in_quote:
        # “Title”, -> “Title,”  (formatting closed inside the quote stays put)
        text = re.sub(f"({q_close})({closers})([.,])", r"\3\1\2", text)
        text = re.sub(f"([?!.])({closers})\\.(?!\\.)", _drop_period, text)
        text = re.sub(f"([,])({closers})\\.", r"\1\2", text)
    # doubled , ; : across markers
    text = re.sub(f"([,;:])([{_CLOSE_CLASS}]+)\\1", r"\1\2", text)
    # empty pairs left by empty variables
    for o, c in MARKERS:
        text = text.replace(o + c, "")
    return text


def _drop_period(m: re.Match) -> str:
    before, closers = m.group(1), m.group(2)
    if before == "." and not closers:
        return m.group(0)  # ".." inside text ("..." ellipses) is the author's
    return before + closers


# --- writers ----------------------------------------------------------------------------

_HTML_TAGS = {
    ITALIC: ("<i>", "</i>", '<span style="font-style:normal;">', "</span>"),
    BOLD: ("<b>", "</b>", '<span style="font-weight:normal;">', "</span>"),
    SMALLCAPS: (
        '<span style="font-variant:small-caps;">',
        "</span>",
        '<span style="font-variant:normal;">',
        "</span>",
    ),
    SUP: ("<sup>", "</sup>", "<sup>", "</sup>"),
    SUB: ("<sub>", "</sub>", "<sub>", "</sub>"),
    UNDERLINE: (
        '<span style="text-decoration:underline;">',
        "</span>",
        '<span style="text-decoration:none;">',
        "</span>",
    ),
    NOFORMAT: ('<span style="font-weight:normal;">', "</span>", "<span>", "</span>"),
}
_RTF_TAGS = {
    ITALIC: ("{\\i ", "}", "{\\i0 ", "}"),
    BOLD: ("{\\b ", "}", "{\\b0 ", "}"),
    SMALLCAPS: ("{\\scaps ", "}", "{\\scaps0 ", "}"),
    SUP: ("{\\super ", "}", "{\\super ", "}"),
    SUB: ("{\\sub ", "}", "{\\sub ", "}"),
    UNDERLINE: ("{\\ul ", "}", "{\\ul0 ", "}"),
    NOFORMAT: ("{", "}", "{", "}"),
}


def _rtf_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in "\\{}":
            out.append("\\" + ch)
        elif ord(ch) > 127:
            code = ord(ch)
            if code > 0xFFFF:  # RTF wants UTF-16 code units
                b = ch.encode("utf-16-le")
                for i in range(0, len(b), 2):
                    unit = int.from_bytes(b[i : i + 2], "little")
                    out.append(f"\\u{unit - 65536 if unit > 32767 else unit}?")
            else:
                out.append(f"\\u{code - 65536 if code > 32767 else code}?")
        elif ch == "\n":
            out.append("\\line ")
        else:
            out.append(ch)
    return "".join(out)


def finish(
    text: str,
    fmt: str,
    quotes: tuple[str, str, str, str] = ("\u201c", "\u201d", "\u2018", "\u2019"),
    punctuation_in_quote: bool = True,
) -> str:
    """Turn marker text into the final ``html``, ``text`` or ``rtf`` string."""
    text = _typography(text, punctuation_in_quote)
    escape = {
        "html": lambda s: html.escape(s, quote=True),
        "rtf": _rtf_escape,
    }.get(fmt, lambda s: s)
    tags = {"html": _HTML_TAGS, "rtf": _RTF_TAGS}.get(fmt)
    out: list[str] = []
    depth: dict[tuple[str, str], int] = {pair: 0 for pair in MARKERS}
    stack: list[tuple[tuple[str, str], str]] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.append(escape("".join(buf)))
            buf.clear()

    for ch in text:
        if ch in OPENERS:
            flush()
            pair = OPENERS[ch]
            if pair is QUOTE:
                level = depth[pair] % 2
                out.append(escape(quotes[0] if level == 0 else quotes[2]))
                closing = escape(quotes[1] if level == 0 else quotes[3])
            elif tags:
                flipped = depth[pair] % 2 == 1
                o, c, fo, fc = tags[pair]
                out.append(fo if flipped else o)
                closing = fc if flipped else c
            else:
                closing = ""
            depth[pair] += 1
            stack.append((pair, closing))
        elif ch in CLOSERS:
            flush()
            pair = CLOSERS[ch]
            # close the innermost matching marker; tolerate crossed markers
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][0] is pair:
                    out.append(stack.pop(i)[1])
                    depth[pair] -= 1
                    break
        else:
            buf.append(ch)
    flush()
    while stack:
        out.append(stack.pop()[1])
    return "".join(out)
