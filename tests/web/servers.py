"""Real servers for the web tests: ``biblio run`` (gunicorn) and ``redis-server`` as
subprocesses on free loopback ports, and a small HTTP client with cookies that does
not follow redirects (the standard library's, so the tests need nothing more).
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.served import running
from tests.smtp_server import free_port

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {seconds} s")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


class Client:
    """One visitor: its own cookies; answers are returned, never followed."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.headers = headers or {}
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def open(self, path: str, data: dict | list | None = None, **headers: str) -> Answer:  # type: ignore[type-arg]
        body = None if data is None else urllib.parse.urlencode(data, doseq=True).encode()
        req = urllib.request.Request(self.base + path, data=body, headers=self.headers)
        for name, value in headers.items():
            req.add_header(name.replace("_", "-"), value)
        try:
            with self.opener.open(req, timeout=60) as resp:
                return Answer(resp.status, dict(resp.headers), resp.read().decode())
        except urllib.error.HTTPError as err:
            return Answer(err.code, dict(err.headers), err.read().decode())

    def csrf(self, path: str) -> str:
        found = CSRF.search(self.open(path).text)
        assert found, path
        return found.group(1)

    def post_form(self, page: str, path: str, data: dict) -> Answer:  # type: ignore[type-arg]
        return self.open(path, {**data, "csrf_token": self.csrf(page)})


@contextmanager
def biblio_run(
    tmp_path: Path, settings_toml: str, *, workers: int = 2, name: str = "web"
) -> Iterator[tuple[str, Path]]:
    """``biblio run`` with ``settings_toml`` on a free port; yields its base URL and the
    file its output (gunicorn's access log included) goes to."""
    port = free_port()
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    conf = folder / "settings.toml"
    conf.write_text(settings_toml, encoding="utf-8")
    env = {"BIBLIO_SECRET_KEY": "a test secret for the real server", "BIBLIO_LOG_LEVEL": "WARNING"}
    with running(conf, folder, port, workers, log_name="output.log", ready=None, env=env) as (
        _proc,
        base,
        log,
    ):
        yield base, log


@contextmanager
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A real ``redis-server`` on a free port (no persistence); yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs it with apt)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(tmp_path)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
