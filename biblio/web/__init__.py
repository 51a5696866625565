"""The web application: blueprints, security headers and production defaults.

Each area is one blueprint module (browse, api, export, lists, join, auth, admin,
status). ``init_app`` registers them and adds one ``after_request`` hook with the
security headers every response carries. In production (``[web] env``) responses also
carry HSTS, URLs are built as https, and :class:`PublicOrigin` makes ``[web]
public_url`` the one source of the site's address: every request is seen as
addressed to it, whatever Host header it came with, so a link in an email, a feed
or a page can never point at a host an attacker named. Development keeps following
the request's host.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response

from biblio.web import extensions

#: Blueprint modules, registered in this order; each exposes ``bp``.
BLUEPRINTS: list[str] = [
    "biblio.web.status",
    "biblio.web.browse",
    "biblio.web.feeds",
    "biblio.web.join",
    "biblio.web.join_zotero",
    "biblio.web.admin.auth",
    "biblio.web.admin.queue",
    "biblio.web.admin.tools",
    "biblio.web.admin.mail",
    "biblio.web.export",
    "biblio.web.lists",
    "biblio.web.discovery",
]

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


#: One year; no ``includeSubDomains``: other sites of the group's domain may not serve
#: HTTPS, and that is theirs to decide (add it in the proxy where they all do).
HSTS = "max-age=31536000"


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _hsts(response: Response) -> Response:
    response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


class PublicOrigin:
    """WSGI middleware: every request is seen as addressed to ``public_url`` (its scheme,
    host, port and path prefix), whatever its Host header, scheme or proxy said."""

    def __init__(self, app: Any, public_url: str) -> None:
        parts = urlsplit(public_url)
        self.app = app
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.server_name = parts.hostname or ""
        self.port = str(parts.port or (443 if parts.scheme == "https" else 80))
        self.prefix = parts.path.rstrip("/")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["wsgi.url_scheme"] = self.scheme
        environ["HTTP_HOST"] = self.host
        environ["SERVER_NAME"] = self.server_name
        environ["SERVER_PORT"] = self.port
        if self.prefix:
            # Whether the proxy strips the prefix or passes it on, routes see the rest.
            path = environ.get("PATH_INFO", "")
            if path == self.prefix or path.startswith(self.prefix + "/"):
                environ["PATH_INFO"] = path[len(self.prefix) :] or "/"
            environ["SCRIPT_NAME"] = self.prefix
        return self.app(environ, start_response)


def init_app(app: Flask) -> None:
    extensions.init_app(app)
    for name in BLUEPRINTS:
        module = importlib.import_module(name)
        app.register_blueprint(module.bp)
        init = getattr(module, "init_app", None)
        if init is not None:
            init(app)
    app.after_request(_security_headers)
    web = app.config["BIBLIO"]["web"]
    if web["env"] == "production":
        # Settings refuse production without an https public_url, so it is set here.
        app.config["PREFERRED_URL_SCHEME"] = "https"
        app.after_request(_hsts)
        app.wsgi_app = PublicOrigin(app.wsgi_app, web["public_url"])  # type: ignore[method-assign]
