"""One JSON envelope and one error shape for every page, HTML or JSON by suffix / Accept.

Success: ``{"ok": true, "rows": [...], "count": N, "next": url-or-null}`` (plus any
extra keys a page adds). Errors: ``{"ok": false, "error": "...", "status": N}`` with
the matching HTTP status, or the same message on a small HTML page. :func:`init_app`
registers the handlers app-wide, so any blueprint that raises
:class:`~biblio.catalog.filters.BadParameter` (or aborts with any 4xx) gets a clear
answer in the right format, never a 500.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from biblio.catalog.filters import BadParameter
from biblio.web import urls
from biblio.web.params import BadStyle


def wants_json() -> bool:
    """True for ``.json`` URLs, or when the client prefers JSON over HTML."""
    if request.path.endswith(".json"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    """JSON with ``<``, ``>`` and ``&`` as unicode escapes, so Zotero text in it can never
    be read as markup, even by a client that sniffs or embeds it."""
    body = current_app.json.dumps(payload)
    body = body.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return current_app.response_class(body + "\n", status=status, mimetype="application/json")


def envelope(rows: list[Any], count: int, next_url: str | None = None, **extra: Any) -> Response:
    """The success envelope as a JSON response."""
    return json_response({"ok": True, "rows": rows, "count": count, "next": next_url, **extra})


def error_response(message: str, status: int) -> tuple[Response | str, int]:
    if wants_json():
        return json_response({"ok": False, "error": message, "status": status}, status), status
    return render_template("error.html", message=message, status=status), status


def _bad_parameter(exc: BadParameter) -> tuple[Response | str, int]:
    if isinstance(exc, BadStyle) and not wants_json():
        # An unknown style: offer the close ones on the same page, and the page itself in
        # the default style, so the visitor is one click from a working page.
        offers = [(label, urls.with_args(_style=name)) for name, label in exc.suggestions]
        page = render_template(
            "error.html",
            message=str(exc),
            status=exc.status,
            offers=offers,
            back=urls.with_args(_style=None, _dl=None),
        )
        return page, exc.status
    return error_response(str(exc), exc.status)


def _http_error(exc: HTTPException) -> Any:
    """Every client error (4xx), whatever the method, in the one error shape; headers the
    error carries (``Allow`` on a 405, ``Retry-After`` on a 429) are kept."""
    code = exc.code or 500
    if not 400 <= code < 500:
        return exc
    body, status = error_response(exc.description or exc.name, code)
    response = current_app.make_response((body, status))
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(BadParameter, _bad_parameter)
    app.register_error_handler(HTTPException, _http_error)
