"""schema.org metadata of a Zotero item, as the JSON-LD search engines read on item pages.

Beside the Highwire ``citation_*`` tags and COinS of :mod:`.connector` (which Google
Scholar and the Zotero Connector read), general search engines read schema.org
JSON-LD. :func:`json_ld` maps Zotero's item types to schema.org types
(``journalArticle`` is a ``ScholarlyArticle``, ``bookSection`` a ``Chapter``, ``thesis``
a ``Thesis``, …; anything else a ``CreativeWork``) and its fields to their properties:
creators as ``Person`` (``Organization`` for one-field names), the container as
``isPartOf`` (a ``Periodical`` through its volume and issue, or the ``Book`` of a
chapter), publisher, dates, pages, identifiers (DOI, ISBN, ISSN), abstract, keywords
and language. Values are plain text (Zotero's rich-text markup removed);
:func:`script_json` serialises the object so it can sit inside ``<script>`` safely.
"""

from __future__ import annotations

import json
import re
from typing import Any

from biblio.zotero.connector import page_range
from biblio.zotero.richtext import plain

#: Zotero item type -> schema.org type.
TYPES = {
    "journalArticle": "ScholarlyArticle",
    "conferencePaper": "ScholarlyArticle",
    "preprint": "ScholarlyArticle",
    "magazineArticle": "Article",
    "newspaperArticle": "NewsArticle",
    "encyclopediaArticle": "Article",
    "dictionaryEntry": "Article",
    "book": "Book",
    "bookSection": "Chapter",
    "thesis": "Thesis",
    "report": "Report",
    "webpage": "WebPage",
    "blogPost": "BlogPosting",
    "forumPost": "DiscussionForumPosting",
    "presentation": "PresentationDigitalDocument",
    "dataset": "Dataset",
    "computerProgram": "SoftwareSourceCode",
    "videoRecording": "VideoObject",
    "film": "Movie",
    "audioRecording": "AudioObject",
    "podcast": "PodcastEpisode",
    "radioBroadcast": "RadioEpisode",
    "tvBroadcast": "TVEpisode",
    "map": "Map",
    "artwork": "VisualArtwork",
    "manuscript": "Manuscript",
    "letter": "Message",
    "email": "EmailMessage",
    "statute": "Legislation",
    "bill": "Legislation",
    "document": "DigitalDocument",
}
#: Zotero fields naming the work a part belongs to, per schema.org container type.
_CONTAINERS = (
    ("publicationTitle", "Periodical"),
    ("proceedingsTitle", "Book"),
    ("bookTitle", "Book"),
    ("websiteTitle", "WebSite"),
    ("blogTitle", "Blog"),
    ("forumTitle", "WebSite"),
    ("encyclopediaTitle", "Book"),
    ("dictionaryTitle", "Book"),
)
_PUBLISHERS = ("publisher", "university", "institution", "distributor", "label", "studio")
_ISO_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def _person(creator: dict[str, Any]) -> dict[str, Any] | None:
    last, first, single = (plain(creator.get(f)) for f in ("lastName", "firstName", "name"))
    if single:
        return {"@type": "Organization", "name": single}
    if not (last or first):
        return None
    person = {"@type": "Person", "name": " ".join(p for p in (first, last) if p)}
    if last:
        person["familyName"] = last
    if first:
        person["givenName"] = first
    return person


def _creators(data: dict[str, Any], roles: tuple[str, ...]) -> list[dict[str, Any]]:
    people = [
        _person(c)
        for c in data.get("creators") or []
        if isinstance(c, dict) and c.get("creatorType", "author") in roles
    ]
    return [p for p in people if p]


def _date(data: dict[str, Any], parsed: str | None) -> str:
    """An ISO 8601 date: Zotero's parsed date (``2019-05-00`` trimmed), or the year."""
    text = (parsed or "").replace("-00", "")
    if _ISO_DATE.fullmatch(text):
        return text
    found = re.search(r"\b(1[5-9]|20)\d{2}\b", plain(data.get("date")))
    return found.group(0) if found else ""


def _container(data: dict[str, Any]) -> dict[str, Any] | None:
    for field, kind in _CONTAINERS:
        name = plain(data.get(field))
        if not name:
            continue
        node: dict[str, Any] = {"@type": kind, "name": name}
        if kind == "Periodical" and plain(data.get("ISSN")):
            node["issn"] = plain(data.get("ISSN"))
        if kind == "Book" and data.get("itemType") == "bookSection" and plain(data.get("ISBN")):
            node["isbn"] = plain(data.get("ISBN"))
        if kind == "Periodical":
            # An article is part of an issue, of a volume, of the periodical.
            for key, level, number in (
                ("volume", "PublicationVolume", "volumeNumber"),
                ("issue", "PublicationIssue", "issueNumber"),
            ):
                if plain(data.get(key)):
                    node = {"@type": level, number: plain(data.get(key)), "isPartOf": node}
        return node
    return None


def json_ld(data: dict[str, Any], page_url: str, parsed_date: str | None = None) -> dict[str, Any]:
    """The schema.org description of Zotero item ``data`` shown at ``page_url``."""
    item_type = str(data.get("itemType") or "")
    kind = TYPES.get(item_type, "CreativeWork")
    title = plain(data.get("title"))
    node: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": kind,
        "@id": page_url,
        "url": page_url,
        "name": title,
    }
    if kind in ("ScholarlyArticle", "Article", "NewsArticle", "BlogPosting"):
        node["headline"] = title[:110]  # search engines cut headlines at 110 characters
    for prop, roles in (
        ("author", ("author", "contributor", "programmer", "artist", "presenter")),
        ("editor", ("editor", "seriesEditor", "bookAuthor")),
    ):
        people = _creators(data, roles)
        if people:
            node[prop] = people
    date = _date(data, parsed_date)
    if date:
        node["datePublished"] = date
    container = _container(data)
    if container:
        node["isPartOf"] = container
    publisher = next((plain(data.get(f)) for f in _PUBLISHERS if plain(data.get(f))), "")
    if publisher:
        node["publisher"] = {"@type": "Organization", "name": publisher}
        if kind == "Thesis":
            node["sourceOrganization"] = node["publisher"]
    first, last = page_range(data)
    if first:
        node["pageStart"] = first
    if last:
        node["pageEnd"] = last
    if plain(data.get("numPages")):
        node["numberOfPages"] = plain(data.get("numPages"))
    doi = plain(data.get("DOI"))
    if doi:
        node["identifier"] = {"@type": "PropertyValue", "propertyID": "DOI", "value": doi}
        node["sameAs"] = f"https://doi.org/{doi}"
    if kind == "Book" and plain(data.get("ISBN")):
        node["isbn"] = plain(data.get("ISBN"))
    for prop, field in (("abstract", "abstractNote"), ("inLanguage", "language")):
        if plain(data.get(field)):
            node[prop] = plain(data.get(field))
    keywords = [
        plain(t["tag"])
        for t in data.get("tags") or []
        if isinstance(t, dict) and isinstance(t.get("tag"), str) and t["tag"].strip()
    ]
    if keywords:
        node["keywords"] = keywords
    return node


def script_json(value: Any) -> str:
    """``value`` as JSON that cannot end or comment out the ``<script>`` holding it:
    ``<``, ``>`` and ``&`` become Unicode escapes, which JSON readers decode back."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
