"""Every route of the app, read from Flask's ``url_map``, with concrete URLs to request:
the sweeps in ``test_success_envelope.py`` and ``test_error_shape.py`` use it, so a new
route is checked the moment it is registered, with nobody adding it to a list.

:class:`Site` is a synced app holding one of everything a route can name (an item, a
reading list, a join request, an owner), a public client and a signed-in owner's client.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Rule

from biblio import create_app, storage
from biblio.catalog.items import iter_items
from biblio.membership import owners
from biblio.standin.library import StandinLibrary
from biblio.standin.server import StandinServer
from tests.conftest import make_settings

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
OWNER, PASSWORD = "owner@example.org", "a long owner passphrase"

#: Values for a route's variables that name nothing (each route must answer 404).
UNKNOWN = {
    "key": "ZZZZZZZZ",
    "slug": "no-such-list",
    "token": "no-such-token",
    "request_id": 999999,
}

#: A valid filter that matches no item.
NOTHING = "tag=no-such-tag-anywhere"
#: Filters that ``/items``, its twin and every format of it refuse with a 400.
BAD_FILTERS = ["year=abc", "decade=1995", "prong=no-such-prong"]
#: Bad parameters: a route that reads one refuses it; others may ignore it.
BAD_PARAMETERS = [
    *BAD_FILTERS,
    "_size=0",
    "_sort=colour",
    "_next=garbage!!",
    "_style=no-such-style",
    "_facet_size=abc",
    "status=nonsense",
]


def csrf(client: FlaskClient, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    found = CSRF.search(page.get_data(as_text=True))
    assert found, url
    return found.group(1)


@dataclass
class Route:
    rule: Rule

    @property
    def path(self) -> str:
        return self.rule.rule

    @property
    def methods(self) -> set[str]:
        return set(self.rule.methods or ()) - {"HEAD", "OPTIONS"}

    @property
    def suffix(self) -> str | None:
        """``json``, ``bib``, ... for ``/items.bib``; ``<suffix>`` for a variable one."""
        last = self.path.rsplit("/", 1)[-1]
        return last.rsplit(".", 1)[1] if "." in last else None

    @property
    def is_owners(self) -> bool:
        return self.path.startswith("/-/admin/")

    @property
    def is_page(self) -> bool:
        """An HTML page one can GET (not a format of one, not a static file)."""
        return "GET" in self.methods and self.suffix is None and self.rule.endpoint != "static"

    def url(self, values: dict[str, object]) -> str:
        """The path with ``values`` for its variables (unknown variables are an error)."""
        missing = self.rule.arguments - set(values)
        assert not missing, f"{self.path}: no sweep value for {sorted(missing)}; add one"
        return self.rule.build({k: values[k] for k in self.rule.arguments}, append_unknown=False)[1]


class Site:
    """A synced app with one item, reading list, join request and owner to name."""

    def __init__(self, app: Flask, engine) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.client = app.test_client()
        owners.create_owner(engine, OWNER, PASSWORD)
        self.owner = app.test_client()
        signed_in = self.owner.post(
            "/-/admin/login",
            data={
                "email": OWNER,
                "password": PASSWORD,
                "csrf_token": csrf(self.owner, "/-/admin/login"),
            },
        )
        assert signed_in.status_code == 303, signed_in.get_data(as_text=True)[:300]
        key = next(iter_items(engine))["key"]
        self.values: dict[str, object] = {
            "key": key,
            **self._join_request(),
            "slug": self._reading_list(key),
        }
        #: The list's secret edit link travels as ``?token=``; routes without one ignore it.
        self.secret = f"token={self.edit_token}"

    def _join_request(self) -> dict[str, object]:
        resp = self.client.post(
            "/join",
            data={
                "csrf_token": csrf(self.client, "/join"),
                "name": "Sweep",
                "consent": "yes",
                "email": "sweep@example.org",
                "zotero_user_id": "8999999",
                "reason": "Checking every route.",
                "prongs": ["pathways"],
            },
        )
        assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
        token = urlsplit(resp.headers["Location"]).path.rsplit("/", 1)[-1]
        queue = self.owner.get("/-/admin/requests.json").get_json()
        return {"token": token, "request_id": queue["rows"][0]["id"]}

    def _reading_list(self, key: str) -> str:
        resp = self.client.post(
            "/lists/new",
            data={"csrf_token": csrf(self.client, "/lists/new"), "title": "Sweep", "intro": ""},
        )
        assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
        parts = urlsplit(resp.headers["Location"])
        slug, edit_token = parts.path.split("/")[2], parse_qs(parts.query)["token"][0]
        self.edit_token = edit_token
        edit = f"/lists/{slug}/edit?token={edit_token}"
        added = self.client.post(
            f"/lists/{slug}/edit",
            data={
                "csrf_token": csrf(self.client, edit),
                "token": edit_token,
                "action": "add",
                "keys": key,
            },
        )
        assert added.status_code == 303, added.get_data(as_text=True)[:300]
        return slug

    def routes(self) -> Iterator[Route]:
        for rule in sorted(self.app.url_map.iter_rules(), key=lambda r: r.rule):
            yield Route(rule)

    def client_for(self, path: str) -> FlaskClient:
        """The owner's client for owners' pages (the guard answers 303 otherwise)."""
        return self.owner if path.startswith("/-/admin/") else self.client

    def matches(self, path: str, method: str = "GET") -> bool:
        """Whether some route answers ``method`` on ``path``."""
        adapter = self.app.url_map.bind("localhost")
        try:
            adapter.match(path, method=method)
        except (NotFound, MethodNotAllowed):
            return False
        return True


@contextmanager
def open_site(folder: Path, sample_data: dict, synced_sample) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    """A :class:`Site` on a copy of the synced sample in ``folder`` (mail off), for a
    module of sweeps that only read it (wrong methods and bad input change nothing)."""
    library = StandinLibrary.from_dict(copy.deepcopy(sample_data), copy=False)
    with StandinServer(library) as zotero:
        settings = make_settings(folder, zotero, mail={"enabled": False})
        assert synced_sample.copy_to(settings, library)
        engine = storage.open_database(settings["database"]["url"])
        try:
            yield Site(create_app(settings), engine)
        finally:
            storage.dispose_all()
