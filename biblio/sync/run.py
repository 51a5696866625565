"""One sync run, end to end: lock, fetch into staging, apply in one transaction, record.

Every run, scheduled or manual, first takes the sync lock (:mod:`.lock`), so two
syncs never overlap; a run that finds the lock held raises ``SyncBusy`` at once.
Each run writes a ``sync_runs`` row (start, end, versions, counts, requests, database
waits, error). What it fetches streams into the staging tables (:mod:`.stage`); the
cache, its text and the library version then change together in one transaction
(:mod:`.apply`), so a failure, or a kill, leaves the last good cache intact, and a run
that was killed is marked failed by the next one. Every write waits for a busy
database rather than losing the fetch (:mod:`.patience`). What other packages derive
from the cache follows through :mod:`biblio.events`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from biblio import events
from biblio import storage as st
from biblio.settings import Settings
from biblio.sync.apply import apply_stage
from biblio.sync.client import SyncError, ZoteroClient
from biblio.sync.fetch import Fetched, FulltextPlan, LibraryChanged, Progress, fetch_changes
from biblio.sync.lock import sync_lock
from biblio.sync.patience import Writer
from biblio.sync.save import Counts, save_group, wipe_library
from biblio.sync.stage import Stage
from biblio.sync.state import (
    library_name,
    persist_backoff,
    read_state,
    to_timestamp,
    write_state,
)

log = logging.getLogger(__name__)


@dataclass
class SyncResult:
    run_id: int
    status: str  # ok | unchanged
    from_version: int
    to_version: int
    counts: Counts
    requests: int
    restarts: int
    seconds: float
    note: str | None = None
    #: Where the time went: fetching into staging, and the final transaction (which
    #: holds the write lock), and within it the subscribers (prongs, search, …).
    fetch_seconds: float = 0.0
    save_seconds: float = 0.0
    subscribers_seconds: float = 0.0

    def summary(self) -> str:
        c = self.counts
        text = (
            f"sync {self.status}: library version {self.from_version} -> {self.to_version}; "
            f"{c.added} added, {c.updated} updated, {c.deleted} deleted, "
            f"{c.trashed} in trash, {c.collections_changed} collections changed"
        )
        if c.texts_changed or c.texts_removed:
            text += f", {c.texts_changed} full texts in, {c.texts_removed} out"
        text += f"; {self.requests} requests in {self.seconds:.1f} s"
        return text + (f" ({self.note})" if self.note else "")


def run_sync(
    engine: Engine,
    settings: Settings,
    *,
    full: bool = False,
    trigger: str = "manual",
    progress: Progress | None = None,
) -> SyncResult:
    """Sync the configured library into the cache; raise :class:`SyncError` on failure."""
    if not events.sync_saved.receivers:
        # Without its subscribers a sync would save items nobody tags or indexes.
        raise RuntimeError(
            "no package listens to biblio.events.sync_saved; "
            "call biblio.subscribe_packages() before syncing"
        )
    with sync_lock(settings, engine):
        return _Run(engine, settings, full, trigger, progress).run()


class _Run:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        full: bool,
        trigger: str,
        progress: Progress | None,
    ) -> None:
        self.engine, self.settings = engine, settings
        self.full, self.trigger, self.progress = full, trigger, progress
        self.library = library_name(settings)
        self.writer = Writer(engine, int(settings["sync"]["save_attempts"]))
        self.started = time.monotonic()
        self.restarts = 0
        self.timings = {"fetch": 0.0, "save": 0.0, "subscribers": 0.0}

    def run(self) -> SyncResult:
        run_id, state = self.writer.write(self._open, "start of the run")
        same_library = state is not None and state["library"] == self.library
        since = state["library_version"] if same_library and state else 0
        full = self.full or since == 0
        client = ZoteroClient(
            self.settings, on_backoff=lambda d: persist_backoff(self.engine, self.library, d)
        )
        if same_library and state and state["backoff_until"]:
            client.set_backoff_until(to_timestamp(state["backoff_until"]))
        stage = Stage(self.writer, st.utcnow())
        try:
            stage.reset()  # whatever a killed run left behind
            fetched = self._fetch(client, stage, since, full, state if same_library else None)
            stage.flush()
            self.timings["fetch"] = time.monotonic() - self.started
            counts = self.writer.write(
                lambda conn: self._apply(conn, run_id, fetched, same_library, client),
                "save of the run",
            )
            self.timings["save"] = time.monotonic() - self.started - self.timings["fetch"]
        except Exception as exc:
            self._fail(run_id, exc, client)
            if isinstance(exc, SyncError):
                raise
            raise SyncError(_one_line(exc)) from exc
        finally:
            client.close()
        try:
            stage.reset()  # the cache has it now; a failure here costs nothing
        except Exception:
            log.warning("could not empty the staging tables; the next run will", exc_info=True)
        result = SyncResult(
            run_id=run_id,
            status="unchanged" if fetched.not_modified and not counts.texts_changed else "ok",
            from_version=since,
            to_version=fetched.version,
            counts=counts,
            requests=client.stats.requests,
            restarts=self.restarts,
            seconds=time.monotonic() - self.started,
            note=self._note(client),
            fetch_seconds=self.timings["fetch"],
            save_seconds=self.timings["save"],
            subscribers_seconds=self.timings["subscribers"],
        )
        log.info("%s (%s)", result.summary(), self.library)
        for receiver in list(events.sync_committed.receivers_for(self.settings)):
            try:
                receiver(self.settings, engine=self.engine, changed=counts.changed_item_keys)
            except Exception:  # a follow-up task never fails a committed sync
                log.exception("after-sync task %r failed", receiver)
        return result

    def _open(self, conn: Connection) -> tuple[int, dict[str, Any] | None]:
        # We hold the lock, so any run still marked running was killed.
        conn.execute(
            update(st.sync_runs)
            .where(st.sync_runs.c.status == "running")
            .values(
                status="failed",
                error="interrupted (the process ended mid-run)",
                finished_at=st.utcnow(),
            )
        )
        state = read_state(conn)
        inserted = conn.execute(
            insert(st.sync_runs).values(
                started_at=st.utcnow(),
                status="running",
                trigger=self.trigger,
                full=self.full,
                from_version=state["library_version"] if state else 0,
            )
        ).inserted_primary_key
        assert inserted is not None
        return int(inserted[0]), state

    def _fetch(
        self,
        client: ZoteroClient,
        stage: Stage,
        since: int,
        full: bool,
        state: dict[str, Any] | None,
    ) -> Fetched:
        while True:
            plan = self._fulltext_plan(state, full)
            try:
                return fetch_changes(
                    client, since, stage, full=full, progress=self.progress, fulltext=plan
                )
            except LibraryChanged as exc:
                self.restarts += 1
                if self.restarts > int(self.settings["sync"]["max_restarts"]):
                    raise SyncError(f"{exc}; gave up after {self.restarts - 1} restart(s)") from exc
                log.info("%s; restarting (%d)", exc, self.restarts)
                stage.reset()

    def _fulltext_plan(self, state: dict[str, Any] | None, full: bool) -> FulltextPlan | None:
        if not self.settings["sync"]["fulltext"]:
            return None
        ft = st.item_fulltext
        with st.connect(self.engine) as conn:
            known = dict(conn.execute(select(ft.c.item_key, ft.c.version)).all())
        since = 0 if full or state is None else int(state.get("fulltext_version") or 0)
        return FulltextPlan(since=since, known=known)

    def _apply(
        self,
        conn: Connection,
        run_id: int,
        fetched: Fetched,
        same_library: bool,
        client: ZoteroClient,
    ) -> Counts:
        if not same_library:
            wipe_library(conn)
        counts = apply_stage(conn, full=fetched.full)
        group = fetched.group
        save_group(conn, group, st.utcnow())
        started = time.monotonic()
        events.sync_saved.send(
            self.settings, conn=conn, changed=counts.changed_item_keys, full=fetched.full
        )
        self.timings["subscribers"] = time.monotonic() - started
        values: dict[str, Any] = {
            "library": self.library,
            "library_version": fetched.version,
            "group_version": (group or {}).get("version"),
            "last_success_at": st.utcnow(),
        }
        if fetched.fulltext_synced:
            values["fulltext_version"] = fetched.version
        write_state(conn, **values)
        conn.execute(
            update(st.sync_runs)
            .where(st.sync_runs.c.id == run_id)
            .values(
                finished_at=st.utcnow(),
                status="unchanged" if fetched.not_modified and not counts.texts_changed else "ok",
                full=fetched.full,
                to_version=fetched.version,
                added=counts.added,
                updated=counts.updated,
                deleted=counts.deleted,
                trashed=counts.trashed,
                collections_changed=counts.collections_changed,
                requests=client.stats.requests,
                restarts=self.restarts,
                save_retries=self.writer.retries,
                note=self._note(client),
            )
        )
        return counts

    def _note(self, client: ZoteroClient) -> str | None:
        parts = []
        waits = client.stats.waits
        if waits:
            parts.append(
                f"Zotero asked to back off {len(waits)} time(s), {max(waits):.0f} s at most; "
                "one request at a time after that"
            )
        db = self.writer.note()
        if db:
            parts.append(db)
        return "; ".join(parts) or None

    def _fail(self, run_id: int, exc: BaseException, client: ZoteroClient) -> None:
        message = _one_line(exc)

        def record(conn: Connection) -> None:
            conn.execute(
                update(st.sync_runs)
                .where(st.sync_runs.c.id == run_id)
                .values(
                    finished_at=st.utcnow(),
                    status="failed",
                    error=message[:1000],
                    requests=client.stats.requests,
                    restarts=self.restarts,
                    save_retries=self.writer.retries,
                    note=self._note(client),
                )
            )

        try:
            self.writer.write(record, "record of the failed run")
        except Exception:
            log.exception("could not record the failed run %d", run_id)
        log.error("sync of %s failed: %s", self.library, message)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
