"""Sign in with Zotero: an applicant proves which Zotero account is theirs (OAuth 1.0a).

Zotero's Web API cannot look up a user ID from a username, and anyone can type anyone's
ID into a form. With ``[join] zotero_oauth_key`` set (and its secret in
``BIBLIO_ZOTERO_OAUTH_SECRET``), the join page offers "Sign in with Zotero": biblio gets
a temporary token from ``/oauth/request``, sends the applicant to ``/oauth/authorize``
with ``identity=1`` (Zotero then creates no API key: it only tells who the user is),
and exchanges the token and verifier at ``/oauth/access``, whose answer carries the
applicant's ``userID`` and ``username``. requests-oauthlib signs every step; nothing
here builds a signature by hand. The numeric-ID form stays for everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from requests_oauthlib import OAuth1Session
from requests_oauthlib.oauth1_session import TokenMissing, TokenRequestDenied, VerifierMissing

from biblio.membership.group import MAX_USER_ID
from biblio.settings import Settings

#: Seconds each call to Zotero may take.
TIMEOUT = 15.0


class SignInError(Exception):
    """Zotero did not confirm who the applicant is; the message says what happened."""


@dataclass(frozen=True)
class Identity:
    user_id: int
    username: str


def enabled(settings: Settings) -> bool:
    """Whether "Sign in with Zotero" is configured (a client key and its secret)."""
    join = settings["join"]
    return bool(join["zotero_oauth_key"] and join.get("zotero_oauth_secret"))


def _base(settings: Settings) -> str:
    return str(settings["join"]["zotero_oauth_url"]).rstrip("/")


def _session(settings: Settings, **tokens: Any) -> OAuth1Session:
    join = settings["join"]
    return OAuth1Session(join["zotero_oauth_key"], join["zotero_oauth_secret"], **tokens)


def start(settings: Settings, callback_url: str, app_name: str) -> tuple[str, dict[str, str]]:
    """``(authorize URL, pending)``: send the applicant to the URL; keep ``pending`` (the
    temporary token and its secret) for :func:`finish`."""
    oauth = _session(settings, callback_uri=callback_url)
    try:
        token = oauth.fetch_request_token(f"{_base(settings)}/oauth/request", timeout=TIMEOUT)
    except (requests.RequestException, TokenRequestDenied, TokenMissing, ValueError) as exc:
        raise SignInError(f"Zotero could not be reached to sign in ({_reason(exc)})") from exc
    url = oauth.authorization_url(
        f"{_base(settings)}/oauth/authorize", identity="1", name=app_name[:100]
    )
    return url, {"token": token["oauth_token"], "secret": token["oauth_token_secret"]}


def finish(settings: Settings, pending: dict[str, str], token: str, verifier: str) -> Identity:
    """Exchange the authorized token for the applicant's Zotero identity."""
    if not pending or token != pending.get("token") or not verifier:
        raise SignInError("Zotero did not confirm the sign-in; please start again")
    oauth = _session(
        settings,
        resource_owner_key=pending["token"],
        resource_owner_secret=pending["secret"],
        verifier=verifier,
    )
    try:
        answer = oauth.fetch_access_token(f"{_base(settings)}/oauth/access", timeout=TIMEOUT)
    except (
        requests.RequestException,
        TokenRequestDenied,
        TokenMissing,
        VerifierMissing,
        ValueError,
    ) as exc:
        raise SignInError(f"Zotero did not confirm the sign-in ({_reason(exc)})") from exc
    raw_id, username = str(answer.get("userID") or ""), str(answer.get("username") or "")
    if not (raw_id.isascii() and raw_id.isdigit() and 0 < int(raw_id) <= MAX_USER_ID):
        raise SignInError("Zotero's answer carried no user ID; please use the form below")
    return Identity(int(raw_id), username[:100])


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__
