"""Sign in with Zotero: the OAuth 1.0a exchange between the app (requests-oauthlib) and
the stand-in's /oauth/* endpoints (oauthlib's server side), over real HTTP. The
applicant's browser is played by the Flask test client for biblio's pages and by
``requests`` for the stand-in's authorize form; tests/browser/test_first_run.py does the
same in Chromium. What Zotero confirms is what the request carries; typed IDs are
ignored then; without a configured key nothing of it shows."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests_oauthlib import OAuth1Session
from requests_oauthlib.oauth1_session import TokenRequestDenied
from sqlalchemy import select

from biblio import audit, create_app
from biblio import storage as st
from tests.conftest import make_settings

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
KEY, SECRET = "biblioTestClient2026", "a-client-secret-for-tests"
USER_ID, USERNAME = 7654321, "ada_l"


@pytest.fixture
def settings(tmp_path, zotero):
    zotero.oauth.register(KEY, SECRET)
    return make_settings(
        tmp_path,
        zotero,
        mail={"enabled": False},
        join={
            "zotero_oauth_key": KEY,
            "zotero_oauth_secret": SECRET,
            "zotero_oauth_url": zotero.url,
        },
    )


def csrf(client, url="/join"):
    return TOKEN_RE.search(client.get(url).get_data(as_text=True)).group(1)


def sign_in(client, user_id=USER_ID, username=USERNAME):
    """Press "Sign in with Zotero", accept on the stand-in's page, come back."""
    start = client.post("/join/zotero", data={"csrf_token": csrf(client)})
    assert start.status_code == 303, start.get_data(as_text=True)[:300]
    authorize = start.headers["Location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["identity"] == ["1"] and "oauth_token" in query  # no API key asked for
    page = requests.get(authorize, timeout=10)
    assert page.status_code == 200 and "Accept" in page.text
    accepted = requests.post(
        authorize,
        data={"user_id": str(user_id), "username": username},
        allow_redirects=False,
        timeout=10,
    )
    assert accepted.status_code == 302
    back = urlsplit(accepted.headers["Location"])
    assert back.path == "/join/zotero/callback"
    return client.get(f"{back.path}?{back.query}")


def test_an_applicant_signs_in_with_zotero_and_the_request_carries_that_id(client, synced):
    done = sign_in(client)
    assert done.status_code == 303 and done.headers["Location"].startswith("/join")
    page = client.get("/join").get_data(as_text=True)
    assert f"user ID {USER_ID}" in page and "confirmed by Zotero" in page
    assert 'name="zotero_user_id"' not in page  # nothing to type
    resp = client.post(
        "/join",
        data={
            "csrf_token": csrf(client),
            "name": "Ada Lovelace",
            "email": "ada@example.org",
            "zotero_user_id": "1111111",  # typed by someone else: ignored
            "reason": "I study alternative credentials.",
            "consent": "yes",
            "prongs": ["pathways"],
        },
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    with st.connect(synced) as conn:
        [row] = conn.execute(select(st.join_requests)).mappings().all()
    assert row["zotero_user_id"] == USER_ID and row["zotero_username"] == USERNAME
    [entry] = audit.entries(synced, action="request.submit")
    assert "Sign in with Zotero" in entry["detail"]
    assert "confirmed by Zotero" not in client.get("/join").get_data(as_text=True)  # used once


def test_a_typed_id_is_not_marked_as_confirmed(client, synced):
    resp = client.post(
        "/join",
        data={
            "csrf_token": csrf(client),
            "name": "Bo",
            "email": "bo@example.org",
            "zotero_user_id": "1111111",
            "reason": "I study alternative credentials.",
            "consent": "yes",
        },
    )
    assert resp.status_code == 303
    [entry] = audit.entries(synced, action="request.submit")
    assert entry["detail"] is None


def test_the_stand_in_checks_signatures_and_uses_a_token_once(zotero, settings):
    wrong = OAuth1Session(KEY, "not-the-secret", callback_uri="http://127.0.0.1/cb")
    with pytest.raises(TokenRequestDenied):
        wrong.fetch_request_token(f"{zotero.url}/oauth/request")
    stranger = OAuth1Session("unknownClientKey99", SECRET, callback_uri="http://127.0.0.1/cb")
    with pytest.raises(TokenRequestDenied):
        stranger.fetch_request_token(f"{zotero.url}/oauth/request")

    app = OAuth1Session(KEY, SECRET, callback_uri="http://127.0.0.1/cb")
    token = app.fetch_request_token(f"{zotero.url}/oauth/request")
    authorize = app.authorization_url(f"{zotero.url}/oauth/authorize", identity="1")
    back = requests.post(authorize, data={"user_id": "42"}, allow_redirects=False, timeout=10)
    verifier = parse_qs(urlsplit(back.headers["Location"]).query)["oauth_verifier"][0]
    forged = OAuth1Session(
        KEY,
        SECRET,
        resource_owner_key=token["oauth_token"],
        resource_owner_secret="guessed",
        verifier=verifier,
    )
    with pytest.raises(TokenRequestDenied):
        forged.fetch_access_token(f"{zotero.url}/oauth/access")
    honest = OAuth1Session(
        KEY,
        SECRET,
        resource_owner_key=token["oauth_token"],
        resource_owner_secret=token["oauth_token_secret"],
        verifier=verifier,
    )
    answer = honest.fetch_access_token(f"{zotero.url}/oauth/access")
    assert answer["userID"] == "42"
    replay = OAuth1Session(
        KEY,
        SECRET,
        resource_owner_key=token["oauth_token"],
        resource_owner_secret=token["oauth_token_secret"],
        verifier=verifier,
    )
    with pytest.raises(TokenRequestDenied):  # the request token served once
        replay.fetch_access_token(f"{zotero.url}/oauth/access")


def test_a_callback_without_a_sign_in_or_with_a_wrong_token_is_refused(client, synced):
    stray = client.get("/join/zotero/callback?oauth_token=abc&oauth_verifier=def")
    assert stray.status_code == 400 and "start again" in stray.get_data(as_text=True)
    start = client.post("/join/zotero", data={"csrf_token": csrf(client)})
    assert start.status_code == 303
    swapped = client.get("/join/zotero/callback?oauth_token=someone-elses&oauth_verifier=x")
    assert swapped.status_code == 303
    page = client.get("/join").get_data(as_text=True)
    assert "Zotero did not confirm the sign-in" in page and "confirmed by Zotero" not in page


def test_an_unreachable_zotero_sends_the_applicant_back_to_the_id_form(
    tmp_path, zotero, synced, settings
):
    conf = make_settings(
        tmp_path,
        zotero,
        mail={"enabled": False},
        join={
            "zotero_oauth_key": KEY,
            "zotero_oauth_secret": SECRET,
            "zotero_oauth_url": "http://127.0.0.1:9",  # nothing listens
        },
    )
    client = create_app(conf).test_client()
    resp = client.post("/join/zotero", data={"csrf_token": csrf(client)})
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/join")
    page = client.get("/join").get_data(as_text=True)
    assert "Zotero could not be reached" in page and 'name="zotero_user_id"' in page


def test_without_a_client_key_the_join_page_offers_only_the_id_form(tmp_path, zotero, synced):
    client = create_app(make_settings(tmp_path, zotero, mail={"enabled": False})).test_client()
    page = client.get("/join").get_data(as_text=True)
    assert "Sign in with Zotero" not in page and 'name="zotero_user_id"' in page
    token = csrf(client)
    assert client.post("/join/zotero", data={"csrf_token": token}).status_code == 404
    assert client.get("/join/zotero/callback").status_code == 404


def test_the_client_secret_comes_from_the_environment_only(tmp_path):
    from biblio.settings import SettingsError, load_settings

    bad = tmp_path / "secret.toml"
    bad.write_text('[zotero]\nlibrary_id = 1\n[join]\nzotero_oauth_secret = "x"\n')
    with pytest.raises(SettingsError, match="BIBLIO_ZOTERO_OAUTH_SECRET"):
        load_settings(bad, environ={})
    good = tmp_path / "ok.toml"
    good.write_text('[zotero]\nlibrary_id = 1\n[join]\nzotero_oauth_key = "k"\n')
    loaded = load_settings(good, environ={"BIBLIO_ZOTERO_OAUTH_SECRET": "from-the-environment"})
    assert loaded["join"]["zotero_oauth_secret"] == "from-the-environment"
