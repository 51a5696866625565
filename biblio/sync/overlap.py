"""Overlapping requests: run a sync's fetches on a few threads, consume them on this one.

Against api.zotero.org a page of 100 items takes hundreds of milliseconds, so a
50k-item sync that waits for each answer before asking the next spends minutes
waiting. :func:`overlapped` runs the fetches on ``workers`` threads (each request
still passes the client's shared :class:`~biblio.sync.throttle.Throttle`, which is
what keeps Zotero's limits) and hands each answer to ``consume`` on the calling
thread as it arrives, so staging writes stay on one thread. At most twice as many
fetches as workers are started ahead of the consumer: memory holds a bounded
window of answers, whatever the library's size. The first error stops the rest
(queued fetches are cancelled, in-flight ones finish) and is raised here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from biblio.sync.throttle import Throttle

T = TypeVar("T")


def overlapped(
    throttle: Throttle,
    workers: int,
    fetches: Iterable[Callable[[], T]],
    consume: Callable[[T], None],
) -> None:
    """Run ``fetches`` on up to ``workers`` threads; ``consume`` each result here."""
    window = max(2, 2 * workers)
    pending: set[Future[T]] = set()

    def drain(until: int) -> None:
        nonlocal pending
        while len(pending) > until:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                consume(future.result())

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="zotero") as pool:
        try:
            for fetch in fetches:
                pending.add(pool.submit(fetch))
                drain(window - 1)
            drain(0)
        except BaseException:
            # Stop what has not started; requests in flight finish (the pool waits for
            # them on exit) and their answers are dropped with the failed run.
            throttle.cancel()
            for future in pending:
                future.cancel()
            raise
