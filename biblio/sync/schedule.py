"""The scheduled sync: APScheduler, in exactly one process.

Web workers never start a scheduler. ``biblio scheduler`` runs a blocking one and
``biblio demo`` a background one inside its single process. The job takes the
same lock as a manual ``biblio sync`` or the owners' "sync now", and a run that
finds the lock held is skipped, not queued, so two syncs never overlap.
"""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.engine import Engine

from biblio import events
from biblio.settings import Settings
from biblio.sync.client import SyncError
from biblio.sync.lock import SyncBusy
from biblio.sync.run import run_sync

log = logging.getLogger(__name__)

JOB_ID = "biblio-sync"


def scheduled_sync(engine: Engine, settings: Settings) -> str:
    """One scheduled run; never raises (the scheduler would only log it worse)."""
    try:
        result = run_sync(engine, settings, trigger="scheduled")
    except SyncBusy:
        log.info("scheduled sync skipped: another sync is running")
        return "busy"
    except SyncError as exc:
        log.error("scheduled sync failed: %s", exc)
        return "failed"
    return result.status


def build_scheduler(
    engine: Engine, settings: Settings, *, blocking: bool, run_now: bool = True
) -> BaseScheduler:
    """A scheduler with the sync job every ``[sync] interval_minutes``."""
    scheduler: BaseScheduler = BlockingScheduler() if blocking else BackgroundScheduler()
    minutes = max(1, int(settings["sync"]["interval_minutes"]))
    scheduler.add_job(
        scheduled_sync,
        "interval",
        minutes=minutes,
        args=(engine, settings),
        id=JOB_ID,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now() if run_now else None,
        misfire_grace_time=minutes * 30,
    )
    events.scheduler_built.send(settings, scheduler=scheduler, engine=engine)
    return scheduler
