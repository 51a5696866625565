"""Tests of the loopback Zotero API stand-in, through real HTTP.

pyzotero is pointed at the server exactly as biblio's sync points it, and raw
``http.client`` requests check what pyzotero hides (304s, headers, dropped and
truncated responses). Each test gets a fresh small library with hostile-but-legal
content, so the tests are independent and fast.
"""

from __future__ import annotations

import http.client
import json
import math
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from pyzotero import zotero
from pyzotero import zotero_errors as ze

from biblio.standin.server import StandinLibrary, StandinServer, http_date
from biblio.standin.synthetic import synthetic_library
from biblio.zotero.keys import KEY_ALPHABET
from biblio.zotero.keys import is_key as is_valid_key

GID = 4711
HUGE_NOTE = "<p>" + "ünïcødé <b>note</b> " * 40_000 + "</p>"


def sample_dict() -> dict:
    items = [
        {
            "key": "AAAA2222",
            "itemType": "journalArticle",
            "title": "Plain article",
            "creators": [{"creatorType": "author", "firstName": "Ada", "lastName": "Smith"}],
            "date": "2019-03-05",
            "tags": [{"tag": "alpha"}, {"tag": "auto", "type": 1}],
            "collections": ["CCCC2222"],
            "relations": {},
            "dateAdded": "2020-01-01T00:00:00Z",
            "dateModified": "2020-01-02T00:00:00Z",
        },
        {
            "key": "BBBB2222",
            "itemType": "book",
            "title": "<i>Hostile</i> & <script>alert(1)</script> — 日本語",
            "creators": [{"creatorType": "author", "name": "World Health Organization"}],
            "date": "Spring 2019",
            "tags": [{"tag": "alpha"}, {"tag": "beta"}],
            "collections": ["DDDD2222"],
            "dateAdded": "2020-02-01T00:00:00Z",
            "dateModified": "2020-02-02T00:00:00Z",
        },
        {
            "key": "NTEE2222",
            "itemType": "note",
            "parentItem": "AAAA2222",
            "note": HUGE_NOTE,
            "dateAdded": "2020-03-01T00:00:00Z",
            "dateModified": "2020-03-02T00:00:00Z",
        },
        {
            "key": "ATTA2222",
            "itemType": "attachment",
            "parentItem": "AAAA2222",
            "linkMode": "imported_file",
            "title": "Full Text PDF",
            "contentType": "application/pdf",
            "filename": "a.pdf",
            "dateAdded": "2020-03-03T00:00:00Z",
            "dateModified": "2020-03-04T00:00:00Z",
        },
        {
            "key": "EEEE2222",
            "itemType": "report",
            "title": "",
            "creators": [],
            "date": "2019-00-00 2019",
            "dateAdded": "2020-04-01T00:00:00Z",
            "dateModified": "2020-04-02T00:00:00Z",
        },
    ]
    return {
        "group": {
            "id": GID,
            "name": "Test group",
            "description": "<p>About <b>us</b></p>",
            "owner": 10,
            "admins": [11],
            "members": [12, 13],
            "type": "PublicClosed",
            "url": "",
            "libraryReading": "all",
            "libraryEditing": "members",
            "fileEditing": "members",
        },
        "collections": [
            {"key": "CCCC2222", "name": "Top", "parentCollection": False, "relations": {}},
            {"key": "DDDD2222", "name": "Child", "parentCollection": "CCCC2222", "relations": {}},
        ],
        "items": items,
    }


@pytest.fixture
def lib() -> StandinLibrary:
    return StandinLibrary.from_dict(sample_dict())


@pytest.fixture
def srv(lib):
    with StandinServer(lib, api_keys={"GOODKEY": {"userID": 12, "username": "mia"}}) as s:
        yield s


@pytest.fixture
def zot(srv):
    z = zotero.Zotero(GID, "group")
    z.endpoint = srv.url
    yield z
    z.client.close()


def raw(srv, path: str, headers: dict | None = None, method: str = "GET"):
    """One request on a fresh connection: (status, headers dict, body bytes)."""
    u = urlsplit(srv.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


# ------------------------------------------------------------------ library model
def test_load_assigns_versions_and_keys(lib):
    snap = lib.snapshot()
    assert snap["version"] == 1  # 7 unversioned objects fit in one batch of 50
    assert set(snap["items"].values()) == {1}
    assert len(snap["collections"]) == 2
    assert lib.items["NTEE2222"].get("collections") is None  # children carry no collections
    d = sample_dict()
    d["items"] = [dict(i, version=5 + n) for n, i in enumerate(d["items"])]
    mixed = StandinLibrary.from_dict(d)  # unversioned collections come after the maximum
    assert mixed.version == 10 and mixed.snapshot()["collections"] == {
        "CCCC2222": 10,
        "DDDD2222": 10,
    }


def test_mutations_bump_versions_like_zotero(lib):
    v0 = lib.version
    key = lib.add_item({"itemType": "book", "title": "New"})
    assert is_valid_key(key) and all(c in KEY_ALPHABET for c in key)
    assert lib.version == v0 + 1 and lib.items[key]["version"] == v0 + 1
    keys = lib.add_items([{"title": "x"}, {"title": "y"}])
    assert {lib.items[k]["version"] for k in keys} == {v0 + 2}
    before = lib.items["AAAA2222"]["dateModified"]
    assert lib.update_item("AAAA2222", title="Changed") == v0 + 3
    assert lib.items["AAAA2222"]["dateModified"] >= before
    lib.trash_item("BBBB2222")
    assert lib.items["BBBB2222"]["deleted"] == 1 and "BBBB2222" in lib.snapshot()["items"]
    lib.restore_item("BBBB2222")
    assert "deleted" not in lib.items["BBBB2222"]
    ver = lib.delete_item("AAAA2222")
    assert lib.deleted["items"] == {"AAAA2222": ver, "NTEE2222": ver, "ATTA2222": ver}
    assert "NTEE2222" not in lib.snapshot()["items"]
    ver = lib.delete_collection("CCCC2222")  # takes its subcollection with it
    assert lib.deleted["collections"] == {"CCCC2222": ver, "DDDD2222": ver}
    assert lib.items["BBBB2222"]["collections"] == [] and lib.items["BBBB2222"]["version"] == ver
    ver = lib.remove_tag("beta")
    assert lib.deleted["tags"] == {"beta": ver}
    assert lib.items["BBBB2222"]["tags"] == [{"tag": "alpha"}]
    ck = lib.add_collection("Fresh", parent=None)
    lib.trash_collection(ck)
    assert lib.collections[ck]["deleted"] is True
    with pytest.raises(KeyError):
        lib.update_item("ZZZZ9999", title="nope")


def test_group_membership_has_its_own_version(lib):
    v, gv = lib.version, lib.group_version
    assert lib.add_member(14) == gv + 1
    assert lib.add_member(14) == gv + 1  # already a member: no change
    assert lib.add_member(10) == gv + 1  # the owner is never listed
    lib.set_admin(14)
    assert 14 in lib.group["admins"] and 14 not in lib.group["members"]
    lib.remove_member(14)
    assert lib.group_version == gv + 3 and lib.version == v


def test_synthetic_is_deterministic_and_sized():
    a, b = synthetic_library(500, seed=3), synthetic_library(500, seed=3)
    assert a.snapshot() == b.snapshot() and len(a.items) == 500
    kids = [d for d in a.items.values() if d.get("parentItem")]
    assert kids and all(d["parentItem"] in a.items for d in kids)
    assert len({d["itemType"] for d in a.items.values()}) >= 6
    assert synthetic_library(500, seed=4).snapshot() != a.snapshot()


def test_file_round_trip(tmp_path, lib):
    lib.update_item("AAAA2222", title="Edited")
    lib.delete_item("EEEE2222")
    path = tmp_path / "lib.json"
    lib.save(path)
    again = StandinLibrary.from_file(path)
    assert again.snapshot() == lib.snapshot()
    assert again.deleted["items"] == lib.deleted["items"]
    assert again.group_version == lib.group_version


# ------------------------------------------------------------- reading via pyzotero
def test_everything_pages_top_items():
    big = synthetic_library(430, seed=1)
    with StandinServer(big) as s2:
        z = zotero.Zotero(1, "group")
        z.endpoint = s2.url
        try:
            top = z.everything(z.top())
            expected = [k for k, d in big.items.items() if not d.get("parentItem")]
            assert sorted(i["key"] for i in top) == sorted(expected)
            assert s2.request_count == math.ceil(len(expected) / 100)
            assert all("collections" in i["data"] for i in top)
            every = z.everything(z.items())
            assert len(every) == 430
            assert all("collections" not in i["data"] for i in every if i["data"].get("parentItem"))
        finally:
            z.client.close()


def test_items_top_children_and_objects(zot, lib):
    keys = {i["key"] for i in zot.items()}
    assert keys == set(lib.items)
    assert {i["key"] for i in zot.top()} == {"AAAA2222", "BBBB2222", "EEEE2222"}
    kids = zot.children("AAAA2222")
    assert {k["key"] for k in kids} == {"NTEE2222", "ATTA2222"}
    item = zot.item("AAAA2222")
    assert set(item) == {"key", "version", "library", "links", "meta", "data"}
    assert item["library"]["type"] == "group" and item["library"]["id"] == GID
    assert item["meta"] == {"creatorSummary": "Smith", "parsedDate": "2019-03-05", "numChildren": 2}
    assert zot.request.headers["Last-Modified-Version"] == str(item["version"])
    assert zot.item("BBBB2222")["meta"]["parsedDate"] == "2019"
    assert zot.item("EEEE2222")["meta"] == {"parsedDate": "2019", "numChildren": 0}
    assert kids[0]["links"]["up"]["href"].endswith("/items/AAAA2222")


def test_hostile_content_round_trips(zot, srv, lib):
    assert zot.item("BBBB2222")["data"]["title"] == lib.items["BBBB2222"]["title"]
    assert zot.item("NTEE2222")["data"]["note"] == HUGE_NOTE
    status, headers, body = raw(srv, f"/groups/{GID}/items/BBBB2222")
    assert headers["content-type"].startswith("application/json")
    assert "日本語".encode() in body  # real UTF-8, not \\u escapes


def test_item_key_batches_and_limit(zot, lib):
    got = zot.items(itemKey="AAAA2222,BBBB2222,NTEE2222")
    assert {i["key"] for i in got} == {"AAAA2222", "BBBB2222", "NTEE2222"}
    too_many = ",".join(["AAAA2222"] * 51)
    with pytest.raises(ze.UnsupportedParamsError):
        zot.items(itemKey=too_many)
    zot.url_params = None
    with pytest.raises(ze.UnsupportedParamsError):
        zot.items(itemKey="not-a-key")


def test_versions_since_and_trash(zot, lib):
    v0 = lib.version
    assert zot.item_versions(since=v0) == {}
    lib.update_item("AAAA2222", title="t2")
    lib.trash_item("BBBB2222")
    # a trashed item is a change, visible only with includeTrashed=1
    assert zot.item_versions(since=v0) == {"AAAA2222": v0 + 1}
    assert zot.item_versions(since=v0, includeTrashed=1) == {"AAAA2222": v0 + 1, "BBBB2222": v0 + 2}
    assert "BBBB2222" not in {i["key"] for i in zot.items()}
    assert [i["key"] for i in zot.trash()] == ["BBBB2222"]
    assert zot.item("BBBB2222")["data"]["deleted"] == 1
    assert zot.deleted(since=v0)["items"] == []
    lib.restore_item("BBBB2222")
    assert zot.trash() == []
    assert int(zot.request.headers["Last-Modified-Version"]) == v0 + 3


def test_collections_and_deleted(zot, lib):
    v0 = lib.version
    colls = {c["key"]: c for c in zot.collections()}
    assert colls["CCCC2222"]["meta"] == {"numCollections": 1, "numItems": 1}
    assert colls["DDDD2222"]["data"]["parentCollection"] == "CCCC2222"
    assert [c["key"] for c in zot.collections_top()] == ["CCCC2222"]
    assert {i["key"] for i in zot.collection_items("CCCC2222")} == {
        "AAAA2222",
        "NTEE2222",
        "ATTA2222",
    }
    assert [i["key"] for i in zot.collection_items_top("CCCC2222")] == ["AAAA2222"]
    assert zot.collection_versions(since=0) == {"CCCC2222": 1, "DDDD2222": 1}
    new = lib.add_collection("Later")
    assert zot.collection_versions(since=v0) == {new: v0 + 1}
    lib.delete_item("EEEE2222")
    lib.delete_collection(new)
    lib.remove_tag("beta")
    gone = zot.deleted(since=v0)
    assert gone == {
        "collections": [new],
        "searches": [],
        "items": ["EEEE2222"],
        "tags": ["beta"],
        "settings": [],
    }
    assert zot.deleted(since=lib.version)["items"] == []
    assert sorted(zot.tags()) == ["alpha", "auto"]


def test_group_metadata(srv, lib):
    status, headers, body = raw(srv, f"/groups/{GID}")
    group = json.loads(body)
    assert status == 200 and headers["last-modified-version"] == "1"
    assert group["id"] == GID and group["version"] == 1
    assert set(group["meta"]) == {"created", "lastModified", "numItems"}
    assert group["data"]["owner"] == 10 and group["data"]["members"] == [12, 13]
    assert group["data"]["admins"] == [11]
    lib.remove_member(11)
    lib.add_member(99)
    status, headers, body = raw(srv, f"/groups/{GID}", {"If-Modified-Since-Version": "99"})
    group = json.loads(body)
    assert status == 200  # never 304
    assert headers["last-modified-version"] == "3" and group["data"]["version"] == 3
    assert "admins" not in group["data"] and 99 in group["data"]["members"]


# ----------------------------------------------------------------------- raw HTTP
def test_link_header_and_total_results(srv):
    status, h, body = raw(srv, f"/groups/{GID}/items?limit=2&start=2&locale=en-US&format=json")
    base = f"{srv.url}/groups/{GID}/items"
    assert status == 200 and h["total-results"] == "5" and len(json.loads(body)) == 2
    assert h["link"] == (
        f'<{base}?limit=2>; rel="first", <{base}?limit=2>; rel="prev", '
        f'<{base}?limit=2&start=4>; rel="next", <{base}?limit=2&start=4>; rel="last", '
        f'<https://www.zotero.org/groups/{GID}/items>; rel="alternate"'
    )
    _, h, _ = raw(srv, f"/groups/{GID}/items/top")
    assert h["link"] == f'<https://www.zotero.org/groups/{GID}/items/top>; rel="alternate"'
    _, h, _ = raw(srv, f"/groups/{GID}/items?format=versions&includeTrashed=1&since=0")
    assert "next" not in h["link"] and h["total-results"] == "5"
    assert h["zotero-api-version"] == "3" and h["last-modified-version"] == "1"


def test_formats_limits_and_400s(srv):
    status, h, body = raw(srv, f"/groups/{GID}/items?format=keys")
    assert status == 200 and h["content-type"].startswith("text/plain")
    assert sorted(body.decode().split()) == sorted(
        ["AAAA2222", "BBBB2222", "NTEE2222", "ATTA2222", "EEEE2222"]
    )
    for bad in ("format=atomish", "since=abc", "sort=bogus", "direction=up"):
        status, h, body = raw(srv, f"/groups/{GID}/items?{bad}")
        assert status == 400 and h["content-type"].startswith("text/plain") and body
    assert raw(srv, f"/groups/{GID}/deleted")[0] == 400
    assert raw(srv, f"/groups/{GID}/items/AAAA2222?format=versions")[0] == 400
    # Zotero clamps a limit over 100 and ignores a non-numeric one
    big = synthetic_library(150, seed=2)
    with StandinServer(big) as s2:
        assert len(json.loads(raw(s2, "/groups/1/items?limit=500")[2])) == 100
        assert len(json.loads(raw(s2, "/groups/1/items?limit=abc")[2])) == 25
        assert len(json.loads(raw(s2, "/groups/1/items?format=versions")[2])) == 150


def test_404s_and_read_only(srv):
    assert raw(srv, "/groups/999/items")[0] == 404
    assert raw(srv, f"/groups/{GID}/items/ZZZZ9999")[0] == 404
    assert raw(srv, f"/groups/{GID}/collections/ZZZZ9999/items")[0] == 404
    assert raw(srv, f"/groups/{GID}/nonsense")[0] == 404
    assert raw(srv, f"/users/{GID}/items")[0] == 200  # same library under /users
    assert raw(srv, f"/groups/{GID}/items", method="POST")[0] == 405


def test_not_modified(srv, lib):
    v = str(lib.version)
    for path in ("items", "items/top", "collections", "tags"):
        status, h, body = raw(srv, f"/groups/{GID}/{path}", {"If-Modified-Since-Version": v})
        assert (status, body) == (304, b"") and "last-modified-version" not in h
    assert raw(srv, f"/groups/{GID}/deleted?since=0", {"If-Modified-Since-Version": v})[0] == 200
    lib.add_member(77)  # membership is not a library change
    assert raw(srv, f"/groups/{GID}/items", {"If-Modified-Since-Version": v})[0] == 304
    lib.update_collection("CCCC2222", name="Renamed")  # any object change is
    status, h, _ = raw(srv, f"/groups/{GID}/items", {"If-Modified-Since-Version": v})
    assert status == 200 and h["last-modified-version"] == str(lib.version)


def test_api_keys(srv):
    status, _, body = raw(srv, "/keys/current", {"Zotero-API-Key": "GOODKEY"})
    assert status == 200 and json.loads(body)["userID"] == 12
    status, _, body = raw(srv, "/keys/current", {"Authorization": "Bearer GOODKEY"})
    assert json.loads(body)["username"] == "mia"
    assert raw(srv, "/keys/current", {"Zotero-API-Key": "BAD"})[0] == 403
    assert raw(srv, "/keys/current")[0] == 403
    assert raw(srv, f"/groups/{GID}/items", {"Zotero-API-Key": "BAD"})[0] == 403


# ------------------------------------------------------------------------- faults
def test_fail_with_retry_after_then_recover(zot, srv):
    srv.fail(429, retry_after=0.05)
    assert len(zot.top()) == 3  # pyzotero waits Retry-After and retries a 429
    assert [r.status for r in srv.requests] == [429, 200]
    srv.reset_counts()
    when = datetime.now(UTC) + timedelta(seconds=30)
    srv.fail(503, retry_after=when, match="/collections")
    srv.fail(500, times=2, match="/collections")
    status, h, body = raw(srv, f"/groups/{GID}/items")
    assert status == 200  # no match
    status, h, body = raw(srv, f"/groups/{GID}/collections")
    assert (
        status == 503 and h["retry-after"] == http_date(when) and h["retry-after"].endswith("GMT")
    )
    assert [raw(srv, f"/groups/{GID}/collections")[0] for _ in range(3)] == [500, 500, 200]
    assert [r.fault for r in srv.requests] == [None, "fail", "fail", "fail", None]
    assert srv.pending_faults == 0


def test_backoff_header(zot, srv):
    srv.backoff(0.01)
    zot.top()
    assert zot.request.headers["Backoff"] == "0.01"
    assert "Backoff" not in raw(srv, f"/groups/{GID}/items")[1]


def test_drop_and_truncate(srv):
    srv.drop()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        raw(srv, f"/groups/{GID}/items")
    srv.truncate()
    with pytest.raises(http.client.IncompleteRead):
        raw(srv, f"/groups/{GID}/items/NTEE2222")
    assert raw(srv, f"/groups/{GID}/items")[0] == 200
    assert [r.fault for r in srv.requests] == ["drop", "truncate", None]


def test_drop_surfaces_in_pyzotero(zot, srv):
    srv.drop(match="/items/top")
    with pytest.raises(Exception) as err:
        zot.top()
    assert "disconnect" in str(err.value).lower() or "closed" in str(err.value).lower()
    zot.url_params = None
    assert len(zot.top()) == 3


def test_hook_changes_library_mid_sync(srv, lib):
    v0 = lib.version
    srv.hook(lambda library: library.update_item("EEEE2222", title="mid-sync"), match="start=")
    first = raw(srv, f"/groups/{GID}/items?limit=2")
    second = raw(srv, f"/groups/{GID}/items?limit=2&start=2")
    assert first[1]["last-modified-version"] == str(v0)
    assert second[1]["last-modified-version"] == str(v0 + 1)
    assert srv.requests[-1].fault == "hook"


def test_slow_and_request_records(srv):
    srv.slow(0.2)
    t = time.perf_counter()
    raw(srv, f"/groups/{GID}/items?limit=1&tag=alpha")
    assert time.perf_counter() - t >= 0.2
    rec = srv.requests[-1]
    assert (rec.method, rec.path, rec.status) == ("GET", f"/groups/{GID}/items", 200)
    assert rec.query == {"limit": "1", "tag": "alpha"} and rec.fault == "slow"
    assert srv.request_count == 1
    srv.reset_counts()
    assert srv.request_count == 0 and srv.requests == []


def test_filters(srv, lib):
    def keys(q):
        return json.loads(raw(srv, f"/groups/{GID}/items?format=versions&{q}")[2]).keys()

    assert set(keys("tag=beta")) == {"BBBB2222"}
    assert set(keys("tag=alpha&tag=-beta")) == {"AAAA2222"}
    assert set(keys("itemType=book%20||%20report")) == {"BBBB2222", "EEEE2222"}
    assert set(keys("q=smith")) == {"AAAA2222"}
    body = raw(srv, f"/groups/{GID}/items/top?sort=title&format=keys")[2]
    assert body.decode().split("\n")[:3] == ["EEEE2222", "BBBB2222", "AAAA2222"]
    body = raw(srv, f"/groups/{GID}/items/top?sort=dateAdded&direction=asc&format=keys")[2]
    assert body.decode().split() == ["AAAA2222", "BBBB2222", "EEEE2222"]


# ------------------------------------------------------------------ server process
def test_concurrent_mutation_while_paging(lib):
    big = synthetic_library(600, seed=5)
    stop = threading.Event()

    def writer():
        keys = list(big.items)
        n = 0
        while not stop.is_set():
            big.update_item(keys[n % len(keys)], extra=f"edit {n}")
            n += 1

    with StandinServer(big) as s2:
        t = threading.Thread(target=writer)
        t.start()
        z = zotero.Zotero(1, "group")
        z.endpoint = s2.url
        try:
            got = z.everything(z.items(limit=100))
            assert got and all(r.status == 200 for r in s2.requests)
        finally:
            stop.set()
            t.join()
            z.client.close()


def test_stop_closes_keepalive_connections(lib):
    before = threading.active_count()
    s = StandinServer(lib).start()
    z = zotero.Zotero(GID, "group")
    z.endpoint = s.url
    z.top()  # leaves an idle keep-alive connection open
    t = time.perf_counter()
    s.stop()
    assert time.perf_counter() - t < 2
    z.client.close()
    assert threading.active_count() <= before


def test_standalone_cli(tmp_path, lib):
    path = tmp_path / "lib.json"
    lib.save(path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "biblio.standin.server", "--library", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = line.split()[0]
        assert url.startswith("http://127.0.0.1:")

        status, _, body = raw(
            type("Server", (), {"url": url}), f"/groups/{GID}/items/top?format=keys"
        )
        assert status == 200 and len(body.split()) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_subcollections_head_and_users_path(zot, srv, lib):
    assert [c["key"] for c in zot.all_collections()] == ["CCCC2222", "DDDD2222"]
    status, h, body = raw(srv, f"/groups/{GID}/items?limit=1", method="HEAD")
    assert status == 200 and body == b"" and h["total-results"] == "5"
    assert raw(srv, "/users/10/items/top")[0] == 200  # the owner's id maps here too
    assert raw(srv, "/users/11/items/top")[0] == 404
