"""Loopback stand-in for the Zotero Web API v3, serving a :class:`StandinLibrary`.

There is no internet where biblio is developed and tested, so sync, tests, benchmarks
and the offline demo talk to this real HTTP server instead of api.zotero.org; pyzotero
works against it unchanged once ``zot.endpoint = server.url``. It follows Zotero's
dataserver where sync depends on it: the read endpoints of a group library, ``format``
json/keys/versions, ``limit``/``start`` paging with Zotero's ``Link`` header (only
non-default parameters, ``first``/``last`` left out when equal to the page itself),
``Total-Results``, ``Last-Modified-Version`` (the object's version on single-object
URLs), ``since``, ``itemKey``, ``includeTrashed``, 304 on ``If-Modified-Since-Version``
for list requests, and 400/403/404 bodies in plain text. Tests can count requests and
inject faults (error statuses with ``Retry-After``, ``Backoff``, dropped or truncated
responses, slow responses, incomplete answers, and hooks that edit the library
mid-sync) and give every answer a network's latency, fixed or jittered. It also serves
attachments' full text (``/fulltext``, ``/items/KEY/fulltext``). zotero.org's OAuth 1.0a
endpoints (``/oauth/…``) are answered by :mod:`biblio.standin.oauth`. Run it alone with
``python -m biblio.standin.server --library FILE --port N [--latency S --jitter S]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from biblio.standin.api import Response, StandinApi
from biblio.standin.library import StandinLibrary
from biblio.standin.oauth import OAuthProvider
from biblio.standin.params import ApiError
from biblio.standin.synthetic import synthetic_library

__all__ = ["ApiError", "RequestRecord", "StandinLibrary", "StandinServer", "http_date"]

logger = logging.getLogger(__name__)


@dataclass
class RequestRecord:
    """One request the stand-in answered (or dropped)."""

    method: str
    path: str
    query: dict[str, str]
    status: int | None = None
    fault: str | None = None
    duration_ms: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    started: float = 0.0  # time.monotonic() when the request arrived
    finished: float = 0.0  # ... and when its answer was sent


@dataclass
class _Fault:
    kind: str  # fail | backoff | drop | truncate | hook | slow | corrupt | incomplete
    times: int
    match: str | None
    status: int = 0
    keep: int = 0
    retry_after: Any = None
    seconds: float = 0.0
    fn: Callable[[StandinLibrary], Any] | None = None
    body: bytes | Callable[[bytes], bytes] | None = None


def http_date(when: datetime) -> str:
    """An HTTP date (for a ``Retry-After`` given as a date rather than seconds)."""
    return format_datetime(when, usegmt=True)


class StandinServer:
    """Threaded HTTP server answering Zotero API v3 reads from one library.

    ``api_keys`` maps API keys to ``{"userID", "username", "access"}``; when given,
    an unknown key gets 403 on every request, as on Zotero. A library whose
    ``libraryReading`` is ``"members"`` then needs a member's key.
    """

    def __init__(
        self,
        library: StandinLibrary,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_keys: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.library = library
        self.api_keys = api_keys
        self.oauth = OAuthProvider()  # zotero.org's /oauth/* ("Sign in with Zotero")
        self.host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._requests: list[RequestRecord] = []
        self._api: StandinApi | None = None
        self._conns: set[socket.socket] = set()
        self._active = 0
        self._url: str | None = None
        self._threads: set[threading.Thread] = set()
        self._idle = threading.Condition(self._lock)
        self._latency = (0.0, 0.0)
        self._rng = random.Random(0)
        self._serving = 0
        self._peak = 0

    # --------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (API mounted at ``/``)."""
        if self._url is None:
            raise RuntimeError("server not started")
        return self._url

    def start(self) -> StandinServer:
        """Bind and serve in a background thread."""
        handler = type("Handler", (_Handler,), {"standin": self})
        httpd = ThreadingHTTPServer((self.host, self._port), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._url = f"http://{self.host}:{httpd.server_port}"
        self._api = StandinApi(self.library, self.url, self.api_keys)
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            name="zotero-standin",
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        logger.info("Zotero stand-in serving group %s at %s", self.library.group_id, self.url)
        return self

    def stop(self) -> None:
        """Stop serving, close kept-alive connections and wait for handler threads."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # idle keep-alive connections would otherwise block a thread
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=5)
            threads = list(self._threads)
        for t in [*threads, self._thread]:
            if t is not None and t is not threading.current_thread():
                t.join(timeout=5)

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------- counts and faults
    @property
    def request_count(self) -> int:
        """Number of requests received since start or :meth:`reset_counts`."""
        with self._lock:
            return len(self._requests)

    @property
    def requests(self) -> list[RequestRecord]:
        """Copies of the request records, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset_counts(self) -> None:
        """Forget recorded requests (and the peak of concurrent requests)."""
        with self._lock:
            self._requests.clear()
            self._peak = self._serving

    @property
    def peak_concurrency(self) -> int:
        """Most requests answered at the same time since start or :meth:`reset_counts`."""
        with self._lock:
            return self._peak

    def latency(self, seconds: float, jitter: float = 0.0) -> None:
        """Delay every answer by ``seconds`` (± up to ``jitter``), like a network would.

        Unlike :meth:`slow` it stays until changed (``latency(0)`` turns it off).
        """
        if seconds < 0 or jitter < 0:
            raise ValueError("latency and jitter must not be negative")
        with self._lock:
            self._latency = (float(seconds), float(jitter))

    def _delay(self) -> float:
        with self._lock:
            base, jitter = self._latency
            return max(0.0, base + (self._rng.uniform(-jitter, jitter) if jitter else 0.0))

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def fail(
        self,
        status: int,
        retry_after: float | str | datetime | None = None,
        times: int = 1,
        match: str | None = None,
    ) -> None:
        """Answer the next matching request(s) with ``status`` (and ``Retry-After``:
        seconds, a preformatted string, or a datetime sent as an HTTP date)."""
        self._add_fault(_Fault("fail", times, match, status=status, retry_after=retry_after))

    def backoff(self, seconds: float, times: int = 1, match: str | None = None) -> None:
        """Add ``Backoff: seconds`` to the next matching successful response(s)."""
        self._add_fault(_Fault("backoff", times, match, seconds=seconds))

    def drop(self, times: int = 1, match: str | None = None) -> None:
        """Close the connection without any response."""
        self._add_fault(_Fault("drop", times, match))

    def truncate(self, times: int = 1, match: str | None = None) -> None:
        """Send headers with the full Content-Length but only half the body, then close."""
        self._add_fault(_Fault("truncate", times, match))

    def hook(
        self, fn: Callable[[StandinLibrary], Any], times: int = 1, match: str | None = None
    ) -> None:
        """Call ``fn(library)`` before building the response (edit the library mid-sync)."""
        self._add_fault(_Fault("hook", times, match, fn=fn))

    def corrupt(
        self, body: bytes | Callable[[bytes], bytes], times: int = 1, match: str | None = None
    ) -> None:
        """Serve ``body`` (or ``body(original)``) instead of a successful response's body.

        Status and headers stay as Zotero would send them: a hostile or broken answer
        that looks legitimate.
        """
        self._add_fault(_Fault("corrupt", times, match, body=body))

    def incomplete(self, keep: int = 0, times: int = 1, match: str | None = None) -> None:
        """Answer a successful list request with only its first ``keep`` objects (``[]``
        by default), headers unchanged: a batch that silently misses keys."""
        self._add_fault(_Fault("incomplete", times, match, keep=keep))

    def malformed_deleted(self, body: bytes = b"{}", times: int = 1) -> None:
        """Answer ``/deleted`` with ``body`` (``{}`` by default, or anything malformed)."""
        self.corrupt(body, times=times, match="/deleted")

    def slow(self, seconds: float, times: int = 1, match: str | None = None) -> None:
        """Delay the response by ``seconds``."""
        self._add_fault(_Fault("slow", times, match, seconds=seconds))

    def handle(self, path: str, query: dict[str, Any], headers: Any) -> Response:
        """Answer one GET through the API (faults aside); raises ``ApiError``."""
        if self._api is None:
            raise ApiError(503, "Service Unavailable")
        return self._api.handle(path, query, headers)

    def clear_faults(self) -> None:
        """Drop all pending faults."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """Faults not yet consumed."""
        with self._lock:
            return len(self._faults)

    def _take_faults(self, target: str) -> dict[str, _Fault]:
        """Consume at most one matching fault of each kind, oldest first."""
        taken: dict[str, _Fault] = {}
        with self._lock:
            for f in list(self._faults):
                if f.kind in taken or (f.match and f.match not in target):
                    continue
                taken[f.kind] = f
                f.times -= 1
                if f.times <= 0:
                    self._faults.remove(f)
        return taken


class _Handler(BaseHTTPRequestHandler):
    """Per-connection request handler; all logic lives in :class:`StandinServer`."""

    standin: StandinServer
    protocol_version = "HTTP/1.1"  # keep-alive, as pyzotero's httpx client expects
    server_version = "ZoteroStandin/1.0"

    def setup(self) -> None:
        super().setup()
        with self.standin._lock:
            self.standin._conns.add(self.connection)
            self.standin._active += 1
            threads = self.standin._threads
            threads.difference_update([t for t in threads if not t.is_alive()])
            threads.add(threading.current_thread())

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.standin._idle:
                self.standin._conns.discard(self.connection)
                self.standin._active -= 1
                self.standin._idle.notify_all()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self._serve()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def _refuse(self) -> None:
        self._send(Response(405, b"Method not allowed", "text/plain"))

    do_PUT = do_PATCH = do_DELETE = _refuse  # noqa: N815 (read-only stand-in)

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        if not self.path.startswith("/oauth/"):  # the API is read-only; OAuth posts
            self._refuse()
            return
        length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
        self._oauth("POST", self.rfile.read(length).decode("utf-8", "replace"))

    def _oauth(self, method: str, body: str) -> None:
        srv = self.standin
        with srv._lock:
            srv._requests.append(RequestRecord(method, urlsplit(self.path).path, {}))
        path = urlsplit(self.path).path
        self._send(srv.oauth.handle(method, srv.url + self.path, path, body, self.headers))

    def _serve(self, head: bool = False) -> None:
        if self.path.startswith("/oauth/") and not head:
            self._oauth("GET", "")
            return
        t0 = time.perf_counter()
        srv = self.standin
        split = urlsplit(self.path)
        multi = parse_qs(split.query, keep_blank_values=True)
        query: dict[str, Any] = {k: v[-1] for k, v in multi.items()}
        if "tag" in multi:
            query["tag"] = multi["tag"]
        record = RequestRecord(
            "HEAD" if head else "GET",
            split.path,
            {k: v[-1] for k, v in multi.items()},
            headers={k: v for k, v in self.headers.items()},
            started=time.monotonic(),
        )
        # Recorded before anything is sent, so a client that has its answer always
        # finds the request in ``requests`` (status and fault are filled in below).
        with srv._lock:
            srv._requests.append(record)
            srv._serving += 1
            srv._peak = max(srv._peak, srv._serving)
        faults = srv._take_faults(self.path)
        try:
            delay = srv._delay()
            if delay:
                time.sleep(delay)
            if "slow" in faults:
                record.fault = "slow"
                time.sleep(faults["slow"].seconds)
            if "drop" in faults:
                record.fault = "drop"
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if "fail" in faults:
                f = faults["fail"]
                record.fault = "fail"
                resp = Response(f.status, _status_text(f.status).encode(), "text/plain")
                if f.retry_after is not None:
                    ra = f.retry_after
                    resp.headers["Retry-After"] = (
                        http_date(ra)
                        if isinstance(ra, datetime)
                        else (ra if isinstance(ra, str) else f"{ra:g}")
                    )
            else:
                if "hook" in faults and faults["hook"].fn is not None:
                    record.fault = "hook"
                    faults["hook"].fn(srv.library)
                try:
                    resp = srv.handle(split.path, query, self.headers)
                except ApiError as err:
                    resp = Response(err.status, err.message.encode(), "text/plain")
                except Exception:
                    logger.exception("stand-in failed on %s", self.path)
                    resp = Response(500, b"An error occurred", "text/plain")
                if "backoff" in faults and resp.status < 400:
                    record.fault = record.fault or "backoff"
                    resp.headers["Backoff"] = f"{faults['backoff'].seconds:g}"
                if "corrupt" in faults and resp.status == 200:
                    record.fault = "corrupt"
                    new = faults["corrupt"].body
                    resp.body = new(resp.body) if callable(new) else (new or b"")
                if "incomplete" in faults and resp.status == 200:
                    listed = json.loads(resp.body)
                    if isinstance(listed, list):
                        record.fault = "incomplete"
                        resp.body = json.dumps(listed[: faults["incomplete"].keep]).encode()
            record.status = resp.status
            if "truncate" in faults and len(resp.body) > 1:
                record.fault = "truncate"
                self._send(resp, truncate=True)
                return
            self._send(resp, head=head)
        except (ConnectionError, OSError):
            self.close_connection = True
        finally:
            record.duration_ms = (time.perf_counter() - t0) * 1000
            record.finished = time.monotonic()
            with srv._lock:
                srv._serving -= 1

    def _send(self, resp: Response, head: bool = False, truncate: bool = False) -> None:
        self.send_response(resp.status)
        self.send_header("Zotero-API-Version", "3")
        if resp.status == 304:
            # A 304 has no body and no Last-Modified-Version (Zotero's behaviour).
            self.end_headers()
            return
        ctype = resp.content_type
        if ctype.startswith("text/") or ctype == "application/json":
            ctype += "; charset=utf-8" if ctype.startswith("text/") else ""
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(resp.body)))
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        if truncate:
            self.wfile.write(resp.body[: len(resp.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(resp.body)


def _status_text(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def main(argv: list[str] | None = None) -> int:
    """``python -m biblio.standin.server --library FILE --port N [--host H]``."""
    ap = argparse.ArgumentParser(description="Serve a Zotero library on loopback (API v3).")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--library", help="library JSON file")
    src.add_argument("--synthetic", type=int, metavar="N", help="serve N synthetic items")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    ap.add_argument("--jitter", type=float, default=0.0, help="± seconds of random latency")
    ap.add_argument(
        "--fulltext", type=int, default=0, metavar="N", help="synthetic attachments with text"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    lib = (
        StandinLibrary.from_file(args.library)
        if args.library
        else synthetic_library(args.synthetic, fulltext=args.fulltext)
    )
    # A dedicated process: keep the large, long-lived library out of the cyclic GC,
    # whose full collections otherwise cost a 50k-item library pauses of 0.2-0.4 s.
    gc.collect()
    gc.freeze()
    server = StandinServer(lib, args.host, args.port).start()
    server.latency(args.latency, args.jitter)
    print(
        f"{server.url} (group {lib.group_id}, library version {lib.version}, "
        f"{len(lib.items)} items)",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
