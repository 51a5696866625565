"""Shared fixtures: a loopback Zotero stand-in seeded with the sample library, settings
pointing at it with a SQLite file in tmp_path, the app, its test client and CLI runner.

Tests are black-box: they sync through the real HTTP stand-in with pyzotero. Syncing
the sample library is the slow part of a test's setup, so it happens once per session
(per xdist worker): ``synced`` gives each test its own copy of that cache file in
``tmp_path``, beside a fresh stand-in serving a fresh copy of the library, so a test may
change the library and sync again. A test whose library or settings make the copy
differ from what its own sync would write (see :class:`SyncedSample`) syncs for real.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from biblio import create_app, storage, subscribe_packages
from biblio.settings import Settings, load_settings
from biblio.standin.library import StandinLibrary
from biblio.standin.server import StandinServer
from biblio.sync.run import run_sync
from tests import prerequisites
from tests.smtp_server import SMTPServer

#: The library the tests sync; BIBLIO_TEST_LIBRARY runs the suite against another one.
SAMPLE = Path(
    os.environ.get("BIBLIO_TEST_LIBRARY")
    or Path(__file__).resolve().parent.parent / "biblio" / "data" / "sample_library.json"
)

#: Settings that name where things are, not what a sync does: every test has its own.
PLACES = frozenset(
    {
        ("zotero", "base_url"),
        ("database", "url"),
        ("sync", "lock_file"),
        ("mail", "host"),
        ("mail", "port"),
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser and PostgreSQL tests skip, with the reason, where those are absent..."""
    for item in items:
        for prerequisite in prerequisites.ALL:
            prerequisite.skip_if_missing(item, os.environ)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """...and fail instead where BIBLIO_REQUIRE_BROWSER / BIBLIO_REQUIRE_POSTGRES say so."""
    for prerequisite in prerequisites.ALL:
        prerequisite.fail_if_required(item, os.environ)


@pytest.fixture(scope="session", autouse=True)
def _subscribed() -> None:
    """Every package listens to sync events, as in the app and the CLI."""
    subscribe_packages()


@pytest.fixture(scope="session")
def sample_data() -> dict:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


@pytest.fixture
def library(sample_data) -> StandinLibrary:
    """A fresh, mutable copy of the sample library."""
    return StandinLibrary.from_dict(copy.deepcopy(sample_data), copy=False)


@pytest.fixture
def zotero(library):
    """The stand-in Zotero server on loopback, serving ``library``."""
    with StandinServer(library) as server:
        yield server


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""
    server = SMTPServer().start()
    yield server
    server.stop()


def make_settings(tmp_path: Path, zotero: StandinServer, **sections):
    """Settings for a test: an explicit file (never the repo's), the stand-in, a tmp DB."""
    path = tmp_path / "settings.toml"
    if not path.exists():
        path.write_text(f"[zotero]\nlibrary_id = {zotero.library.group_id}\n", encoding="utf-8")
    overrides = {
        "zotero": {"base_url": zotero.url, "retry_base_seconds": 0.01, "max_wait_seconds": 5.0},
        "database": {"url": f"sqlite:///{tmp_path / 'biblio.sqlite3'}"},
        # Pre-rendering citations after each sync is process-wide once installed; tests
        # that are about it switch it on.
        "sync": {"lock_file": str(tmp_path / "sync.lock"), "prerender": False},
        "web": {"secret_key": "test-secret-key"},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    return load_settings(path, overrides=overrides, environ={})


def _fingerprint(library: StandinLibrary) -> tuple[Any, ...]:
    """Changes whenever the library does: every write bumps a version."""
    return (library.snapshot(), library.group_version)


class SyncedSample:
    """Cache files, each holding one full sync of the pristine sample library.

    Each is made the way a test's own first sync would be made: through a loopback
    stand-in and pyzotero, with the test's settings except the :data:`PLACES`
    (server URL, database file, lock file, mail server). One file is built per
    distinct remaining settings, on first use, and copied for every test after.
    """

    def __init__(self, folders: pytest.TempPathFactory, sample_data: dict) -> None:
        self._folders = folders
        self._data = sample_data
        self._pristine = _fingerprint(self._fresh_library())
        self._files: dict[str, Path] = {}

    def _fresh_library(self) -> StandinLibrary:
        return StandinLibrary.from_dict(copy.deepcopy(self._data), copy=False)

    def is_pristine(self, library: StandinLibrary) -> bool:
        return _fingerprint(library) == self._pristine

    def copy_to(self, settings: Settings, library: StandinLibrary) -> bool:
        """Put a synced cache where ``settings`` keeps its database; False if a copy
        would not be what syncing ``library`` with ``settings`` writes (the caller
        syncs for real then): the library changed, or the cache is not a new SQLite file."""
        target = storage.sqlite_path(settings["database"]["url"])
        if target is None or target.exists() or not self.is_pristine(library):
            return False
        shutil.copyfile(self._file_for(settings), target)
        return True

    def _file_for(self, settings: Settings) -> Path:
        key = json.dumps(
            {
                section: {k: v for k, v in values.items() if (section, k) not in PLACES}
                for section, values in settings.items()
            },
            sort_keys=True,
            default=str,
        )
        if key not in self._files:
            self._files[key] = self._build(settings)
        return self._files[key]

    def _build(self, settings: Settings) -> Path:
        folder = self._folders.mktemp("synced-sample")
        path = folder / "biblio.sqlite3"
        conf = Settings(copy.deepcopy(dict(settings)))
        with StandinServer(self._fresh_library()) as server:
            conf["zotero"]["base_url"] = server.url
            conf["database"]["url"] = f"sqlite:///{path}"
            conf["sync"]["lock_file"] = str(folder / "sync.lock")
            # Not open_database: its engine cache belongs to the test being set up.
            engine = storage.create_db_engine(conf["database"]["url"])
            try:
                storage.migrate(engine)
                run_sync(engine, conf)
            finally:
                engine.dispose()
        with closing(sqlite3.connect(path)) as db:  # one self-contained file to copy
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path


@pytest.fixture(scope="session")
def synced_sample(tmp_path_factory, sample_data) -> SyncedSample:
    return SyncedSample(tmp_path_factory, sample_data)


@pytest.fixture
def settings(tmp_path, zotero):
    return make_settings(tmp_path, zotero)


@pytest.fixture
def engine(request, settings, library) -> Iterator:
    """The test's cache: an empty one, or (for tests that ask for ``synced``) a copy of
    the synced sample, placed before the engine opens it."""
    url = settings["database"]["url"]
    request.node.stash[_COPIED] = "synced" in request.fixturenames and request.getfixturevalue(
        "synced_sample"
    ).copy_to(settings, library)
    engine = storage.open_database(url)
    yield engine
    storage.dispose_all()


_COPIED = pytest.StashKey[bool]()


@pytest.fixture
def synced(request, engine, settings, library, synced_sample):
    """The engine after one full sync of the sample library (a copy of the session's)."""
    if not request.node.stash[_COPIED]:
        run_sync(engine, settings)
    elif not synced_sample.is_pristine(library):
        run_sync(engine, settings)  # a fixture changed the library after the copy
    return engine


@pytest.fixture
def app(settings, synced):
    app = create_app(settings)
    app.config.update(TESTING=True)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def postgres_database() -> Iterator[Callable[[], str]]:
    """Make fresh, empty databases on the test server (``BIBLIO_TEST_POSTGRES_URL``):
    ``postgres_database()`` returns the URL of a new one. Each test's are its own, so
    parallel workers never reset one another's tables; all are dropped afterwards."""
    base = make_url(os.environ["BIBLIO_TEST_POSTGRES_URL"])
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"biblio_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return base.set(database=name).render_as_string(hide_password=False)

    yield make
    storage.dispose_all()
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
