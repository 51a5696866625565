"""An item's text as the prong tagger and the learned vocabulary read it.

One normalisation for both (HTML removed, entities decoded, Unicode folded,
lower-cased), the fields searched (title, abstract, tags, collections with their
ancestors, publication, type, notes) and the test for a prong-naming Zotero tag.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from biblio.zotero.schema import CONTAINER_FIELDS

_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})
#: Zotero fields that name the container a work appeared in.
PUBLICATION_FIELDS = CONTAINER_FIELDS


def normalise(value: Any) -> str:
    """Plain, lower-cased text: HTML tags dropped, entities decoded, Unicode folded."""
    if not isinstance(value, str) or not value:
        return ""
    text = value
    if "<" in text:
        text = _TAG_RE.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return _SPACE_RE.sub(" ", text).strip().casefold()


def is_prefix_tag(name: str, tag_prefix: str) -> bool:
    """Whether a Zotero tag names a prong by the prefix ("prong:pathways"); "" turns it off."""
    return bool(tag_prefix) and name.strip().casefold().startswith(tag_prefix)


def collection_paths(collections: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """Names of the item's collections and all their ancestors, in order, no repeats."""
    names: dict[str, None] = {}
    for start in keys:
        key: Any = start
        seen = set()
        while isinstance(key, str) and key in collections and key not in seen:
            seen.add(key)
            entry = collections[key]
            if isinstance(entry, Mapping):
                names.setdefault(str(entry.get("name") or ""), None)
                key = entry.get("parent_key") or entry.get("parentCollection") or None
            else:
                names.setdefault(str(entry), None)
                key = None
    return [n for n in names if n]


def item_fields(
    data: Mapping[str, Any], collection_names: list[str], notes: Iterable[str], tag_prefix: str
) -> tuple[dict[str, str], list[str]]:
    """The searchable fields of an item, and its raw tag names."""
    raw = [t.get("tag") for t in data.get("tags") or [] if isinstance(t, Mapping)]
    tags: list[str] = [t for t in raw if isinstance(t, str) and t.strip()]
    text_tags = [t for t in tags if not is_prefix_tag(t, tag_prefix)]
    pubs = [data.get(f) for f in PUBLICATION_FIELDS]
    fields = {
        "title": normalise(
            " ".join(
                str(v) for v in (data.get("title"), data.get("shortTitle")) if isinstance(v, str)
            )
        ),
        "abstract": normalise(data.get("abstractNote")),
        # " | " keeps phrases from running across two tags or names.
        "tags": " | ".join(normalise(t) for t in text_tags),
        "collections": " | ".join(normalise(c) for c in collection_names),
        "publication": " | ".join(normalise(p) for p in pubs if isinstance(p, str) and p),
        "type": normalise(data.get("itemType")),
        "notes": " | ".join(normalise(n) for n in notes),
    }
    return fields, tags
