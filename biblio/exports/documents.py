"""Formatted bibliographies as documents: HTML, plain text, RTF and DOCX.

Each builder takes a :class:`Bibliography` (title, optional intro, entries already
rendered by the citation layer in the matching format, optional per-item notes, the
items removed from the library, a description of the selection and the CSL
attribution) and returns the document. Entry text comes escaped from the citation
layer (HTML, RTF); everything else here — titles, intros, notes — is escaped by these
builders: HTML with ``html.escape``, RTF by hand (``\\ { }`` escaped, non-ASCII as
``\\uN?`` UTF-16 units), DOCX through python-docx runs built from the entry HTML
(``<i>``, ``<b>``, small caps, super/subscript, underline). Notes are printed under
their entry in every format; a DOCX file carries the title, the site as author and
the time it was made as its own properties.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser

from docx import Document
from docx.document import Document as DocxDocument
from docx.shared import Inches, Pt

from biblio import controlchars
from biblio.citations import ATTRIBUTION, Entry

#: The citation layer's inline styles, as classes (the site's CSP forbids inline styles).
_STYLE_CLASSES = {
    "font-variant:small-caps;": "csl-sc", "font-variant:normal;": "csl-normal",
    "font-style:normal;": "csl-normal", "font-weight:normal;": "csl-normal",
    "text-decoration:underline;": "csl-ul", "text-decoration:none;": "csl-normal",
}  # fmt: skip
_STYLE_ATTR = re.compile(r'<span style="([^"<>]*)">')


@dataclass
class Bibliography:
    title: str
    entries: list[Entry]
    intro: str = ""
    notes: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    description: str = ""
    author: str = ""  # who made the document: the site (the group's name)


def clean(text: str) -> str:
    """Drop control characters that no document format can hold."""
    return controlchars.strip(text)


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", clean(text)) if p.strip()]


def page_html(entry_html: str) -> str:
    """Entry HTML for the site's own pages: inline styles become ``csl-*`` classes."""
    return _STYLE_ATTR.sub(
        lambda m: f'<span class="{_STYLE_CLASSES.get(m.group(1), "csl-normal")}">', entry_html
    )


# -- HTML -----------------------------------------------------------------------------

_HTML_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: Georgia, serif; max-width: 45em; margin: 2em auto; line-height: 1.5; }}
.csl-entry {{ padding-left: 2em; text-indent: -2em; margin: 0 0 .6em; }}
.note {{ margin: -.3em 0 .8em 2em; font-style: italic; }}
footer {{ margin-top: 2em; font-size: .85em; color: #444; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
"""


def html_document(bib: Bibliography) -> str:
    """A standalone HTML file of the bibliography (entries in the ``html`` format)."""
    esc = html.escape
    out = [_HTML_HEAD.format(title=esc(clean(bib.title)))]
    out += [f"<p>{esc(p)}</p>\n" for p in paragraphs(bib.intro)]
    out.append('<div class="csl-bib-body">\n')
    for e in bib.entries:
        out.append(f'<div class="csl-entry" id="{esc(e.id)}">{e.text}</div>\n')
        note = clean(bib.notes.get(e.id, "")).strip()
        if note:
            out.append(f'<p class="note">{esc(note)}</p>\n')
    out.append("</div>\n")
    for label in bib.removed:
        out.append(f'<p class="removed">Removed from the library: {esc(clean(label))}</p>\n')
    out.append("</main>\n<footer>\n")
    if bib.description:
        out.append(f"<p>{esc(clean(bib.description))}</p>\n")
    out.append(f"<p>{ATTRIBUTION.html()}</p>\n</footer>\n</body>\n</html>\n")
    return "".join(out)


# -- plain text -----------------------------------------------------------------------


def text_document(bib: Bibliography) -> str:
    """A plain-text bibliography (entries in the ``text`` format)."""
    out = [clean(bib.title), "=" * min(len(clean(bib.title)), 78), ""]
    for p in paragraphs(bib.intro):
        out += [p, ""]
    for e in bib.entries:
        out.append(clean(e.text))
        note = clean(bib.notes.get(e.id, "")).strip()
        if note:
            out.append("    Note: " + " ".join(note.split()))
        out.append("")
    for label in bib.removed:
        out += [f"[Removed from the library: {clean(label)}]", ""]
    if bib.description:
        out.append(clean(bib.description))
    out.append(ATTRIBUTION.text)
    return "\n".join(out) + "\n"


# -- RTF ------------------------------------------------------------------------------


def rtf_escape(text: str) -> str:
    """Plain text as RTF: ``\\ { }`` escaped, non-ASCII as ``\\uN?``, newlines as ``\\line``."""
    out = []
    for ch in clean(text):
        code = ord(ch)
        if ch in "\\{}":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\line ")
        elif code > 127:
            data = ch.encode("utf-16-le")
            for i in range(0, len(data), 2):
                unit = int.from_bytes(data[i : i + 2], "little")
                out.append(f"\\u{unit - 65536 if unit > 32767 else unit}?")
        else:
            out.append(ch)
    return "".join(out)


def rtf_document(bib: Bibliography) -> str:
    """An RTF document (entries in the citation layer's ``rtf`` format)."""
    out = [
        r"{\rtf1\ansi\ansicpg1252\deff0\uc1",
        r"{\fonttbl{\f0\froman\fcharset0 Times New Roman;}}",
        r"\f0\fs24\sa120",
        r"{\pard\sa240\b\fs32 " + rtf_escape(bib.title) + r"\par}",
    ]
    for p in paragraphs(bib.intro):
        out.append(r"{\pard\sa200 " + rtf_escape(p) + r"\par}")
    for e in bib.entries:
        out.append(r"{\pard\li720\fi-720\sa120 " + clean(e.text) + r"\par}")
        note = clean(bib.notes.get(e.id, "")).strip()
        if note:
            out.append(r"{\pard\li720\sa200\i " + rtf_escape(note) + r"\par}")
    for label in bib.removed:
        out.append(r"{\pard\sa120 " + rtf_escape(f"[Removed from the library: {label}]") + r"\par}")
    if bib.description:
        out.append(r"{\pard\sb240\fs18 " + rtf_escape(bib.description) + r"\par}")
    out.append(r"{\pard\fs18 " + rtf_escape(ATTRIBUTION.text) + r"\par}")
    out.append("}")
    return "\n".join(out) + "\n"


# -- DOCX -----------------------------------------------------------------------------


class _Runs(HTMLParser):
    """Entry HTML → (text, formatting) runs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.runs: list[tuple[str, dict[str, bool]]] = []
        self.stack: list[dict[str, bool]] = []

    def _current(self) -> dict[str, bool]:
        fmt: dict[str, bool] = {}
        for layer in self.stack:
            fmt.update(layer)
        return fmt

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        style = dict(attrs).get("style") or ""
        layer = {
            "i": {"italic": True},
            "em": {"italic": True},
            "b": {"bold": True},
            "strong": {"bold": True},
            "sup": {"superscript": True},
            "sub": {"subscript": True},
        }.get(tag, {})
        if "small-caps" in style:
            layer = {"small_caps": True}
        elif "underline" in style:
            layer = {"underline": True}
        elif "font-style:normal" in style:
            layer = {"italic": False}
        elif "font-weight:normal" in style:
            layer = {"bold": False}
        if tag not in ("br", "img", "hr"):
            self.stack.append(layer)

    def handle_endtag(self, tag: str) -> None:
        if self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if data:
            self.runs.append((data, self._current()))


def _properties(doc: DocxDocument, bib: Bibliography) -> None:
    """The file's own properties: the list's title, the site as author, made now.

    python-docx's blank template says it was written by "python-docx" in 2013 with a
    "generated by python-docx" comment; Word shows those in File > Info."""
    props = doc.core_properties
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    author = clean(bib.author or "biblio")[:255]
    props.title = clean(bib.title)[:255]
    props.author = author
    props.last_modified_by = author
    props.created = now
    props.modified = now
    props.revision = 1
    props.comments = clean(bib.description)[:255]
    props.subject = ""
    props.keywords = ""
    props.category = ""


def docx_bytes(bib: Bibliography) -> bytes:
    """A Word document (entries in the ``html`` format, turned into formatted runs)."""
    doc = Document()
    _properties(doc, bib)
    doc.add_heading(clean(bib.title), level=1)
    for p in paragraphs(bib.intro):
        doc.add_paragraph(p)
    for e in bib.entries:
        para = doc.add_paragraph()
        para.paragraph_format.left_indent = Inches(0.5)
        para.paragraph_format.first_line_indent = Inches(-0.5)
        parser = _Runs()
        parser.feed(e.text)
        parser.close()
        for text, fmt in parser.runs:
            run = para.add_run(clean(text))
            for name, value in fmt.items():
                if name == "superscript":
                    run.font.superscript = value
                elif name == "subscript":
                    run.font.subscript = value
                else:
                    setattr(run.font, name, value)
        note = clean(bib.notes.get(e.id, "")).strip()
        if note:
            note_para = doc.add_paragraph()
            note_para.paragraph_format.left_indent = Inches(0.5)
            note_para.add_run(note).italic = True
    for label in bib.removed:
        doc.add_paragraph(f"[Removed from the library: {clean(label)}]")
    footer = doc.add_paragraph()
    footer.add_run(
        "\n".join(x for x in (clean(bib.description), ATTRIBUTION.text) if x)
    ).font.size = Pt(8)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()
