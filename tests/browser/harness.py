"""Helpers for the real-browser tests: Debian's Chromium under Playwright, a real
server thread for the app, and screenshots saved as test artefacts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling out of this closed
# network; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a loopback port in a thread; yield its base URL. Like a real
    deployment, the app's ``[web] public_url`` (the links in its emails) is set to the
    address it is reached at, unless the test set one."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    web = app.config["BIBLIO"]["web"]
    web["public_url"] = web["public_url"] or url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """A full-page screenshot in test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
