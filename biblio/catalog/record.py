"""One item as its page shows it: labelled fields, creators, links, notes, prongs, citation.

:func:`item_record` reads an item and its children from the cache and returns a plain
dict the item page, its ``.json`` twin and the Connector metadata share. Field and
type labels come from Zotero's own schema (:mod:`biblio.zotero.schema`).
The "cite as" text comes from the render cache, else from the citation layer
(:mod:`biblio.citations`); if rendering fails, the record simply has no citation, so
the page still renders.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import false, select
from sqlalchemy.engine import Engine

from biblio import storage as st
from biblio.catalog import items as catalog
from biblio.catalog.filters import live_items
from biblio.citations import render_citation
from biblio.zotero.csljson import to_csl
from biblio.zotero.schema import creator_label, field_label, type_label

log = logging.getLogger(__name__)

# Shown in their own sections (or not at all), not in the field table.
SPECIAL_FIELDS = {
    "key",
    "version",
    "itemType",
    "creators",
    "tags",
    "collections",
    "relations",
    "abstractNote",
    "note",
    "parentItem",
    "deleted",
    "dateAdded",
    "dateModified",
    "title",
    "url",
    "DOI",
    "inPublications",
}


def doi_url(doi: str) -> str | None:
    doi = doi.strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "http://dx.doi.org/", "doi:"):
        if doi.lower().startswith(prefix):
            doi = doi[len(prefix) :]
    return f"https://doi.org/{doi}" if doi.startswith("10.") else None


def safe_url(url: str) -> str | None:
    url = (url or "").strip()
    return url if url.lower().startswith(("http://", "https://")) else None


def _citation(
    key: str, version: int, data: dict[str, Any], settings: Mapping[str, Any], style: str, conn: Any
) -> str | None:
    locale = settings["citations"]["locale"]
    rc = st.rendered_citations.c
    cached = conn.execute(
        select(rc.text).where(
            rc.item_key == key,
            rc.style == style,
            rc.locale == locale,
            rc.fmt == "html",
            rc.item_version == version,
        )
    ).scalar()
    if cached:
        return str(cached)
    try:
        return render_citation(
            to_csl(data, key), style, locale, "html", settings["citations"]["styles_dir"]
        )
    except Exception:  # a bad style or item never breaks the item page
        log.exception("could not render %s in %s", key, style)
        return None


def reason_text(reason: object) -> str | None:
    """One tagger reason in plain words (None for ones that did not count)."""
    if not isinstance(reason, dict):
        return str(reason)
    kind = reason.get("kind")
    if kind in ("tag", "prefix-tag"):
        return f"tagged “{reason.get('tag')}” in Zotero (taken as given)"
    if kind == "collection":
        return f"in the collection “{reason.get('collection')}” (taken as given)"
    if kind == "override":
        note = reason.get("note")
        return "set by a group owner" + (f": {note}" if note else "")
    if kind == "model":
        if not reason.get("counted"):
            return None
        terms = ", ".join(f"“{t}” +{c:g}" for t, c in (reason.get("terms") or [])[:4])
        how = "assigns at" if reason.get("verdict") == "assigns" else "confirms the rules at"
        level = reason.get("assign" if reason.get("verdict") == "assigns" else "confirm")
        return (
            f"learned vocabulary: probability {reason.get('probability', 0):.2f} "
            f"({how} {level:g})" + (f"; its heaviest terms: {terms}" if terms else "")
        )
    if kind in ("phrase", "regex"):
        if not reason.get("counted", True) or (reason.get("contribution") or 0) <= 0:
            return None
        return (
            f"“{reason.get('match') or reason.get('pattern')}” in the {reason.get('field')}"
            f" (+{reason.get('contribution') or 0:g})"
        )
    return str(kind or "rule")


def item_record(
    engine: Engine, key: str, settings: Mapping[str, Any], style: str | None = None
) -> dict[str, Any] | None:
    """The display record of live item ``key``, or None if there is no such item."""
    i = st.items.c
    with st.connect(engine) as conn:
        row = conn.execute(select(st.items).where(i.key == key, live_items())).mappings().first()
        if row is None:
            return None
        data = dict(row["data"] or {})
        children = conn.execute(
            select(i.key, i.item_type, i.title, i.data)
            .where(i.parent_key == key, i.deleted == false())
            .order_by(i.date_added)
        ).all()
        c = st.collections.c
        coll_keys = [k for k in data.get("collections") or [] if isinstance(k, str)]
        names = dict(conn.execute(select(c.key, c.name).where(c.key.in_(coll_keys))).all())
        prongs = catalog.effective_prongs(conn, [key])[key]
        citation = _citation(
            key,
            row["version"],
            data,
            settings,
            style or settings["citations"]["default_style"],
            conn,
        )
    fields = [
        {"name": name, "label": field_label(name), "value": str(value)}
        for name, value in data.items()
        if name not in SPECIAL_FIELDS and isinstance(value, str | int) and str(value).strip()
    ]
    creators = [
        {
            "type": cr.get("creatorType", "author"),
            "label": creator_label(cr.get("creatorType", "author")),
            "name": cr.get("name")
            or ", ".join(p for p in (cr.get("lastName"), cr.get("firstName")) if p),
            "last": cr.get("lastName") or cr.get("name") or "",
            "first": cr.get("firstName") or "",
        }
        for cr in data.get("creators") or []
        if isinstance(cr, dict)
    ]
    return {
        "key": key,
        "version": row["version"],
        "item_type": row["item_type"],
        "type_label": type_label(row["item_type"]),
        "title": row["title"],
        "creator_summary": row["creator_summary"],
        "date": row["date"],
        "year": row["year"],
        "date_added": row["date_added"],
        "date_modified": row["date_modified"],
        "parsed_date": row.get("parsed_date"),
        "abstract": data.get("abstractNote") or "",
        "fields": fields,
        "creators": creators,
        "doi": data.get("DOI") or "",
        "doi_url": doi_url(str(data.get("DOI") or "")),
        "url": safe_url(str(data.get("url") or "")),
        "tags": sorted(
            {
                t["tag"]
                for t in data.get("tags") or []
                if isinstance(t, dict) and isinstance(t.get("tag"), str)
            }
        ),
        "collections": [{"key": k, "name": names[k]} for k in coll_keys if k in names],
        "notes": [
            {"key": k, "html": (d or {}).get("note") or ""}
            for k, t, _title, d in children
            if t == "note"
        ],
        "attachments": [
            {"key": k, "title": title, "url": safe_url(str((d or {}).get("url") or ""))}
            for k, t, title, d in children
            if t == "attachment"
        ],
        "prongs": [
            {**p, "why": [t for t in map(reason_text, p["reasons"] or []) if t]} for p in prongs
        ],
        "citation": citation,
        "data": data,
    }
