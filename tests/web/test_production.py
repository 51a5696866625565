"""Production defaults: HSTS, https URLs, and ``[web] public_url`` as the one source of the
site's address, whatever Host header a request carries; development keeps following
the request's host. Production without a public_url does not start.

The confirmation email goes through the outbox to a real SMTP server on loopback.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from biblio import create_app
from biblio.cli import cli
from tests.conftest import make_settings

PUBLIC = "https://biblio.example.org"
EVIL = "evil.example"
ATOM = "{http://www.w3.org/2005/Atom}"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def production(tmp_path, zotero, public_url=PUBLIC, **sections):
    web = {"env": "production", "public_url": public_url}
    return make_settings(tmp_path, zotero, web=web, **sections)


def feed_links(client, **headers) -> list[str]:
    resp = client.get("/items.atom", headers=headers)
    assert resp.status_code == 200
    feed = ET.fromstring(resp.data)
    return [link.get("href") for link in feed.iter(f"{ATOM}link")]


def test_production_sends_hsts_and_development_does_not(client, tmp_path, zotero, synced):
    assert "Strict-Transport-Security" not in client.get("/").headers
    app = create_app(production(tmp_path, zotero))
    for url in ("/", "/items.json", "/-/health", "/no-such-page"):
        resp = app.test_client().get(url)
        assert resp.headers["Strict-Transport-Security"] == "max-age=31536000", url
        assert resp.headers["X-Content-Type-Options"] == "nosniff", url
    assert app.config["PREFERRED_URL_SCHEME"] == "https"
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_feeds_link_to_the_public_url_whatever_the_host_header(tmp_path, zotero, synced):
    client = create_app(production(tmp_path, zotero)).test_client()
    links = feed_links(client, **{"Host": EVIL, "X-Forwarded-Host": EVIL})
    assert links and all(link.startswith(PUBLIC + "/") for link in links), links


def test_development_feeds_link_to_the_configured_address_not_the_host(client):
    """Feeds, like emails, are read away from the site (and cached by aggregators): in
    development without ``public_url`` they name the address ``biblio run`` serves
    (``[web] host``/``port``), whatever ``Host`` a client sends."""
    links = feed_links(client, Host="dev.example:8080")
    assert links and all(link.startswith("http://127.0.0.1:5000/") for link in links), links


def test_join_email_links_to_the_public_url_not_the_attackers_host(tmp_path, zotero, synced, smtp):
    conf = production(tmp_path, zotero, mail={"host": "127.0.0.1", "port": smtp.port})
    client = create_app(conf).test_client()
    headers = {"Host": EVIL, "Referer": f"https://{EVIL}/join"}
    token = CSRF.search(client.get("/join", headers=headers).get_data(as_text=True)).group(1)
    form = {
        "csrf_token": token,
        "name": "Grace",
        "email": "grace@example.org",
        "zotero_user_id": "8100001",
        "reason": "I research library worker equity.",
        "prongs": ["worker-equity"],
        "consent": "yes",
    }
    # Flask-WTF checks the Referer of https requests against the host: production sees
    # every request as addressed to the public URL, so the attacker's host fails it...
    assert client.post("/join", data=form, headers=headers).status_code == 400
    # ...and a browser on the real site sends the public URL as its Referer.
    headers["Referer"] = f"{PUBLIC}/join"
    resp = client.post("/join", data=form, headers=headers)
    assert resp.status_code == 303
    [msg] = smtp.collector.wait_for(1)
    text = msg.get_body(("plain",)).get_content()
    links = re.findall(r"https?://\S+", text)
    assert any(link.startswith(f"{PUBLIC}/join/status/") for link in links), text
    assert EVIL not in text


def test_a_public_url_with_a_path_prefixes_every_link(tmp_path, zotero, synced):
    client = create_app(production(tmp_path, zotero, f"{PUBLIC}/group")).test_client()
    assert all(link.startswith(f"{PUBLIC}/group/") for link in feed_links(client, Host=EVIL))
    # Whether the proxy strips the prefix or passes it on, the page is found.
    for path in ("/items.json", "/group/items.json"):
        body = client.get(path).get_json()
        assert body["ok"] is True and body["count"] > 0, path
    listed = client.get("/items.json?_size=1").get_json()
    assert listed["next"].startswith(f"{PUBLIC}/group/items.json?")


@pytest.mark.parametrize(
    "public_url, needle",
    [("", "[web] public_url is required"), ("http://biblio.example.org", "must be https://")],
)
def test_biblio_run_refuses_production_without_an_https_public_url(tmp_path, public_url, needle):
    path = tmp_path / "settings.toml"
    path.write_text(
        f'[zotero]\nlibrary_id = 1\n[web]\nenv = "production"\npublic_url = "{public_url}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["--settings", str(path), "run"], env={"BIBLIO_SECRET_KEY": "k" * 32}
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.toml"]  # nothing opened
