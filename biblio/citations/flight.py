"""Renders that requests ask for: shared between identical requests, and budgeted.

:func:`obtain` is what a web request calls for a bibliography. Everything cached is
answered at once. Otherwise the work has an *identity* (the items and their versions,
style, locale and format: :func:`biblio.citations.cache.identity`):

- **Shared.** Identical requests in this process wait for the first one (a
  :class:`Flight` per identity) and take its entries; across processes (gunicorn's
  workers, other machines on PostgreSQL) a *claim* on the identity serialises them, and
  whoever comes second finds the entries cached. The claim is a file lock beside a
  SQLite database (one of :data:`SLOTS` files) or a PostgreSQL advisory lock.
- **Budgeted.** A request missing at most ``budget`` entries renders them inline. A
  bigger one starts (or joins) a background render and returns at once with how many
  entries are done, for the caller to answer "being prepared" and ask again; the
  background render stores its entries as it goes, so the next request sees progress
  and, once it is done, the cache answers. Background renders run in their own
  processes at lower priority, at most ``background`` at once per process, so they
  cannot starve the web workers.
- **Permitted.** Only a request that would start costly work (not one that joins work
  under way, nor one answered from the cache) calls ``permit``, the caller's rate
  limit; when it says no, nothing starts.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from biblio import storage as st
from biblio.citations import Entry
from biblio.citations import cache as rendercache
from biblio.citations.prerender import record_use
from biblio.storage.engine import DEFAULT_BUSY_TIMEOUT

log = logging.getLogger(__name__)

#: Lock files beside a SQLite database that claims hash into (bounded, made on demand).
SLOTS = 1024
#: Niceness of background render processes.
NICE = 10
#: Longest wait for another process's claim before rendering anyway (seconds).
CLAIM_WAIT = 60.0
#: Background renders waiting for a free process, per process, beyond which no more
#: are queued (the request is answered "being prepared" and starts it when it returns).
MAX_QUEUED = 16
_POLL = 0.05


@dataclass
class Outcome:
    """What :func:`obtain` found: the entries, or how far their preparation is."""

    entries: list[Entry] | None
    total: int
    done: int
    started: bool = False  # this request started costly work
    refused: bool = False  # it would have, and ``permit`` said no


# -- claims across processes -----------------------------------------------------------


def _claim_file(engine: Engine, ident: str) -> Path | None:
    path = st.sqlite_path(str(engine.url))
    if path is None:
        return None
    folder = path.with_name(path.name + ".render-locks")
    folder.mkdir(exist_ok=True)
    return folder / f"{int(ident[:8], 16) % SLOTS:04d}.lock"


def _advisory_key(ident: str) -> int:
    # 62 bits of the identity, kept apart from the sync lock's key by its top bit
    return (1 << 62) | int(ident[:15], 16)


@contextmanager
def claim(engine: Engine, ident: str, wait: float) -> Iterator[bool]:
    """Hold the claim on ``ident`` for the block, waiting up to ``wait`` seconds for
    another holder; yields whether it was taken (False: rendered by someone else, or
    waited out)."""
    deadline = time.monotonic() + wait
    path = _claim_file(engine, ident)
    if path is not None:
        with path.open("a") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(_POLL)
                    continue
                try:
                    yield True
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
                return
    while True:
        with st.advisory_lock(engine, _advisory_key(ident)) as got:
            if got or time.monotonic() >= deadline:
                yield got
                return
        time.sleep(_POLL)


def claimed_elsewhere(engine: Engine, ident: str) -> bool:
    """Whether another thread or process holds the claim on ``ident`` right now."""
    with claim(engine, ident, wait=0) as got:
        return not got


# -- in this process ---------------------------------------------------------------------


@dataclass
class Flight:
    """One render under way in this process; identical requests wait for its entries."""

    done: threading.Event = field(default_factory=threading.Event)
    entries: list[Entry] | None = None


_flights: dict[str, Flight] = {}
_flights_lock = threading.Lock()


def _inline(
    engine: Engine,
    found: rendercache.Assessment,
    styles_dir: str | Path | None,
    order: str,
    permit: Callable[[], bool],
) -> Outcome:
    """Render what ``found`` misses here, once for every identical request."""
    key = f"{rendercache.identity(found)}:{order}"
    total = len(found.keys)
    with _flights_lock:
        flight = _flights.get(key)
        leader = flight is None
        if flight is None:
            flight = _flights[key] = Flight()
    if not leader:
        flight.done.wait()
        if flight.entries is not None:
            return Outcome(flight.entries, total, total)
        # the leader failed or was refused: this request decides for itself
        return _inline(engine, _again(engine, found, styles_dir), styles_dir, order, permit)
    try:
        ident = rendercache.identity(found)
        if not claimed_elsewhere(engine, ident) and not permit():
            return Outcome(None, total, total - found.missing, refused=True)
        with claim(engine, ident, wait=CLAIM_WAIT):
            # whoever held the claim before may have rendered (some of) it meanwhile
            found = _again(engine, found, styles_dir)
            if found.whole:
                entries = rendercache.render(
                    engine,
                    [found.items[k] for k in found.keys],
                    found.style,
                    found.locale,
                    found.fmt,
                    styles_dir,
                    order=order,
                )
            else:
                fresh = rendercache.render_stale(engine, found, styles_dir)
                entries = rendercache.assemble(found, fresh, order)
        flight.entries = entries
        return Outcome(entries, total, total, started=True)
    finally:
        with _flights_lock:
            _flights.pop(key, None)
        flight.done.set()


def _again(
    engine: Engine, found: rendercache.Assessment, styles_dir: str | Path | None
) -> rendercache.Assessment:
    return rendercache.assess(
        engine, [found.items[k] for k in found.keys], found.style, found.locale, found.fmt,
        styles_dir,
    )  # fmt: skip


# -- in the background -------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """A background render, as its process receives it."""

    url: str
    busy_timeout: float
    keys: tuple[str, ...]
    style: str
    locale: str
    fmt: str
    styles_dir: str | None
    ident: str


_jobs: dict[str, threading.Thread] = {}
_jobs_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def _rows(engine: Engine, keys: Iterable[str]) -> list[dict[str, Any]]:
    i = st.items.c
    wanted = list(keys)
    found: dict[str, dict[str, Any]] = {}
    with st.connect(engine) as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            query = select(i.key, i.version, i.data).where(i.key.in_(chunk))
            for row in conn.execute(query).mappings():
                found[row["key"]] = dict(row)
    return [found[k] for k in wanted if k in found]


def run_job(job: Job) -> int:
    """Render a background job (in its own process, whose parent holds the claim);
    returns how many entries were rendered."""
    if NICE:
        os.nice(NICE)
    engine = st.create_db_engine(job.url, busy_timeout=job.busy_timeout)
    try:
        found = rendercache.assess(
            engine, _rows(engine, job.keys), job.style, job.locale, job.fmt, job.styles_dir
        )
        return len(rendercache.render_stale(engine, found, job.styles_dir))
    finally:
        engine.dispose()


def _supervise(
    engine: Engine, job: Job, slots: threading.BoundedSemaphore, decided: _Decision
) -> None:
    """Claim the job at once (so no other process starts it while this one waits for
    a free slot or its process starts), then run it in a process of its own."""
    try:
        with claim(engine, job.ident, wait=0) as got:
            decided.taken = got
            decided.event.set()
            if not got:
                return  # someone else is on it
            with slots:
                process = multiprocessing.get_context("spawn").Process(
                    target=run_job, args=(job,), name="biblio-render", daemon=True
                )
                process.start()
                process.join()
                if process.exitcode:
                    log.warning(
                        "background render of %s ended with %s", job.style, process.exitcode
                    )
    except Exception:  # a background task must never take the process down
        log.exception("background render of %s failed", job.style)
    finally:
        decided.event.set()
        with _jobs_lock:
            _jobs.pop(job.ident, None)


@dataclass
class _Decision:
    event: threading.Event = field(default_factory=threading.Event)
    taken: bool = False


def running(ident: str) -> bool:
    """Whether this process has a background render of ``ident`` queued or running."""
    with _jobs_lock:
        thread = _jobs.get(ident)
        return thread is not None and thread.is_alive()


def _start(
    engine: Engine,
    found: rendercache.Assessment,
    styles_dir: str | Path | None,
    slots: int,
    busy_timeout: float,
) -> bool:
    ident = rendercache.identity(found)
    job = Job(
        url=engine.url.render_as_string(hide_password=False),
        busy_timeout=busy_timeout,
        keys=tuple(found.keys),
        style=found.style,
        locale=found.locale,
        fmt=found.fmt,
        styles_dir=str(styles_dir) if styles_dir else None,
        ident=ident,
    )
    decided = _Decision()
    with _jobs_lock:
        if ident in _jobs:
            return False
        if len(_jobs) >= slots + MAX_QUEUED:
            return False
        gate = _slots.setdefault(slots, threading.BoundedSemaphore(slots))
        thread = threading.Thread(
            target=_supervise, args=(engine, job, gate, decided), name="biblio-render-job",
            daemon=True,
        )  # fmt: skip
        _jobs[ident] = thread
        thread.start()
    decided.event.wait()
    return decided.taken


def wait_for_background(timeout: float | None = None) -> bool:
    """Wait for this process's background renders; True if none is left."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with _jobs_lock:
            threads = [t for t in _jobs.values() if t.is_alive()]
        if not threads:
            return True
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        threads[0].join(left)
        if threads[0].is_alive():
            return False


# -- answering "being prepared" cheaply -------------------------------------------------


@dataclass
class _Pending:
    """A request whose render is under way: enough to answer it again without loading
    its items (a whole library's rows cost a second of CPU to load and look up)."""

    ident: str
    style: str
    locale: str
    fmt: str
    total: int
    done: int
    stored: int  # entries of this style, locale and format in the cache back then


_pending: dict[str, _Pending] = {}
_pending_lock = threading.Lock()
MAX_PENDING = 256


def _stored(engine: Engine, style: str, locale: str, fmt: str) -> int:
    rc = st.rendered_citations.c
    with st.connect(engine) as conn:
        return int(
            conn.execute(
                select(func.count()).where(rc.style == style, rc.locale == locale, rc.fmt == fmt)
            ).scalar_one()
        )


def _remember(engine: Engine, request_key: str | None, found: rendercache.Assessment) -> None:
    if request_key is None:
        return
    pending = _Pending(
        rendercache.identity(found),
        found.style,
        found.locale,
        found.fmt,
        len(found.keys),
        len(found.keys) - found.missing,
        _stored(engine, found.style, found.locale, found.fmt),
    )
    with _pending_lock:
        _pending.pop(request_key, None)
        _pending[request_key] = pending
        while len(_pending) > MAX_PENDING:
            _pending.pop(next(iter(_pending)))


def progress(engine: Engine, request_key: str) -> Outcome | None:
    """How far the render a request with this key is waiting for has come, if it is
    still under way (None: ask :func:`obtain`). Loads no items: the entries done are
    those stored in the render's style, locale and format since it was last looked up
    in full."""
    with _pending_lock:
        pending = _pending.get(request_key)
    if pending is None:
        return None
    if not (running(pending.ident) or claimed_elsewhere(engine, pending.ident)):
        with _pending_lock:
            _pending.pop(request_key, None)
        return None
    grown = _stored(engine, pending.style, pending.locale, pending.fmt) - pending.stored
    done = min(pending.total - 1, pending.done + max(0, grown))
    return Outcome(None, pending.total, done)


# -- the one entry point -------------------------------------------------------------------


def obtain(
    engine: Engine,
    rows: Iterable[Mapping[str, Any]],
    style: str,
    locale: str,
    fmt: str,
    styles_dir: str | Path | None = None,
    *,
    order: str = "style",
    budget: int = 250,
    background: int = 1,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    permit: Callable[[], bool] = lambda: True,
    request_key: str | None = None,
) -> Outcome:
    """The bibliography of ``rows``, or how far its preparation in the background is.

    ``budget`` is the most entries rendered inline, ``background`` the background
    renders at once in this process, ``busy_timeout`` theirs on SQLite; a ``request_key``
    (the request's URL, say) lets :func:`progress` answer its next asking cheaply. Raises
    :class:`~biblio.citations.StyleError` for an unknown or broken style.
    """
    found = rendercache.assess(engine, rows, style, locale, fmt, styles_dir)
    total = len(found.keys)
    if found.missing == 0:
        record_use(engine, found.style, found.locale, fmt)
        return Outcome(rendercache.assemble(found, {}, order), total, total)
    if found.missing <= budget or found.whole:
        outcome = _inline(engine, found, styles_dir, order, permit)
        if not outcome.refused:
            record_use(engine, found.style, found.locale, fmt)
        return outcome
    ident = rendercache.identity(found)
    done = total - found.missing
    if running(ident) or claimed_elsewhere(engine, ident):
        _remember(engine, request_key, found)
        return Outcome(None, total, done)
    if not permit():
        return Outcome(None, total, done, refused=True)
    record_use(engine, found.style, found.locale, fmt)
    started = _start(engine, found, styles_dir, background, busy_timeout)
    _remember(engine, request_key, found)
    return Outcome(None, total, done, started=started)
