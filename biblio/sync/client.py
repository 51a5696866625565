"""biblio's Zotero client: pyzotero, with the retry policy and the manners it leaves to us.

pyzotero 1.16 raises on 5xx and 304 without retrying, lets network errors through
raw, crashes on a ``Retry-After`` given as a date, sleeps on ``Backoff`` only in
memory and per object, reuses a failed call's parameters on the next call, and its
objects are not thread-safe. :class:`ZoteroClient` keeps one pyzotero object per
worker (at most ``[sync] concurrency``), all sending through one shared ``httpx2``
client (a thread-safe connection pool, which pyzotero accepts as ``client=``), and
gives sync what it needs: a shared :class:`~biblio.sync.throttle.Throttle` (a
``Backoff``/``Retry-After``/429 seen by one worker pauses all of them and drops the
concurrency to one), waits capped by ``[zotero] backoff_cap_seconds`` and persisted,
bounded exponential retries with jitter on 429/5xx/network errors and on answers a
check refuses, a quick and clear failure when nothing listens at the URL,
``If-Modified-Since-Version`` per request, and each answer's ``Last-Modified-Version``
and ``Total-Results`` beside its data (:class:`Reply`). Base URL: ``[zotero] base_url``,
so the loopback stand-in, Zotero's own server or Zotero desktop's local API all work.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx2
from pyzotero import zotero
from pyzotero import zotero_errors as ze

from biblio.settings import Settings
from biblio.sync.errors import (
    BackoffTooLong,
    BadAnswer,
    CannotConnect,
    NotModified,
    SyncError,
)
from biblio.sync.throttle import Throttle, parse_wait

__all__ = ["BackoffTooLong", "NotModified", "Reply", "SyncError", "ZoteroClient", "parse_wait"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Attempts at a URL that refuses connections before the run fails: a closed port is
#: a configuration problem or a server that is down, not a reason to wait minutes.
CONNECT_ATTEMPTS = 3


@dataclass
class Reply(Generic[T]):
    """One answer: its data and the headers sync reads."""

    data: T
    version: int | None = None  # Last-Modified-Version
    total: int | None = None  # Total-Results
    status: int = 200


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    waits: list[float] = field(default_factory=list)


class _ServerBusy(Exception):  # noqa: N818 - internal signal
    """A 429 or 503: retried once the shared deadline (if any) has passed."""

    def __init__(self, status: int, wait: float | None) -> None:
        super().__init__(f"HTTP {status}" + (f", Retry-After {wait:.0f} s" if wait else ""))
        self.wait = wait


class _Zotero(zotero.Zotero):
    """A pyzotero object of one worker: per-request headers, a shared HTTP client."""

    def __init__(self, *args: Any, throttle: Throttle, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extra_headers: dict[str, str] = {}
        self.throttle = throttle

    def default_headers(self) -> dict[str, str]:
        return {**super().default_headers(), **self.extra_headers}

    def _check_backoff(self) -> None:
        # pyzotero calls this right before each request: the shared deadline, not a
        # per-object one, so a Backoff another worker just saw holds this one too.
        self.throttle.wait_deadline()

    def __del__(self) -> None:
        # pyzotero closes its client when collected; ours is shared by every worker
        # and closed once, by ZoteroClient.close().
        return None


class ZoteroClient:
    """One library's read API for one sync run, safe to call from several threads."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_backoff: Callable[[float], None] | None = None,
        concurrency: int | None = None,
    ) -> None:
        conf = settings["zotero"]
        self.library_id = int(conf["library_id"])
        self.library_type = conf["library_type"]
        self.base_url = conf["base_url"].rstrip("/")
        self.max_retries = int(conf["max_retries"])
        self.max_wait = float(conf["max_wait_seconds"])
        self.backoff_cap = float(conf["backoff_cap_seconds"])
        self.retry_base = float(conf["retry_base_seconds"])
        self.concurrency = max(1, int(concurrency or settings["sync"]["concurrency"]))
        self.on_backoff = on_backoff
        self.stats = ClientStats()
        self.throttle = Throttle(self.concurrency)
        self._stats_lock = threading.Lock()
        self._http = httpx2.Client(
            follow_redirects=True,
            timeout=float(conf["timeout_seconds"]),
            limits=httpx2.Limits(max_connections=self.concurrency + 1),
            event_hooks={"response": [self._on_response]},
        )
        self._zots: queue.LifoQueue[_Zotero] = queue.LifoQueue()
        for _ in range(self.concurrency):
            zot = _Zotero(
                self.library_id,
                self.library_type,
                api_key=conf.get("api_key"),
                client=self._http,
                throttle=self.throttle,
            )
            zot.endpoint = self.base_url
            self._zots.put(zot)

    # -- plumbing ------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ZoteroClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_backoff_until(self, deadline: float) -> None:
        """Honour a backoff deadline remembered from an earlier run."""
        self.throttle.wait_until(deadline)

    def _on_response(self, response: httpx2.Response) -> None:
        # Runs in the worker's thread for every response, before pyzotero sees it.
        with self._stats_lock:
            self.stats.requests += 1
        waits: dict[str, float] = {}
        for name in ("Retry-After", "Backoff"):
            raw = response.headers.get(name)
            if raw is None:
                continue
            # biblio does the waiting (shared by all workers); pyzotero must not sleep
            # per object, nor crash on a date.
            del response.headers[name]
            wait = parse_wait(raw)
            if wait is not None:
                waits[name] = wait
        status = response.status_code
        busy = status in (429, 503)
        wait = max(waits.get("Backoff", 0.0), waits.get("Retry-After", 0.0) if busy else 0.0)
        if status == 429 and not wait:
            wait = self.retry_base  # too many requests, however it is said: slow down
        if wait:
            self._note_backoff(wait)
        if busy:
            raise _ServerBusy(status, wait or None)

    def _note_backoff(self, wait: float) -> None:
        capped = min(wait, self.backoff_cap)
        if capped < wait:
            log.warning("Zotero asked to wait %.0f s; capped at %.0f s", wait, capped)
        deadline = self.throttle.back_off(capped)
        with self._stats_lock:
            self.stats.waits.append(capped)
        if capped > 0.5 or capped > self.max_wait:
            log.info("Zotero asked to back off %.1f s; one request at a time from now", capped)
        if self.on_backoff is not None:
            self.on_backoff(deadline)
        if capped > self.max_wait:
            raise BackoffTooLong(capped, deadline)

    def call(
        self,
        fn: Callable[[_Zotero], T],
        what: str,
        *,
        if_modified_since: int | None = None,
        check: Callable[[Reply[Any]], Any] | None = None,
        missing_ok: bool = False,
    ) -> Reply[Any]:
        """Run one pyzotero call under the throttle, with biblio's retry policy.

        ``check`` returns the data to keep (checked, trimmed), or refuses the answer
        with :class:`BadAnswer` (retried like a 5xx) or anything else (passed on).
        Raises :class:`NotModified` on a 304; with ``missing_ok`` a 404 is a
        :class:`Reply` with ``status`` 404 and no data.
        """
        attempt = 0
        while True:
            self.throttle.acquire(self.max_wait)
            zot = self._zots.get()
            local_delay = 0.0
            try:
                zot.url_params = None  # pyzotero reuses a failed call's params otherwise
                zot.links = None
                zot.backoff_until = 0.0  # the throttle does the waiting
                zot.request = None
                if if_modified_since is not None:
                    zot.extra_headers = {"If-Modified-Since-Version": str(if_modified_since)}
                try:
                    reply: Reply[Any] = Reply(fn(zot), *_headers(zot.request))
                    if check is not None:
                        reply.data = check(reply)
                    return reply
                except (BackoffTooLong, NotModified):
                    raise
                except _ServerBusy as exc:
                    error: Exception = exc
                    local_delay = 0.0 if exc.wait is not None else self._retry_delay(attempt)
                except ze.HTTPError as exc:
                    status = zot.request.status_code if zot.request is not None else None
                    if status == 304:
                        raise NotModified() from None
                    if status is not None and status < 500:
                        raise SyncError(f"{what}: Zotero answered HTTP {status}") from exc
                    error, local_delay = exc, self._retry_delay(attempt)
                except httpx2.ConnectError as exc:
                    if attempt + 1 >= CONNECT_ATTEMPTS:
                        raise CannotConnect(
                            f"cannot connect to Zotero at {self.base_url} ({_one_line(exc)})"
                        ) from exc
                    error, local_delay = exc, 0.25 * (attempt + 1)
                except (
                    BadAnswer,
                    ze.TooManyRetriesError,
                    httpx2.TransportError,
                    json.JSONDecodeError,
                    httpx2.DecodingError,
                ) as exc:
                    error, local_delay = exc, self._retry_delay(attempt)
                except ze.ResourceNotFoundError as exc:
                    if missing_ok:
                        return Reply(None, *_headers(zot.request)[:2], status=404)  # type: ignore[arg-type]
                    raise SyncError(
                        f"{what}: Zotero refused the request ({_one_line(exc)})"
                    ) from exc
                except (ze.UserNotAuthorisedError, ze.UnsupportedParamsError) as exc:
                    raise SyncError(
                        f"{what}: Zotero refused the request ({_one_line(exc)})"
                    ) from exc
            finally:
                zot.extra_headers = {}
                self._zots.put(zot)
                self.throttle.release()
            attempt += 1
            with self._stats_lock:
                self.stats.retries += 1
            if attempt > self.max_retries:
                raise SyncError(
                    f"{what}: failed after {attempt} attempt(s): {_one_line(error)}"
                ) from error
            log.warning(
                "%s failed (%s); retry %d in %.1f s", what, _one_line(error), attempt, local_delay
            )
            if local_delay:
                time.sleep(local_delay)

    def _retry_delay(self, attempt: int) -> float:
        delay = min(self.max_wait, self.retry_base * 2**attempt)
        return random.uniform(delay / 2, delay)  # jitter

    # -- the requests sync makes -------------------------------------------------

    def _get_json(self, zot: _Zotero, path: str, params: dict[str, Any] | None = None) -> Any:
        """A GET pyzotero has no (thread-safe, header-keeping) method for."""
        zot._check_backoff()
        response = zot._send("GET", f"{self.base_url}{path}", params=params or {})
        zot.request = response
        zot._post_check(response)
        return response.json()

    def prefix(self) -> str:
        return f"/{self.library_type}s/{self.library_id}"

    def group(self) -> Reply[Any] | None:
        """The group's metadata object (``/groups/{id}``); ``None`` for user libraries."""
        if self.library_type != "group":
            return None
        return self.call(
            lambda z: self._get_json(z, f"/groups/{self.library_id}"), "group metadata"
        )

    def fulltext_versions(self, since: int, check: Callable[[Reply[Any]], Any]) -> Reply[Any]:
        """``{attachment key: version}`` of texts written after ``since``."""
        return self.call(
            lambda z: self._get_json(z, f"{self.prefix()}/fulltext", {"since": since}),
            "full-text versions",
            check=check,
        )

    def fulltext(self, key: str, check: Callable[[Reply[Any]], Any]) -> Reply[Any]:
        """One attachment's text, or a 404 :class:`Reply` (gone, or never indexed)."""
        return self.call(
            lambda z: self._get_json(z, f"{self.prefix()}/items/{key}/fulltext"),
            f"full text of {key}",
            check=check,
            missing_ok=True,
        )


def _headers(response: httpx2.Response | None) -> tuple[int | None, int | None]:
    if response is None:
        return None, None
    version = response.headers.get("Last-Modified-Version", "")
    total = response.headers.get("Total-Results", "")
    return (
        int(version) if version.isascii() and version.isdigit() else None,
        int(total) if total.isascii() and total.isdigit() else None,
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
