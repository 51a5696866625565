"""The deployment in ``deploy/``: the nginx site in front of a real ``biblio run``, and the
files agreeing with biblio itself.

nginx (Debian's, with a self-signed certificate made here) runs the site as shipped,
with only its ports, certificate paths, log folder and static folder moved into the
test's folder: HTTP goes to HTTPS at the configured name, pages reach biblio through
the proxy, static files come from disk, oversized bodies stop at nginx, and the access
log keeps no status or edit token. ``deploy/check`` (``nginx -t``, ``systemd-analyze
verify``) runs in ``.ci/run``.
"""

from __future__ import annotations

import http.client
import re
import ssl
import tomllib

import click
import pytest

from biblio.cli import cli
from biblio.settings import DECLARED, load_settings
from tests.served import HAVE_NGINX, PUBLIC, ROOT, SITE, STATIC, serve_biblio, serve_nginx

DEPLOY = ROOT / "deploy"
needs_nginx = pytest.mark.skipif(
    not HAVE_NGINX, reason="nginx and openssl are not installed (apt-get install nginx openssl)"
)


@pytest.fixture
def nginx(synced, settings, tmp_path):
    """nginx with the shipped site in front of ``biblio run``."""
    with (
        serve_biblio(settings, tmp_path, workers=1) as app,
        serve_nginx(app, tmp_path / "nginx") as proxy,
    ):
        yield proxy.http_port, proxy.https_port, proxy.folder


def request(port: int, method: str, path: str, *, tls: bool = True, body: bytes | None = None):
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the certificate is self-signed, made above
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=30, context=context
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": "biblio.example.org"} if tls else {"Host": "evil.example"}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


@needs_nginx
def test_the_nginx_site_proxies_biblio_over_tls_and_keeps_tokens_out_of_its_log(nginx):
    http_port, https_port, folder = nginx
    status, headers, _ = request(http_port, "GET", "/items?prong=pathways", tls=False)
    assert status == 301
    assert headers["location"] == f"{PUBLIC}/items?prong=pathways"  # not the Host header's

    status, headers, body = request(https_port, "GET", "/items.json")
    assert status == 200 and b'"ok": true' in body
    assert headers["strict-transport-security"] == "max-age=31536000"  # from biblio, once
    assert request(https_port, "GET", "/-/health")[0] == 200

    status, headers, body = request(https_port, "GET", "/static/style.css")
    assert status == 200 and body == (STATIC / "style.css").read_bytes()
    assert headers["x-content-type-options"] == "nosniff" and "max-age" in headers["cache-control"]

    assert request(https_port, "POST", "/join", body=b"x" * (3 * 1024 * 1024))[0] == 413

    assert request(https_port, "GET", "/join/status/STATUS-SECRET-123")[0] == 404
    request(https_port, "GET", "/lists/no-such-list/edit?token=EDIT-SECRET-456")
    log = (folder / "biblio.access.log").read_text(encoding="utf-8")
    assert "/join/status/REDACTED" in log and "/lists/no-such-list/edit?REDACTED" in log
    assert "STATUS-SECRET-123" not in log and "EDIT-SECRET-456" not in log


def test_the_units_run_biblio_commands_that_exist():
    commands = set(cli.list_commands(click.Context(cli)))
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert len(units) == 3
    for unit in units:
        text = unit.read_text(encoding="utf-8")
        found = re.findall(r"/opt/biblio/venv/bin/biblio (\w+)", text)
        assert found and set(found) <= commands, unit.name
        for hardening in ("ProtectSystem=strict", "NoNewPrivileges=yes", "EnvironmentFile="):
            assert hardening in text, (unit.name, hardening)


def test_the_example_settings_are_production_settings_biblio_accepts(tmp_path):
    text = (DEPLOY / "settings.toml.example").read_text(encoding="utf-8")
    declared = {(s.section, s.key) for s in DECLARED}
    parsed = tomllib.loads(text)
    if ("web", "trusted_proxies") not in declared:  # declared by the proxy-fix change
        text = text.replace("trusted_proxies = 1\n", "")
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    settings = load_settings(path, environ={"BIBLIO_SECRET_KEY": "k" * 40})
    assert settings["web"]["env"] == "production"
    assert settings["web"]["public_url"] == PUBLIC
    assert parsed["web"]["trusted_proxies"] == 1  # the one proxy: deploy/nginx/biblio.conf
    site = SITE.read_text(encoding="utf-8")
    assert "server_name biblio.example.org;" in site
    assert f"return 301 {PUBLIC}$request_uri;" in site
    assert "client_max_body_size 2m;" in site  # biblio's MAX_CONTENT_LENGTH is 2 MiB
