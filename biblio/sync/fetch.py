"""Fetch what changed in a Zotero library, as Zotero's sync protocol prescribes.

A first (or ``--full``) sync pages through every collection and every item,
trashed ones included, 100 per request. Later syncs send
``If-Modified-Since-Version: V`` (a 304 means nothing to do), ask
``format=versions&since=V`` for items and collections, fetch only the changed keys
50 at a time, and read ``/deleted?since=V``. The group's metadata (name,
description, owner, admins, members) is read every run; that path never answers
304. Everything comes back as plain dicts in a :class:`Changes`; nothing here
touches the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from biblio.sync.client import NotModified, SyncError, ZoteroClient

log = logging.getLogger(__name__)

BATCH = 50

Progress = Callable[[str, int, int | None], None]


class LibraryChanged(SyncError):
    """The library's version moved while pages were being read; start again."""


@dataclass
class Changes:
    full: bool
    since: int
    version: int = 0
    not_modified: bool = False
    items: list[dict[str, Any]] = field(default_factory=list)
    collections: list[dict[str, Any]] = field(default_factory=list)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    group: dict[str, Any] | None = None


_KEY_CHARS = set("23456789ABCDEFGHIJKLMNPQRSTUVWXYZ")


class MalformedResponse(SyncError):
    """Zotero answered with something that is not a list of well-formed objects."""


def check_objects(objects: object, kind: str) -> list[dict[str, Any]]:
    """Objects ``{key, version, data}`` as Zotero sends them, or :class:`MalformedResponse`.

    A hostile or broken answer must fail the run cleanly (the cache stays as it was)
    rather than reach the database half-understood.
    """
    if not isinstance(objects, list):
        raise MalformedResponse(f"{kind}: expected a JSON list, got {type(objects).__name__}")
    for obj in objects:
        key = obj.get("key") if isinstance(obj, dict) else None
        if not (isinstance(key, str) and len(key) == 8 and set(key) <= _KEY_CHARS):
            raise MalformedResponse(f"{kind}: object with a malformed key {str(key)[:40]!r}")
        version = obj.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise MalformedResponse(f"{kind} {key}: malformed version {str(version)[:40]!r}")
        if not isinstance(obj.get("data"), dict):
            raise MalformedResponse(f"{kind} {key}: missing data object")
    # Keep only what the cache stores: each object's `links` and `library` would
    # otherwise stay in memory for the whole run (a large share of a full sync's).
    return [
        {
            "key": o["key"],
            "version": o["version"],
            "data": o["data"],
            "meta": o.get("meta") if isinstance(o.get("meta"), dict) else {},
        }
        for o in objects
    ]


def check_versions(versions: object, kind: str) -> dict[str, int]:
    if not isinstance(versions, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in versions.items()
    ):
        raise MalformedResponse(f"{kind}: expected an object of key: version")
    return versions


def _batches(keys: list[str], size: int = BATCH) -> Iterable[list[str]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def _noop(_kind: str, _done: int, _total: int | None) -> None:
    return None


def fetch_changes(
    client: ZoteroClient, since: int, *, full: bool = False, progress: Progress | None = None
) -> Changes:
    """Everything that changed after library version ``since`` (all of it if ``full``)."""
    progress = progress or _noop
    if full or since <= 0:
        changes = _fetch_full(client, progress)
    else:
        changes = _fetch_incremental(client, since, progress)
    changes.group = client.group()
    return changes


def _fetch_full(client: ZoteroClient, progress: Progress) -> Changes:
    changes = Changes(full=True, since=0)
    version: int | None = None

    def check() -> None:
        nonlocal version
        current = client.last_version
        if version is None:
            version = current
        elif current != version:
            # Pages are offsets into a moving list: a change can shift an item past us.
            raise LibraryChanged(
                f"library changed from version {version} to {current} while paging"
            )

    done = 0
    total: int | None = None
    for page in client.pages("items"):
        check()
        if total is None and client.zot.request is not None:
            header = client.zot.request.headers.get("Total-Results")
            total = int(header) if header and header.isdigit() else None
        changes.items.extend(check_objects(page, "items"))
        done += len(page)
        progress("items", done, total)
    for page in client.pages("collections"):
        check()
        changes.collections.extend(check_objects(page, "collections"))
    changes.version = version or 0
    return changes


def _fetch_incremental(client: ZoteroClient, since: int, progress: Progress) -> Changes:
    changes = Changes(full=False, since=since)
    try:
        item_versions = check_versions(
            client.item_versions(since, if_modified_since=since), "item versions"
        )
    except NotModified:
        changes.not_modified = True
        changes.version = since
        return changes
    # Zotero's safe rule for a read-only cache: keep the version of the run's first
    # response; anything changed during the run has a higher version and is fetched
    # again next time.
    changes.version = client.last_version or since
    collection_versions = check_versions(client.collection_versions(since), "collection versions")

    keys = sorted(collection_versions)
    for batch in _batches(keys):
        changes.collections.extend(check_objects(client.collections_by_key(batch), "collections"))

    keys = sorted(item_versions)
    progress("items", 0, len(keys))
    for batch in _batches(keys):
        changes.items.extend(check_objects(client.items_by_key(batch), "items"))
        progress("items", len(changes.items), len(keys))
    deleted = client.deleted(since)
    if not isinstance(deleted, dict):
        raise MalformedResponse("deleted: expected a JSON object")
    changes.deleted = {k: list(v) for k, v in deleted.items() if isinstance(v, list)}
    return changes
