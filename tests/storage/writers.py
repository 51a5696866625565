"""The writers of the concurrency tests: each submits join requests as distinct people and
bumps a shared counter with a read-then-write transaction, through biblio's own code.

A module of its own so that spawned processes can import it; threads run the same code.
Every error and every log line at WARNING or above is returned, never swallowed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from biblio import mail
from biblio import storage as st
from biblio.membership import requests as jr
from biblio.settings import Settings
from biblio.storage.app import engine_for


@dataclass
class Outcome:
    acknowledged: list[int] = field(default_factory=list)  # request ids submit() returned
    bumps: int = 0
    errors: list[str] = field(default_factory=list)


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


def person(writer: str, n: int) -> dict[str, Any]:
    """The validated form of a distinct applicant."""
    values, errors = jr.validate(
        {
            "name": f"Writer {writer} number {n}",
            "email": f"w{writer}-{n}@example.org",
            "zotero_username": f"writer-{writer}-{n}",
            "reason": "Testing concurrent writers on one database.",
            "consent": "yes",
        },
        ["pathways"],
    )
    assert not errors, errors
    return values


def bump(engine: Any) -> None:
    """Read the counter, then write it plus one: a lost update if writers interleaved."""
    with st.transaction(engine) as conn:
        n = conn.execute(select(st.data_changes.c.n).where(st.data_changes.c.id == 1)).scalar()
        conn.execute(update(st.data_changes).where(st.data_changes.c.id == 1).values(n=n + 1))


def write(settings: Settings, writer: str, count: int, engine: Any = None) -> Outcome:
    """``count`` join requests and ``count`` counter bumps, alternating."""
    keep = _Keep()
    logging.getLogger().addHandler(keep)
    outcome = Outcome()
    engine = engine if engine is not None else engine_for(settings)
    try:
        for n in range(count):
            try:
                submitted = jr.submit(
                    engine, settings, person(writer, n), lambda token: f"/join/status/{token}"
                )
                outcome.acknowledged.append(submitted.id)
                bump(engine)
                outcome.bumps += 1
            except Exception as exc:  # every failure is the test's business
                outcome.errors.append(f"{type(exc).__name__}: {exc}")
        mail.wait_for_background()
    finally:
        logging.getLogger().removeHandler(keep)
    outcome.errors += keep.lines
    return outcome


def write_in_process(settings: dict[str, Any], writer: str, count: int) -> Outcome:
    """:func:`write` in a spawned process, with its own engine and outbox threads."""
    try:
        return write(Settings(settings), writer, count)
    finally:
        st.dispose_all()
