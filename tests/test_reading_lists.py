"""Reading lists through the web app: create, edit only with the secret link, CSRF on
every POST, items deleted in Zotero shown as "removed from the library" after a sync,
and exports of a list in its own order."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import rispy

from biblio import create_app
from biblio import storage as st
from biblio.catalog.items import iter_items
from biblio.sync.run import run_sync

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(client, url):
    page = client.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    return CSRF.search(page.get_data(as_text=True)).group(1)


def _create(client, title="Pay equity, a starter", intro="For the worker-equity prong."):
    token = _csrf(client, "/lists/new")
    resp = client.post("/lists/new", data={"csrf_token": token, "title": title, "intro": intro})
    assert resp.status_code == 303
    parts = urlsplit(resp.headers["Location"])
    slug = parts.path.split("/")[2]
    return slug, parse_qs(parts.query)["token"][0]


def _post(client, slug, edit_token, **form):
    csrf = _csrf(client, f"/lists/{slug}/edit?token={edit_token}")
    return client.post(
        f"/lists/{slug}/edit", data={"csrf_token": csrf, "token": edit_token, **form}
    )


@pytest.fixture
def keys(synced):
    return [r["key"] for r in iter_items(synced)][:4]


def test_create_add_reorder_note_and_view(client, keys):
    slug, edit_token = _create(client)
    page = client.get(f"/lists/{slug}/edit?token={edit_token}&new=1").get_data(as_text=True)
    assert "Secret edit link" in page and edit_token in page
    resp = _post(
        client,
        slug,
        edit_token,
        action="add",
        keys=" ".join(f"https://example.org/items/{k}" for k in keys[:3]),
    )
    assert resp.status_code == 303
    _post(client, slug, edit_token, action="up", key=keys[2])
    _post(
        client, slug, edit_token, action="note", key=keys[0], note="Read this first <b>really</b>"
    )
    data = client.get(f"/lists/{slug}.json").get_json()
    assert data["ok"] and data["count"] == 3
    assert [r["key"] for r in data["rows"]] == [keys[0], keys[2], keys[1]]
    assert data["rows"][0]["note"] == "Read this first <b>really</b>"
    view = client.application.test_client().get(f"/lists/{slug}")  # an anonymous reader
    html = view.get_data(as_text=True)
    assert view.status_code == 200 and "Pay equity, a starter" in html
    assert "Read this first &lt;b&gt;really&lt;/b&gt;" in html
    assert edit_token not in html  # the public page never shows the secret
    assert "Set-Cookie" not in view.headers  # public pages never touch the session
    _post(client, slug, edit_token, action="remove", key=keys[2])
    assert [r["key"] for r in client.get(f"/lists/{slug}.json").get_json()["rows"]] == [
        keys[0],
        keys[1],
    ]


def test_editing_needs_the_secret_link(client, keys, synced):
    slug, edit_token = _create(client)
    assert client.get(f"/lists/{slug}/edit").status_code == 403
    assert client.get(f"/lists/{slug}/edit?token=wrong").status_code == 403
    csrf = _csrf(client, "/lists/new")
    resp = client.post(
        f"/lists/{slug}/edit",
        data={"csrf_token": csrf, "token": "wrong", "action": "add", "keys": keys[0]},
    )
    assert resp.status_code == 403
    assert client.get(f"/lists/{slug}.json").get_json()["count"] == 0
    with st.connect(synced) as conn:
        stored = conn.execute(st.reading_lists.select()).mappings().one()
    assert edit_token not in stored["edit_token_hash"] and len(stored["edit_token_hash"]) == 64


def test_csrf_is_enforced(client, keys):
    slug, edit_token = _create(client)
    resp = client.post(
        f"/lists/{slug}/edit", data={"token": edit_token, "action": "add", "keys": keys[0]}
    )
    assert resp.status_code == 400
    assert client.post("/lists/new", data={"title": "x"}).status_code == 400
    assert client.get(f"/lists/{slug}.json").get_json()["count"] == 0


def test_unknown_keys_are_refused_with_a_message(client, keys):
    slug, edit_token = _create(client)
    resp = _post(client, slug, edit_token, action="add", keys="ZZZZZZZZ")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "no item with key ZZZZZZZZ" in page


def test_item_deleted_in_zotero_shows_as_removed(client, keys, library, settings, synced):
    slug, edit_token = _create(client)
    _post(client, slug, edit_token, action="add", keys=" ".join(keys[:3]))
    title = next(r["data"]["title"] for r in iter_items(synced) if r["key"] == keys[1])
    library.delete_item(keys[1])
    run_sync(synced, settings)
    data = client.get(f"/lists/{slug}.json").get_json()
    assert [r["removed"] for r in data["rows"]] == [False, True, False]
    html = client.get(f"/lists/{slug}").get_data(as_text=True)
    assert "removed from the library" in html
    assert title[:30].replace("&", "&amp;").replace("'", "&#39;").replace('"', "&#34;") in html
    ris = rispy.loads(client.get(f"/lists/{slug}.ris").get_data(as_text=True))
    assert [r["id"] for r in ris] == [keys[0], keys[2]]
    text = client.get(f"/lists/{slug}.txt").get_data(as_text=True)
    assert "Removed from the library" in text


def test_list_exports_keep_the_list_order(client, keys):
    slug, edit_token = _create(client, title="Órden: <list> & more")
    _post(client, slug, edit_token, action="add", keys=" ".join(reversed(keys)))
    ris = rispy.loads(client.get(f"/lists/{slug}.ris").get_data(as_text=True))
    assert [r["id"] for r in ris] == list(reversed(keys))
    resp = client.get(f"/lists/{slug}.docx?_style=chicago-author-date")
    assert resp.status_code == 200
    name = re.search(r'filename="([^"]+)"', resp.headers["Content-Disposition"]).group(1)
    assert re.fullmatch(
        r"biblio-list-orden-list-more-chicago-author-date-\d{4}-\d\d-\d\d\.docx", name
    )
    html = client.get(f"/lists/{slug}?_dl=1").get_data(as_text=True)
    assert "&lt;list&gt; &amp; more" in html and "<list>" not in html
    bad = client.get(f"/lists/{slug}.txt?_style=nope", headers={"Accept": "application/json"})
    assert bad.status_code == 400 and "unknown style 'nope'" in bad.get_json()["error"]


def test_list_creation_is_rate_limited(tmp_path, zotero, synced, settings):
    from tests.conftest import make_settings

    limited = make_settings(tmp_path, zotero, lists={"create_rate_limit": "2 per hour"})
    app = create_app(limited)
    app.config.update(TESTING=True)
    client = app.test_client()
    _create(client)
    _create(client)
    csrf = _csrf(client, "/lists/new")
    resp = client.post("/lists/new", data={"csrf_token": csrf, "title": "third"})
    assert resp.status_code == 429
