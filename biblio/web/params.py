"""Query-string parsing shared by list pages, feeds and exports.

Plain parameters filter (``prong``, ``tag``, ``collection``, ``type``, ``year``,
``decade``, ``creator``, ``q``); ``_``-prefixed ones control (``_sort``, ``_size``, ``_next``,
``_style``, ``_dl``). Bad values raise :class:`BadParameter`, which the web layer
answers with a 400 and a clear message, never a 500.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from biblio.catalog.filters import BadParameter, Filters, int_value, text_value
from biblio.catalog.sorts import SORTS, resolve

PRONG_IDS = ("mlis-access", "pathways", "worker-equity")
FACET_SIZE = 15
MAX_FACET_SIZE = 1000


@dataclass(frozen=True)
class ListArgs:
    filters: Filters
    sort: str
    size: int
    next: str | None
    facet_size: int = 15  # values per facet (``_facet_size=max`` shows them all)


def parse_filters(args: MultiDict[str, str], prong_ids: tuple[str, ...] = PRONG_IDS) -> Filters:
    """The :class:`Filters` of a query string (the first value of each parameter)."""
    return Filters.parse(args, prong_ids)


def parse_list_args(args: MultiDict[str, str], *, default_size: int, max_size: int) -> ListArgs:
    """Filters plus the control parameters of a list page (a search is sorted by
    relevance unless ``_sort`` says otherwise)."""
    asked = text_value("_sort", args.get("_sort"))
    if asked is not None and asked not in SORTS:
        raise BadParameter(f"unknown _sort {asked!r}; use one of {', '.join(SORTS)}")
    size = int_value("_size", args.get("_size"), 1, max_size)
    nxt = text_value("_next", args.get("_next"))
    if nxt is not None:
        decode_next(nxt)  # garbage is a 400 now, not later
    raw_facet_size = args.get("_facet_size")
    if text_value("_facet_size", raw_facet_size) == "max":
        facet_size = MAX_FACET_SIZE
    else:
        facet_size = int_value("_facet_size", raw_facet_size, 1, MAX_FACET_SIZE) or FACET_SIZE
    filters = parse_filters(args)
    return ListArgs(
        filters=filters,
        sort=resolve(asked, bool(filters.q)),
        size=size or default_size,
        next=nxt,
        facet_size=facet_size,
    )


def encode_next(offset: int) -> str:
    """The opaque ``_next`` token for a page starting at ``offset``."""
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def decode_next(token: str) -> int:
    """The offset in a ``_next`` token; :class:`BadParameter` if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        raw = ""
    if not (raw.startswith("o") and raw[1:].isdigit() and len(raw) < 12):
        raise BadParameter(
            f"_next {token!r} is not a page token from this site; "
            "follow the next link or drop _next to start again"
        )
    return int(raw[1:])


class BadStyle(BadParameter):
    """An unknown ``_style``: the error page offers ``suggestions``, (id, label) pairs of
    close styles, and a way back to the page in the default style."""

    def __init__(self, message: str, suggestions: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.suggestions = suggestions


def error_payload(exc: BadParameter) -> dict[str, Any]:
    """The JSON error envelope for a bad parameter."""
    return {"ok": False, "error": str(exc), "status": exc.status}
