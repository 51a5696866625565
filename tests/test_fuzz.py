"""Hostile input never causes a 5xx: a property-based fuzz (Hypothesis) of every route.

The routes come from Flask's ``url_map`` (a route added tomorrow is fuzzed the moment it
is registered); the parameter and form-field names from the filter registry and from
the links and forms of the site's own pages, as an attacker would read them. Each
request mixes real values (an item key, a list slug, a status token, a request id)
with hostile ones: Unicode digits, signs, huge numbers, control characters and line
breaks anywhere, markup, paths. POSTs carry a valid CSRF token (mostly) and owners'
pages are asked by a logged-in owner, so the fuzz reaches the code behind the guards.
Against a synced copy of the sample library, no answer may be 500 or more.

The routes are split into shards so ``pytest -n`` spreads them; each shard writes its
request and 5xx counts to ``test-artifacts/fuzz-<shard>.json`` (``bench/load.py``
reports them). ``BIBLIO_FUZZ_EXAMPLES`` sets the examples per route and method.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from flask.testing import EnvironBuilder
from hypothesis import HealthCheck, given, reject
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from biblio.catalog.filters import FILTERS
from tests.conftest import make_settings
from tests.routes import CSRF, OWNER, PASSWORD, Route, Site

EXAMPLES = int(os.environ.get("BIBLIO_FUZZ_EXAMPLES", "25"))
SHARDS = 4
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

#: Values an attacker tries first: every kind of number that is not a plain one,
#: line breaks and control characters, markup, paths and very long text.
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "--1",
    "+1",
    "1e3",
    "1.5",
    "²",
    "⁹",
    "٣",
    "１２",
    "Ⅻ",
    "9" * 30,
    str(2**63),
    str(-(2**63) - 1),
    str(2**31),
    "max",
    "\n",
    "a\nb",
    "x\r\nSet-Cookie: a=b",
    "\x0b",
    "\x00",
    "\x1b[31m",
    "\x7f",
    "\u2028",
    "\ufeff",
    "\ufffe",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%0a",
    "../../etc/passwd",
    "//evil.example/",
    "/-/admin/\nx",
    "/-/admin/../../x",
    "https://evil.example/",
    "\\\\evil.example",
    "*",
    '"',
    "a" * 600,
    "ZZZZZZZZ",
    "apa",
    "ieee",
    "json",
    "approve",
    "decline",
    "clear",
    "add",
    "remove",
    "up",
    "down",
    "note",
    "details",
    "yes",
    "1",
    "pending",
]

#: Any text a form or URL can carry (surrogates cannot be sent as UTF-8).
TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs",)),
    max_size=40,
)


@dataclass
class Tally:
    """Requests sent and answers of 500 or more, with the first few failures."""

    requests: int = 0
    errors: int = 0
    failures: list[str] = field(default_factory=list)


@pytest.fixture
def settings(tmp_path, zotero):
    return make_settings(
        tmp_path,
        zotero,
        mail={"enabled": False},
        # Limits and lockouts would turn most requests into 429s and refusals; the
        # fuzz is about what the code behind them does with hostile input.
        join={"rate_limit": "100000 per hour", "email_rate_limit": "100000 per hour"},
        auth={"login_rate_limit": "100000 per minute", "lockout_failures": 100000},
        lists={"create_rate_limit": "100000 per hour"},
        web={"trusted_proxies": 1},
    )


@pytest.fixture
def site(app, synced) -> Site:
    return Site(app, synced)


#: One value per kind of hostile input, put in every field and variable of a route at
#: once, the first four also in each alone (the systematic half of the fuzz; Hypothesis
#: mixes them at random).
CLASSES = ["9" * 30, "--1", "²", "a\nb", "x\r\nSet-Cookie: a=b", "\x0b", "<i>x</i>", "a" * 600]


def _scrape(site: Site) -> tuple[set[str], dict[str, set[str]]]:
    """Parameter and field names as the site shows them: all of them, and per endpoint
    those its own forms and links use (from every page, public and owners')."""
    adapter = site.app.url_map.bind("localhost")
    everywhere = {f.param for f in FILTERS}
    by_endpoint: dict[str, set[str]] = {}

    def add(url: str, method: str, names: set[str]) -> None:
        everywhere.update(names)
        try:
            endpoint, _ = adapter.match(urlsplit(url).path, method=method)
        except HTTPException:
            return
        by_endpoint.setdefault(f"{method} {endpoint}", set()).update(names)

    for route in site.routes():
        if not route.is_page or route.path.startswith("/static"):
            continue
        url = route.url(site.values)
        for client in (site.client, site.owner):
            html = client.get(url).get_data(as_text=True)
            for attrs, body in re.findall(r"<form([^>]*)>(.*?)</form>", html, re.S):
                action = re.search(r'action="([^"]*)"', attrs)
                method = "POST" if re.search(r'method="post"', attrs, re.I) else "GET"
                names = set(re.findall(r'name="([^"]+)"', body)) - {"csrf_token"}
                add(action.group(1).replace("&amp;", "&") if action else url, method, names)
            for href in re.findall(r'href="([^"]*\?[^"]*)"', html):
                parts = urlsplit(href.replace("&amp;", "&"))
                names = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
                add(parts.path or url, "GET", names)
    return everywhere, by_endpoint


def _path(route: Route, values: dict[str, str]) -> str:
    """The route's path with raw ``values`` percent-encoded into its variables (so a
    newline reaches the view as a newline, as it would from any client)."""

    def one(match: re.Match[str]) -> str:
        return quote(values[match.group(1)], safe="")

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", one, route.path)


class Fuzzer:
    def __init__(self, site: Site) -> None:
        self.site = site
        names, self.by_endpoint = _scrape(site)
        self.names = sorted(names)
        self.real = sorted({str(v) for v in site.values.values()})
        self.tally = Tally()
        self.tokens: dict[int, str] = {}

    def own_names(self, route: Route, method: str) -> list[str]:
        """The names this route's own forms and links use (every name if none)."""
        return sorted(self.by_endpoint.get(f"{method} {route.rule.endpoint}") or self.names)

    def token(self, client) -> str:  # type: ignore[no-untyped-def]
        key = id(client)
        if key not in self.tokens:
            page = "/-/admin/" if client is self.site.owner else "/join"
            found = CSRF.search(client.get(page).get_data(as_text=True))
            if found is None and client is self.site.owner:
                self.login_again()
                found = CSRF.search(client.get(page).get_data(as_text=True))
            assert found, page
            self.tokens[key] = found.group(1)
        return self.tokens[key]

    def login_again(self) -> None:
        """The fuzz may log the owner out (the logout route is a route too)."""
        owner = self.site.owner
        self.tokens.pop(id(owner), None)
        found = CSRF.search(owner.get("/-/admin/login").get_data(as_text=True))
        assert found
        resp = owner.post(
            "/-/admin/login",
            data={"email": OWNER, "password": PASSWORD, "csrf_token": found.group(1)},
        )
        assert resp.status_code == 303, resp.status_code

    def send(self, route: Route, method: str, data: dict) -> int | None:  # type: ignore[type-arg]
        """Send one request; its status, or None if no client could send it."""
        owners_page = route.is_owners
        client = self.site.owner if owners_page or data["as_owner"] else self.site.client
        status = 0
        for attempt in (1, 2):
            fields = list(data["fields"])
            if method == "POST" and data["csrf"] != "none":
                token = self.token(client) if data["csrf"] == "valid" else data["bad_csrf"]
                fields.append(("csrf_token", token))
            try:  # a request the client cannot even build is no test of the server
                builder = EnvironBuilder(
                    self.site.app,
                    path=_path(route, data["path"]),
                    method=method,
                    headers=data["headers"],
                    query_string=MultiDict(data["query"]),
                    data=MultiDict(fields) if method == "POST" else None,
                )
                builder.get_environ()
            except (ValueError, TypeError, UnicodeError):
                return None
            status, to_login = self._open(client, builder)
            logged_out = owners_page and to_login and client is self.site.owner
            if not logged_out or attempt == 2:
                break
            self.login_again()
        return status

    def _open(self, client, builder: EnvironBuilder) -> tuple[int, bool]:  # type: ignore[no-untyped-def]
        """The answer's status, and whether it sends the client to the login page."""
        self.tally.requests += 1
        what = f"{builder.method} {builder.path}?{builder.query_string}"
        try:
            with client.open(builder) as resp:
                status = resp.status_code
                location = resp.headers.get("Location", "")
        except Exception:  # the app raised: a 500 for any real client
            self.tally.errors += 1
            if len(self.tally.failures) < 20:
                self.tally.failures.append(f"{what}\n{traceback.format_exc()}")
            return 500, False
        if status >= 500:
            self.tally.errors += 1
            if len(self.tally.failures) < 20:
                self.tally.failures.append(f"{what} -> {status}")
        return status, location.split("?")[0].endswith("/-/admin/login")

    def value(self) -> st.SearchStrategy[str]:
        nasty, real = st.sampled_from(NASTY), st.sampled_from(self.real)
        return st.one_of(
            nasty,
            real,
            st.builds("".join, st.lists(st.one_of(nasty, real), min_size=2, max_size=3)),
            TEXT,
        )

    def requests(self, route: Route, method: str) -> st.SearchStrategy[dict]:  # type: ignore[type-arg]
        value = self.value()
        own = self.own_names(route, method)
        name = st.one_of(
            st.sampled_from(own), st.sampled_from(own), st.sampled_from(self.names), TEXT
        )
        pairs = st.lists(st.tuples(name, value), max_size=8)
        real = {k: str(v) for k, v in self.site.values.items()}
        path = st.fixed_dictionaries(
            {arg: st.one_of(st.just(real.get(arg, "x")), value) for arg in route.rule.arguments}
        )
        headers = [
            ("Accept", "application/json"),
            ("Accept", "text/html"),
            ("Referer", "https://evil.example/"),
        ]
        if not route.is_owners:
            # (Another host gets no owner's cookie, and a changed address ends an owner's
            # session by design: neither is worth a login per request on owners' pages.)
            headers += [
                ("Host", "evil.example"),
                ("X-Forwarded-For", "203.0.113.9"),
                ("X-Forwarded-For", "not an address, \u00e9"),
                ("X-Forwarded-Proto", "gopher"),
            ]
        return st.fixed_dictionaries(
            {
                "path": path,
                "query": pairs,
                "fields": pairs if method == "POST" else st.just([]),
                "csrf": st.sampled_from(["valid", "valid", "valid", "none", "bad"]),
                "bad_csrf": value,
                "headers": st.lists(st.sampled_from(headers), max_size=3, unique_by=lambda h: h[0]),
                "as_owner": st.booleans(),
            }
        )

    def probe(self, route: Route, method: str) -> None:
        """The systematic half: each hostile class in every variable and every name of
        the route at once, then in each one alone (the real values elsewhere)."""
        real = {k: str(v) for k, v in self.site.values.items()}
        args = sorted(route.rule.arguments)
        own = self.own_names(route, method)
        for bad in CLASSES:
            cases = [({a: bad for a in args}, [(n, bad) for n in own])]
            if bad in CLASSES[:4]:  # numbers and line breaks: also one place at a time
                cases += [({**real, a: bad}, []) for a in args]
                cases += [(real, [(n, bad)]) for n in own]
            for path, pairs in cases:
                data = {
                    "path": {a: path.get(a, "x") for a in args},
                    "query": pairs,
                    "fields": pairs if method == "POST" else [],
                    "csrf": "valid",
                    "bad_csrf": "",
                    "headers": [],
                    "as_owner": True,
                }
                self.send(route, method, data)

    def fuzz(self, route: Route, method: str) -> None:
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(self.requests(route, method))
        def answers_below_500(data: dict) -> None:  # type: ignore[type-arg]
            status = self.send(route, method, data)
            if status is None:
                reject()
            assert status < 500

        # A failure is counted and described in the tally; the other routes go on.
        with contextlib.suppress(AssertionError, Flaky, ExceptionGroup):
            answers_below_500()


@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_route_answers_hostile_input_with_a_server_error(site, shard):
    """Every route and method of the app, fuzzed with hostile parameters, path values,
    form fields and headers (valid CSRF, a logged-in owner where needed): 0 answers of
    500 or more."""
    fuzzer = Fuzzer(site)
    pairs = [(route, method) for route in site.routes() for method in sorted(route.methods)]
    mine = pairs[shard::SHARDS]
    seconds = {}
    for route, method in mine:
        started = time.perf_counter()
        fuzzer.probe(route, method)
        fuzzer.fuzz(route, method)
        seconds[f"{method} {route.path}"] = round(time.perf_counter() - started, 2)
    ARTIFACTS.mkdir(exist_ok=True)
    report = {
        "seconds_per_route": seconds,
        "requests": fuzzer.tally.requests,
        "errors_5xx": fuzzer.tally.errors,
    }
    (ARTIFACTS / f"fuzz-{shard}.json").write_text(json.dumps(report, indent=1))
    assert fuzzer.tally.requests >= len(mine) * EXAMPLES
    assert fuzzer.tally.errors == 0, "\n\n".join(fuzzer.tally.failures)
