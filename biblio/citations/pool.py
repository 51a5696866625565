"""Render a large bibliography across CPU cores with a process pool.

citeproc-py is pure Python, so one process renders on one core. :func:`render_parallel`
runs the per-item phases of :mod:`.pipeline` (normalising, sort keys and citations to
compare; rendering each entry) in worker processes, each of which parses the style once
when it starts, and keeps the set-level phases (order, disambiguation plan, subsequent-
author substitution) in the calling process. The entries are the ones
:func:`~biblio.citations.render_bibliography` returns for the same items, in the same
order: every per-item result depends on its item and job only.

Meant for pre-rendering a whole library after a sync, off the request path. Workers are
started with ``spawn`` by default (safe in a process that runs threads, as the web
process does); small sets are rendered in-process, where a pool would only add its
start-up time.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .disambiguation import Row, Settled
from .engine import state
from .pipeline import Job, Prepared, Rendered, Renderer, run
from .render import FORMATS, Entry, entries, render_bibliography
from .styles import load_style, resolve_locale, style_path

log = logging.getLogger(__name__)

__all__ = ["render_parallel"]

#: items per task: big enough that pickling and scheduling are noise, small enough that
#: both workers stay busy to the end
CHUNK = 200

_worker: Renderer | None = None

T = TypeVar("T")
R = TypeVar("R")


def _init_worker(style: str, locale: str, fmt: str, styles_dir: str | None, nice: int) -> None:
    """Load the style once per worker process (at lower priority with ``nice``)."""
    global _worker
    if nice:
        os.nice(nice)
    _worker = Renderer(load_style(style, styles_dir, locale), fmt)
    # keep the items normalised in one phase for the next (the pool lives for one call)
    _worker.items = {}


def _prepare(jobs: list[tuple[int, Any]]) -> list[Prepared]:
    assert _worker is not None
    try:
        return _worker.prepare(jobs)
    finally:
        state.reset()


def _settle(groups: list[list[Row]]) -> list[Settled]:
    assert _worker is not None
    try:
        return _worker.disambiguation.settle_groups(groups)
    finally:
        state.reset()


def _render(jobs: list[Job]) -> list[Rendered]:
    assert _worker is not None
    try:
        return _worker.render(jobs)
    finally:
        state.reset()


def _chunked(
    pool: ProcessPoolExecutor,
    fn: Callable[[list[T]], list[R]],
    size: int,
    weigh: Callable[[T], int] | None = None,
) -> Callable[[list[T]], list[R]]:
    """A map of ``fn`` over chunks of about ``size`` jobs (or weight), results in order."""

    def mapper(jobs: list[T]) -> list[R]:
        chunks: list[list[T]] = []
        weight = size
        for job in jobs:
            if weight >= size:
                chunks.append([])
                weight = 0
            chunks[-1].append(job)
            weight += weigh(job) if weigh else 1
        return [r for part in pool.map(fn, chunks) for r in part]

    return mapper


def render_parallel(
    csl_items: Iterable[dict],
    style: str = "apa",
    locale: str = "en-US",
    fmt: str = "html",
    styles_dir: Path | str | None = None,
    *,
    workers: int | None = None,
    chunk_size: int = CHUNK,
    start_method: str = "spawn",
    nice: int = 0,
    placeholder_numbers: bool = False,
) -> list[Entry]:
    """:func:`~biblio.citations.render_bibliography` of ``csl_items``, across processes.

    ``workers`` defaults to the number of CPUs. With one worker, or no more items than
    one chunk, the items are rendered in this process. ``nice`` lowers the workers'
    priority (background work that must not slow the web's processes);
    ``placeholder_numbers`` is :func:`~biblio.citations.render_bibliography`'s. Raises
    :class:`~biblio.citations.StyleError` for an unknown or broken style (before any
    process starts) and ``ValueError`` for an unknown ``fmt``.
    """
    items = list(csl_items)
    workers = workers or os.cpu_count() or 1
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    code = resolve_locale(locale) or "en-US"
    if workers < 2 or len(items) <= chunk_size:
        return render_bibliography(
            items, style, code, fmt, styles_dir, placeholder_numbers=placeholder_numbers
        )
    style_path(style, styles_dir)  # an unknown style fails here, not in every worker
    folder = str(styles_dir) if styles_dir else None
    context = multiprocessing.get_context(start_method)
    # a style of its own for the plan phase: the shared cached one stays free for
    # requests while the pool works
    renderer = Renderer(load_style(style, styles_dir, code), fmt)
    renderer.items = {}  # the plan phase normalises clashing items here, once
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(style, code, fmt, folder, nice),
    ) as pool:
        try:
            result = run(
                renderer,
                items,
                _chunked(pool, _prepare, chunk_size),
                _chunked(pool, _render, chunk_size),
                _chunked(pool, _settle, chunk_size, weigh=len),  # type: ignore[arg-type]
                placeholder_numbers=placeholder_numbers,
            )
        finally:
            state.reset()
    return entries(items, result, fmt)
