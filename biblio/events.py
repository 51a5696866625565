"""What happens in biblio that other packages react to: one namespace of blinker signals.

Events run one way. A producer sends and imports none of its consumers; each consumer
package connects its receivers in its own ``subscribe()``, which the app factory and
the command line call through :func:`biblio.subscribe_packages`. Receivers must not
depend on each other's order.

- :data:`sync_saved` is sent inside a sync's transaction, after the fetched changes
  are saved and before the library version moves: derived data (prongs, the search
  index, membership) changes in the same transaction, so a receiver that raises fails
  the whole sync and leaves the last good cache as it was.
- :data:`sync_committed` is sent after that transaction committed, for follow-up work
  (pre-rendering citations, sending queued email); the sync has succeeded whatever a
  receiver does, so the producer logs a receiver's error and goes on.
- :data:`scheduler_built` is sent when the one scheduler process builds its
  scheduler, beside the sync job; packages add their own periodic jobs to it.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: ``sync_saved.send(settings, conn=Connection, changed=set[str], full=bool)``
sync_saved = _signals.signal(
    "sync-saved", doc="A sync saved its changes; sent inside its transaction."
)

#: ``sync_committed.send(settings, engine=Engine, changed=set[str])``
sync_committed = _signals.signal(
    "sync-committed", doc="A sync committed; sent after its transaction."
)

#: ``scheduler_built.send(settings, scheduler=BaseScheduler, engine=Engine)``
scheduler_built = _signals.signal(
    "scheduler-built", doc="The one scheduler was built; packages add their jobs."
)
