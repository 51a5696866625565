"""Zotero's own schema (``biblio/data/zotero-schema.json``): item types, fields, labels.

Read once per process. The CSL-JSON mapping (:mod:`.csljson`) takes its field and
type tables from it; pages and facets take the English labels Zotero shows
("Journal Article", "Publication", "Editor").
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

#: Zotero fields that name the container a work appeared in (journal, book, conference,
#: website, series), in order of preference; the prong tagger and the search index read
#: these.
CONTAINER_FIELDS = (
    "publicationTitle",
    "bookTitle",
    "proceedingsTitle",
    "conferenceName",
    "websiteTitle",
    "blogTitle",
    "forumTitle",
    "encyclopediaTitle",
    "dictionaryTitle",
    "programTitle",
    "seriesTitle",
    "series",
)


@cache
def schema() -> dict[str, Any]:
    """The whole schema, parsed once."""
    text = resources.files("biblio").joinpath("data/zotero-schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _labels() -> dict[str, dict[str, str]]:
    labels: dict[str, dict[str, str]] = schema()["locales"]["en-US"]
    return labels


def field_label(name: str) -> str:
    """Zotero's English label of an item field ("publicationTitle" -> "Publication")."""
    return _labels()["fields"].get(name, name)


def type_label(item_type: str) -> str:
    """Zotero's English label of an item type ("journalArticle" -> "Journal Article")."""
    return _labels()["itemTypes"].get(item_type, item_type)


def creator_label(creator_type: str) -> str:
    """Zotero's English label of a creator type ("bookAuthor" -> "Book Author")."""
    return _labels()["creatorTypes"].get(creator_type, creator_type)
