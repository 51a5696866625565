"""Query parameters and pagination links of the Zotero API stand-in.

Validation and defaults follow Zotero's dataserver (``Zotero_API::parseQueryParams``):
``limit`` defaults to 25 (every match for ``format=keys|versions``), is clamped to 100
and falls back to the default when zero, negative or not a number; explicit object
keys force a limit of 100; ``since`` must be numeric; sort and direction are checked.
The ``Link`` header mirrors ``Zotero_API::buildLinkHeader``: links carry only
non-default parameters sorted by name, ``first``/``last`` are left out when equal to
the page itself, ``next`` appears while results remain, ``alternate`` always.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from biblio.zotero.keys import is_key

WWW = "https://www.zotero.org"
MAX_LIMIT = 100
# Zotero documents "up to 50" keys for itemKey/collectionKey; more is refused here so
# a client that batches wrongly finds out in tests, not in production.
MAX_OBJECT_KEYS = 50
ITEM_SORTS = {
    "dateAdded",
    "dateModified",
    "title",
    "creator",
    "itemType",
    "date",
    "publisher",
    "publicationTitle",
    "journalAbbreviation",
    "language",
    "accessDate",
    "libraryCatalog",
    "callNumber",
    "rights",
    "extra",
}
# Parameters Zotero knows, with their defaults; only non-default ones go into links.
_KNOWN = (
    "format",
    "include",
    "style",
    "locale",
    "q",
    "qmode",
    "includeTrashed",
    "itemType",
    "itemKey",
    "collectionKey",
    "tag",
    "since",
    "sort",
    "direction",
    "start",
    "limit",
)


class ApiError(Exception):
    """An HTTP error answer with a plain-text body, as Zotero sends them."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def api_key_of(headers: Any) -> str | None:
    key = headers.get("Zotero-API-Key")
    auth = headers.get("Authorization") or ""
    if key is None and auth.startswith("Bearer "):
        key = auth[len("Bearer ") :].strip()
    return key


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def format_keys(fmt: str, pairs: list[tuple[str, int]]) -> bytes:
    if fmt == "keys":
        return ("\n".join(k for k, _ in pairs) + "\n").encode()
    return dumps({k: v for k, v in pairs})


def parse_params(query: dict[str, Any], single: bool = False) -> dict[str, Any]:
    """Validate and default query parameters the way Zotero's API.inc.php does."""
    p: dict[str, Any] = {"format": query.get("format") or "json"}
    fmt = p["format"]
    for name in ("since",):
        raw = query.get(name)
        if raw is not None and not re.fullmatch(r"\d+", raw):
            raise ApiError(400, f"Invalid value for '{name}' parameter")
        p[name] = int(raw) if raw is not None else None
    p["start"] = _php_int(query.get("start"), 0)
    # Like Zotero: keys/versions return every match unless a limit is sent; a limit
    # over 100 is clamped, and a zero, negative or non-numeric one means the default.
    default_limit = None if fmt in ("keys", "versions") else 25
    limit = _php_int(query.get("limit"), 0)
    p["limit"] = default_limit if limit <= 0 else min(limit, MAX_LIMIT)
    for name in ("itemKey", "collectionKey"):
        raw = (query.get(name) or "").strip(",")
        if not raw:
            p[name] = None
            continue
        keys = tuple(raw.split(","))
        if not all(is_key(k) for k in keys):
            raise ApiError(400, f"Invalid '{name}' value '{query[name]}'")
        if len(keys) > MAX_OBJECT_KEYS:
            raise ApiError(400, f"Cannot specify more than {MAX_OBJECT_KEYS} keys in '{name}'")
        p[name] = keys
        p["limit"] = MAX_LIMIT  # Zotero forces the limit when explicit keys are given
    sort = query.get("sort") or "dateModified"
    if sort in ("asc", "desc"):
        query = {**query, "direction": sort}
        sort = "dateModified"
    p["sort"] = sort
    p["default_direction"] = "desc" if sort.startswith("date") else "asc"
    direction = query.get("direction") or p["default_direction"]
    if direction not in ("asc", "desc"):
        raise ApiError(400, f"Invalid 'direction' value '{direction}'")
    p["direction"] = direction
    p["includeTrashed"] = query.get("includeTrashed", "0") not in ("", "0", "false")
    p["itemType"] = query.get("itemType", "")
    tags = query.get("tag", [])
    p["tag"] = [tags] if isinstance(tags, str) else list(tags)
    p["q"] = query.get("q", "")
    p["raw"] = query
    return p


def _php_int(raw: str | None, default: int) -> int:
    m = re.match(r"\s*[-+]?\d+", raw or "")
    return int(m.group(0)) if m else default


def link_header(base: str, path: str, params: dict[str, Any], total: int) -> str:
    """Zotero's ``Link`` header (Zotero_API::buildLinkHeader)."""
    raw = params["raw"]
    non_default: dict[str, str] = {}
    for name in _KNOWN:
        if name not in raw:
            continue
        value = raw[name]
        if isinstance(value, list):
            value = value[-1]
        if name == "limit":
            continue  # added below from the effective value
        if name == "start":
            if params["start"]:
                non_default["start"] = str(params["start"])
            continue
        if name == "format" and value == "json":
            continue
        if name == "locale" and value == "en-US":
            continue
        if name == "sort" and params["sort"] == "dateModified":
            continue
        if name == "direction" and params["direction"] == params["default_direction"]:
            continue
        if name == "includeTrashed":
            if params["includeTrashed"]:
                non_default[name] = "1"
            continue
        if value != "":
            non_default[name] = value
    limit, start = params["limit"], params["start"]
    default_limit = None if params["format"] in ("keys", "versions") else 25
    if limit is not None and limit != default_limit:
        non_default["limit"] = str(limit)

    def link(p: dict[str, str]) -> str:
        qs = urlencode(sorted(p.items()))
        return f"{base}{path}" + (f"?{qs}" if qs else "")

    links = {"self": link(non_default)}
    links["first"] = link({k: v for k, v in non_default.items() if k != "start"})
    if start:
        prev = dict(non_default)
        prev_start = start - (limit or 0)
        if prev_start <= 0:
            prev.pop("start", None)
        else:
            prev["start"] = str(prev_start)
        links["prev"] = link(prev)
    if not start and (limit is None and total == 0 or limit is not None and limit >= total):
        links["last"] = links["self"]
    elif limit:
        if start >= total:
            last_start = total - limit
        else:
            last_start = total - (total % limit)
            if last_start == total:
                last_start = total - limit
        last = dict(non_default)
        if last_start > 0:
            last["start"] = str(last_start)
        else:
            last.pop("start", None)
        links["last"] = link(last)
        if start + limit < total:
            links["next"] = link({**non_default, "start": str(start + limit)})
    parts = []
    if links["first"] != links["self"]:
        parts.append(f'<{links["first"]}>; rel="first"')
    if "prev" in links:
        parts.append(f'<{links["prev"]}>; rel="prev"')
    if "next" in links:
        parts.append(f'<{links["next"]}>; rel="next"')
    if "last" in links and links["last"] != links["self"]:
        parts.append(f'<{links["last"]}>; rel="last"')
    parts.append(f'<{WWW}{path}>; rel="alternate"')
    return ", ".join(parts)
