"""Pages for search engines and browsers: the sitemap, ``robots.txt`` and OpenSearch.

``/sitemap.xml`` lists the public pages and every item page with Zotero's
``dateModified`` as ``lastmod``; past 50,000 URLs it becomes a sitemap index naming
``/sitemap-1.xml``, ``/sitemap-2.xml``, … (:mod:`biblio.catalog.sitemap` plans the
parts). ``/robots.txt`` keeps crawlers out of the owners' pages, reading lists' edit
links and join requests' private status links, and names the sitemap.
``/opensearch.xml`` describes the item search so a browser can offer it from its
address bar (``base.html`` links it from every page). Absolute URLs come from
``[web] public_url`` when set. These are documents, not pages: no ``.json`` twins.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template, url_for

from biblio.catalog import sitemap
from biblio.catalog.items import group
from biblio.storage import app as db
from biblio.web import urls

bp = Blueprint("discovery", __name__)

XML = "application/xml"
#: Where crawlers have no business: owners' pages, secret edit and status links.
DISALLOW = ("/-/admin/", "/lists/*/edit", "/join/status/")
#: OpenSearch allows at most 16 characters of short name.
SHORT_NAME = 16


def _urls(entries: list[sitemap.Entry]) -> list[tuple[str, str | None]]:
    out = []
    for entry in entries:
        values: dict[str, Any] = dict(entry.values)
        out.append((urls.absolute(url_for(entry.page, **values)), entry.lastmod))
    return out


@bp.get("/sitemap.xml")
def sitemap_xml() -> Response:
    plan = sitemap.plan(db.engine(), db.settings())
    if plan.parts == 1:
        return _urlset(1)
    body = render_template(
        "discovery/sitemapindex.xml",
        sitemaps=[
            (urls.absolute(url_for("discovery.sitemap_part", number=n)), plan.lastmods[n - 1])
            for n in range(1, plan.parts + 1)
        ],
    )
    return Response(body, mimetype=XML)


@bp.get("/sitemap-<int:number>.xml")
def sitemap_part(number: int) -> Response:
    return _urlset(number)


def _urlset(number: int) -> Response:
    entries = sitemap.part(db.engine(), db.settings(), number)
    if not entries:
        abort(404, description=f"the sitemap has no part {number}")
    return Response(render_template("discovery/urlset.xml", urls=_urls(entries)), mimetype=XML)


@bp.get("/robots.txt")
def robots_txt() -> Response:
    lines = ["User-agent: *", *(f"Disallow: {path}" for path in DISALLOW), ""]
    lines.append(f"Sitemap: {urls.absolute(url_for('discovery.sitemap_xml'))}")
    return Response("\n".join(lines) + "\n", mimetype="text/plain")


@bp.get("/opensearch.xml")
def opensearch_xml() -> Response:
    name = _name()
    body = render_template(
        "discovery/opensearch.xml",
        short_name=name if len(name) <= SHORT_NAME else name[: SHORT_NAME - 1] + "…",
        description=f"Search {name}: titles, creators, abstracts, tags, notes and full text.",
        html=urls.absolute(url_for("browse.items")),
        json=urls.absolute(url_for("browse.items_json")),
        atom=urls.absolute(url_for("feeds.items_atom")),
        self_url=urls.absolute(url_for("discovery.opensearch_xml")),
    )
    return Response(body, mimetype="application/opensearchdescription+xml")


def _name() -> str:
    with db.engine().connect() as conn:
        info = group(conn) or {}
    return str(info.get("name") or "biblio")
