"""Shared fixtures: a loopback Zotero stand-in seeded with the sample library, settings
pointing at it with a SQLite file in tmp_path, the app, its test client and CLI runner.

Tests are black-box: they sync through the real HTTP stand-in with pyzotero.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from biblio import create_app, storage, subscribe_packages
from biblio.settings import load_settings
from biblio.standin.library import StandinLibrary
from biblio.standin.server import StandinServer
from biblio.sync.run import run_sync
from tests.smtp_server import SMTPServer

#: The library the tests sync; BIBLIO_TEST_LIBRARY runs the suite against another one.
SAMPLE = Path(os.environ.get("BIBLIO_TEST_LIBRARY") or Path(__file__).resolve().parent.parent
              / "biblio" / "data" / "sample_library.json")


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
def browser():
    """Debian's Chromium driven by Playwright (browser downloads are impossible here)."""
    playwright = pytest.importorskip("playwright.sync_api")
    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


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


@pytest.fixture
def settings(tmp_path, zotero):
    return make_settings(tmp_path, zotero)


@pytest.fixture
def engine(settings):
    engine = storage.open_database(settings["database"]["url"])
    yield engine
    storage.dispose_all()


@pytest.fixture
def synced(engine, settings):
    """The engine after one full sync of the sample library."""
    run_sync(engine, settings)
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
