"""In-memory, versioned Zotero group library behind the loopback API stand-in.

:class:`StandinLibrary` holds one group library the way Zotero's server sees it: item
and collection ``data`` dicts, each with the library version of its last write, a log
of permanent deletions (``/deleted``), and the group's metadata with its own version.
Every mutation is one write — library version + 1, and every object it touches gets
that version — so tests can simulate edits between and during syncs. Data dicts are
never changed in place (a write replaces the dict), which lets the server serialize
outside the lock and cache JSON per ``(key, version)``. Queries return the ordered key
list of a filter, cached per library version, so paging a 50k library stays cheap.
Synthetic libraries come from :func:`biblio.standin.synthetic.synthetic_library`.
"""

from __future__ import annotations

import json
import random
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from biblio.standin.fulltext import FullTextStore, can_have_fulltext
from biblio.standin.query import ItemQuery, QueryResult, select_items
from biblio.zotero.keys import KEY_ALPHABET

# Zotero writes at most 50 objects per request, so a library built by uploads has
# runs of 50 objects sharing a version; loading an unversioned file mimics that.
LOAD_BATCH = 50
_LIST_CACHE_SIZE = 64


def now_iso() -> str:
    """Current UTC time in Zotero's ``dateModified`` format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StandinLibrary:
    """A thread-safe, versioned Zotero group library (see module docstring)."""

    def __init__(self, group: dict[str, Any] | None = None, *, seed: int = 0) -> None:
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        g = dict(group or {})
        self.group_id: int = int(g.get("id", 1))
        self.group_version: int = int(g.pop("version", 1) or 1)
        g.setdefault("id", self.group_id)
        g.setdefault("name", f"Group {self.group_id}")
        g.setdefault("owner", 1)
        g.setdefault("type", "PublicClosed")
        g.setdefault("description", "")
        g.setdefault("url", "")
        g.setdefault("libraryReading", "all")
        g.setdefault("libraryEditing", "members")
        g.setdefault("fileEditing", "members")
        g["admins"] = [int(u) for u in g.get("admins") or [] if int(u) != int(g["owner"])]
        g["members"] = [
            int(u) for u in g.get("members") or [] if int(u) not in (int(g["owner"]), *g["admins"])
        ]
        self.group: dict[str, Any] = g
        self.created: str = str(g.pop("created", None) or now_iso())
        self.group_modified: str = self.created
        self.items: dict[str, dict[str, Any]] = {}
        self.collections: dict[str, dict[str, Any]] = {}
        self.children: dict[str, list[str]] = {}
        self.deleted: dict[str, dict[str, int]] = {
            "collections": {},
            "searches": {},
            "items": {},
            "tags": {},
            "settings": {},
        }
        self.version = 0
        self.fulltext = FullTextStore()
        self._lists: OrderedDict[tuple[Any, ...], list[str]] = OrderedDict()
        self._lists_version = -1
        self._coll_meta: dict[str, tuple[int, int]] = {}
        self._coll_meta_version = -1

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_file(cls, path: str | Path) -> StandinLibrary:
        """Load a library from a JSON file (format: see :meth:`from_dict`)."""
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh), copy=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, copy: bool = True) -> StandinLibrary:
        """Build from ``{"group": {...}, "collections": [data...], "items": [data...]}``.

        Optional: per-object ``version``, ``"deleted": {"items": {key: version}, ...}``
        and ``"fulltext": {attachmentKey: {"content": ..., "indexedPages": ..., ...}}``.
        Objects without a version get one, 50 per version in file order (collections
        first), after any version already present; texts without one are written
        together after them; the library version is the maximum.
        """
        if copy:
            d = json.loads(json.dumps(d))
        lib = cls(d.get("group"))
        objs = [("c", c) for c in d.get("collections", [])] + [("i", i) for i in d.get("items", [])]
        top = max([int(o.get("version") or 0) for _, o in objs] or [0])
        for kind, names in (d.get("deleted") or {}).items():
            entries = names.items() if isinstance(names, dict) else ((n, 1) for n in names)
            for name, ver in entries:
                lib.deleted.setdefault(kind, {})[name] = int(ver)
                top = max(top, int(ver))
        pending = 0
        for kind, obj in objs:
            if not obj.get("key"):
                obj["key"] = lib._new_key()
            if not obj.get("version"):
                obj["version"] = top + 1 + pending // LOAD_BATCH
                pending += 1
            lib._put(kind, obj)
        lib.version = max([top + (pending + LOAD_BATCH - 1) // LOAD_BATCH, 0])
        texts = d.get("fulltext") or {}
        lib.version = max(lib.version, lib.fulltext.load(texts, lib.version + 1))
        return lib

    def to_dict(self) -> dict[str, Any]:
        """The library in the file format of :meth:`from_dict` (versions included)."""
        with self._lock:
            group = dict(self.group, version=self.group_version, created=self.created)
            return {
                "group": group,
                "collections": list(self.collections.values()),
                "items": list(self.items.values()),
                "deleted": {k: dict(v) for k, v in self.deleted.items() if v},
                "fulltext": self.fulltext.dump(),
            }

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` to ``path`` as UTF-8 JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    def _put(self, kind: str, data: dict[str, Any]) -> None:
        """Insert or replace an object without versioning (callers set ``version``)."""
        if kind == "c":
            data.setdefault("parentCollection", False)
            data.setdefault("relations", {})
            self.collections[data["key"]] = data
            return
        key = data["key"]
        old = self.items.get(key)
        if old and old.get("parentItem") and old["parentItem"] != data.get("parentItem"):
            siblings = self.children.get(old["parentItem"], [])
            if key in siblings:
                siblings.remove(key)
        data.setdefault("tags", [])
        data.setdefault("relations", {})
        parent = data.get("parentItem")
        if parent:
            data.pop("collections", None)  # only top-level items carry collections
            kids = self.children.setdefault(parent, [])
            if key not in kids:
                kids.append(key)
        else:
            data.setdefault("collections", [])
        self.items[key] = data

    def _new_key(self) -> str:
        while True:
            key = "".join(self._rng.choices(KEY_ALPHABET, k=8))
            taken = (
                self.items,
                self.collections,
                self.deleted["items"],
                self.deleted["collections"],
            )
            if not any(key in pool for pool in taken):
                return key

    # --------------------------------------------------------------- mutations
    def _write(self) -> int:
        """Start one write: bump and return the new library version."""
        self.version += 1
        return self.version

    def add_items(self, datas: Iterable[dict[str, Any]]) -> list[str]:
        """Create several items in one write (they all get the same version)."""
        with self._lock:
            ver, stamp, keys = self._write(), now_iso(), []
            for src in datas:
                data = json.loads(json.dumps(src))
                data.setdefault("key", self._new_key())
                data.setdefault("itemType", "journalArticle")
                data.setdefault("dateAdded", stamp)
                data["dateModified"] = stamp
                data["version"] = ver
                if not data.get("deleted"):
                    data.pop("deleted", None)
                self._put("i", data)
                keys.append(data["key"])
            return keys

    def add_item(self, data: dict[str, Any]) -> str:
        """Create one item; returns its key (generated unless ``data`` has one)."""
        return self.add_items([data])[0]

    def update_item(self, key: str, **fields: Any) -> int:
        """Change fields of an item (``None`` removes a field); returns the new version."""
        with self._lock:
            old = self._item(key)
            data = dict(old)
            for name, value in fields.items():
                if value is None:
                    data.pop(name, None)
                else:
                    data[name] = json.loads(json.dumps(value))
            data["version"] = ver = self._write()
            data["dateModified"] = now_iso()
            self._put("i", data)
            return ver

    def trash_item(self, key: str) -> int:
        """Move an item to the trash: a change (``deleted: 1``), not a deletion."""
        return self.update_item(key, deleted=1)

    def restore_item(self, key: str) -> int:
        """Take an item out of the trash."""
        return self.update_item(key, deleted=None)

    def delete_item(self, key: str) -> int:
        """Delete an item permanently, with its children; logged in ``/deleted``."""
        with self._lock:
            self._item(key)
            ver = self._write()
            for k in [key, *self.children.get(key, [])]:
                data = self.items.pop(k, None)
                if data is None:
                    continue
                parent = data.get("parentItem")
                if parent and k in self.children.get(parent, []):
                    self.children[parent].remove(k)
                self.deleted["items"][k] = ver
                self.fulltext.drop([k])  # Zotero deletes an attachment's text with it
            self.children.pop(key, None)
            return ver

    def set_fulltext(self, key: str, content: str, **counts: int) -> int:
        """Write an attachment's full text (``indexedPages=…, totalPages=…`` or
        ``indexedChars=…, totalChars=…``): one write, as Zotero's ``PUT …/fulltext``."""
        with self._lock:
            if not can_have_fulltext(self._item(key)):
                raise ValueError(f"{key} is not an attachment that can have full text")
            ver = self._write()
            self.fulltext.put(key, content, counts, ver)
            return ver

    def fulltext_since(self, since: int) -> tuple[int, dict[str, int]]:
        """Library version and ``{attachment key: text version}`` written after ``since``."""
        with self._lock:
            return self.version, self.fulltext.since(since)

    def get_fulltext(self, key: str) -> dict[str, Any] | None:
        """An attachment's text record, or None (no such item, a link, or no text)."""
        with self._lock:
            if not can_have_fulltext(self.items.get(key)):
                return None
            return self.fulltext.get(key)

    def add_collection(self, name: str, parent: str | None = None, **fields: Any) -> str:
        """Create a collection (optionally under ``parent``); returns its key."""
        with self._lock:
            if parent is not None:
                self._collection(parent)
            data = {
                "key": fields.pop("key", None) or self._new_key(),
                "name": name,
                "parentCollection": parent or False,
                "relations": {},
                **fields,
            }
            data["version"] = self._write()
            self._put("c", data)
            return data["key"]

    def update_collection(self, key: str, **fields: Any) -> int:
        """Change fields of a collection (``None`` removes a field)."""
        with self._lock:
            data = dict(self._collection(key))
            for name, value in fields.items():
                if value is None:
                    data.pop(name, None)
                else:
                    data[name] = value
            data["version"] = ver = self._write()
            self._put("c", data)
            return ver

    def trash_collection(self, key: str) -> int:
        """Move a collection to the trash (``deleted: true``; still listed)."""
        return self.update_collection(key, deleted=True)

    def restore_collection(self, key: str) -> int:
        """Take a collection out of the trash."""
        return self.update_collection(key, deleted=None)

    def delete_collection(self, key: str) -> int:
        """Delete a collection and its subcollections; their items are changed too."""
        with self._lock:
            self._collection(key)
            ver, stamp = self._write(), now_iso()
            doomed, frontier = {key}, [key]
            while frontier:
                parent = frontier.pop()
                for c in self.collections.values():
                    if c.get("parentCollection") == parent and c["key"] not in doomed:
                        doomed.add(c["key"])
                        frontier.append(c["key"])
            for k in doomed:
                del self.collections[k]
                self.deleted["collections"][k] = ver
            for data in list(self.items.values()):
                colls = data.get("collections") or []
                if doomed.intersection(colls):
                    new = dict(data, collections=[c for c in colls if c not in doomed])
                    new.update(version=ver, dateModified=stamp)
                    self._put("i", new)
            return ver

    def remove_tag(self, name: str) -> int:
        """Delete a tag from every item (each changes) and log it in ``/deleted``."""
        with self._lock:
            ver, stamp = self._write(), now_iso()
            for data in list(self.items.values()):
                tags = data.get("tags") or []
                if any(t.get("tag") == name for t in tags):
                    new = dict(data, tags=[t for t in tags if t.get("tag") != name])
                    new.update(version=ver, dateModified=stamp)
                    self._put("i", new)
            self.deleted["tags"][name] = ver
            return ver

    # Group metadata has its own version; membership changes do not touch the
    # library version (no item or collection changes).
    def _group_write(self) -> int:
        self.group_version += 1
        self.group_modified = now_iso()
        return self.group_version

    def add_member(self, user_id: int) -> int:
        """Add a user as a plain member (no-op if already in the group)."""
        with self._lock:
            uid = int(user_id)
            if (
                uid != self.group["owner"]
                and uid not in self.group["admins"] + self.group["members"]
            ):
                self.group["members"] = [*self.group["members"], uid]
                self._group_write()
            return self.group_version

    def remove_member(self, user_id: int) -> int:
        """Remove a user (member or admin) from the group."""
        with self._lock:
            uid = int(user_id)
            if uid in self.group["admins"] or uid in self.group["members"]:
                self.group["admins"] = [u for u in self.group["admins"] if u != uid]
                self.group["members"] = [u for u in self.group["members"] if u != uid]
                self._group_write()
            return self.group_version

    def set_admin(self, user_id: int, admin: bool = True) -> int:
        """Make a user an admin (``admin=True``) or a plain member (``False``)."""
        with self._lock:
            uid = int(user_id)
            if uid == self.group["owner"]:
                return self.group_version
            is_admin = uid in self.group["admins"]
            if admin != is_admin or uid not in self.group["admins"] + self.group["members"]:
                self.group["admins"] = [u for u in self.group["admins"] if u != uid]
                self.group["members"] = [u for u in self.group["members"] if u != uid]
                self.group["admins" if admin else "members"] = [
                    *self.group["admins" if admin else "members"],
                    uid,
                ]
                self._group_write()
            return self.group_version

    def update_group(self, **fields: Any) -> int:
        """Change group metadata such as ``name`` or ``description``."""
        with self._lock:
            self.group.update(fields)
            return self._group_write()

    # ----------------------------------------------------------------- reading
    def _item(self, key: str) -> dict[str, Any]:
        try:
            return self.items[key]
        except KeyError:
            raise KeyError(f"no item {key!r}") from None

    def _collection(self, key: str) -> dict[str, Any]:
        try:
            return self.collections[key]
        except KeyError:
            raise KeyError(f"no collection {key!r}") from None

    def snapshot(self) -> dict[str, Any]:
        """``{"items": {key: version}, "collections": {key: version}, "version": V}``."""
        with self._lock:
            return {
                "items": {k: d["version"] for k, d in self.items.items()},
                "collections": {k: d["version"] for k, d in self.collections.items()},
                "fulltext": {k: r["version"] for k, r in self.fulltext.records.items()},
                "version": self.version,
            }

    def num_children(self, key: str) -> int:
        """Children of an item that are not in the trash (``meta.numChildren``)."""
        items = self.items
        return sum(1 for k in self.children.get(key, ()) if not items[k].get("deleted"))

    def get_item(self, key: str) -> tuple[int, dict[str, Any], int] | None:
        """``(library version, data, numChildren)`` of one item, or None."""
        with self._lock:
            data = self.items.get(key)
            return None if data is None else (self.version, data, self.num_children(key))

    def get_collection(self, key: str) -> tuple[int, dict[str, Any], tuple[int, int]] | None:
        """``(library version, data, (numCollections, numItems))`` or None."""
        with self._lock:
            data = self.collections.get(key)
            if data is None:
                return None
            return self.version, data, self.collection_meta().get(key, (0, 0))

    def collection_meta(self) -> dict[str, tuple[int, int]]:
        """``{key: (numCollections, numItems)}``, computed once per library version."""
        with self._lock:
            if self._coll_meta_version != self.version:
                meta = {k: [0, 0] for k in self.collections}
                for c in self.collections.values():
                    parent = c.get("parentCollection")
                    if parent in meta:
                        meta[parent][0] += 1
                for d in self.items.values():
                    if not d.get("deleted"):
                        for c in d.get("collections") or ():
                            if c in meta:
                                meta[c][1] += 1
                self._coll_meta = {k: (v[0], v[1]) for k, v in meta.items()}
                self._coll_meta_version = self.version
            return self._coll_meta

    def _cached(self, key: tuple[Any, ...], build: Any) -> list[str]:
        if self._lists_version != self.version:
            self._lists.clear()
            self._lists_version = self.version
        hit = self._lists.get(key)
        if hit is None:
            hit = self._lists[key] = build()
            if len(self._lists) > _LIST_CACHE_SIZE:
                self._lists.popitem(last=False)
        else:
            self._lists.move_to_end(key)
        return hit

    def item_keys(self, q: ItemQuery) -> list[str]:
        """Ordered keys of the items matching ``q`` (cached per library version)."""
        with self._lock:
            return self._cached(("items", q), lambda: select_items(self.items, self.children, q))

    def query_items(self, q: ItemQuery, start: int, limit: int | None) -> QueryResult:
        """One page of items as ``(data, numChildren)`` records, atomically."""
        with self._lock:
            keys = self.item_keys(q)
            page = keys[start:] if limit is None else keys[start : start + limit]
            recs = [(self.items[k], self.num_children(k)) for k in page]
            return QueryResult(self.version, len(keys), recs)

    def query_collections(
        self,
        *,
        top: bool = False,
        parent: str | None = None,
        since: int | None = None,
        keys: tuple[str, ...] | None = None,
        sort: str = "dateModified",
        direction: str = "desc",
        start: int = 0,
        limit: int | None = None,
    ) -> QueryResult:
        """One page of collections as ``(data, (numCollections, numItems))`` records."""
        with self._lock:

            def build() -> list[str]:
                pool = (
                    self.collections.values()
                    if keys is None
                    else [self.collections[k] for k in keys if k in self.collections]
                )
                out = [
                    c
                    for c in pool
                    if (not top or not c.get("parentCollection"))
                    and (parent is None or c.get("parentCollection") == parent)
                    and (since is None or c["version"] > since)
                ]
                if sort in ("title", "name"):
                    out.sort(
                        key=lambda c: (c.get("name", "").lower(), c["key"]),
                        reverse=direction == "desc",
                    )
                else:
                    out.sort(key=lambda c: (c["version"], c["key"]), reverse=direction == "desc")
                return [c["key"] for c in out]

            ordered = self._cached(("colls", top, parent, since, keys, sort, direction), build)
            page = ordered[start:] if limit is None else ordered[start : start + limit]
            meta = self.collection_meta()
            recs = [(self.collections[k], meta.get(k, (0, 0))) for k in page]
            return QueryResult(self.version, len(ordered), recs)

    def query_tags(
        self,
        since: int | None = None,
        start: int = 0,
        limit: int | None = None,
        direction: str = "asc",
    ) -> QueryResult:
        """One page of ``(tag, type, numItems)`` over items not in the trash."""
        with self._lock:
            counts: dict[tuple[str, int], int] = {}
            for d in self.items.values():
                if d.get("deleted") or (since is not None and d["version"] <= since):
                    continue
                for t in d.get("tags") or ():
                    k = (t.get("tag", ""), int(t.get("type", 0) or 0))
                    counts[k] = counts.get(k, 0) + 1
            ordered = sorted(
                counts, key=lambda k: (k[0].lower(), k[0], k[1]), reverse=direction == "desc"
            )
            page = ordered[start:] if limit is None else ordered[start : start + limit]
            return QueryResult(
                self.version, len(ordered), [(n, t, counts[(n, t)]) for n, t in page]
            )

    def deleted_since(self, since: int) -> tuple[int, dict[str, list[str]]]:
        """Library version and the keys/names permanently deleted after ``since``."""
        with self._lock:
            out = {
                kind: [k for k, v in self.deleted.get(kind, {}).items() if v > since]
                for kind in ("collections", "searches", "items", "tags", "settings")
            }
            return self.version, out

    def group_view(self) -> tuple[int, dict[str, Any], dict[str, Any]]:
        """``(group version, data, meta)`` for ``/groups/{id}``."""
        with self._lock:
            data = {
                "id": self.group_id,
                "version": self.group_version,
                **{k: v for k, v in self.group.items() if k not in ("id", "version")},
            }
            for k in ("admins", "members"):
                if not data.get(k):
                    data.pop(k, None)  # Zotero omits empty lists
            meta = {
                "created": self.created,
                "lastModified": self.group_modified,
                "numItems": len(self.items),
            }
            return self.group_version, data, meta
