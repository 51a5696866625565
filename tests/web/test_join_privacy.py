"""Joining reveals nothing and blocks no one: a repeated request gets the same answer as
a first one (the applicant is told by email), someone else's Zotero ID no longer
blocks the real person (the owners see it flagged), and links in emails and feeds
come from configuration, never from a request's ``Host`` header."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from biblio import create_app, mail
from biblio.membership import owners
from tests.conftest import make_settings

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
OWNER, PASSWORD = "owner@example.org", "correct horse battery staple"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def settings(tmp_path, zotero):
    return make_settings(
        tmp_path,
        zotero,
        mail={"enabled": False},
        join={"rate_limit": "100 per hour", "email_rate_limit": "100 per day"},
        web={"public_url": "https://biblio.example.org"},
    )


def submit(client, host: str | None = None, **fields: str):  # type: ignore[no-untyped-def]
    headers = {"Host": host} if host else {}
    token = CSRF.search(client.get("/join", headers=headers).get_data(as_text=True)).group(1)
    data = {
        "name": "Ada Applicant",
        "email": "ada@example.org",
        "zotero_user_id": "8000001",
        "reason": "I study alternative credentials.",
        "consent": "yes",
        "prongs": ["pathways"],
        "csrf_token": token,
        **fields,
    }
    return client.post("/join", data=data, headers=headers)


def _shape(response) -> tuple:  # type: ignore[no-untyped-def]
    """What an onlooker sees of an answer: status, where it leads (token removed) and
    the page it leads to, with the token and dates taken out."""
    location = re.sub(r"/join/status/[^?]+", "/join/status/T", response.headers["Location"])
    return response.status_code, location


def test_a_repeated_request_gets_the_same_answer_as_a_first_one(client, synced):
    first = submit(client)
    again = submit(client, zotero_user_id="8000009")  # the same email, still open
    assert _shape(first) == _shape(again) == (303, "/join/status/T?new=1")
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "already" not in page.lower()
    to_ada = [m for m in mail.messages(synced) if m["to_addr"] == "ada@example.org"]
    assert len(to_ada) == 2
    newest = to_ada[0]["body"]
    assert "You already have an open request to join, sent on" in newest
    assert "already have an open request" not in to_ada[1]["body"]


def test_someone_elses_zotero_id_does_not_block_the_real_person(client, synced):
    """Mallory types Ada's Zotero user ID; Ada can still apply; the owners see both
    requests flagged and decide."""
    assert submit(client, name="Mallory", email="mallory@example.org").status_code == 303
    assert submit(client).status_code == 303
    owners.create_owner(synced, OWNER, PASSWORD)
    token = CSRF.search(client.get("/-/admin/login").get_data(as_text=True)).group(1)
    client.post("/-/admin/login", data={"email": OWNER, "password": PASSWORD, "csrf_token": token})
    rows = client.get("/-/admin/requests.json").get_json()["rows"]
    by_email = {r["email"]: r for r in rows}
    mallory, ada = by_email["mallory@example.org"], by_email["ada@example.org"]
    assert mallory["flags"] == [f"Zotero user ID also given in #{ada['id']}"]
    assert ada["flags"] == [f"Zotero user ID also given in #{mallory['id']}"]
    queue = client.get("/-/admin/").get_data(as_text=True)
    assert f'class="flag">Zotero user ID also given in #{ada["id"]}' in queue
    detail = client.get(f"/-/admin/requests/{ada['id']}").get_data(as_text=True)
    assert "Check before deciding" in detail and f"also given in #{mallory['id']}" in detail


def test_a_member_applying_is_answered_alike_and_flagged(client, synced, library):
    member = str(library.group["members"][0])
    response = submit(client, zotero_user_id=member)
    assert _shape(response) == (303, "/join/status/T?new=1")
    [message] = mail.messages(synced)
    assert "already lists the Zotero account you gave as a member" in message["body"]
    owners.create_owner(synced, OWNER, PASSWORD)
    token = CSRF.search(client.get("/-/admin/login").get_data(as_text=True)).group(1)
    client.post("/-/admin/login", data={"email": OWNER, "password": PASSWORD, "csrf_token": token})
    [row] = client.get("/-/admin/requests.json").get_json()["rows"]
    assert row["flags"] == ["Zotero user ID is already a member"]


def _links_in_outbox(engine) -> list[str]:  # type: ignore[no-untyped-def]
    return [u for m in mail.messages(engine) for u in re.findall(r"https?://\S+", m["body"])]


def test_email_links_come_from_public_url_never_from_the_host_header(client, synced):
    owners.create_owner(synced, OWNER, PASSWORD)  # owners are told of new requests too
    assert submit(client, host="evil.example").status_code == 303
    links = [u for u in _links_in_outbox(synced) if "zotero.org" not in u]
    assert len(links) == 2  # the applicant's status link and the owner's review link
    assert all(u.startswith("https://biblio.example.org/") for u in links), links
    assert not any("evil.example" in m["body"] for m in mail.messages(synced))


def test_without_public_url_development_links_name_the_configured_server(tmp_path, zotero, synced):
    conf = make_settings(
        tmp_path, zotero, mail={"enabled": False}, web={"host": "127.0.0.1", "port": 5123}
    )
    client = create_app(conf).test_client()
    assert submit(client, host="evil.example").status_code == 303
    [link] = [u for u in _links_in_outbox(synced) if "zotero.org" not in u]
    assert link.startswith("http://127.0.0.1:5123/join/status/")


def test_feed_links_come_from_public_url(client):
    feed = client.get("/items.atom", headers={"Host": "evil.example"})
    root = ET.fromstring(feed.get_data())
    links = [link.get("href") for link in root.iter(f"{ATOM}link")]
    links += [e.text for e in root.iter(f"{ATOM}id")]
    assert len(links) > 10
    assert all(u.startswith("https://biblio.example.org/") for u in links), links[:3]
