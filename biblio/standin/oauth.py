"""Zotero's OAuth 1.0a endpoints in the stand-in, so "Sign in with Zotero" is tested whole.

zotero.org hands out API keys, or with ``identity=1`` only a user's identity, through
three endpoints: ``POST /oauth/request`` (a temporary token for a registered client),
``/oauth/authorize`` (a page where the signed-in user allows it; it redirects to the
client's callback with a verifier) and ``POST /oauth/access`` (the token and verifier
exchanged for credentials; the answer also carries ``userID`` and ``username``). This
module plays that part with oauthlib's own server endpoints, so signatures, nonces,
timestamps, verifiers and single use are checked as a real provider checks them. The
stand-in has no accounts: its authorize page asks for the Zotero user ID and username
to sign in as, which is the one step a test (or the demo) fills in. Clients are
registered with :meth:`OAuthProvider.register`.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from oauthlib.oauth1 import (
    AccessTokenEndpoint,
    AuthorizationEndpoint,
    RequestTokenEndpoint,
    RequestValidator,
)
from oauthlib.oauth1.rfc5849 import errors
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

from biblio.standin.api import Response

#: How long a nonce is remembered (and how far a timestamp may stray), in seconds.
NONCE_WINDOW = 600


class _Validator(RequestValidator):  # type: ignore[misc]
    """oauthlib's questions, answered from the provider's memory."""

    enforce_ssl = False  # loopback HTTP
    client_key_length = request_token_length = access_token_length = (8, 64)
    verifier_length = nonce_length = (8, 64)
    realms: list[str] = []

    def __init__(self, provider: OAuthProvider) -> None:
        super().__init__()
        self.p = provider

    @property
    def dummy_client(self) -> str:
        return "dummyclientkey0000"

    @property
    def dummy_request_token(self) -> str:
        return "dummyrequesttoken0000"

    def get_client_secret(self, client_key: str, request: Any) -> str:
        return self.p.clients.get(client_key, "dummy-secret")

    def validate_client_key(self, client_key: str, request: Any) -> bool:
        return client_key in self.p.clients

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request, **kw):  # type: ignore[no-untyped-def]
        seen = (client_key, nonce, kw.get("request_token"), kw.get("access_token"))
        with self.p.lock:
            if abs(time.time() - int(timestamp)) > NONCE_WINDOW or seen in self.p.nonces:
                return False
            self.p.nonces.add(seen)
        return True

    def get_default_realms(self, client_key: str, request: Any) -> list[str]:
        return []

    def validate_requested_realms(self, client_key: str, realms: Any, request: Any) -> bool:
        return True

    def validate_redirect_uri(self, client_key: str, redirect_uri: str, request: Any) -> bool:
        return redirect_uri.startswith(("http://", "https://"))

    def save_request_token(self, token: dict[str, Any], request: Any) -> None:
        with self.p.lock:
            self.p.pending[token["oauth_token"]] = {
                "client": request.client_key,
                "secret": token["oauth_token_secret"],
                "callback": request.redirect_uri,
                "user": None,
                "verifier": None,
            }

    def verify_request_token(self, token: str, request: Any) -> bool:
        return token in self.p.pending

    def get_realms(self, token: str, request: Any) -> list[str]:
        return []

    def save_verifier(self, token: str, verifier: dict[str, Any], request: Any) -> None:
        with self.p.lock:
            self.p.pending[token]["verifier"] = verifier["oauth_verifier"]

    def get_redirect_uri(self, token: str, request: Any) -> str:
        return str(self.p.pending[token]["callback"])

    def get_request_token_secret(self, client_key: str, token: str, request: Any) -> str:
        found = self.p.pending.get(token)
        return found["secret"] if found and found["client"] == client_key else "dummy-secret"

    def validate_request_token(self, client_key: str, token: str, request: Any) -> bool:
        found = self.p.pending.get(token)
        return bool(found and found["client"] == client_key and found["verifier"])

    def validate_verifier(self, client_key: str, token: str, verifier: str, request: Any) -> bool:
        found = self.p.pending.get(token)
        return bool(found and found["client"] == client_key and found["verifier"] == verifier)

    def save_access_token(self, token: dict[str, Any], request: Any) -> None:
        with self.p.lock:
            self.p.issued.append(token)

    def invalidate_request_token(self, client_key: str, request_token: str, request: Any) -> None:
        with self.p.lock:
            self.p.pending.pop(request_token, None)  # a request token serves once


class OAuthProvider:
    """The three endpoints for the clients registered here (``{client key: secret}``)."""

    def __init__(self) -> None:
        self.clients: dict[str, str] = {}
        self.pending: dict[str, dict[str, Any]] = {}
        self.issued: list[dict[str, Any]] = []
        self.nonces: set[tuple[Any, ...]] = set()
        self.lock = threading.Lock()
        validator = _Validator(self)
        self._request = RequestTokenEndpoint(validator)
        self._authorize = AuthorizationEndpoint(validator)
        self._access = AccessTokenEndpoint(validator)

    def register(self, client_key: str, client_secret: str) -> None:
        """Register a client application (zotero.org/oauth/apps)."""
        self.clients[client_key] = client_secret

    def handle(self, method: str, url: str, path: str, body: str, headers: Any) -> Response:
        """Answer ``/oauth/request``, ``/oauth/authorize`` or ``/oauth/access``."""
        heads = {k: v for k, v in headers.items()}
        try:
            if path == "/oauth/request" and method == "POST":
                return _answer(
                    *self._request.create_request_token_response(url, method, body, heads)
                )
            if path == "/oauth/access" and method == "POST":
                return self._access_step(url, body, heads)
            if path == "/oauth/authorize":
                return self._authorize_page(method, url, body)
        except errors.OAuth1Error as exc:
            return Response(
                exc.status_code, exc.urlencoded.encode(), "application/x-www-form-urlencoded"
            )
        return Response(404, b"Not found", "text/plain")

    def _access_step(self, url: str, body: str, heads: dict[str, str]) -> Response:
        # The answer carries who allowed it, as zotero.org's does.
        params = dict(parse_authorization_header(heads.get("Authorization", "")))
        found = self.pending.get(params.get("oauth_token", "")) or {}
        user = found.get("user") or {}
        credentials = {"userID": str(user.get("id", "")), "username": user.get("name", "")}
        return _answer(
            *self._access.create_access_token_response(url, "POST", body, heads, credentials)
        )

    def _authorize_page(self, method: str, url: str, body: str) -> Response:
        """GET: the "allow this application?" page; POST: sign in as the user, allow."""
        query = dict(parse_qsl(url.partition("?")[2]))
        token = query.get("oauth_token", "")
        if token not in self.pending:
            return Response(400, b"No such request token", "text/plain")
        if method != "POST":
            return Response(200, _page(token, query).encode(), "text/html; charset=utf-8")
        form = dict(parse_qsl(body))
        user_id = form.get("user_id", "").strip()
        if not (user_id.isascii() and user_id.isdigit()):
            return Response(400, b"A Zotero user ID is a number", "text/plain")
        with self.lock:
            self.pending[token]["user"] = {"id": int(user_id), "name": form.get("username", "")}
        heads, _, status = self._authorize.create_authorization_response(
            f"{url.partition('?')[0]}?{urlencode({'oauth_token': token})}"
        )
        return Response(status, b"", "text/plain", headers=dict(heads))


def _answer(headers: dict[str, str], body: str | None, status: int) -> Response:
    kind = headers.get("Content-Type", "application/x-www-form-urlencoded")
    return Response(status, (body or "").encode(), kind)


def _page(token: str, query: dict[str, str]) -> str:
    esc = html.escape
    action = "/oauth/authorize?" + urlencode({"oauth_token": token})
    what = "your identity only" if query.get("identity") == "1" else "an API key"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Zotero stand-in: authorize</title></head><body>
<h1>Allow {esc(query.get("name", "this application"))}?</h1>
<p>It asks for {esc(what)}. This is the Zotero stand-in: say who you are signed in as.</p>
<form method="post" action="{esc(action)}">
<label for="user_id">Zotero user ID</label> <input id="user_id" name="user_id" inputmode="numeric">
<label for="username">Zotero username</label> <input id="username" name="username">
<button type="submit">Accept</button>
</form></body></html>
"""
