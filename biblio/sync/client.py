"""biblio's Zotero client: pyzotero, plus the retry policy pyzotero leaves to us.

pyzotero 1.16 raises on 5xx and 304 without retrying, lets network errors through
raw, crashes on a ``Retry-After`` given as a date, sleeps on ``Backoff`` only in
memory, and reuses a failed call's parameters on the next call. :class:`ZoteroClient`
wraps one ``pyzotero.zotero.Zotero`` object (pointed at ``[zotero] base_url``, so
the loopback stand-in, Zotero's own server or Zotero desktop's local API all work
unchanged) and gives sync what it needs: bounded exponential backoff with jitter on
429/5xx/network/truncated responses, honouring ``Backoff``/``Retry-After``, a
persisted backoff deadline, ``If-Modified-Since-Version`` on a request, the
``Last-Modified-Version`` of each response, and a count of HTTP requests made.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx2
from pyzotero import zotero
from pyzotero import zotero_errors as ze

from biblio.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")


class SyncError(Exception):
    """A sync could not complete; the message says why, in one line."""


class NotModified(Exception):  # noqa: N818 - a signal, not a failure
    """The library has not changed since the version sent."""


class BackoffTooLong(SyncError):
    """Zotero asked us to wait longer than ``[zotero] max_wait_seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Zotero asked to back off for {seconds:.0f} s; giving up for now")
        self.seconds = seconds


def parse_wait(value: str | None) -> float | None:
    """Seconds from a ``Backoff``/``Retry-After`` value (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    waits: list[float] = field(default_factory=list)


class ZoteroClient:
    """One library's read API, with biblio's retry policy around pyzotero."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_backoff: Callable[[float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        conf = settings["zotero"]
        self.library_id = int(conf["library_id"])
        self.library_type = conf["library_type"]
        self.base_url = conf["base_url"].rstrip("/")
        self.max_retries = int(conf["max_retries"])
        self.max_wait = float(conf["max_wait_seconds"])
        self.retry_base = float(conf["retry_base_seconds"])
        self.on_backoff = on_backoff
        self.sleep = sleep
        self.stats = ClientStats()
        self.last_version: int | None = None
        self._backoff_until = 0.0
        self._http = httpx2.Client(
            follow_redirects=True,
            timeout=float(conf["timeout_seconds"]),
            event_hooks={"response": [self._on_response]},
        )
        self.zot = zotero.Zotero(
            self.library_id, self.library_type, api_key=conf.get("api_key"), client=self._http
        )
        self.zot.endpoint = self.base_url

    # -- plumbing ------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ZoteroClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_backoff_until(self, deadline: float) -> None:
        """Honour a backoff deadline remembered from an earlier run."""
        self._backoff_until = max(self._backoff_until, deadline)

    def _on_response(self, response: httpx2.Response) -> None:
        self.stats.requests += 1
        # Normalise Retry-After dates to seconds: pyzotero does float() on it.
        for name in ("Retry-After", "Backoff"):
            raw = response.headers.get(name)
            wait = parse_wait(raw)
            if raw is not None and wait is None:
                del response.headers[name]
            elif wait is not None:
                response.headers[name] = f"{wait:.3f}"
                if wait > self.max_wait:
                    self._note_backoff(wait)
                    raise BackoffTooLong(wait)
                if name == "Backoff" or response.status_code in (429, 503):
                    self._note_backoff(wait)
        version = response.headers.get("Last-Modified-Version")
        if version is not None and version.isdigit():
            self.last_version = int(version)

    def _note_backoff(self, wait: float) -> None:
        self._backoff_until = max(self._backoff_until, time.time() + wait)
        self.stats.waits.append(wait)
        if self.on_backoff is not None:
            self.on_backoff(self._backoff_until)

    def _wait_backoff(self) -> None:
        remaining = self._backoff_until - time.time()
        if remaining > self.max_wait:
            raise BackoffTooLong(remaining)
        if remaining > 0:
            log.info("backing off %.1f s as Zotero asked", remaining)
            self.sleep(remaining)
        # pyzotero keeps its own in-memory deadline; ours already covered it.
        self.zot.backoff_until = 0.0

    def call(self, fn: Callable[[], T], what: str, if_modified_since: int | None = None) -> T:
        """Run one pyzotero call with biblio's retry policy.

        Raises :class:`NotModified` on a 304, :class:`SyncError` after the retry
        bound or on a client error (400/403/404).
        """
        attempt = 0
        while True:
            self._wait_backoff()
            self.zot.url_params = None  # pyzotero reuses a failed call's params otherwise
            self.zot.links = None
            if if_modified_since is not None:
                self._http.headers["If-Modified-Since-Version"] = str(if_modified_since)
            try:
                return fn()
            except BackoffTooLong:
                raise
            except ze.HTTPError as exc:
                status = self.zot.request.status_code if self.zot.request is not None else None
                if status == 304:
                    raise NotModified() from None
                error: Exception = exc
                retryable = status is None or status >= 500 or status == 429
            except (
                ze.TooManyRetriesError,
                httpx2.TransportError,
                json.JSONDecodeError,
                httpx2.DecodingError,
            ) as exc:
                error, retryable = exc, True
            except (
                ze.ResourceNotFoundError,
                ze.UserNotAuthorisedError,
                ze.UnsupportedParamsError,
            ) as exc:
                raise SyncError(f"{what}: Zotero refused the request ({_one_line(exc)})") from exc
            finally:
                self._http.headers.pop("If-Modified-Since-Version", None)
            attempt += 1
            self.stats.retries += 1
            if not retryable or attempt > self.max_retries:
                raise SyncError(
                    f"{what}: failed after {attempt} attempt(s): {_one_line(error)}"
                ) from error
            delay = min(self.max_wait, self.retry_base * 2 ** (attempt - 1))
            delay = random.uniform(delay / 2, delay)  # jitter
            log.warning(
                "%s failed (%s); retry %d in %.1f s", what, _one_line(error), attempt, delay
            )
            self._backoff_until = max(self._backoff_until, time.time() + delay)

    # -- the requests sync makes -------------------------------------------------

    def _prefix(self) -> str:
        return f"/{self.library_type}s/{self.library_id}"

    def item_versions(self, since: int, if_modified_since: int | None = None) -> dict[str, int]:
        return self.call(
            lambda: self.zot.item_versions(since=since, includeTrashed=1),
            "item versions",
            if_modified_since,
        )

    def collection_versions(
        self, since: int, if_modified_since: int | None = None
    ) -> dict[str, int]:
        return self.call(
            lambda: self.zot.collection_versions(since=since),
            "collection versions",
            if_modified_since,
        )

    def items_by_key(self, keys: list[str]) -> list[dict[str, Any]]:
        """Up to 50 items (trashed included) by key."""
        joined = ",".join(keys)
        return self.call(
            lambda: self.zot.items(itemKey=joined, includeTrashed=1, limit=len(keys)),
            f"items ({len(keys)} keys)",
        )

    def collections_by_key(self, keys: list[str]) -> list[dict[str, Any]]:
        joined = ",".join(keys)
        return self.call(
            lambda: self.zot.collections(collectionKey=joined, limit=len(keys)),
            f"collections ({len(keys)} keys)",
        )

    def pages(self, kind: str, if_modified_since: int | None = None):  # type: ignore[no-untyped-def]
        """Yield pages of 100 objects (``kind``: items or collections), following Link: next.

        Each page is fetched with the retry policy; the ``next`` link of the last
        good page is kept, so a retried page continues where it stopped.
        """
        if kind == "items":
            first: Callable[[], Any] = lambda: self.zot.items(  # noqa: E731
                includeTrashed=1, limit=100, sort="dateAdded", direction="asc"
            )
        else:
            first = lambda: self.zot.collections(limit=100)  # noqa: E731
        page = self.call(first, f"{kind} page 1", if_modified_since)
        links = dict(self.zot.links or {})
        yield page
        number = 1
        while links.get("next"):
            number += 1
            next_link = links["next"]

            def follow(link: str = next_link) -> Any:
                self.zot.links = {"next": link}
                return self.zot.follow()

            page = self.call(follow, f"{kind} page {number}")
            links = dict(self.zot.links or {})
            yield page

    def deleted(self, since: int) -> dict[str, list[str]]:
        return self.call(lambda: self.zot.deleted(since=since), "deleted objects")

    def group(self) -> dict[str, Any] | None:
        """The group's metadata object (``/groups/{id}``); ``None`` for user libraries."""
        if self.library_type != "group":
            return None
        url = f"{self.base_url}/groups/{self.library_id}"

        def fetch() -> Any:
            response = self._http.get(url, headers=self.zot.default_headers())
            self.zot.request = response
            self.zot._post_check(response)
            return response.json()

        return self.call(fetch, "group metadata")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
