"""Politeness towards Zotero: how many requests may be in flight, and when the next may go.

One :class:`Throttle` is shared by every worker of a sync. A request takes a slot
(at most ``[sync] concurrency`` at once) and may only start once the shared backoff
deadline has passed. When Zotero says ``Backoff``, ``Retry-After`` or 429, the worker
that saw it moves the deadline for all of them and the limit drops to one for the rest
of the run, so every in-flight worker waits and the requests that follow go one at a
time. Waits come from the server (``Backoff: N`` or ``Retry-After``, in seconds or as
an HTTP date); :func:`parse_wait` reads both.
"""

from __future__ import annotations

import email.utils
import threading
import time

from biblio.sync.errors import BackoffTooLong, Cancelled


def parse_wait(value: str | None) -> float | None:
    """Seconds from a ``Backoff``/``Retry-After`` value (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is no wait
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Throttle:
    """A concurrency limit and a backoff deadline shared by all of a sync's workers."""

    def __init__(self, limit: int) -> None:
        self.configured = max(1, int(limit))
        self.limit = self.configured
        self.until = 0.0  # time.time() before which no request may start
        self.active = 0
        self.peak = 0
        self.slowed = False  # a Backoff/Retry-After/429 dropped the limit to one
        self._cond = threading.Condition()
        self._cancelled = threading.Event()

    def acquire(self, max_wait: float) -> None:
        """Wait for the deadline and a free slot; :class:`BackoffTooLong` if the deadline
        is further away than ``max_wait`` seconds, :class:`Cancelled` after :meth:`cancel`."""
        with self._cond:
            while True:
                if self._cancelled.is_set():
                    raise Cancelled("the run stopped")
                remaining = self.until - time.time()
                if remaining > max_wait:
                    raise BackoffTooLong(remaining, self.until)
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                if self.active < self.limit:
                    self.active += 1
                    self.peak = max(self.peak, self.active)
                    return
                self._cond.wait(0.5)

    def wait_deadline(self) -> None:
        """Just before a request leaves: wait out a deadline set since :meth:`acquire`
        (another worker's answer said Backoff while this one was getting ready)."""
        with self._cond:
            while not self._cancelled.is_set():
                remaining = self.until - time.time()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)
            raise Cancelled("the run stopped")

    def release(self) -> None:
        with self._cond:
            self.active -= 1
            self._cond.notify_all()

    def back_off(self, seconds: float) -> float:
        """Zotero asked for a pause: move the shared deadline, go one at a time.

        Returns the deadline (``time.time()`` based)."""
        with self._cond:
            self.until = max(self.until, time.time() + seconds)
            self.limit = 1
            self.slowed = True
            self._cond.notify_all()
            return self.until

    def wait_until(self, deadline: float) -> None:
        """Honour a deadline remembered from an earlier run (no change of the limit)."""
        with self._cond:
            self.until = max(self.until, deadline)

    def cancel(self) -> None:
        """Stop every waiting and future :meth:`acquire` (a worker failed the run)."""
        self._cancelled.set()
        with self._cond:
            self._cond.notify_all()

    def resume(self) -> None:
        """Accept requests again (a restarted run, once the failed one's workers ended)."""
        self._cancelled.clear()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()
