"""Why a sync stopped: the exceptions of the sync package, each with a one-line message.

:class:`SyncError` is what callers catch (the command line prints it, "sync now"
flashes it, the scheduler logs it); the others say why. :class:`BadAnswer` marks a
Zotero answer that is well-formed HTTP but wrong for sync (malformed objects, a batch
that leaves keys out, a ``/deleted`` without its shape): the client retries it like a
5xx and fails the run if it persists, so the library version never moves past it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SyncError(Exception):
    """A sync could not complete; the message says why, in one line."""


class NotModified(Exception):  # noqa: N818 - a signal, not a failure
    """The library has not changed since the version sent."""


class Cancelled(SyncError):
    """Another worker of the same run failed; this request was not sent."""


class BackoffTooLong(SyncError):
    """Zotero asked biblio to wait longer than ``[zotero] max_wait_seconds``."""

    def __init__(self, seconds: float, until: float | None = None) -> None:
        self.seconds = seconds
        self.until = until if until is not None else time.time() + seconds
        when = datetime.fromtimestamp(self.until, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        super().__init__(
            f"Zotero asked to back off for {seconds:.0f} s (until {when}); giving up for now"
        )


class CannotConnect(SyncError):
    """Nothing answers at the configured URL (refused, unknown host): not a backoff."""


class BadAnswer(SyncError):
    """Zotero answered, but not with what sync asked for; retried, then fatal."""


class MalformedResponse(BadAnswer):
    """Zotero answered with something that is not the shape sync expects."""


class IncompleteAnswer(BadAnswer):
    """A batch or page came back without some of the objects asked for."""


class LibraryChanged(SyncError):
    """The library's version moved while the run was reading it; start again."""
