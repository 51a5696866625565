"""Building URLs one way: ``url_for`` plus helpers that change the current query string.

Every state of a list page is a shareable GET URL, so links that add, replace or
remove a filter are made here from the current request's arguments, never by string
pasting in templates. Changing a filter or the sort also drops ``_next``: a page
token belongs to one query. Suffixed twins (``/items.json``, ``/items.atom``) keep
the arguments of the page they mirror.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import current_app, request, url_for
from werkzeug.datastructures import MultiDict

#: Arguments that only make sense for the exact page they came from.
_PAGE_ONLY = ("_next",)


def _args() -> MultiDict[str, str]:
    return MultiDict(request.args.items(multi=True))


def _encode(args: MultiDict[str, str]) -> str:
    pairs = [(k, v) for k, v in args.items(multi=True) if v != ""]
    return ("?" + urlencode(pairs)) if pairs else ""


def with_args(path: str | None = None, keep_page: bool = False, **changes: object) -> str:
    """The current URL (or ``path``) with arguments set (``None`` removes them)."""
    args = _args()
    if not keep_page:
        for name in _PAGE_ONLY:
            args.pop(name, None)
    for name, value in changes.items():
        args.pop(name, None)
        if value is not None:
            args[name] = str(value)
    return (path or request.path) + _encode(args)


def toggle(name: str, value: object) -> str:
    """Select ``name=value``, or remove it when it is the current value."""
    current = request.args.get(name)
    changes: dict[str, Any] = {name: None if current == str(value) else value}
    return with_args(**changes)


def toggler() -> Callable[..., str]:
    """A fast :func:`toggle` for many links on one page (the facets): the current
    arguments are read once, not once per link. ``make(name, value, clear)`` also
    removes the arguments named in ``clear`` (a decade link clears the year)."""
    path = request.path
    pairs = [(k, v) for k, v in request.args.items(multi=True) if v != "" and k not in _PAGE_ONLY]
    current = {k: v for k, v in reversed(pairs)}  # the first value, like args.get

    others: dict[tuple[str, ...], str] = {}  # per names left out: the rest, encoded once

    def make(name: str, value: object, clear: tuple[str, ...] = ()) -> str:
        text = str(value)
        dropped = (name, *clear)
        rest = others.get(dropped)
        if rest is None:
            rest = others[dropped] = urlencode([(k, v) for k, v in pairs if k not in dropped])
        if current.get(name) != text:
            rest = (rest + "&" if rest else "") + urlencode([(name, text)])
        return path + ("?" + rest if rest else "")

    return make


def twin(endpoint: str, **values: Any) -> str:
    """The URL of ``endpoint`` (e.g. the ``.json`` twin) with the current filters."""
    args = _args()
    args.pop("_next", None)
    return url_for(endpoint, **values) + _encode(args)


def filtered(endpoint: str, **controls: object) -> str:
    """The URL of ``endpoint`` (an export) with the current page's *filters* only (plain
    arguments; its ``_sort``, ``_size`` and ``_next`` belong to the page) plus ``controls``."""
    pairs = [(k, v) for k, v in request.args.items(multi=True) if v != "" and not k.startswith("_")]
    pairs += [(k, str(v)) for k, v in controls.items() if v is not None]
    return url_for(endpoint) + ("?" + urlencode(pairs) if pairs else "")


def absolute(path: str) -> str:
    """``path`` made absolute with ``[web] public_url``, which production requires; in
    development, without one, with the request's host (emails never use this: their
    links come from configuration alone, :func:`biblio.settings.public_url`)."""
    base = current_app.config["BIBLIO"]["web"]["public_url"] or request.host_url
    return base.rstrip("/") + path


def page_url(next_token: str | None) -> str | None:
    """The current URL with ``_next`` set to ``next_token`` (``None`` if no next page)."""
    if next_token is None:
        return None
    return with_args(keep_page=True, _next=next_token)
