"""One sync run, end to end: lock, fetch, save in one transaction, record the run.

Every run, scheduled or manual, first takes the sync lock (:mod:`.lock`), so two
syncs never overlap; a run that finds the lock held raises ``SyncBusy`` at once.
Each run writes a ``sync_runs`` row
(start, end, versions, counts, requests, error). The cache and the library
version change together in one transaction, so a failure, or a kill, leaves the
last good cache intact; a run that was killed is marked failed by the next one.
What other packages derive from the cache follows through :mod:`biblio.events`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine

from biblio import events
from biblio import storage as st
from biblio.settings import Settings
from biblio.sync.client import SyncError, ZoteroClient
from biblio.sync.fetch import LibraryChanged, Progress, fetch_changes
from biblio.sync.lock import sync_lock
from biblio.sync.save import Counts, save_changes, wipe_library
from biblio.sync.state import library_name, persist_backoff, read_state, write_state

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

    def summary(self) -> str:
        c = self.counts
        return (
            f"sync {self.status}: library version {self.from_version} -> {self.to_version}; "
            f"{c.added} added, {c.updated} updated, {c.deleted} deleted, "
            f"{c.trashed} in trash, {c.collections_changed} collections changed; "
            f"{self.requests} requests in {self.seconds:.1f} s"
        )


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
    with sync_lock(settings):
        return _run_locked(engine, settings, full=full, trigger=trigger, progress=progress)


def _run_locked(
    engine: Engine, settings: Settings, *, full: bool, trigger: str, progress: Progress | None
) -> SyncResult:
    started = time.monotonic()
    library = library_name(settings)
    with st.transaction(engine) as conn:
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
                trigger=trigger,
                full=full,
                from_version=state["library_version"] if state else 0,
            )
        ).inserted_primary_key
        assert inserted is not None
        run_id = int(inserted[0])

    same_library = state is not None and state["library"] == library
    since = state["library_version"] if same_library and state else 0
    full = full or since == 0
    client = ZoteroClient(settings, on_backoff=lambda d: persist_backoff(engine, library, d))
    if same_library and state and state["backoff_until"]:
        client.set_backoff_until(state["backoff_until"].timestamp())
    restarts = 0
    try:
        while True:
            try:
                changes = fetch_changes(client, since, full=full, progress=progress)
                break
            except LibraryChanged as exc:
                restarts += 1
                if restarts > int(settings["sync"]["max_restarts"]):
                    raise SyncError(f"{exc}; gave up after {restarts - 1} restart(s)") from exc
                log.info("%s; restarting (%d)", exc, restarts)

        with st.transaction(engine) as conn:
            if not same_library:
                wipe_library(conn)
            counts = save_changes(conn, changes, st.utcnow())
            events.sync_saved.send(
                settings, conn=conn, changed=counts.changed_item_keys, full=changes.full
            )
            status = "unchanged" if changes.not_modified else "ok"
            write_state(
                conn,
                library=library,
                library_version=changes.version,
                group_version=(changes.group or {}).get("version"),
                last_success_at=st.utcnow(),
            )
            conn.execute(
                update(st.sync_runs)
                .where(st.sync_runs.c.id == run_id)
                .values(
                    finished_at=st.utcnow(),
                    status=status,
                    full=changes.full,
                    to_version=changes.version,
                    added=counts.added,
                    updated=counts.updated,
                    deleted=counts.deleted,
                    trashed=counts.trashed,
                    collections_changed=counts.collections_changed,
                    requests=client.stats.requests,
                    restarts=restarts,
                )
            )
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        with st.transaction(engine) as conn:
            conn.execute(
                update(st.sync_runs)
                .where(st.sync_runs.c.id == run_id)
                .values(
                    finished_at=st.utcnow(),
                    status="failed",
                    error=message[:1000],
                    requests=client.stats.requests,
                    restarts=restarts,
                )
            )
        log.error("sync of %s failed: %s", library, message)
        if isinstance(exc, SyncError):
            raise
        raise SyncError(message) from exc
    finally:
        client.close()

    result = SyncResult(
        run_id=run_id,
        status=status,
        from_version=since,
        to_version=changes.version,
        counts=counts,
        requests=client.stats.requests,
        restarts=restarts,
        seconds=time.monotonic() - started,
    )
    log.info("%s (%s)", result.summary(), library)
    for receiver in list(events.sync_committed.receivers_for(settings)):
        try:
            receiver(settings, engine=engine, changed=counts.changed_item_keys)
        except Exception:  # a follow-up task never fails a committed sync
            log.exception("after-sync task %r failed", receiver)
    return result
