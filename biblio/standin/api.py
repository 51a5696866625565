"""Endpoints of the Zotero API stand-in: routing, access checks and JSON objects.

:class:`StandinApi` turns one GET (path, query, headers) into a response for the
library: the group metadata, item and collection lists and single objects, tags,
``/deleted`` and ``/keys``. Objects are shaped as Zotero returns them (``key``,
``version``, ``library``, ``links``, ``meta``, ``data``), item JSON is cached per
``(key, version, numChildren)`` so paging a large library costs little, and each
list carries ``Last-Modified-Version``, ``Total-Results`` and ``Link``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from biblio.standin.fulltext import fulltext_body
from biblio.standin.library import StandinLibrary
from biblio.standin.params import (
    ITEM_SORTS,
    WWW,
    ApiError,
    api_key_of,
    dumps,
    format_keys,
    link_header,
    parse_params,
)
from biblio.standin.query import ItemQuery, creator_summary, parsed_date
from biblio.zotero.keys import is_key


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


_ENCODE = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


class StandinApi:
    """Answers GET requests for one library; ``url`` is the server's base URL."""

    def __init__(
        self,
        library: StandinLibrary,
        url: str,
        api_keys: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.library = library
        self.url = url
        self.api_keys = api_keys
        self._json_cache: dict[tuple[str, str], tuple[Any, str]] = {}
        self._library_cache: tuple[Any, str] = (None, "")

    def handle(self, path: str, query: dict[str, str], headers: Any) -> Response:
        """Build the response for a GET (faults aside). Raises :class:`ApiError`."""
        m = re.fullmatch(r"/(groups|users)/(\d+)(/.*)?", path.rstrip("/") or "/")
        if m is None:
            if path.startswith("/keys/"):
                return self._key_info(path[len("/keys/") :], headers)
            raise ApiError(404, "Not found")
        lib = self.library
        kind, lib_id, rest = m.group(1), int(m.group(2)), m.group(3) or ""
        ok_ids = {lib.group_id} if kind == "groups" else {lib.group_id, int(lib.group["owner"])}
        if lib_id not in ok_ids:
            raise ApiError(404, "Not found")
        self._check_access(headers)
        prefix = f"/{kind}/{lib_id}"
        parts = rest.strip("/").split("/") if rest else []
        if not parts:
            if kind != "groups":
                raise ApiError(404, "Not found")
            return self._group(prefix)
        head = parts[0]
        if head == "items":
            return self._items_route(prefix, parts[1:], query, headers)
        if head == "collections":
            return self._collections_route(prefix, parts[1:], query, headers)
        if head == "tags" and len(parts) == 1:
            return self._tags(prefix, query, headers)
        if head == "searches" and len(parts) == 1:
            self._not_modified(headers)
            return self._list_response(prefix + "/searches", query, 0, b"[]", lib.version)
        if head == "deleted" and len(parts) == 1:
            return self._deleted(query)
        if head == "fulltext" and len(parts) == 1:
            return self._fulltext_versions(query)
        raise ApiError(404, "Not found")

    def _check_access(self, headers: Any) -> None:
        key = api_key_of(headers)
        info = None
        if key is not None and self.api_keys is not None:
            info = self.api_keys.get(key)
            if info is None:
                raise ApiError(403, "Invalid key")
        g = self.library.group
        if g.get("libraryReading") == "members":
            uid = info and int(info.get("userID", -1))
            if uid not in (g["owner"], *g["admins"], *g["members"]):
                raise ApiError(403, "Forbidden")

    def _key_info(self, which: str, headers: Any) -> Response:
        key = api_key_of(headers) if which == "current" else which
        info = (self.api_keys or {}).get(key or "")
        if info is None:
            raise ApiError(403, "Invalid key" if key else "No key provided")
        body = {
            "key": key,
            "userID": info.get("userID"),
            "username": info.get("username", ""),
            "displayName": info.get("displayName", ""),
            "access": info.get("access", {"user": {"library": True}}),
        }
        return Response(200, dumps(body))

    def _group(self, prefix: str) -> Response:
        gver, data, meta = self.library.group_view()
        gid = self.library.group_id
        body = {
            "id": gid,
            "version": gver,
            "links": {
                "self": {"href": f"{self.url}{prefix}", "type": "application/json"},
                "alternate": {"href": f"{WWW}/groups/{gid}", "type": "text/html"},
            },
            "meta": meta,
            "data": data,
        }
        return Response(200, dumps(body), headers={"Last-Modified-Version": str(gver)})

    def _not_modified(self, headers: Any) -> None:
        raw = headers.get("If-Modified-Since-Version")
        if raw is None:
            return
        try:
            since = int(raw)
        except ValueError:
            raise ApiError(400, "Invalid If-Modified-Since-Version value") from None
        if self.library.version <= since:
            raise ApiError(304, "")

    # ------------------------------------------------------------------ items
    def _items_route(
        self, prefix: str, parts: list[str], query: dict[str, str], headers: Any
    ) -> Response:
        lib = self.library
        if not parts or parts[0] in ("top", "trash"):
            if len(parts) > 1:
                raise ApiError(404, "Not found")
            scope = parts[0] if parts else "all"
            return self._item_list(
                prefix + "/items" + (f"/{scope}" if parts else ""), query, headers, scope
            )
        key = parts[0]
        if not is_key(key):
            raise ApiError(404, "Not found")
        if len(parts) == 1:
            params = parse_params(query, single=True)
            got = lib.get_item(key)
            if got is None:
                raise ApiError(404, "Item does not exist")
            _, data, nchild = got
            self._check_format(params, single=True)
            text = self._item_json(data, nchild)
            return Response(
                200, text.encode(), headers={"Last-Modified-Version": str(data["version"])}
            )
        if parts[1:] == ["fulltext"]:
            return self._item_fulltext(key)
        if parts[1:] == ["children"]:
            if lib.get_item(key) is None:
                raise ApiError(404, "Item not found")
            return self._item_list(
                f"{prefix}/items/{key}/children", query, headers, "children", key
            )
        raise ApiError(404, "Not found")

    def _check_format(
        self,
        params: dict[str, Any],
        single: bool = False,
        allowed: tuple[str, ...] = ("json", "keys", "versions"),
    ) -> str:
        fmt = params["format"]
        if fmt not in allowed or (single and fmt != "json"):
            raise ApiError(400, f"Invalid 'format' value '{fmt}'")
        return fmt

    def _item_list(
        self,
        path: str,
        query: dict[str, str],
        headers: Any,
        scope: str,
        scope_key: str | None = None,
    ) -> Response:
        params = parse_params(query)
        fmt = self._check_format(params)
        sort = params["sort"]
        if sort not in ITEM_SORTS:
            raise ApiError(400, f"Invalid 'sort' value '{sort}'")
        self._not_modified(headers)
        iq = ItemQuery(
            scope=scope,
            scope_key=scope_key,
            include_trashed=params["includeTrashed"],
            since=params["since"],
            item_keys=params["itemKey"],
            item_type=params["itemType"] or None,
            tags=tuple(params["tag"]),
            q=params["q"] or None,
            sort=sort,
            direction=params["direction"],
        )
        res = self.library.query_items(iq, params["start"], params["limit"])
        if fmt == "json":
            body = ("[" + ",".join(self._item_json(d, n) for d, n in res.records) + "]").encode()
        else:
            body = format_keys(fmt, [(d["key"], d["version"]) for d, _ in res.records])
        return self._list_response(path, params, res.total, body, res.version, fmt)

    def _item_json(self, data: dict[str, Any], nchild: int) -> str:
        """Serialized item object, cached per (key, version, children, group name)."""
        lib = self.library
        stamp = (data["version"], nchild, lib.group.get("name"))
        hit = self._json_cache.get(("i", data["key"]))
        if hit is not None and hit[0] == stamp:
            return hit[1]
        gid, key = lib.group_id, data["key"]
        # Hand-assembled envelope: valid keys, ids and our own URL need no JSON
        # escaping, and skipping a generic dumps of it makes a cold page much cheaper.
        base, www = f"{self.url}/groups/{gid}/items", f"{WWW}/groups/{gid}/items"
        links_d: dict[str, Any] = {
            "self": {"href": f"{base}/{key}", "type": "application/json"},
            "alternate": {"href": f"{www}/{key}", "type": "text/html"},
        }
        parent = data.get("parentItem")
        if parent:
            links_d["up"] = {"href": f"{base}/{parent}", "type": "application/json"}
        if is_key(key) and (not parent or is_key(str(parent))):
            links = (
                f'{{"self":{{"href":"{base}/{key}","type":"application/json"}},'
                f'"alternate":{{"href":"{www}/{key}","type":"text/html"}}'
                + (
                    f',"up":{{"href":"{base}/{parent}","type":"application/json"}}'
                    if parent
                    else ""
                )
                + "}"
            )
        else:
            links = _ENCODE(links_d)
        meta: dict[str, Any] = {}
        summary = creator_summary(data.get("creators") or [])
        if summary is not None:
            meta["creatorSummary"] = summary
        pdate = parsed_date(str(data.get("date", "")))
        if pdate:
            meta["parsedDate"] = pdate
        if data.get("itemType") not in ("note", "attachment", "annotation"):
            meta["numChildren"] = nchild
        text = (
            f'{{"key":{_ENCODE(key)},"version":{int(data["version"])},'
            f'"library":{self._library_json()},"links":{links},'
            f'"meta":{_ENCODE(meta)},"data":{_ENCODE(data)}}}'
        )
        self._json_cache[("i", key)] = (stamp, text)
        return text

    def _library_json(self) -> str:
        name = self.library.group.get("name", "")
        if self._library_cache[0] != name:
            self._library_cache = (name, _ENCODE(self._library_block()))
        return self._library_cache[1]

    def _library_block(self) -> dict[str, Any]:
        gid = self.library.group_id
        return {
            "type": "group",
            "id": gid,
            "name": self.library.group.get("name", ""),
            "links": {"alternate": {"href": f"{WWW}/groups/{gid}", "type": "text/html"}},
        }

    # ------------------------------------------------------------ collections
    def _collections_route(
        self, prefix: str, parts: list[str], query: dict[str, str], headers: Any
    ) -> Response:
        lib = self.library
        if not parts or parts == ["top"]:
            return self._collection_list(
                prefix + "/collections" + ("/top" if parts else ""), query, headers, top=bool(parts)
            )
        key = parts[0]
        if not is_key(key) or lib.get_collection(key) is None:
            raise ApiError(404, "Collection not found")
        if len(parts) == 1:
            parse_params(query, single=True)
            got = lib.get_collection(key)
            if got is None:
                raise ApiError(404, "Collection not found")
            _, data, meta = got
            return Response(
                200,
                self._collection_json(data, meta).encode(),
                headers={"Last-Modified-Version": str(data["version"])},
            )
        base = f"{prefix}/collections/{key}"
        if parts[1:] == ["items"]:
            return self._item_list(base + "/items", query, headers, "collection", key)
        if parts[1:] == ["items", "top"]:
            return self._item_list(base + "/items/top", query, headers, "collection_top", key)
        if parts[1:] == ["collections"]:
            return self._collection_list(base + "/collections", query, headers, parent=key)
        raise ApiError(404, "Not found")

    def _collection_list(
        self,
        path: str,
        query: dict[str, str],
        headers: Any,
        top: bool = False,
        parent: str | None = None,
    ) -> Response:
        params = parse_params(query)
        fmt = self._check_format(params)
        if params["sort"] not in ("dateModified", "dateAdded", "title"):
            raise ApiError(400, f"Invalid 'sort' value '{params['sort']}'")
        self._not_modified(headers)
        res = self.library.query_collections(
            top=top,
            parent=parent,
            since=params["since"],
            keys=params["collectionKey"],
            sort=params["sort"],
            direction=params["direction"],
            start=params["start"],
            limit=params["limit"],
        )
        if fmt == "json":
            body = (
                "[" + ",".join(self._collection_json(d, m) for d, m in res.records) + "]"
            ).encode()
        else:
            body = format_keys(fmt, [(d["key"], d["version"]) for d, _ in res.records])
        return self._list_response(path, params, res.total, body, res.version, fmt)

    def _collection_json(self, data: dict[str, Any], meta: tuple[int, int]) -> str:
        gid, key = self.library.group_id, data["key"]
        links: dict[str, Any] = {
            "self": {
                "href": f"{self.url}/groups/{gid}/collections/{key}",
                "type": "application/json",
            },
            "alternate": {"href": f"{WWW}/groups/{gid}/collections/{key}", "type": "text/html"},
        }
        if data.get("parentCollection"):
            links["up"] = {
                "href": f"{self.url}/groups/{gid}/collections/{data['parentCollection']}",
                "type": "application/json",
            }
        obj = {
            "key": key,
            "version": data["version"],
            "library": self._library_block(),
            "links": links,
            "meta": {"numCollections": meta[0], "numItems": meta[1]},
            "data": data,
        }
        return json.dumps(obj, ensure_ascii=False)

    # ----------------------------------------------------------- tags, deleted
    def _tags(self, prefix: str, query: dict[str, str], headers: Any) -> Response:
        params = parse_params(query)
        self._check_format(params, allowed=("json",))
        self._not_modified(headers)
        direction = query.get("direction", "asc")
        res = self.library.query_tags(params["since"], params["start"], params["limit"], direction)
        gid = self.library.group_id
        rows = [
            {
                "tag": name,
                "links": {
                    "self": {
                        "href": f"{self.url}/groups/{gid}/tags/{name}",
                        "type": "application/json",
                    },
                    "alternate": {"href": f"{WWW}/groups/{gid}/tags/{name}", "type": "text/html"},
                },
                "meta": {"type": ttype, "numItems": n},
            }
            for name, ttype, n in res.records
        ]
        return self._list_response(prefix + "/tags", params, res.total, dumps(rows), res.version)

    def _deleted(self, query: dict[str, str]) -> Response:
        if "since" not in query:
            raise ApiError(400, "'since' parameter must be provided")
        params = parse_params(query)
        version, out = self.library.deleted_since(params["since"] or 0)
        return Response(200, dumps(out), headers={"Last-Modified-Version": str(version)})

    # -------------------------------------------------------------- full text
    def _fulltext_versions(self, query: dict[str, str]) -> Response:
        # Zotero's FullTextController: `since` defaults to 0, the answer is always a
        # JSON object (never a 304), stamped with the library version.
        params = parse_params(query)
        version, newer = self.library.fulltext_since(params["since"] or 0)
        return Response(200, dumps(newer), headers={"Last-Modified-Version": str(version)})

    def _item_fulltext(self, key: str) -> Response:
        record = self.library.get_fulltext(key)
        if record is None:
            raise ApiError(404, "Not found")
        # ASCII with escapes: text extracted from PDFs can hold lone surrogates, which
        # JSON can carry escaped but UTF-8 cannot.
        body = json.dumps(fulltext_body(record), ensure_ascii=True).encode()
        return Response(200, body, headers={"Last-Modified-Version": str(record["version"])})

    # --------------------------------------------------------------- plumbing
    def _list_response(
        self,
        path: str,
        params: dict[str, Any],
        total: int,
        body: bytes,
        version: int,
        fmt: str = "json",
    ) -> Response:
        headers = {
            "Last-Modified-Version": str(version),
            "Total-Results": str(total),
            "Link": link_header(self.url, path, params, total),
        }
        ctype = "text/plain" if fmt == "keys" else "application/json"
        return Response(200, body, ctype, headers)
