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

from biblio.catalog import search
from biblio.catalog.items import Filters
from biblio.catalog.sorts import SORTS

PRONG_IDS = ("mlis-access", "pathways", "worker-equity")
MAX_TEXT = 500
FACET_SIZE = 15
MAX_FACET_SIZE = 1000


class BadParameter(ValueError):
    """A query parameter has a bad value; the message says which and why."""

    status = 400


@dataclass(frozen=True)
class ListArgs:
    filters: Filters
    sort: str
    size: int
    next: str | None
    facet_size: int = 15  # values per facet (``_facet_size=max`` shows them all)


def _text(args: MultiDict[str, str], name: str) -> str | None:
    value = args.get(name)
    if value is None or value.strip() == "":
        return None
    if len(value) > MAX_TEXT:
        raise BadParameter(f"{name} is too long (at most {MAX_TEXT} characters)")
    if "\x00" in value:
        raise BadParameter(f"{name} contains a NUL character")
    return value.strip()


def _int(args: MultiDict[str, str], name: str, low: int, high: int) -> int | None:
    raw = _text(args, name)
    if raw is None:
        return None
    if not raw.lstrip("-").isdigit():
        raise BadParameter(f"{name} must be a whole number, got {raw[:40]!r}")
    if len(raw) > 9:
        raise BadParameter(f"{name} must be between {low} and {high}, got {raw[:40]}")
    value = int(raw)
    if not low <= value <= high:
        raise BadParameter(f"{name} must be between {low} and {high}, got {value}")
    return value


def parse_filters(args: MultiDict[str, str], prong_ids: tuple[str, ...] = PRONG_IDS) -> Filters:
    """The :class:`Filters` of a query string."""
    prong = _text(args, "prong")
    if prong is not None and prong not in prong_ids:
        raise BadParameter(f"unknown prong {prong!r}; known prongs: {', '.join(prong_ids)}")
    q = _text(args, "q")
    if q is not None:
        try:
            search.fts_query(q)
        except search.SearchSyntaxError as exc:
            raise BadParameter(f"q: {exc}") from None
    decade = _int(args, "decade", 0, 9990)
    if decade is not None and decade % 10:
        raise BadParameter(f"decade must be a year ending in 0, like 1990, got {decade}")
    return Filters(
        prong=prong,
        tag=_text(args, "tag"),
        collection=_text(args, "collection"),
        item_type=_text(args, "type"),
        year=_int(args, "year", 0, 9999),
        creator=_text(args, "creator"),
        q=q,
        decade=decade,
    )


def parse_list_args(args: MultiDict[str, str], *, default_size: int, max_size: int,
                    default_sort: str = "added") -> ListArgs:
    """Filters plus the control parameters of a list page."""
    sort = _text(args, "_sort") or default_sort
    if sort not in SORTS:
        raise BadParameter(f"unknown _sort {sort!r}; use one of {', '.join(SORTS)}")
    size = _int(args, "_size", 1, max_size)
    nxt = _text(args, "_next")
    if nxt is not None:
        decode_next(nxt)  # garbage is a 400 now, not later
    facet_size = FACET_SIZE
    if _text(args, "_facet_size") == "max":
        facet_size = MAX_FACET_SIZE
    elif args.get("_facet_size"):
        facet_size = _int(args, "_facet_size", 1, MAX_FACET_SIZE) or FACET_SIZE
    return ListArgs(filters=parse_filters(args), sort=sort, size=size or default_size, next=nxt,
                    facet_size=facet_size)


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
        raise BadParameter(f"_next {token!r} is not a page token from this site; "
                           "follow the next link or drop _next to start again")
    return int(raw[1:])


def error_payload(exc: BadParameter) -> dict[str, Any]:
    """The JSON error envelope for a bad parameter."""
    return {"ok": False, "error": str(exc), "status": exc.status}
