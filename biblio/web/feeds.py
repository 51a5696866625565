"""Atom feeds of new and changed items: ``/items.atom``, filtered like ``/items``.

``/items.atom?prong=pathways`` or ``?tag=...`` (any list filter) gives a feed per
prong or tag. Entries are the most recently modified matching items (a new item's
modification time is its addition time), each with its item page as the link and
id, its creators, tags and prongs as categories, and a plain-text summary. The XML
comes from a Jinja template with autoescaping, so Zotero text is always escaped.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, render_template, request, url_for

from biblio.catalog import listing
from biblio.catalog.items import group
from biblio.settings import public_url
from biblio.storage import app as db
from biblio.web import urls
from biblio.web.params import parse_filters

bp = Blueprint("feeds", __name__)
FEED_SIZE = 50


def _link(path: str) -> str:
    # Feeds are read and cached far from the request that made them: their links use
    # the configured site URL, never the request's Host header.
    return public_url(db.settings()) + path


def _atom_time(value: str | None) -> str:
    return value or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@bp.get("/items.atom")
def items_atom() -> Response:
    filters = parse_filters(request.args)
    rows = listing.recent_changes(db.engine(), filters, FEED_SIZE)
    phrase = listing.describe(db.engine(), filters, db.settings())
    with db.engine().connect() as conn:
        info = group(conn) or {}
    name = info.get("name") or "biblio"
    entries = [
        {
            **r,
            "link": _link(url_for("browse.item", key=r["key"])),
            "updated": _atom_time(r["date_modified"]),
            "published": _atom_time(r["date_added"]),
        }
        for r in rows
    ]
    updated = max((e["updated"] for e in entries), default=_atom_time(None))
    body = render_template(
        "browse/items.atom.xml",
        entries=entries,
        updated=updated,
        title=f"{name}: new and changed items" + (f" {phrase}" if phrase else ""),
        self_url=_link(request.full_path.rstrip("?")),
        html_url=_link(urls.twin("browse.items")),
    )
    return Response(body, mimetype="application/atom+xml")
