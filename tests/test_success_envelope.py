"""Every page has a ``.json`` twin, and every JSON answer is the one success envelope.

Swept from Flask's ``url_map`` (Datasette's ``test_success_envelope.py``): a route added
tomorrow is checked by these tests without anyone listing it here. A page without a twin
must be named in :data:`PAGES_WITHOUT_TWIN` with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.routes import Site, open_site

#: ``{"ok": true, "rows": [...], "count": N, "next": url-or-null}`` (pages add keys).
ENVELOPE = ("ok", "rows", "count", "next")

#: Pages that are not a list or a record, so they have no JSON twin.
PAGES_WITHOUT_TWIN = {
    "/": "the front page: a digest of /prongs.json, /items.json and /-/sync.json",
    "/join": "a form (its result has a twin: /join/status/<token>.json)",
    "/join/zotero/callback": "the end of Sign in with Zotero: it redirects to /join",
    "/lists/new": "a form",
    "/lists/add": "a form that picks a list for an item",
    "/lists/mine": "drawn in the browser from the lists it remembers (each has /lists/<slug>.json)",
    "/lists/<slug>/delete": "a confirmation form, behind the list's secret link",
    "/lists/<slug>/edit": "a form, behind the list's secret link",
    "/-/admin/": "the owners' queue; its twin is /-/admin/requests.json",
    "/-/admin/login": "a form",
    "/-/admin/prongs": "the owners' override form",
    "/-/admin/prongs/review": "the owners' review form",
}

#: JSON with no page beside it; it answers ``ok`` but is not a list.
JSON_ONLY = {"/-/versions.json"}


@pytest.fixture(scope="module")
def site(tmp_path_factory, sample_data, synced_sample) -> Iterator[Site]:
    with open_site(tmp_path_factory.mktemp("site"), sample_data, synced_sample) as site:
        yield site


def test_every_page_has_a_json_twin(site):
    pages = [r for r in site.routes() if r.is_page]
    assert len(pages) >= 15, "the sweep sees the app's pages"
    missing = [
        r.path
        for r in pages
        if r.path not in PAGES_WITHOUT_TWIN and not site.matches(r.url(site.values) + ".json")
    ]
    assert missing == [], "pages without a .json twin (add one, or a reason above)"
    gone = set(PAGES_WITHOUT_TWIN) - {r.path for r in pages}
    assert gone == set(), "exemptions for pages that no longer exist"


def _json_urls(site: Site) -> dict[str, str]:
    """``{url: route}`` for every JSON answer: twins of pages and ``.json`` routes."""
    urls = {}
    for route in site.routes():
        if route.is_page and route.path not in PAGES_WITHOUT_TWIN:
            urls[route.url(site.values) + ".json"] = route.path + ".json"
        elif route.suffix == "json" and "GET" in route.methods:
            urls[route.url(site.values)] = route.path
    return urls


def test_every_json_answer_is_the_success_envelope(site):
    urls = _json_urls(site)
    assert len(urls) >= 12, "the sweep sees the app's JSON routes"
    problems = []
    for url, path in urls.items():
        resp = site.client_for(url).get(url)
        body = resp.get_json(silent=True)
        if resp.status_code != 200 or not resp.is_json or not isinstance(body, dict):
            problems.append((url, resp.status_code, resp.mimetype))
            continue
        if body.get("ok") is not True:
            problems.append((url, "ok is not true"))
        if path in JSON_ONLY:
            continue
        absent = [k for k in ENVELOPE if k not in body]
        if absent:
            problems.append((url, f"no {', '.join(absent)}"))
            continue
        if (
            not isinstance(body["rows"], list)
            or not isinstance(body["count"], int)
            or not (body["next"] is None or isinstance(body["next"], str))
        ):
            problems.append((url, "rows/count/next of the wrong type"))
    assert problems == [], "\n".join(map(str, problems))


def test_the_sweep_requests_real_records(site):
    """The sweep's values name things that exist, so twins answer with rows."""
    item = site.client.get(f"/items/{site.values['key']}.json").get_json()
    assert item["count"] == 1 and item["rows"][0]["key"] == site.values["key"]
    listed = site.client.get(f"/lists/{site.values['slug']}.json").get_json()
    assert [r["key"] for r in listed["rows"]] == [site.values["key"]]
    request = site.owner.get(f"/-/admin/requests/{site.values['request_id']}.json").get_json()
    assert request["rows"][0]["email"] == "sweep@example.org"
