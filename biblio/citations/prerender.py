"""Pre-rendering after each sync: the default style and the styles people use.

Requests record which style, locale and format they ask for (:func:`record_use`, at
most one write per combination per day and process, in ``citation_styles_used``).
When a sync commits (:data:`biblio.events.sync_committed`), a background thread renders
what the sync made stale, in the default style and in every combination used within
``[citations] prerender_recent_days`` (the ``prerender_max_styles`` most recent): the
cache's own staleness rules pick the changed items and their name groups, which after
a full sync is every item. A large change is rendered across a process pool
(``[citations] prerender_workers``, one per CPU by default) at lower priority, a small
one in the thread; either way writes go through :func:`biblio.storage.transaction`.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from biblio import events
from biblio import storage as st
from biblio.catalog.items import item_versions
from biblio.citations import StyleError
from biblio.citations import cache as rendercache
from biblio.settings import Settings

log = logging.getLogger(__name__)

#: Niceness of pre-rendering pool workers: the web's processes come first.
NICE = 10

Use = tuple[str, str, str]  # (style, locale, format)
#: Uses remembered as noted today, per process.
MAX_RECORDED = 10_000

_recorded: dict[tuple[str, str, str, str], date] = {}  # (database, *use) -> day noted
_recorded_lock = threading.Lock()


def record_use(
    engine: Engine, style: str, locale: str, fmt: str, today: date | None = None
) -> None:
    """Note that a request asked for ``style`` in ``locale`` and ``fmt`` (best effort)."""
    today = today or datetime.now(UTC).date()
    key = (str(engine.url), style, locale, fmt)
    with _recorded_lock:
        if _recorded.get(key) == today:
            return
        if len(_recorded) >= MAX_RECORDED:
            _recorded.clear()  # only a memo: at worst, one more write per use
        _recorded[key] = today
    table = st.citation_styles_used
    try:
        with st.transaction(engine) as conn:
            stmt = st.upsert(conn, table).values(
                style=style, locale=locale, fmt=fmt, last_used=st.utcnow()
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[table.c.style, table.c.locale, table.c.fmt],
                    set_={"last_used": stmt.excluded.last_used},
                )
            )
    except SQLAlchemyError as exc:  # a note for later; never fails the request
        log.info("style use not recorded (%s)", type(exc).__name__)
        with _recorded_lock:
            _recorded.pop(key, None)


def uses(engine: Engine, settings: Settings, now: datetime | None = None) -> list[Use]:
    """What to pre-render: the default style first, then recent uses, most recent first."""
    cit = settings["citations"]
    wanted: list[Use] = [(cit["default_style"], cit["locale"], "html")]
    days = int(cit["prerender_recent_days"])
    if days <= 0 or int(cit["prerender_max_styles"]) <= 0:
        return wanted
    since = (now or st.utcnow()) - timedelta(days=days)
    t = st.citation_styles_used.c
    with st.connect(engine) as conn:
        rows = conn.execute(
            select(t.style, t.locale, t.fmt)
            .where(t.last_used >= since)
            .order_by(t.last_used.desc(), t.style)
            .limit(int(cit["prerender_max_styles"]))
        ).all()
    for row in rows:
        use = (row.style, row.locale, row.fmt)
        if use not in wanted:
            wanted.append(use)
    return wanted


def prerender(
    engine: Engine, settings: Settings, workers: int | None = None, nice: int = NICE
) -> int:
    """Render every stale entry of every live item in each of :func:`uses`, the pool's
    workers at ``nice``; returns how many entries were rendered."""
    cit = settings["citations"]
    workers = workers or int(cit["prerender_workers"]) or os.cpu_count() or 1
    rows = item_versions(engine)  # the data of the entries to render is read as needed
    total = 0
    for style, locale, fmt in uses(engine, settings):
        stats = rendercache.RenderStats()
        try:
            found = rendercache.assess(engine, rows, style, locale, fmt, cit["styles_dir"])
        except (StyleError, ValueError) as exc:  # a style file removed since it was used
            log.info("not pre-rendering %s: %s", style, exc)
            continue
        if found.whole:
            continue  # never cached: nothing to prepare
        rendercache.render_stale(
            engine, found, cit["styles_dir"], workers=workers, nice=nice, stats=stats
        )
        log.info(
            "pre-rendered %d citations in %s (%s, %s); %d already cached",
            stats.rendered,
            style,
            locale,
            fmt,
            len(rows) - stats.rendered,
        )
        total += stats.rendered
    return total


_lock = threading.Lock()
_threads: dict[str, threading.Thread] = {}
_again: set[str] = set()


def _worker(url: str, engine: Engine, settings: Settings) -> None:
    while True:
        try:
            prerender(engine, settings)
        except Exception:  # a background task must never take the process down
            log.exception("pre-rendering citations failed")
        with _lock:
            if url not in _again:
                _threads.pop(url, None)
                return
            _again.discard(url)


def prerender_in_background(engine: Engine, settings: Settings) -> threading.Thread:
    """Start (or queue one more round of) pre-rendering for this database."""
    url = str(engine.url)
    with _lock:
        running = _threads.get(url)
        if running is not None and running.is_alive():
            _again.add(url)
            return running
        thread = threading.Thread(
            target=_worker, args=(url, engine, settings), name="biblio-prerender", daemon=True
        )
        _threads[url] = thread
        thread.start()
        return thread


def wait_for_prerender(timeout: float | None = None) -> bool:
    """Wait for every pre-rendering thread; True if none is left running."""
    while True:
        with _lock:
            threads = [t for t in _threads.values() if t.is_alive()]
        if not threads:
            return True
        threads[0].join(timeout)
        if threads[0].is_alive():
            return False


def on_sync_committed(settings: Settings, *, engine: Engine, changed: set[str]) -> None:
    """Pre-render when something changed; a receiver of :data:`biblio.events.sync_committed`."""
    if settings["sync"]["prerender"] and changed:
        prerender_in_background(engine, settings)


def subscribe() -> None:
    """Pre-render after every sync that changed items, if ``[sync] prerender`` (idempotent)."""
    events.sync_committed.connect(on_sync_committed)
