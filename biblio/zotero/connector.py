"""Metadata the Zotero Connector reads, so a visitor can save an item in one click.

Two standard forms, both made from the cached Zotero ``data``: COinS (an OpenURL
ContextObject in a ``<span class="Z3988" title="...">``; Zotero's COinS translator
finds one per item, so a list page offers "save all") and Highwire Press
``citation_*`` meta tags plus Dublin Core on item pages (Zotero's Embedded Metadata
translator). Values are plain text (rich-text markup removed); the templates escape
them as attribute values.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from biblio.zotero.richtext import plain

_GENRES = {
    "journalArticle": ("journal", "article"),
    "magazineArticle": ("journal", "article"),
    "newspaperArticle": ("journal", "article"),
    "book": ("book", "book"),
    "bookSection": ("book", "bookitem"),
    "conferencePaper": ("book", "proceeding"),
    "report": ("book", "report"),
    "thesis": ("dissertation", None),
}


def author_names(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(last, first, single) per author-like creator."""
    out = []
    for cr in data.get("creators") or []:
        if isinstance(cr, dict) and cr.get("creatorType", "author") in ("author", "editor"):
            out.append(
                (plain(cr.get("lastName")), plain(cr.get("firstName")), plain(cr.get("name")))
            )
    return out


def page_range(data: dict[str, Any]) -> tuple[str, str]:
    pages = plain(data.get("pages"))
    first, _, last = pages.replace("–", "-").partition("-")
    return first.strip(), last.strip()


def coins_title(data: dict[str, Any]) -> str:
    """The ``title`` attribute of a COinS span (an OpenURL 1.0 KEV ContextObject)."""
    item_type = str(data.get("itemType") or "")
    fmt, genre = _GENRES.get(item_type, ("dc", None))
    kev: list[tuple[str, str]] = [
        ("ctx_ver", "Z39.88-2004"),
        ("rft_val_fmt", f"info:ofi/fmt:kev:mtx:{fmt}"),
        ("rfr_id", "info:sid/biblio"),
    ]
    doi = plain(data.get("DOI"))
    if doi:
        kev.append(("rft_id", f"info:doi/{doi}"))
    if data.get("url"):
        kev.append(("rft_id", plain(data.get("url"))))
    title = plain(data.get("title"))
    if fmt == "journal":
        kev += [
            ("rft.genre", genre or "article"),
            ("rft.atitle", title),
            ("rft.jtitle", plain(data.get("publicationTitle"))),
            ("rft.volume", plain(data.get("volume"))),
            ("rft.issue", plain(data.get("issue"))),
        ]
    elif fmt == "book":
        kev.append(("rft.genre", genre or "book"))
        if item_type == "bookSection":
            kev += [("rft.atitle", title), ("rft.btitle", plain(data.get("bookTitle")))]
        else:
            kev.append(("rft.btitle", title))
        kev += [
            ("rft.pub", plain(data.get("publisher"))),
            ("rft.place", plain(data.get("place"))),
            ("rft.isbn", plain(data.get("ISBN"))),
        ]
    elif fmt == "dissertation":
        kev += [("rft.title", title), ("rft.inst", plain(data.get("university")))]
    else:
        kev += [("rft.type", item_type), ("rft.title", title)]
    spage, epage = page_range(data)
    kev += [
        ("rft.spage", spage),
        ("rft.epage", epage),
        ("rft.issn", plain(data.get("ISSN"))),
        ("rft.date", plain(data.get("date"))),
        ("rft.language", plain(data.get("language"))),
    ]
    for i, (last, first, single) in enumerate(author_names(data)):
        if fmt == "dc":
            kev.append(("rft.creator", single or ", ".join(p for p in (last, first) if p)))
        elif single:
            kev.append(("rft.au", single))
        else:
            if i == 0:
                kev += [("rft.aulast", last), ("rft.aufirst", first)]
            kev.append(("rft.au", ", ".join(p for p in (last, first) if p)))
    return urlencode([(k, v) for k, v in kev if v])


def highwire_meta(data: dict[str, Any], page_url: str) -> list[tuple[str, str]]:
    """``(name, content)`` pairs for ``<meta>`` tags on an item page."""
    meta: list[tuple[str, str]] = [("citation_title", plain(data.get("title")))]
    for last, first, single in author_names(data):
        meta.append(("citation_author", single or ", ".join(p for p in (last, first) if p)))
    date = plain(data.get("date"))
    item_type = str(data.get("itemType") or "")
    container = {
        "journalArticle": "citation_journal_title",
        "conferencePaper": "citation_conference_title",
        "bookSection": "citation_inbook_title",
    }.get(item_type)
    source = plain(
        data.get("publicationTitle") or data.get("proceedingsTitle") or data.get("bookTitle")
    )
    spage, epage = page_range(data)
    meta += [
        ("citation_publication_date", date),
        ("citation_doi", plain(data.get("DOI"))),
        ("citation_volume", plain(data.get("volume"))),
        ("citation_issue", plain(data.get("issue"))),
        ("citation_firstpage", spage),
        ("citation_lastpage", epage),
        ("citation_publisher", plain(data.get("publisher"))),
        ("citation_isbn", plain(data.get("ISBN"))),
        ("citation_issn", plain(data.get("ISSN"))),
        ("citation_language", plain(data.get("language"))),
        ("citation_abstract_html_url", page_url),
    ]
    if item_type == "thesis":
        meta.append(("citation_dissertation_institution", plain(data.get("university"))))
    if item_type == "report":
        meta.append(("citation_technical_report_institution", plain(data.get("institution"))))
    if container:
        meta.append((container, source))
    for tag in data.get("tags") or []:
        if isinstance(tag, dict) and tag.get("tag"):
            meta.append(("citation_keywords", plain(tag["tag"])))
    meta += [
        ("DC.title", plain(data.get("title"))),
        ("DC.date", date),
        ("DC.type", item_type),
        ("DC.description", plain(data.get("abstractNote"))),
    ]
    meta += [("DC.creator", a) for n, a in meta if n == "citation_author"]
    return [(n, v) for n, v in meta if v]
