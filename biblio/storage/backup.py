"""Backup and restore of the database, while the site serves.

Some of what biblio keeps exists nowhere else: join requests, owners, the audit log,
reading lists, prong overrides (the owners' review decisions) and the outbox. The
library itself can always be re-synced from Zotero. :func:`backup` writes one file:
on SQLite with SQLite's online backup API (one step, so the copy is a consistent
snapshot and, in WAL mode, writers go on meanwhile), on PostgreSQL with ``pg_dump
--format=custom``. :func:`restore` checks that a file is a biblio backup this biblio
can read, refuses to replace a database that holds anything unless forced, brings
the copy up to the newest schema and loads it: on SQLite with the backup API into
the live file (writers wait their turn, readers see the old or the new database,
never a mix), on PostgreSQL with ``pg_restore --clean --single-transaction``.
Every failure is a :class:`BackupError` with a one-line message; nothing is
replaced until the new copy is complete and checked.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.url import URL

from biblio.storage.engine import DEFAULT_BUSY_TIMEOUT, create_db_engine, sqlite_path
from biblio.storage.migrations import MIGRATIONS, migrate
from biblio.storage.schema import (
    audit_log,
    items,
    join_requests,
    outbox,
    owners,
    prong_overrides,
    reading_lists,
    sync_state,
)

#: What exists only in biblio's database, by the label a backup reports it under.
OWNED = {
    "join requests": join_requests,
    "owners": owners,
    "audit rows": audit_log,
    "reading lists": reading_lists,
    "prong overrides": prong_overrides,
    "emails": outbox,
}
#: Tables whose rows mean a database is in use (restore refuses to replace it unforced).
IN_USE = (*OWNED.values(), items, sync_state)
#: Tables every biblio database has; a file without them is not a biblio backup.
REQUIRED_TABLES = frozenset({"migrations", "join_requests", "owners", "audit_log"})
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
PG_TIMEOUT = 3600.0


class BackupError(Exception):
    """A backup or restore cannot be done; the message is one line saying why."""


@dataclass
class BackupResult:
    path: Path
    size: int
    counts: dict[str, int] = field(default_factory=dict)  # OWNED labels (SQLite only)


@dataclass
class RestoreResult:
    counts: dict[str, int]
    migrated: list[str]  # migrations applied to the restored copy


def counts(engine: Engine) -> dict[str, int]:
    """Rows of each table only biblio holds (:data:`OWNED`)."""
    with engine.connect() as conn:
        return {
            label: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for label, table in OWNED.items()
        }


def in_use(engine: Engine) -> bool:
    """Whether the database holds a biblio schema with any data in it."""
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        return any(
            conn.execute(select(table).limit(1)).first() is not None
            for table in IN_USE
            if table.name in names
        )


def backup(url: str, target: Path, *, force: bool = False) -> BackupResult:
    """Write a backup of the database at ``url`` to ``target`` (refuse to overwrite an
    existing file unless ``force``)."""
    target = Path(target)
    if target.exists() and not force:
        raise BackupError(f"{target} exists; choose another file or pass --force to replace it")
    if target.is_dir():
        raise BackupError(f"{target} is a folder; name the backup file")
    if not target.parent.is_dir():
        raise BackupError(f"folder {target.parent} does not exist")
    path = sqlite_path(url)
    if path is not None:
        return _backup_sqlite(path, target)
    if make_url(url).get_backend_name() == "postgresql":
        return _backup_postgres(make_url(url), target)
    raise BackupError(f"cannot back up a {make_url(url).get_backend_name()} database")


def restore(
    url: str, source: Path, *, force: bool = False, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> RestoreResult:
    """Replace the database at ``url`` with the backup ``source``, migrated to the newest
    schema; refuse if the database holds anything, unless ``force``."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"{source}: no such backup file")
    with source.open("rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    path = sqlite_path(url)
    if path is not None:
        if head.startswith(PG_DUMP_MAGIC):
            raise BackupError(f"{source} is a PostgreSQL dump; [database] url names SQLite")
        return _restore_sqlite(path, source, force=force, busy_timeout=busy_timeout)
    if make_url(url).get_backend_name() == "postgresql":
        if head == SQLITE_MAGIC:
            raise BackupError(f"{source} is a SQLite backup; [database] url names PostgreSQL")
        return _restore_postgres(make_url(url), source, force=force)
    raise BackupError(f"cannot restore into a {make_url(url).get_backend_name()} database")


# -- SQLite -------------------------------------------------------------------------------


@contextmanager
def _partial(target: Path) -> Iterator[Path]:
    """A private file beside ``target`` that becomes it only if the block succeeds."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))  # owner only
    try:
        yield partial
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, target)
    finally:
        for leftover in (partial, *_sidecars(partial)):
            leftover.unlink(missing_ok=True)


def _sidecars(path: Path) -> tuple[Path, ...]:
    return (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))


def _backup_sqlite(path: Path, target: Path) -> BackupResult:
    if not path.is_file():
        raise BackupError(f"{path}: no database to back up")
    with _partial(target) as partial:
        try:
            with (
                closing(sqlite3.connect(path, timeout=DEFAULT_BUSY_TIMEOUT)) as src,
                closing(sqlite3.connect(partial)) as dst,
            ):
                # One step (pages=-1): one read transaction, so the copy is a snapshot;
                # in WAL mode the site's writers are not held up meanwhile.
                src.backup(dst)
                # One self-contained file, whatever the live journal mode.
                dst.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as exc:
            raise BackupError(f"backup of {path} failed: {exc}") from None
        found = _check_sqlite(partial, str(target))
    return BackupResult(target, target.stat().st_size, found)


def _check_sqlite(path: Path, shown: str) -> dict[str, int]:
    """Check that ``path`` is an intact biblio database this biblio can migrate; return
    its :data:`OWNED` counts."""
    with path.open("rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if head != SQLITE_MAGIC:
        raise BackupError(f"{shown} is not a SQLite database")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise BackupError(f"{shown} is damaged (quick_check: {verdict})")
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            missing = REQUIRED_TABLES - tables
            if missing:
                raise BackupError(
                    f"{shown} is not a biblio database (no {', '.join(sorted(missing))} table)"
                )
            applied = [r[0] for r in db.execute("SELECT name FROM migrations")]
            found = {
                label: db.execute(f"SELECT count(*) FROM {t.name}").fetchone()[0]  # noqa: S608
                for label, t in OWNED.items()
                if t.name in tables
            }
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{shown} cannot be read as a SQLite database ({exc})") from None
    _check_migrations(applied, shown)
    return found


def _check_migrations(applied: list[str], shown: str) -> None:
    known = {name for name, _ in MIGRATIONS}
    newer = sorted(set(applied) - known)
    if newer:
        raise BackupError(
            f"{shown} was made by a newer biblio (migrations {', '.join(newer)} are "
            "unknown here); upgrade biblio, then restore"
        )
    if not applied:
        raise BackupError(f"{shown} is not a biblio database (no migration recorded)")


def _restore_sqlite(path: Path, source: Path, *, force: bool, busy_timeout: float) -> RestoreResult:
    _check_sqlite(source, str(source))
    live_url = f"sqlite:///{path}"
    if path.is_file() and not force:
        live = create_db_engine(live_url, busy_timeout=busy_timeout)
        try:
            if in_use(live):
                raise BackupError(
                    f"{path} holds a biblio database in use; pass --force to replace it "
                    "(back it up first)"
                )
        finally:
            live.dispose()
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = path.with_name(f".{path.name}.restore-{os.getpid()}")
    try:
        with (
            closing(sqlite3.connect(source)) as src,
            closing(sqlite3.connect(stage)) as dst,
        ):
            src.backup(dst)
        # Brought up to date on the side, so the live file never holds an old schema.
        staged = create_db_engine(f"sqlite:///{stage}")
        try:
            migrated = migrate(staged)
            found = counts(staged)
        finally:
            staged.dispose()
        with (
            closing(sqlite3.connect(stage)) as src,
            closing(sqlite3.connect(path, timeout=busy_timeout)) as dst,
        ):
            src.backup(dst)  # one step, under the live file's write lock
    except sqlite3.Error as exc:
        raise BackupError(f"restore of {source} into {path} failed: {exc}") from None
    finally:
        for leftover in (stage, *_sidecars(stage)):
            leftover.unlink(missing_ok=True)
    return RestoreResult(found, migrated)


# -- PostgreSQL ---------------------------------------------------------------------------


def postgres_tool(name: str) -> str:
    """``pg_dump`` or ``pg_restore``: from PATH, else Debian's newest
    ``/usr/lib/postgresql/<version>/bin``."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p)],
    )
    if versions:
        return versions[-1]
    raise BackupError(f"{name} not found; install PostgreSQL's client tools (postgresql-client)")


def libpq(url: URL) -> tuple[str, dict[str, str]]:
    """The libpq connection URL of a SQLAlchemy URL, and the environment carrying its
    password (never on a command line, where any local user could read it)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(args: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(  # args are a list: no shell
            args, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise BackupError(f"{what} failed: {lines[0] if lines else f'exit {done.returncode}'}")
    return done


def _backup_postgres(url: URL, target: Path) -> BackupResult:
    conninfo, env = libpq(url)
    with _partial(target) as partial:
        _run(
            [
                postgres_tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={partial}",
                f"--dbname={conninfo}",
            ],
            env,
            "pg_dump",
        )
        _check_dump(partial, str(target), env)
    return BackupResult(target, target.stat().st_size)


def _check_dump(path: Path, shown: str, env: dict[str, str]) -> None:
    with path.open("rb") as fh:
        if fh.read(len(PG_DUMP_MAGIC)) != PG_DUMP_MAGIC:
            raise BackupError(f"{shown} is not a PostgreSQL dump in pg_dump's custom format")
    tool = postgres_tool("pg_restore")
    listing = _run([tool, "--list", str(path)], env, f"pg_restore --list {shown}").stdout
    tables = set(re.findall(r" TABLE \S+ (\w+) ", listing))
    missing = REQUIRED_TABLES - tables
    if missing:
        raise BackupError(f"{shown} is not a biblio database (no {', '.join(sorted(missing))})")
    data = _run(
        [tool, "--data-only", "--table=migrations", "--file=-", str(path)],
        env,
        f"pg_restore {shown}",
    ).stdout
    rows = data.split("FROM stdin;\n", 1)[-1].split("\n\\.", 1)[0] if "FROM stdin" in data else ""
    _check_migrations([line.split("\t")[0] for line in rows.splitlines() if line], shown)


def _restore_postgres(url: URL, source: Path, *, force: bool) -> RestoreResult:
    conninfo, env = libpq(url)
    _check_dump(source, str(source), env)
    engine = create_db_engine(url.render_as_string(hide_password=False))
    try:
        if not force and in_use(engine):
            raise BackupError(
                f"{url.render_as_string(hide_password=True)} holds a biblio database in use; "
                "pass --force to replace it (back it up first)"
            )
        engine.dispose()
        _run(
            [
                postgres_tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={conninfo}",
                str(source),
            ],
            env,
            "pg_restore",
        )
        migrated = migrate(engine)
        return RestoreResult(counts(engine), migrated)
    finally:
        engine.dispose()
