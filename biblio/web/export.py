"""Exports of any filtered list, the formatted bibliography page, styles and "cite".

``/items.bib``, ``.ris``, ``.csljson``, ``.csv``, ``.xlsx``, ``.txt``, ``.rtf`` and
``.docx`` export every item matching the plain filter parameters (no page cap,
streamed where the format allows); ``/bibliography`` shows the formatted bibliography
of the same selection in ``_style``/``_locale`` (``_dl=1`` downloads it as an HTML
file). ``_style`` takes an id, a title or a common name (:func:`style_param`); an
unknown one is a :class:`~biblio.web.params.BadStyle`, whose page offers close styles
and the page in the default style. Text formats are shown inline (``text/plain`` for
.bib/.ris/.txt/.csv) unless ``_dl=1``, which sends a meaningful file name. ``/styles``
lists the CSL styles with the CC BY-SA attribution; ``/items/<KEY>/cite`` formats one
item, ready to copy. The request helpers here (:func:`render_options`, :func:`send`)
serve the reading lists too.
Formatted bibliographies come through :mod:`biblio.web.renders` (the cache, a render
budget, 202 "being prepared" and a per-client limit on renders).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, stream_with_context

from biblio import exports
from biblio.catalog import listing
from biblio.catalog.filters import BadParameter
from biblio.catalog.items import Filters, item_versions, iter_items
from biblio.citations import ATTRIBUTION, Entry, StyleError, list_locales, stylenames
from biblio.citations import cache as rendercache
from biblio.citations.styles import resolve_locale
from biblio.exports import cite as cite_mod
from biblio.storage import app as db
from biblio.web import renders, responses, urls
from biblio.web.params import PRONG_IDS, BadStyle, parse_filters
from biblio.zotero.keys import is_key

bp = Blueprint("export", __name__)

#: Export links of the bibliography page, (format, label): formatted documents first.
LINKS = tuple(
    (f.name, f.label) for f in sorted(exports.FORMATS.values(), key=lambda f: not f.formatted)
)


#: How long a worker trusts its count of the group's use of each style (the menu order).
_USE_SECONDS = 60.0
_use: dict[str, tuple[float, dict[str, int]]] = {}


def style_param() -> str:
    """The id of the style ``_style`` names (an id, a title or a common name such as
    ``APA`` or ``vancouver``), else the default style; :class:`BadStyle` if unknown."""
    cit = db.settings()["citations"]
    asked = (request.args.get("_style") or "").strip()
    try:
        return stylenames.resolve_style(asked or cit["default_style"], cit["styles_dir"])
    except stylenames.UnknownStyle as exc:
        if not asked:  # a broken default is the settings' fault: shown as before, not a 400
            return str(cit["default_style"])
        offers = [(n, stylenames.label(n, cit["styles_dir"])) for n in exc.suggestions]
        stop = "" if str(exc).endswith("?") else "."
        raise BadStyle(f"_style: {exc}{stop} See /styles for all styles.", offers) from None


def style_menu(current: str | None = None) -> list[stylenames.Choice]:
    """The styles a menu offers: the ten the group uses most, and ``current``."""
    styles_dir = db.settings()["citations"]["styles_dir"]
    key, now = str(db.engine().url), time.monotonic()
    found = _use.get(key)
    if found is None or now - found[0] > _USE_SECONDS:
        found = _use[key] = (now, rendercache.style_use(db.engine()))
    choices = stylenames.menu(styles_dir, found[1])
    if current and current not in {c.name for c in choices}:
        choices.append(stylenames.Choice(current, stylenames.label(current, styles_dir)))
    return choices


def style_label(name: str) -> str:
    return stylenames.label(name, db.settings()["citations"]["styles_dir"])


def render_options(**extra: Any) -> exports.Options:
    """``_style`` and ``_locale`` of the request, checked; :class:`BadParameter` if bad."""
    cit = db.settings()["citations"]
    style = style_param()
    locale = (request.args.get("_locale") or cit["locale"]).strip()
    try:
        rendercache.style_meta(style, cit["styles_dir"])
    except StyleError as exc:
        raise BadParameter(f"_style: {exc}; see /styles for the styles available") from None
    if resolve_locale(locale) is None:
        raise BadParameter(
            f"_locale: unknown locale {locale[:40]!r}; "
            f"try one of {', '.join(list_locales()[:8])}, ..."
        )
    return exports.Options(
        style=style,
        locale=resolve_locale(locale) or locale,
        styles_dir=cit["styles_dir"],
        prong_ids=PRONG_IDS,
        **extra,
    )


def wants_download() -> bool:
    return request.args.get("_dl", "") not in ("", "0")


def _encoded(chunks: Iterable[str | bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk.encode("utf-8") if isinstance(chunk, str) else chunk


def send(fmt: str, chunks: Iterator[str | bytes], name: str) -> Response:
    """The export response: inline unless ``_dl=1`` (binary formats always download)."""
    spec = exports.FORMATS[fmt]
    download = wants_download() or spec.binary
    if spec.binary:
        response = Response(b"".join(_encoded(chunks)), mimetype=spec.media_type)
    else:
        response = Response(
            stream_with_context(_encoded(chunks)),
            content_type=spec.media_type if download else spec.inline_type,
        )
    disposition = "attachment" if download else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{name}"'
    return response


def _title(filters: Filters) -> tuple[str, str]:
    phrase = listing.describe(db.engine(), filters, db.settings())
    name = "Bibliography" + (f": items {phrase}" if phrase else "")
    return name, f"Items {phrase or 'in the library'}"


def _export(fmt: str) -> Response:
    filters = parse_filters(request.args)
    title, description = _title(filters)
    options = render_options(title=title, description=description)
    spec = exports.FORMATS[fmt]
    parts = filters.values() + ([options.style] if spec.formatted else [])
    rows: Iterable[dict[str, Any]] = iter_items(db.engine(), filters)
    entries = None
    if spec.formatted:
        loaded = _Rows(filters)
        got = _entries(loaded, options, spec.render_fmt, page=False)
        if isinstance(got, Response):
            return got
        rows, entries = loaded(), got
    try:
        chunks = exports.export(db.engine(), fmt, rows, options, entries)
    except StyleError as exc:
        raise BadParameter(f"_style: {exc}") from None
    return send(fmt, chunks, exports.filename(parts, fmt))


class _Rows:
    """Key and version of the items a filter selects, read once, when first asked for
    (the render cache reads the data of the entries it must render)."""

    def __init__(self, filters: Filters) -> None:
        self.filters = filters
        self.rows: list[dict[str, Any]] | None = None

    def __call__(self) -> list[dict[str, Any]]:
        if self.rows is None:
            self.rows = item_versions(db.engine(), self.filters)
        return self.rows


def _entries(
    rows: Callable[[], list[dict[str, Any]]], options: exports.Options, fmt: str, *, page: bool
) -> list[Entry] | Response:
    try:
        return renders.entries_or_answer(
            rows, options, fmt, page=page, back=urls.with_args("/items", _style=None, _locale=None)
        )
    except StyleError as exc:
        raise BadParameter(f"_style: {exc}") from None


def _register(spec: exports.Format) -> None:
    bp.add_url_rule(f"/items.{spec.url_suffix}", f"items_{spec.name}", lambda: _export(spec.name))


for _spec in exports.FORMATS.values():
    if _spec.name != "html":  # the HTML document is /bibliography?_dl=1
        _register(_spec)


@bp.get("/bibliography")
@bp.get("/bibliography.json", endpoint="bibliography_json")
def bibliography():  # type: ignore[no-untyped-def]
    filters = parse_filters(request.args)
    title, description = _title(filters)
    options = render_options(title=title, description=description)
    if wants_download() and not request.path.endswith(".json"):
        return _export("html")
    rows = _Rows(filters)
    got = _entries(rows, options, "html", page=True)
    if isinstance(got, Response):
        return got
    bib = exports.bibliography(db.engine(), rows(), "html", options, got)
    if request.path.endswith(".json"):
        rows = [{"key": e.id, "html": e.text, "error": e.error} for e in bib.entries]
        return responses.envelope(
            rows,
            len(rows),
            None,
            style=options.style,
            locale=options.locale,
            description=description,
            attribution=ATTRIBUTION.text,
        )
    links = [
        (
            label,
            urls.with_args(
                _path_for(fmt),
                _style=options.style if "_style" in request.args else None,
                _dl=1 if fmt == "html" else None,
            ),
        )
        for fmt, label in LINKS
    ]
    return render_template(
        "export/bibliography.html",
        bib=bib,
        options=options,
        links=links,
        choices=style_menu(options.style),
        style_label=style_label(options.style),
        locales=list_locales(),
        attribution=ATTRIBUTION,
        entry_html=exports.documents.page_html,
        phrase=listing.describe(db.engine(), filters, db.settings()),
        back=urls.with_args("/items", _style=None, _locale=None),
    )


def _path_for(fmt: str) -> str:
    if fmt == "html":
        return "/bibliography"
    return "/items." + exports.FORMATS[fmt].url_suffix


@bp.get("/styles")
@bp.get("/styles.json", endpoint="styles_json")
def styles():  # type: ignore[no-untyped-def]
    q = (request.args.get("q") or "").strip()[:100] or None
    rows = stylenames.search(q, db.settings()["citations"]["styles_dir"])
    if request.path.endswith(".json"):
        return responses.envelope(
            rows, len(rows), None, attribution=ATTRIBUTION.text, license=ATTRIBUTION.license_url
        )
    return render_template("export/styles.html", rows=rows, q=q or "", attribution=ATTRIBUTION)


@bp.get("/items/<key>/cite")
@bp.get("/items/<key>/cite.json", endpoint="cite_json")
def cite(key: str):  # type: ignore[no-untyped-def]
    options = render_options()
    if not is_key(key):
        abort(404, description=f"no item with key {key[:40]!r}")
    try:
        result = cite_mod.cite(db.engine(), key, options.style, options.locale, options.styles_dir)
    except StyleError as exc:
        raise BadParameter(f"_style: {exc}") from None
    if result is None:
        abort(404, description=f"no item with key {key}")
    if request.path.endswith(".json"):
        return responses.envelope([result], 1, None, attribution=ATTRIBUTION.text)
    return render_template(
        "export/cite.html",
        cite=result,
        options=options,
        choices=style_menu(options.style),
        style_label=style_label(options.style),
        locales=list_locales(),
        attribution=ATTRIBUTION,
        entry_html=exports.documents.page_html,
    )
