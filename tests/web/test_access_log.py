"""Secrets never reach the access log: a join request's status token and a reading
list's edit token are masked in gunicorn's log (``biblio run``) and in Werkzeug's (the
demo's single-process server), in the request line and in the ``Referer``."""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.serving import make_server

from biblio.web import accesslog
from tests.conftest import make_settings
from tests.web.servers import Client, biblio_run

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(tmp_path, zotero):
    return make_settings(tmp_path, zotero, mail={"enabled": False})


def _secrets(client: Client) -> tuple[str, str, str]:
    """A join request's status path and a reading list's edit path, made through the
    site; returns them and the two tokens (joined) for searching the log."""
    joined = client.post_form(
        "/join",
        "/join",
        {
            "name": "Ada",
            "email": "ada@example.org",
            "zotero_user_id": "8000001",
            "reason": "I study alternative credentials.",
            "consent": "yes",
        },
    )
    assert joined.status == 303, joined.text[:300]
    status = urlsplit(joined.headers["Location"]).path
    made = client.post_form("/lists/new", "/lists/new", {"title": "Logged"})
    assert made.status == 303
    edit = urlsplit(made.headers["Location"])
    token = parse_qs(edit.query)["token"][0]
    return status, f"{edit.path}?token={token}", status.rsplit("/", 1)[1] + " " + token


def test_gunicorn_access_log_masks_status_and_edit_tokens(tmp_path, zotero, synced):
    conf = "\n".join(
        [
            "[zotero]",
            f"library_id = {zotero.library.group_id}",
            f'base_url = "{zotero.url}"',
            "[database]",
            f'url = "{synced.url}"',
            "[mail]",
            "enabled = false",
        ]
    )
    with biblio_run(tmp_path, conf + "\n", workers=1) as (base, log):
        visitor = Client(base)
        status, edit, tokens = _secrets(visitor)
        assert visitor.open(status).status == 200
        assert visitor.open(status + ".json").status == 200
        assert visitor.open(edit, Referer=base + edit).status == 200
        assert visitor.open("/items", Referer=base + status).status == 200
        time.sleep(0.5)  # let gunicorn write its last lines
    text = log.read_text()
    lines = [line for line in text.splitlines() if '"GET ' in line or '"POST ' in line]
    assert len(lines) >= 8, text[-2000:]
    for token in tokens.split():
        assert token not in text
    assert '"GET /join/status/*** HTTP/1.1" 200' in text
    assert "GET /join/status/***.json HTTP/1.1" in text
    assert re.search(r'"GET /lists/[^/ ]+/edit\?token=\*\*\* HTTP/1\.1" 200', text)
    assert f"{base}/join/status/***" in text  # the Referer, masked too


def test_the_demo_server_log_masks_tokens(app, caplog):
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=accesslog.request_handler(app)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            visitor = Client(base)
            status, edit, tokens = _secrets(visitor)
            assert visitor.open(status).status == 200
            assert visitor.open(edit).status == 200
            urllib.request.urlopen(base + "/items?q=x", timeout=30).close()
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "werkzeug")
    assert "/items?q=x" in logged  # ordinary requests are logged as they were
    assert "/join/status/***" in logged and "edit?token=***" in logged
    for token in tokens.split():
        assert token not in logged
