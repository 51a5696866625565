"""Load bench, storage half: concurrent writes against ``biblio run`` (real gunicorn, its
defaults), on SQLite and on PostgreSQL, and a full sync while people join.

Scenarios (each against a fresh database, a fresh ``biblio run`` and the loopback Zotero
stand-in; email goes to an SMTP sink on loopback, so the outbox thread writes too):

- ``joins``: N people (default 100) open ``/join`` and then submit at the same moment,
  rate limits raised for the run. Figures: 5xx, other answers, acknowledged (303),
  stored, lost (acknowledged, not stored), duplicated (stored twice), stored without
  an acknowledgement.
- ``sync``: a full ``biblio sync --full`` of a synthetic library (default 10k items) as
  a separate process while waves of join submissions land, until the sync ends.
  Figures: the sync's outcome and time, and the joins' figures as above.

The code under test is whatever ``--python`` runs (``python -m biblio``), so the same
bench measures another checkout, e.g. the code before a change::

    .venv/bin/python bench/load.py storage
    .venv/bin/python bench/load.py storage --python /tmp/ops-before/.venv/bin/python
    .venv/bin/python bench/load.py storage --postgres postgresql+psycopg://postgres@127.0.0.1:55432/postgres

``--postgres`` names a server (any database on it) where the user may create databases:
each run creates its own and drops it afterwards. Prints figures; asserts nothing.
The functions are the bench's building blocks for ``bench/load.py``.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from biblio.mailcatcher import free_port
from biblio.standin.library import StandinLibrary
from biblio.standin.server import StandinServer
from biblio.standin.synthetic import synthetic_library

SAMPLE = Path(__file__).resolve().parent.parent / "biblio" / "data" / "sample_library.json"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TIMEOUT = 300.0


class _Sink:
    """An SMTP server that accepts and forgets (biblio's outbox needs someone to talk to)."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        return "250 accepted"


@dataclass
class Joins:
    """What happened to a batch of join submissions."""

    answers: Counter = field(default_factory=Counter)  # HTTP status (or error name) -> n
    acknowledged: set[str] = field(default_factory=set)  # emails answered 303
    stored: Counter = field(default_factory=Counter)  # email -> rows in the database

    def add(self, other: Joins) -> None:
        self.answers.update(other.answers)
        self.acknowledged |= other.acknowledged

    def figures(self) -> dict[str, int]:
        # 5xx answers to the form (GET) count as much as to the submission (POST).
        server_errors = sum(n for s, n in self.answers.items() if re.search(r"\b5\d\d$", str(s)))
        return {
            "submitted": sum(self.answers.values()),
            "5xx": server_errors,
            "other": sum(self.answers.values()) - server_errors - len(self.acknowledged),
            "acknowledged": len(self.acknowledged),
            "stored": sum(1 for n in self.stored.values() if n),
            "lost": sum(1 for e in self.acknowledged if not self.stored[e]),
            "duplicated": sum(1 for n in self.stored.values() if n > 1),
            "stored_unacknowledged": sum(
                1 for e, n in self.stored.items() if n and e not in self.acknowledged
            ),
        }


@dataclass
class Site:
    base: str
    database_url: str
    settings: Path
    python: str
    env: dict[str, str]
    pid: int = 0  # ``biblio run`` itself: gunicorn's master


def _settings_text(library_id: int, zotero: str, url: str, port: int, smtp: int, lock: Path) -> str:
    # Keys every biblio version of this bench knows; the rest keep their defaults.
    return (
        f'[zotero]\nlibrary_id = {library_id}\nbase_url = "{zotero}"\n'
        f'[database]\nurl = "{url}"\n'
        f'[sync]\nlock_file = "{lock}"\nprerender = false\n'
        f"[web]\nport = {port}\n"
        f'[mail]\nhost = "127.0.0.1"\nport = {smtp}\n'
        '[join]\nrate_limit = "100000 per hour"\nemail_rate_limit = "100000 per day"\n'
        "notify_owners = false\n"
    )


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A fresh database on the server of ``server_url``, dropped afterwards."""
    name = f"biblio_load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def running_site(
    python: str,
    library: StandinLibrary,
    database_url: str | None = None,
    *,
    env: dict[str, str] | None = None,
    smtp_handler: object | None = None,
) -> Iterator[Site]:
    """Stand-in, SMTP sink and ``python -m biblio run`` (its defaults) on a fresh database.

    ``env`` adds to the server's environment (``BIBLIO_<SECTION>__<KEY>`` settings, which
    every biblio version reads); ``smtp_handler`` replaces the sink that forgets."""
    folder = Path(tempfile.mkdtemp(prefix="bench-load-"))
    url = database_url or f"sqlite:///{folder / 'biblio.sqlite3'}"
    smtp = Controller(smtp_handler or _Sink(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    port = free_port()
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIBLIO_")}
    env["BIBLIO_LOG_LEVEL"] = "WARNING"
    env.update(extra)
    try:
        with StandinServer(library) as zotero:
            settings = folder / "settings.toml"
            settings.write_text(
                _settings_text(
                    library.group_id, zotero.url, url, port, smtp.port, folder / "sync.lock"
                ),
                encoding="utf-8",
            )
            log = (folder / "run.log").open("w", encoding="utf-8")
            proc = subprocess.Popen(
                [python, "-m", "biblio", "--settings", str(settings), "run"],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            base = f"http://127.0.0.1:{port}"
            try:
                _wait_until_up(proc, base, folder / "run.log")
                yield Site(base, url, settings, python, env, proc.pid)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                log.close()
    finally:
        smtp.stop()


def _wait_until_up(proc: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"biblio run ended: {log.read_text(encoding='utf-8')[-1500:]}")
        try:
            with urllib.request.urlopen(base + "/join", timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("biblio run never answered /join")


def _one_person(base: str, email: str, start: threading.Barrier | None) -> tuple[str, object]:
    """Open the form, wait for the others, submit; (email, status or error name)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
    try:
        with opener.open(base + "/join", timeout=TIMEOUT) as resp:
            token = CSRF.search(resp.read().decode()).group(1)  # type: ignore[union-attr]
    except urllib.error.HTTPError as exc:
        exc.close()
        return email, f"form:{exc.code}"
    except (OSError, AttributeError) as exc:
        return email, f"form:{type(exc).__name__}"
    finally:
        if start is not None:
            with suppress(threading.BrokenBarrierError):
                start.wait(TIMEOUT)
    name = email.split("@")[0]
    form = {
        "csrf_token": token,
        "name": f"Person {name}",
        "email": email,
        "zotero_username": name.replace("+", "-"),
        "reason": "I study library labour and would like to join the group.",
        "prongs": "pathways",
        "consent": "yes",
    }
    body = urllib.parse.urlencode(form).encode()
    try:
        with opener.open(base + "/join", data=body, timeout=TIMEOUT) as resp:
            return email, resp.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return email, exc.code
    except OSError as exc:
        return email, type(exc).__name__


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # a 303 is the acknowledgement; do not follow it


def submit_joins(base: str, emails: list[str], *, together: bool = True) -> Joins:
    """Submit one join request per email, all at once (``together``) or as they come."""
    result = Joins()
    start = threading.Barrier(len(emails)) if together else None
    with ThreadPoolExecutor(len(emails)) as pool:
        for email, status in pool.map(lambda e: _one_person(base, e, start), emails):
            result.answers[status] += 1
            if status == 303:
                result.acknowledged.add(email)
    return result


def count_stored(database_url: str, joins: Joins, emails: list[str]) -> None:
    """Fill ``joins.stored`` with the rows each email has in ``join_requests``."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT email FROM join_requests")).scalars().all()
    finally:
        engine.dispose()
    found = Counter(rows)
    for email in emails:
        joins.stored[email] = found.get(email, 0)


def sync_first(site: Site) -> None:
    """A first sync, so the site has its group and library (as a real site has)."""
    subprocess.run(
        [site.python, "-m", "biblio", "--settings", str(site.settings), "sync"],
        env=site.env,
        cwd=site.settings.parent,  # not a checkout: `python -m` imports biblio from the cwd
        check=True,
        capture_output=True,
        timeout=1800,
    )


def scenario_joins(python: str, n: int = 100, database_url: str | None = None) -> dict:
    """``n`` distinct people submit at the same moment; the figures."""
    library = StandinLibrary.from_file(SAMPLE)
    with running_site(python, library, database_url) as site:
        sync_first(site)
        emails = [f"p{i}-{uuid.uuid4().hex[:6]}@example.org" for i in range(n)]
        started = time.monotonic()
        joins = submit_joins(site.base, emails)
        seconds = time.monotonic() - started
        time.sleep(2)  # let the outbox threads finish their writes
        count_stored(site.database_url, joins, emails)
    return {**joins.figures(), "seconds": round(seconds, 1), "answers": _answers(joins)}


def scenario_sync(
    python: str, items: int = 10_000, wave: int = 10, database_url: str | None = None
) -> dict:
    """``biblio sync --full`` of ``items`` synthetic items while waves of ``wave`` people
    join, until the sync ends; the sync's outcome and the joins' figures."""
    library = synthetic_library(items, seed=11)
    with running_site(python, library, database_url) as site:
        joins, emails = Joins(), []
        started = time.monotonic()
        sync = subprocess.Popen(
            [site.python, "-m", "biblio", "--settings", str(site.settings), "sync", "--full"],
            env=site.env,
            cwd=site.settings.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        waves = 0
        while sync.poll() is None:
            batch = [f"s{waves}-{i}-{uuid.uuid4().hex[:6]}@example.org" for i in range(wave)]
            emails += batch
            joins.add(submit_joins(site.base, batch, together=True))
            waves += 1
            time.sleep(0.2)
        out, err = sync.communicate()
        seconds = time.monotonic() - started
        time.sleep(2)
        count_stored(site.database_url, joins, emails)
        lines = [line for line in (out + err).splitlines() if line.strip()]
        with create_engine(site.database_url).connect() as conn:
            items_cached = conn.execute(text("SELECT count(*) FROM items")).scalar()
    return {
        "sync_exit": sync.returncode,
        "sync_said": (lines[-1] if lines else "")[:160],
        "sync_seconds": round(seconds, 1),
        "items_cached": items_cached,
        "waves": waves,
        **joins.figures(),
        "answers": _answers(joins),
    }


def _answers(joins: Joins) -> str:
    return ", ".join(f"{n}×{s}" for s, n in sorted(joins.answers.items(), key=str))


def run(python: str, postgres: str | None, joins: int, items: int) -> list[tuple[str, dict]]:
    """Every storage scenario, printed as it finishes; returns (name, figures)."""
    results = []

    def show(name: str, figures: dict) -> None:
        results.append((name, figures))
        print(f"{name}: {json.dumps(figures, ensure_ascii=False)}", flush=True)

    show(f"{joins} parallel joins, SQLite", scenario_joins(python, joins))
    if postgres:
        with postgres_database(postgres) as url:
            show(f"{joins} parallel joins, PostgreSQL", scenario_joins(python, joins, url))
    show(f"sync --full of {items:,} items while joining, SQLite", scenario_sync(python, items))
    if postgres:
        with postgres_database(postgres) as url:
            show(
                f"sync --full of {items:,} items while joining, PostgreSQL",
                scenario_sync(python, items, database_url=url),
            )
    return results


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="Python that runs biblio.")
    parser.add_argument("--postgres", default=os.environ.get("BIBLIO_BENCH_POSTGRES_URL"))
    parser.add_argument("--joins", type=int, default=100)
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args(argv)
    print(f"biblio under test: {args.python}", flush=True)
    run(args.python, args.postgres, args.joins, args.items)


if __name__ == "__main__":
    main(sys.argv[1:])
