"""Fetch what changed in a Zotero library, as Zotero's sync protocol prescribes.

A first (or ``--full``) sync reads the first page of items (trash included, 100 per
request) and of collections, then, knowing ``Total-Results``, asks for every other
page at once, overlapped (:mod:`.overlap`). Later syncs send
``If-Modified-Since-Version: V`` (a 304 means nothing to do), ask
``format=versions&since=V`` for items and collections, fetch only the changed keys
50 at a time, overlapped, and read ``/deleted?since=V``. The group's metadata is read
every run (that path never answers 304). With ``[sync] fulltext`` on, ``/fulltext``
lists the attachments whose indexed text changed and each changed text is fetched
(``/items/KEY/fulltext``); a full sync also drops the texts Zotero no longer has.

Every answer is checked (:mod:`.checks`) and every page of a full sync must carry the
version of the first: a different one means the library changed under the paging
(:class:`LibraryChanged`, the run starts again). Incremental runs keep the version of
their first answer (Zotero's safe rule: what changed during the run is fetched again
next time); a key batch that comes back short at a newer version also restarts.
Nothing is held for the whole run: each answer goes to a :class:`Sink` (the staging
tables) as it arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from biblio.sync.checks import (
    check_complete,
    check_deleted,
    check_fulltext,
    check_objects,
    check_versions,
)
from biblio.sync.client import Reply, ZoteroClient
from biblio.sync.errors import IncompleteAnswer, LibraryChanged, MalformedResponse, NotModified
from biblio.sync.overlap import overlapped

log = logging.getLogger(__name__)

BATCH = 50  # keys per itemKey/collectionKey request (Zotero's documented limit)
PAGE = 100  # objects per page (Zotero's largest limit)

Progress = Callable[[str, int, int | None], None]

__all__ = ["Fetched", "FulltextPlan", "LibraryChanged", "Progress", "Sink", "fetch_changes"]


class Sink(Protocol):
    """Where fetched objects go as they arrive (:class:`biblio.sync.stage.Stage`)."""

    def add_items(self, objects: list[dict[str, Any]]) -> None: ...
    def add_collections(self, objects: list[dict[str, Any]]) -> None: ...
    def add_fulltext(self, key: str, version: int, text: dict[str, Any]) -> None: ...
    def drop(self, kind: str, keys: Iterable[str]) -> None: ...


@dataclass
class FulltextPlan:
    """What the cache holds of attachments' text: from which version, which versions."""

    since: int
    known: dict[str, int] = field(default_factory=dict)


@dataclass
class Fetched:
    """What a run fetched (the objects themselves went to the sink)."""

    full: bool
    since: int
    version: int = 0
    not_modified: bool = False
    group: dict[str, Any] | None = None
    items: int = 0
    collections: int = 0
    fulltext_synced: bool = False
    texts: int = 0


def _noop(_kind: str, _done: int, _total: int | None) -> None:
    return None


def fetch_changes(
    client: ZoteroClient,
    since: int,
    sink: Sink,
    *,
    full: bool = False,
    progress: Progress | None = None,
    fulltext: FulltextPlan | None = None,
) -> Fetched:
    """Stream everything that changed after ``since`` (all of it if ``full``) to ``sink``."""
    client.throttle.resume()
    run = _Run(client, sink, progress or _noop, fulltext)
    if full or since <= 0:
        return run.full()
    return run.incremental(since)


class _Run:
    def __init__(
        self, client: ZoteroClient, sink: Sink, progress: Progress, plan: FulltextPlan | None
    ) -> None:
        self.client, self.sink, self.progress, self.plan = client, sink, progress, plan
        self.target: int | None = None
        self.total: int | None = None
        self.texts: list[tuple[str, int]] = []  # (key, listed version) to fetch
        self.listed_since: int | None = None
        self.group: dict[str, Any] | None = None
        self.done_items = self.done_colls = self.fetched_texts = 0

    # -- checks bound to this run --------------------------------------------------

    def _same_version(self, reply: Reply[Any], what: str) -> None:
        if reply.version != self.target:
            # Pages are offsets into a moving list: a change can shift an item past us.
            raise LibraryChanged(
                f"library changed from version {self.target} to {reply.version} while "
                f"reading {what}"
            )

    def _page(self, kind: str, start: int, total: int | None) -> Callable[[Reply[Any]], Any]:
        def check(reply: Reply[Any]) -> list[dict[str, Any]]:
            if self.target is not None:
                self._same_version(reply, f"{kind} at {start}")
            objects = check_objects(reply.data, kind)
            promised = total if total is not None else reply.total
            expected = None if promised is None else max(0, min(PAGE, promised - start))
            if expected is not None and len(objects) != expected:
                raise IncompleteAnswer(
                    f"{kind} page at {start}: {len(objects)} objects where Total-Results "
                    f"promised {expected}"
                )
            return objects

        return check

    def _batch(self, kind: str, keys: list[str]) -> Callable[[Reply[Any]], Any]:
        def check(reply: Reply[Any]) -> list[dict[str, Any]]:
            objects = check_objects(reply.data, kind)
            try:
                check_complete(objects, keys, kind)
            except IncompleteAnswer:
                moved = reply.version is not None and self.target is not None
                if moved and reply.version > self.target:  # type: ignore[operator]
                    # Deleted since the run began: start again, from /versions.
                    raise LibraryChanged(
                        f"library changed to version {reply.version} while reading {kind}"
                    ) from None
                raise
            return objects

        return check

    # -- full ------------------------------------------------------------------------

    def full(self) -> Fetched:
        c = self.client
        fetched = Fetched(full=True, since=0)
        first = c.call(
            lambda z: z.items(**_item_page(0)), "items page 1", check=self._page("items", 0, None)
        )
        if first.version is None:
            raise MalformedResponse("items page 1: no Last-Modified-Version")
        self.target, self.total = first.version, first.total
        self._consume(("items", first.data))
        colls = c.call(
            lambda z: z.collections(limit=PAGE, start=0),
            "collections page 1",
            check=self._page("collections", 0, None),
        )
        self._consume(("collections", colls.data))
        tasks = [
            *self._pages("items", first),
            *self._pages("collections", colls),
            lambda: ("group", c.group()),
        ]
        if self.plan is not None:
            tasks.append(self._fulltext_list(0, same_version=True))
        overlapped(c.throttle, c.concurrency, tasks, self._consume)
        self._texts()
        fetched.version = self.target
        return self._finish(fetched)

    def _pages(self, kind: str, first: Reply[Any]) -> Iterator[Callable[[], Any]]:
        total = first.total
        if total is None:
            # No Total-Results (not Zotero's behaviour): read on until a short page.
            if len(first.data) == PAGE:
                yield lambda: self._sequential(kind, PAGE)
            return
        for start in range(PAGE, total, PAGE):
            yield self._page_task(kind, start, total)

    def _page_task(self, kind: str, start: int, total: int | None) -> Callable[[], Any]:
        def fetch() -> tuple[str, Any]:
            reply = self.client.call(
                lambda z: _list_call(z, kind, start),
                f"{kind} page {start // PAGE + 1}",
                check=self._page(kind, start, total),
            )
            return kind, reply.data

        return fetch

    def _sequential(self, kind: str, start: int) -> tuple[str, Any]:
        objects: list[dict[str, Any]] = []
        while True:
            page = self._page_task(kind, start, None)()[1]
            objects.extend(page)
            if len(page) < PAGE:
                return kind, objects
            start += PAGE

    # -- incremental -------------------------------------------------------------------

    def incremental(self, since: int) -> Fetched:
        c = self.client
        fetched = Fetched(full=False, since=since)
        try:
            versions = c.call(
                lambda z: z.item_versions(since=since, includeTrashed=1),
                "item versions",
                if_modified_since=since,
                check=lambda r: check_versions(r.data, "item versions"),
            )
        except NotModified:
            fetched.not_modified = True
            fetched.version = self.target = since
            tasks: list[Callable[[], Any]] = [lambda: ("group", c.group())]
            if self.plan is not None and self.plan.since < since:
                # Full text was off (or never synced) while the library stood still.
                tasks.append(self._fulltext_list(self.plan.since, same_version=False))
            overlapped(c.throttle, c.concurrency, tasks, self._consume)
            self._texts()
            return self._finish(fetched)
        # Zotero's safe rule for a read-only cache: keep the version of the run's first
        # answer; anything changed during the run is fetched again next time.
        self.target = versions.version if versions.version is not None else since
        fetched.version = self.target
        colls = c.call(
            lambda z: z.collection_versions(since=since),
            "collection versions",
            check=lambda r: check_versions(r.data, "collection versions"),
        )
        item_keys, coll_keys = sorted(versions.data), sorted(colls.data)
        self.total = len(item_keys)
        self.progress("items", 0, self.total)
        tasks = [self._batch_task("collections", b) for b in _batches(coll_keys)]
        tasks += [self._batch_task("items", b) for b in _batches(item_keys)]
        tasks.append(lambda: ("group", c.group()))
        tasks.append(
            lambda: (
                "deleted",
                c.call(
                    lambda z: z.deleted(since=since),
                    "deleted objects",
                    check=lambda r: check_deleted(r.data),
                ).data,
            )
        )
        if self.plan is not None:
            tasks.append(self._fulltext_list(min(since, self.plan.since), same_version=False))
        overlapped(c.throttle, c.concurrency, tasks, self._consume)
        self._texts()
        return self._finish(fetched)

    def _batch_task(self, kind: str, keys: list[str]) -> Callable[[], Any]:
        joined = ",".join(keys)

        def fetch() -> tuple[str, Any]:
            if kind == "items":
                call: Callable[[Any], Any] = lambda z: z.items(  # noqa: E731
                    itemKey=joined, includeTrashed=1, limit=len(keys)
                )
            else:
                call = lambda z: z.collections(collectionKey=joined, limit=len(keys))  # noqa: E731
            reply = self.client.call(
                call, f"{kind} ({len(keys)} keys)", check=self._batch(kind, keys)
            )
            return kind, reply.data

        return fetch

    # -- full text ---------------------------------------------------------------------

    def _fulltext_list(self, since: int, *, same_version: bool) -> Callable[[], Any]:
        def check(reply: Reply[Any]) -> dict[str, int]:
            if same_version:
                self._same_version(reply, "full-text versions")
            return check_versions(reply.data, "full-text versions")

        self.listed_since = since
        return lambda: ("fulltext", self.client.fulltext_versions(since, check).data)

    def _texts(self) -> None:
        """Fetch the texts the listing named, overlapped, after the listing arrived."""
        if self.plan is None:
            return
        c = self.client

        def task(key: str, listed: int) -> Callable[[], Any]:
            def fetch() -> tuple[str, Any]:
                reply = c.fulltext(key, check=lambda r: check_fulltext(r.data, key))
                return "text", (key, reply.version or listed, reply.data)

            return fetch

        overlapped(c.throttle, c.concurrency, [task(k, v) for k, v in self.texts], self._consume)

    # -- where answers go ----------------------------------------------------------------

    def _consume(self, answer: tuple[str, Any]) -> None:
        kind, data = answer
        sink = self.sink
        if kind == "items":
            sink.add_items(data)
            self.done_items += len(data)
            self.progress("items", self.done_items, self.total)
        elif kind == "collections":
            sink.add_collections(data)
            self.done_colls += len(data)
        elif kind == "group":
            self.group = data.data if data is not None else None
        elif kind == "deleted":
            for name in ("items", "collections", "tags"):
                sink.drop(name, data[name])
        elif kind == "fulltext":
            assert self.plan is not None
            known = self.plan.known
            self.texts = sorted((k, v) for k, v in data.items() if known.get(k) != v)
            if self.listed_since == 0:
                sink.drop("fulltext", sorted(set(known) - set(data)))  # gone from Zotero
        elif kind == "text":
            key, version, text = data
            if text is None:
                sink.drop("fulltext", [key])  # listed, then gone (or never indexed)
            else:
                sink.add_fulltext(key, version, text)
                self.fetched_texts += 1

    def _finish(self, fetched: Fetched) -> Fetched:
        fetched.group = self.group
        fetched.items = self.done_items
        fetched.collections = self.done_colls
        fetched.fulltext_synced = self.plan is not None
        fetched.texts = self.fetched_texts
        return fetched


def _item_page(start: int) -> dict[str, Any]:
    return {
        "includeTrashed": 1,
        "limit": PAGE,
        "start": start,
        "sort": "dateAdded",
        "direction": "asc",
    }


def _list_call(zot: Any, kind: str, start: int) -> Any:
    if kind == "items":
        return zot.items(**_item_page(start))
    return zot.collections(limit=PAGE, start=start)


def _batches(keys: list[str], size: int = BATCH) -> Iterator[list[str]]:
    for start in range(0, len(keys), size):
        yield keys[start : start + size]
