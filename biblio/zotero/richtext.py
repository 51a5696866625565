"""Zotero rich text and HTML notes, made safe to show: nh3 sanitizing to small allow-lists.

Zotero keeps a little markup inside plain fields (titles and the like): ``<i>``,
``<b>``, ``<sub>``, ``<sup>``, ``<span class="nocase">`` and small caps written as
``<span style="font-variant:small-caps;">``. :func:`inline` keeps exactly those
(small caps become a class, because the site's CSP forbids inline styles) and
escapes or drops everything else. Notes and the group description are HTML:
:func:`block` keeps structural tags and safe links only. :func:`plain` gives the
text alone, for ``<title>``, meta tags and feeds' plain fields. :func:`finalize` is
the templates' last step for every value they print (HTML pages and the Atom feed):
it drops control characters (:mod:`biblio.controlchars`), which no page may carry and
which make XML invalid. Everything here returns :class:`markupsafe.Markup` or ``str``
and never fails on odd input.
"""

from __future__ import annotations

import html
import re

import nh3
from markupsafe import Markup

from biblio import controlchars

_SMALL_CAPS_RE = re.compile(
    r"""<span\s+style\s*=\s*["']\s*font-variant\s*:\s*small-caps\s*;?\s*["']\s*>""", re.I
)
_TAG_RE = re.compile(r"<[^>]*>")
# Text that merely looks like a tag ("<3", "a < b") must survive as text.
_LOOSE_LT_RE = re.compile(r"<(?![a-zA-Z/!])")

INLINE_TAGS = {"i", "b", "em", "strong", "sub", "sup", "span"}
BLOCK_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "code",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
_DROP_CONTENT = {"script", "style", "template", "noscript", "iframe", "object", "title"}


def inline(value: object) -> Markup:
    """Zotero's field markup kept, everything else escaped or stripped."""
    text = "" if value is None else str(value)
    text = _SMALL_CAPS_RE.sub('<span class="smallcaps">', text)
    text = _LOOSE_LT_RE.sub("&lt;", text)
    cleaned = nh3.clean(
        text,
        tags=INLINE_TAGS,
        clean_content_tags=_DROP_CONTENT,
        attributes={},
        allowed_classes={"span": {"nocase", "smallcaps"}},
        link_rel=None,
    )
    return Markup(cleaned)  # noqa: S704 (nh3 output is sanitized HTML)


def block(value: object) -> Markup:
    """An HTML note or description, structural tags and http(s)/mailto links only."""
    text = "" if value is None else str(value)
    cleaned = nh3.clean(
        text,
        tags=BLOCK_TAGS,
        clean_content_tags=_DROP_CONTENT,
        attributes={
            "a": {"href", "title"},
            "td": {"colspan", "rowspan"},
            "th": {"colspan", "rowspan"},
        },
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(cleaned)  # noqa: S704 (nh3 output is sanitized HTML)


def plain(value: object) -> str:
    """The text without any markup (entities decoded), whitespace collapsed."""
    text = "" if value is None else str(value)
    return " ".join(html.unescape(_TAG_RE.sub("", text)).split())


def finalize(value: object) -> object:
    """What a template prints for ``value``: text without control characters (sanitized
    markup stays markup: removing a character cannot make a tag)."""
    if isinstance(value, Markup):
        return Markup(controlchars.strip(str(value)))  # noqa: S704 (was Markup already)
    if isinstance(value, str):
        return controlchars.strip(value)
    return value
