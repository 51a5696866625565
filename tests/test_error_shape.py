"""Every 4xx answer has one shape: ``{"ok": false, "error": str, "status": N}`` with the
matching HTTP status for JSON, biblio's error page (status in the title, the message in
an alert) for HTML.

Swept from Flask's ``url_map`` (Datasette's ``test_error_shape.py``): every route is
asked for something it cannot have (an unknown key, list, token or request), given bad
parameters, and called with a method it does not take; unknown routes too. A route
added tomorrow is swept the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.routes import BAD_FILTERS, BAD_PARAMETERS, NOTHING, UNKNOWN, Site, open_site

ERROR_PAGE = re.compile(r"<title>(\d{3}) · .*?</title>.*<p class=\"error\" role=\"alert\">", re.S)


@pytest.fixture(scope="module")
def site(tmp_path_factory, sample_data, synced_sample) -> Iterator[Site]:
    with open_site(tmp_path_factory.mktemp("site"), sample_data, synced_sample) as site:
        yield site


def shape_problem(resp, wants_json: bool) -> str | None:
    """What is wrong with a 4xx answer's shape, or None."""
    if wants_json:
        body = resp.get_json(silent=True)
        if not resp.is_json or not isinstance(body, dict):
            return f"not JSON ({resp.mimetype})"
        if (
            set(body) != {"ok", "error", "status"}
            or body["ok"] is not False
            or not isinstance(body["error"], str)
            or not body["error"].strip()
        ):
            return f"not the error shape: {sorted(body)}"
        if body["status"] != resp.status_code:
            return f"status {body['status']} in a {resp.status_code} answer"
        return None
    page = ERROR_PAGE.search(resp.get_data(as_text=True))
    if resp.mimetype != "text/html" or page is None:
        return f"not the error page ({resp.mimetype})"
    if int(page.group(1)) != resp.status_code:
        return f"page says {page.group(1)} in a {resp.status_code} answer"
    return None


def sweep(site: Site, requests) -> tuple[list, int]:
    """Send ``(method, url, expected status)``: the problems (the first of each kind per
    route) and how many answers were 4xx."""
    problems, errors, seen = [], 0, set()
    for method, url, expected in requests:
        path = url.split("?")[0]
        # Closed at once: an export streams, and is not read here.
        with site.client_for(url).open(url, method=method) as resp:
            if expected is not None and resp.status_code != expected or resp.status_code >= 500:
                problem = f"{resp.status_code}, expected {expected or 'no server error'}"
            elif 400 <= resp.status_code < 500:
                errors += 1
                problem = shape_problem(resp, wants_json=path.endswith(".json"))
            else:
                problem = None
        if problem and (path, problem) not in seen:
            seen.add((path, problem))
            problems.append((method, url, resp.status_code, problem))
    return problems, errors


def test_unknown_records_are_404_in_the_error_shape(site):
    """Every route naming an item, list, token or request answers 404 for one that is
    not there: the page, its twin and its formats."""
    named = [
        r
        for r in site.routes()
        if r.rule.arguments and "GET" in r.methods and r.rule.endpoint != "static"
    ]
    requests = []
    for route in named:
        values = {**UNKNOWN, "suffix": "json"}
        requests.append(("GET", route.url(values), 404))
        if route.is_page and site.matches(route.url(values) + ".json"):
            requests.append(("GET", route.url(values) + ".json", 404))
    problems, errors = sweep(site, requests)
    assert problems == [], "\n".join(map(str, problems))
    assert errors >= 10, "the sweep reached the routes that name records"


@pytest.mark.parametrize("query", BAD_PARAMETERS)
def test_bad_parameters_are_400_in_the_error_shape(site, query):
    """Every GET route given a bad parameter either ignores it or answers a 4xx in the
    error shape, never a 5xx; the item list, its twin and its formats refuse bad filters."""
    requests = []
    for route in site.routes():
        if "GET" not in route.methods or route.rule.endpoint == "static":
            continue
        url = route.url({**site.values, "suffix": "json"})
        filtered = route.path == "/items" or route.path.startswith("/items.")
        expected = 400 if filtered and query in BAD_FILTERS else None
        # beside a filter that matches nothing, so a route that ignores the bad
        # parameter answers at once instead of rendering the whole library
        requests.append(("GET", f"{url}?{site.secret}&{NOTHING}&{query}", expected))
    problems, errors = sweep(site, requests)
    assert problems == [], "\n".join(map(str, problems))
    if query in BAD_FILTERS:
        assert errors >= 10, "the item list and its formats refused the filter"


def test_every_route_as_it_is_answers_or_errs_in_the_error_shape(site):
    """Every GET route, called with real values but no secret link (and a filter that
    matches nothing, so exports answer at once), answers, redirects, or errs in the
    error shape."""
    requests = [
        ("GET", route.url({**site.values, "suffix": "json"}) + f"?{NOTHING}", None)
        for route in site.routes()
        if "GET" in route.methods and route.rule.endpoint != "static"
    ]
    problems, errors = sweep(site, requests)
    assert problems == [], "\n".join(map(str, problems))
    assert len(requests) >= 40


def test_unknown_routes_are_404_in_the_error_shape(site):
    requests = [
        ("GET", url, 404)
        for url in (
            "/no-such-page",
            "/no-such-page.json",
            "/items/ZZZZZZZZ/nope",
            "/items/ZZZZZZZZ/nope.json",
            "/-/no-such-page",
            "/-/no-such-page.json",
            "/lists/",
            "/-/admin/no-such-page",
            "/-/admin/no-such-page.json",
            f"/items/{site.values['key']}.nope",
        )
    ]
    problems, errors = sweep(site, requests)
    assert problems == [], "\n".join(map(str, problems))
    assert errors == len(requests)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
def test_wrong_methods_are_405_in_the_error_shape(site, method):
    """Every route answers a method it does not take with 405, for JSON in the JSON
    shape and for a page on the error page."""
    requests = []
    for route in site.routes():
        if route.rule.endpoint == "static":
            continue
        url = route.url({**site.values, "suffix": "json"})
        if method not in route.methods and not site.matches(url, method):
            requests.append((method, url, 405))
    problems, errors = sweep(site, requests)
    assert problems == [], "\n".join(map(str, problems))
    assert errors == len(requests) >= 3, "routes that do not take the method were swept"
