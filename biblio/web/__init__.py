"""The web application: blueprints, security headers and error envelopes.

Each area is one blueprint module (browse, api, export, lists, join, auth, admin,
status). ``init_app`` registers them and adds one ``after_request`` hook with the
security headers every response carries.
"""

from __future__ import annotations

import importlib

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


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def init_app(app: Flask) -> None:
    extensions.init_app(app)
    for name in BLUEPRINTS:
        module = importlib.import_module(name)
        app.register_blueprint(module.bp)
        init = getattr(module, "init_app", None)
        if init is not None:
            init(app)
    app.after_request(_security_headers)
