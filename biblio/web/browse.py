"""Public browsing: the landing page, the item list, item pages and the prong overview.

Thin views: each parses its arguments (:mod:`biblio.web.params`), calls one domain
function (:mod:`biblio.catalog.listing`, :mod:`biblio.catalog.record`) and renders a template or
the JSON envelope picked by the URL's suffix (``/items`` and ``/items.json``,
``/items/<KEY>`` and ``/items/<KEY>.json``, ``/prongs`` and ``/prongs.json``). Public
pages never touch the session, so they set no cookie.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    make_response,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from biblio.catalog import charts, listing
from biblio.catalog import record as records
from biblio.catalog.filters import FILTERS, SearchError
from biblio.catalog.filters import sentence as filters_sentence
from biblio.catalog.items import group
from biblio.catalog.sorts import RELEVANCE, SORTS
from biblio.exports import FORMATS
from biblio.storage import app as db
from biblio.web import export as web_export
from biblio.web import pagecache, responses, urls
from biblio.web.params import decode_next, encode_next, parse_list_args
from biblio.zotero import connector as coins
from biblio.zotero import richtext, schemaorg
from biblio.zotero.keys import is_key
from biblio.zotero.schema import type_label

bp = Blueprint("browse", __name__)

#: How many styles the list page links its formatted bibliography in.
BIBLIOGRAPHY_LINKS = 5

#: Export links of the list page: (endpoint, label); each carries the list's filters.
EXPORTS = tuple((f"export.items_{f.name}", f.label) for f in FORMATS.values() if f.name != "html")


def _row_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {
        "key": row["key"],
        "version": row["version"],
        "item_type": row["item_type"],
        "title": richtext.plain(row["title"]),
        "creators": row["creator_summary"],
        "date": row["date"],
        "year": row["year"],
        "date_added": row["date_added"],
        "date_modified": row["date_modified"],
        "prongs": [p["prong"] for p in row["prongs"]],
        "url": urls.absolute(url_for("browse.item", key=row["key"])),
        "data": row["data"],
    }
    if "snippet" in row:  # a search: where the item matched, None if title or creators
        out["snippet"] = row["snippet"].to_dict() if row["snippet"] else None
    return out


def _list_args(args: MultiDict[str, str] | None = None) -> Any:
    conf = db.settings()["web"]
    return parse_list_args(
        request.args if args is None else args,
        default_size=conf["page_size"],
        max_size=conf["max_page_size"],
    )


def _page_key(stamp: tuple[Any, ...]) -> tuple[Any, ...]:
    return (id(current_app), str(db.engine().url), stamp, request.host_url, request.full_path)


@bp.get("/items")
@bp.get("/items.json", endpoint="items_json")
def items():  # type: ignore[no-untyped-def]
    found = pagecache.pages.get(_page_key(listing.stamp(db.engine())))
    if found is not None:
        return current_app.response_class(found[0], mimetype=found[1])
    response = _items()
    if response.status_code == 200 and not response.is_streamed:
        pagecache.pages.put(
            _page_key(g.list_stamp), (response.get_data(as_text=True), str(response.mimetype))
        )
    return response


def _items() -> Response:
    as_json = request.path.endswith(".json")
    search_error: SearchError | None = None
    try:
        args = _list_args()
    except SearchError as exc:
        if as_json:
            raise
        # The page itself, with the search kept in its box and what to change said
        # above the list (the other filters still apply), answered as a 400.
        search_error = exc
        rest = request.args.copy()
        rest.poplist("q")
        args = _list_args(rest)
    offset = decode_next(args.next) if args.next else 0
    page = listing.list_page(
        db.engine(),
        args.filters,
        args.sort,
        args.size,
        offset,
        db.settings(),
        toggle=None if as_json else urls.toggler(),
        facet_size=args.facet_size,
    )
    g.list_stamp = page.stamp
    next_url = urls.page_url(
        encode_next(page.next_offset) if page.next_offset is not None else None
    )
    sentence = filters_sentence(page.count, args.filters, args.sort, page.labels)
    if as_json:
        return responses.envelope(
            [_row_json(r) for r in page.rows],
            page.count,
            next_url and urls.absolute(next_url),
            description=sentence,
            offset=offset,
        )
    prev_url = None
    if offset > 0:
        prev = max(0, offset - args.size)
        prev_url = urls.with_args(_next=encode_next(prev) if prev else None)
    active = [(f, v) for f in page.facets for v in f.values if v.selected]
    labels = _prong_labels()
    q = search_error.q if search_error else args.filters.q
    return make_response(
        render_template(
            "browse/items.html",
            page=page,
            args=args,
            search_error=search_error,
            q=q,
            sentence=sentence,
            next_url=next_url,
            prev_url=prev_url,
            active=active,
            sorts={k: v for k, v in SORTS.items() if k != RELEVANCE or q},
            # A search to fix is still a search: its box offers (and keeps) relevance.
            selected_sort=RELEVANCE if search_error and "_sort" not in request.args else args.sort,
            exports=EXPORTS,
            styles=web_export.style_menu()[:BIBLIOGRAPHY_LINKS],
            filter_params=[f.param for f in FILTERS],
            lines=[_line(row, labels) for row in page.rows],
            first=offset + 1,
            last=offset + len(page.rows),
        ),
        400 if search_error else 200,
    )


def _prong_labels() -> dict[str, str]:
    return {k: v["label"] for k, v in listing.prong_labels(db.settings()).items()}


def _prong_thresholds() -> dict[str, float]:
    return {k: v["threshold"] for k, v in listing.prong_labels(db.settings()).items()}


def _line(row: dict[str, Any], labels: dict[str, str]) -> Markup:
    snippet = row.get("snippet")
    key = (
        id(current_app),
        str(db.engine().url),
        row["key"],
        row["version"],
        tuple(p["prong"] for p in row["prongs"]),
        snippet,
    )
    found = pagecache.lines.get(key)
    if found is not None:
        return found
    macro = current_app.jinja_env.get_template("browse/_macros.html").module.item_line  # type: ignore[attr-defined]
    line: Markup = macro(row, coins.coins_title, labels)  # escaped by the template
    pagecache.lines.put(key, line)
    return line


def _style() -> str | None:
    """The style ``_style`` names (resolved as on every export), None if not given."""
    return web_export.style_param() if (request.args.get("_style") or "").strip() else None


@bp.get("/items/<key>")
@bp.get("/items/<key>.json", endpoint="item_json")
def item(key: str):  # type: ignore[no-untyped-def]
    if not is_key(key):
        abort(404, description=f"no item with key {key[:40]!r}")
    style = _style()
    shown = style or web_export.style_param()
    record = records.item_record(db.engine(), key, db.settings(), shown)
    if record is None:
        abort(404, description=f"no item with key {key}")
    if request.path.endswith(".json"):
        row = {k: v for k, v in record.items() if k not in ("fields",)}
        row["url"] = urls.absolute(url_for("browse.item", key=key))
        return responses.envelope([row], 1, None)
    page_url = urls.absolute(url_for("browse.item", key=key))
    described = schemaorg.json_ld(record["data"], page_url, record["parsed_date"])
    return render_template(
        "browse/item.html",
        item=record,
        canonical=page_url,
        json_ld=Markup(schemaorg.script_json(described)),  # noqa: S704 (escaped JSON)
        meta=coins.highwire_meta(record["data"], page_url),
        coins_title=coins.coins_title(record["data"]),
        style=shown,
        styles=web_export.style_menu(shown),
        prong_labels=_prong_labels(),
        prong_thresholds=_prong_thresholds(),
    )


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    data = listing.landing(db.engine(), db.settings())
    chart = _chart([p["id"] for p in data["prongs"]], {p["id"]: p["label"] for p in data["prongs"]})
    return render_template("browse/index.html", chart=chart, prong_labels=_prong_labels(), **data)


def _chart(ids: list[str], labels: dict[str, str]) -> charts.Chart:
    return charts.prong_year_chart(listing.prong_years(db.engine(), ids), labels)


@bp.get("/prongs")
@bp.get("/prongs.json", endpoint="prongs_json")
def prongs():  # type: ignore[no-untyped-def]
    data = listing.landing(db.engine(), db.settings(), recent=0)
    labels = {p["id"]: p["label"] for p in data["prongs"]}
    chart = _chart(list(labels), labels)
    if request.path.endswith(".json"):
        return responses.envelope(data["prongs"], len(data["prongs"]), None, per_year=chart.table)
    return render_template(
        "browse/prongs.html", chart=chart, prongs=data["prongs"], total=data["total"]
    )


def _site_name() -> dict[str, str]:
    with db.engine().connect() as conn:
        info = group(conn) or {}
    return {"site_name": info.get("name") or "biblio"}


def init_app(app: Flask) -> None:
    responses.init_app(app)
    app.context_processor(_site_name)
    app.jinja_env.filters.setdefault("inline", richtext.inline)
    app.jinja_env.filters.setdefault("block", richtext.block)
    app.jinja_env.filters.setdefault("plain", richtext.plain)
    app.jinja_env.filters.setdefault("type_label", type_label)
    app.jinja_env.globals.setdefault("with_args", urls.with_args)
    app.jinja_env.globals.setdefault("twin", urls.twin)
    app.jinja_env.globals.setdefault("filtered", urls.filtered)
