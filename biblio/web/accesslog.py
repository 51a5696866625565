"""Access logs without secrets: tokens in paths and query strings are masked.

A join request's status link (``/join/status/<token>``) and a reading list's edit
link (``/lists/<slug>/edit?token=…``) are secrets: whoever reads them can withdraw the
request or rewrite the list. Access logs are read by more people, and kept longer,
than the database; so the URL of every logged request (and its ``Referer``) is
matched against the app's own routes, and any route variable or query parameter
named in :data:`SECRET_NAMES` is logged as ``***``. :func:`gunicorn_logger` gives
gunicorn's logger class for ``biblio run``, :func:`request_handler` Werkzeug's
request handler for the single-process server of ``biblio demo``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from flask import Flask
from gunicorn.glogging import Logger
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler

#: Route variables and query parameters whose values never reach a log.
SECRET_NAMES = frozenset({"token"})
MASK = "***"

Masker = Callable[[str], str]


def masker(app: Flask) -> Masker:
    """A function that masks the secrets in a request target (``/path?query``) or URL."""
    adapter = app.url_map.bind("localhost")

    def mask_path(path: str) -> str:
        for method in ("GET", "POST"):
            try:
                _, values = adapter.match(unquote(path), method=method)
            except HTTPException:
                continue
            for name, value in values.items():
                if name in SECRET_NAMES and str(value):
                    text = str(value)
                    path = path.replace(quote(text, safe=""), MASK).replace(text, MASK)
            break
        return path

    def mask(target: str) -> str:
        if not target or target == "-":
            return target
        try:
            parts = urlsplit(target)
        except ValueError:
            return MASK  # not even a URL: nothing of it is worth the risk
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(k in SECRET_NAMES for k, _ in pairs):
                masked = [(k, MASK if k in SECRET_NAMES else v) for k, v in pairs]
                query = urlencode(masked, safe="*")
        return urlunsplit(parts._replace(path=mask_path(parts.path), query=query))

    return mask


def _mask_request_line(mask: Masker, line: str) -> str:
    method, _, rest = line.partition(" ")
    target, _, version = rest.rpartition(" ")
    if not target:  # "GET /path" without a version
        return f"{method} {mask(rest)}"
    return f"{method} {mask(target)} {version}"


def gunicorn_logger(app: Flask) -> type[Logger]:
    """gunicorn's logger, with every URL-bearing atom of the access log masked."""
    mask = masker(app)

    class MaskingLogger(Logger):  # type: ignore[misc]
        def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
            atoms = super().atoms(resp, req, environ, request_time)
            atoms["r"] = _mask_request_line(mask, str(atoms["r"]))
            query = str(atoms.get("q") or "")
            atoms["U"] = mask(str(atoms.get("U") or ""))
            atoms["q"] = urlsplit(mask("/?" + query)).query if query else query
            for name in ("f", "{referer}i", "{raw_uri}e", "{request_uri}e", "{path_info}e"):
                if isinstance(atoms.get(name), str):
                    atoms[name] = mask(atoms[name])
            if isinstance(atoms.get("{query_string}e"), str):
                atoms["{query_string}e"] = atoms["q"]
            return atoms

    return MaskingLogger


def request_handler(app: Flask) -> type[WSGIRequestHandler]:
    """Werkzeug's request handler, logging the request with its secrets masked."""
    mask = masker(app)

    class MaskingRequestHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # Called once the answer is sent: the handler no longer needs the real path.
            if hasattr(self, "path"):
                self.path = mask(self.path)
            self.requestline = _mask_request_line(mask, getattr(self, "requestline", ""))
            super().log_request(code, size)

    return MaskingRequestHandler
