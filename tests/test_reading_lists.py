"""Reading lists through the web app: create, edit only with the secret link, CSRF on
every POST, items deleted in Zotero shown as "removed from the library" after a sync,
exports of a list in its own order with its notes; forgiving paste, notes that survive
every button, one-click adds by edit token, the list picker, and deletion."""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import bibtexparser
import docx
import pandas as pd
import pytest
import rispy
from bibtexparser.bparser import BibTexParser

from biblio import audit, create_app
from biblio import reading_lists as rl
from biblio import storage as st
from biblio.catalog.items import iter_items
from biblio.sync.run import run_sync
from biblio.zotero.keys import keys_in_text

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


# -- forgiving paste ------------------------------------------------------------------


def test_keys_are_read_in_any_case_and_from_zotero_and_site_links():
    text = (
        "abcd2345, https://www.zotero.org/groups/2345/tel/items/EFGH6789/library\n"
        "(https://biblio.example/items/JKLM2345.json); zotero://select/groups/1/items/npqr6789 "
        "https://www.zotero.org/groups/9/items/itemKey/STUV2345 ABCD2345 and 0OOO1111 ??"
    )
    keys, unread = rl.parse_keys(text)
    assert keys == ["ABCD2345", "EFGH6789", "JKLM2345", "NPQR6789", "STUV2345"]
    assert unread == ["and", "0OOO1111"]  # a repeat is dropped; bare punctuation ignored
    assert keys_in_text(text) == keys  # the one definition
    assert rl.parse_keys("x " * 500)[1] == ["x"]  # listed once, not 500 times


def test_one_bad_key_adds_the_rest_keeps_the_box_and_lists_what_was_not_understood(client, keys):
    slug, edit_token = _create(client)
    zotero_link = f"https://www.zotero.org/groups/1/x/items/{keys[1]}/library"
    pasted = f"{keys[0].lower()}\n{zotero_link} ZZZZZZZZ nonsense"
    resp = _post(client, slug, edit_token, action="add", keys=pasted)
    assert resp.status_code == 303 and resp.headers["Location"].endswith("#add-heading")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert [r["key"] for r in client.get(f"/lists/{slug}.json").get_json()["rows"]] == keys[:2]
    assert "Added 2 items." in page
    assert "no item with key ZZZZZZZZ in the library" in page
    assert "not a key or an item link: &#39;nonsense&#39;" in page
    box = re.search(r'<textarea id="keys"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert box.split() == ["ZZZZZZZZ", "nonsense"]  # kept, to fix; the good ones are not
    again = client.get(f"/lists/{slug}/edit?token={edit_token}").get_data(as_text=True)
    assert re.search(r'<textarea id="keys"[^>]*></textarea>', again)  # shown once
    resp = _post(client, slug, edit_token, action="add", keys=keys[0])
    assert "Already in the list" in client.get(resp.headers["Location"]).get_data(as_text=True)


# -- notes survive every button ------------------------------------------------------------


def test_notes_typed_anywhere_are_saved_by_whichever_button_is_pressed(client, keys):
    slug, edit_token = _create(client)
    _post(client, slug, edit_token, action="add", keys=" ".join(keys[:3]))
    edit = f"/lists/{slug}/edit?token={edit_token}"
    form = {
        "csrf_token": _csrf(client, edit),
        "token": edit_token,
        "title": "Pay equity, a starter",
        "title_was": "Pay equity, a starter",
        "intro": "For the worker-equity prong.",
        "intro_was": "For the worker-equity prong.",
        **{f"note_was:{k}": "" for k in keys[:3]},
        f"note:{keys[0]}": "Read first.",
        f"note:{keys[1]}": "Skim the tables.",
        f"note:{keys[2]}": "",
    }
    resp = client.post(f"/lists/{slug}/edit", data={**form, "action": f"up:{keys[2]}"})
    assert resp.headers["Location"].endswith(f"#item-{keys[2]}")
    rows = client.get(f"/lists/{slug}.json").get_json()["rows"]
    assert [(r["key"], r["note"]) for r in rows] == [
        (keys[0], "Read first."),
        (keys[2], ""),
        (keys[1], "Skim the tables."),
    ]
    # Another item removed: the note typed beside it is saved too.
    form.update({f"note:{keys[2]}": "Added later.", f"note_was:{keys[0]}": "Read first."})
    client.post(f"/lists/{slug}/edit", data={**form, "action": f"remove:{keys[1]}"})
    rows = client.get(f"/lists/{slug}.json").get_json()["rows"]
    assert [(r["key"], r["note"]) for r in rows] == [
        (keys[0], "Read first."),
        (keys[2], "Added later."),
    ]


def test_a_stale_page_never_overwrites_a_co_editors_newer_note(client, keys):
    slug, edit_token = _create(client)
    _post(client, slug, edit_token, action="add", keys=keys[0])
    _post(client, slug, edit_token, action="note", key=keys[0], note="The co-editor's note.")
    # A page opened before that note was written still shows the old (empty) one:
    _post(
        client,
        slug,
        edit_token,
        action="save",
        **{f"note:{keys[0]}": "", f"note_was:{keys[0]}": ""},
    )
    assert (
        client.get(f"/lists/{slug}.json").get_json()["rows"][0]["note"] == "The co-editor's note."
    )


def test_the_empty_list_says_so_and_the_ends_of_the_list_have_disabled_buttons(client, keys):
    slug, edit_token = _create(client)
    edit = client.get(f"/lists/{slug}/edit?token={edit_token}").get_data(as_text=True)
    assert "This list has no items yet." in edit and "Add to reading list" in edit
    assert "This reading list has no items yet." in client.get(f"/lists/{slug}").get_data(
        as_text=True
    )
    _post(client, slug, edit_token, action="add", keys=" ".join(keys[:2]))
    edit = client.get(f"/lists/{slug}/edit?token={edit_token}").get_data(as_text=True)
    disabled = re.findall(r'value="(up|down):(\w+)"[^>]*?\s+disabled>', edit)
    assert disabled == [("up", keys[0]), ("down", keys[1])]


# -- one-click adds (JSON), the picker, deletion ----------------------------------------------


def test_adding_by_json_needs_the_edit_token_and_no_cookie(app, keys):
    client = app.test_client()
    slug, edit_token = _create(client)
    anonymous = app.test_client()  # no session, no CSRF token: the edit token is the key
    url = f"/lists/{slug}/items.json"
    resp = anonymous.post(url, json={"token": edit_token, "keys": [keys[0], "ZZZZZZZZ", "junk"]})
    body = resp.get_json()
    assert resp.status_code == 200 and body["ok"] and body["count"] == 1
    assert body["added"] == [keys[0]] and body["missing"] == ["ZZZZZZZZ"]
    assert body["unread"] == ["junk"] and body["title"] == "Pay equity, a starter"
    assert "Set-Cookie" not in resp.headers
    again = anonymous.post(url, json={"token": edit_token, "keys": [keys[0].lower()]}).get_json()
    assert again["added"] == [] and again["present"] == [keys[0]] and again["count"] == 1
    refused = anonymous.post(url, json={"token": "wrong", "keys": [keys[1]]})
    assert refused.status_code == 403 and refused.get_json()["ok"] is False
    bad = anonymous.post(url, data="keys=x", content_type="application/x-www-form-urlencoded")
    assert bad.status_code == 400 and "send JSON" in bad.get_json()["error"]
    gone = anonymous.post("/lists/nope/items.json", json={"token": edit_token, "keys": []})
    assert gone.status_code == 404
    assert [r["key"] for r in client.get(f"/lists/{slug}.json").get_json()["rows"]] == [keys[0]]


def test_the_picker_starts_a_list_with_the_item_or_adds_to_a_pasted_one(client, keys, synced):
    page = client.get(f"/lists/add?key={keys[0]}").get_data(as_text=True)
    label = rl.item_labels(synced, [keys[0]])[keys[0]]
    assert html.escape(label, quote=False) in page.replace("&#39;", "'").replace("&#34;", '"')
    csrf = CSRF.search(page).group(1)
    resp = client.post(
        "/lists/add", data={"csrf_token": csrf, "key": keys[0], "action": "new", "title": "Mine"}
    )
    assert resp.status_code == 303 and "new=1" in resp.headers["Location"]
    parts = urlsplit(resp.headers["Location"])
    slug, edit_token = parts.path.split("/")[2], parse_qs(parts.query)["token"][0]
    edit_link = f"https://biblio.example/lists/{slug}/edit?token={edit_token}"
    resp = client.post(
        "/lists/add",
        data={"csrf_token": csrf, "key": [keys[1], keys[2]], "edit_link": ["", edit_link]},
    )
    assert resp.status_code == 303 and "Added 2 items" in client.get(
        resp.headers["Location"]
    ).get_data(as_text=True)
    rows = client.get(f"/lists/{slug}.json").get_json()["rows"]
    assert [r["key"] for r in rows] == keys[:3]
    wrong = client.post(
        "/lists/add",
        data={
            "csrf_token": csrf,
            "key": keys[3],
            "edit_link": edit_link.replace(edit_token, "x" * 20),
        },
    )
    assert wrong.status_code == 400 and "does not open a list" in wrong.get_data(as_text=True)
    assert client.get("/lists/add?key=ZZZZZZZZ").status_code == 404
    assert client.get("/lists/add").status_code == 400
    assert client.get("/lists/add?key=<script>").status_code == 400


def test_a_list_is_deleted_by_its_edit_link_after_confirmation(client, keys, synced):
    slug, edit_token = _create(client)
    _post(client, slug, edit_token, action="add", keys=keys[0])
    confirm = client.get(f"/lists/{slug}/delete?token={edit_token}")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.get_data(as_text=True)
    assert client.get(f"/lists/{slug}/delete?token=wrong").status_code == 403
    csrf = CSRF.search(confirm.get_data(as_text=True)).group(1)
    assert client.post(f"/lists/{slug}/delete", data={"token": edit_token}).status_code == 400
    resp = client.post(f"/lists/{slug}/delete", data={"csrf_token": csrf, "token": edit_token})
    assert resp.status_code == 303 and resp.headers["Location"] == "/lists/mine"
    assert "deleted" in client.get("/lists/mine").get_data(as_text=True)
    assert client.get(f"/lists/{slug}").status_code == 404
    assert client.get(f"/lists/{slug}/edit?token={edit_token}").status_code == 404
    with st.connect(synced) as conn:
        assert conn.execute(st.reading_list_items.select()).all() == []
    assert audit.entries(synced, action="list.delete") == []  # a member's own list


def test_an_owner_deleting_a_list_is_audited(app, keys, synced):
    from biblio.membership import owners

    slug, edit_token = _create(app.test_client())
    owners.create_owner(synced, "owner@example.org", "a long owner passphrase")
    owner = app.test_client()
    owner.post(
        "/-/admin/login",
        data={
            "csrf_token": _csrf(owner, "/-/admin/login"),
            "email": "owner@example.org",
            "password": "a long owner passphrase",
        },
    )
    csrf = _csrf(owner, f"/lists/{slug}/delete")  # an owner needs no edit link
    assert owner.post(f"/lists/{slug}/delete", data={"csrf_token": csrf}).status_code == 303
    [entry] = audit.entries(synced, action="list.delete")
    assert entry["actor"] == "owner@example.org" and entry["subject"] == f"list:{slug}"
    assert entry["old"] == "Pay equity, a starter"


# -- notes in every export; DOCX properties --------------------------------------------------


def test_list_notes_reach_every_export_and_docx_names_title_author_and_today(client, keys):
    slug, edit_token = _create(client, title="Notes travel")
    _post(client, slug, edit_token, action="add", keys=" ".join(keys[:2]))
    note = "Read pp. 3–9 {first} & discuss 50% of it"
    _post(client, slug, edit_token, action="note", key=keys[1], note=note)

    parser = BibTexParser(common_strings=True)
    bib = bibtexparser.loads(client.get(f"/lists/{slug}.bib").get_data(as_text=True), parser)
    annotes = [e.get("annote") for e in bib.entries]
    assert annotes[0] is None and annotes[1] == r"Read pp. 3–9 \{first\} \& discuss 50\% of it"

    records = rispy.loads(client.get(f"/lists/{slug}.ris").get_data(as_text=True))
    assert note not in str(records[0]) and note in records[1]["notes"]

    table = pd.read_csv(io.StringIO(client.get(f"/lists/{slug}.csv").get_data(as_text=True)))
    assert list(table["key"]) == keys[:2] and table["list_note"].fillna("").tolist() == ["", note]
    sheet = pd.read_excel(io.BytesIO(client.get(f"/lists/{slug}.xlsx").get_data()))
    assert sheet["list_note"].fillna("").tolist() == ["", note]
    assert "list_note" not in client.get("/items.csv?_size=1").get_data(as_text=True)

    for suffix in ("txt", "rtf"):
        assert "Read pp. 3" in client.get(f"/lists/{slug}.{suffix}").get_data(as_text=True)
    page = client.get(f"/lists/{slug}?_dl=1").get_data(as_text=True)
    assert html.escape(note, quote=False) in page

    document = docx.Document(io.BytesIO(client.get(f"/lists/{slug}.docx").get_data()))
    assert note in [p.text for p in document.paragraphs]
    props = document.core_properties
    assert props.title == "Notes travel"
    assert props.author == "ACRL Training & Equity in Library Work (sample)"  # the group's name
    assert props.author and props.author != "python-docx" and "python-docx" not in props.comments
    assert props.author == props.last_modified_by
    assert props.created.date() == datetime.now(UTC).date() == props.modified.date()
