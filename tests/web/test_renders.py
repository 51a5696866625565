"""Costly renders are shared, budgeted, limited per client and prepared ahead: identical
concurrent requests render once (threads of one app, and processes); a request over
the budget is answered 202 with a page that refreshes itself, then 200 from the cache
with what a direct render gives (bibliography, JSON, exports, reading lists); the
pre-render after a sync covers the styles people used; only uncached renders spend
the per-client limit; and a real ``biblio run`` keeps answering list, search and item
pages while uncached-style bibliographies are prepared."""

from __future__ import annotations

import multiprocessing
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from sqlalchemy import select

from biblio import create_app
from biblio import reading_lists as rl
from biblio import storage as st
from biblio.catalog.items import item_versions, iter_items
from biblio.citations import cache as rendercache
from biblio.citations import flight, prerender, render_bibliography
from biblio.sync.run import run_sync
from biblio.zotero.csljson import to_csl
from tests.conftest import make_settings
from tests.web.servers import Client, biblio_run

REFRESH = re.compile(r'<meta http-equiv="refresh" content="(\d+)">')


def _app(tmp_path, zotero, **sections):
    conf = make_settings(tmp_path, zotero, **sections)
    app = create_app(conf)
    app.config.update(TESTING=True)
    return app


def _reference(engine, style, fmt="html"):
    rows = list(iter_items(engine))
    return render_bibliography([to_csl(r["data"], r["key"]) for r in rows], style, fmt=fmt)


def _rendered_so_far() -> int:
    return rendercache.TOTALS.rendered


def test_identical_concurrent_requests_render_once(tmp_path, zotero, synced):
    app = _app(tmp_path, zotero, citations={"render_budget_entries": 100_000})
    live = len(list(iter_items(synced)))
    url = "/bibliography.json?_style=chicago-author-date"
    start = threading.Barrier(6)

    def ask(_: int):  # type: ignore[no-untyped-def]
        client = app.test_client()
        start.wait(timeout=30)
        return client.get(url)

    before = _rendered_so_far()
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(ask, range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    assert _rendered_so_far() - before == live  # once, not six times
    bodies = {tuple((r["key"], r["html"]) for r in a.get_json()["rows"]) for a in answers}
    assert len(bodies) == 1


def _obtain_in_process(url: str, style: str) -> int:
    """One process's request: how many entries this process rendered."""
    engine = st.open_database(url)
    outcome = flight.obtain(engine, list(iter_items(engine)), style, "en-US", "html", budget=10**6)
    assert outcome.entries is not None
    return rendercache.TOTALS.rendered


def test_identical_requests_in_several_processes_render_once(synced):
    live = len(list(iter_items(synced)))
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=spawn) as pool:
        rendered = list(pool.map(_obtain_in_process, [str(synced.url)] * 4, ["apa"] * 4))
    assert sum(rendered) == live, rendered


def test_over_the_budget_a_page_says_it_is_being_prepared_then_serves_it(tmp_path, zotero, synced):
    app = _app(tmp_path, zotero, citations={"render_budget_entries": 20})
    client = app.test_client()
    live = len(list(iter_items(synced)))
    first = client.get("/bibliography?_style=ieee")
    page = first.get_data(as_text=True)
    assert first.status_code == 202 and int(first.headers["Retry-After"]) > 0
    assert REFRESH.search(page) and "being prepared in <strong>ieee</strong>" in page
    assert f"of {live} entries done" in page
    json_answer = client.get("/bibliography.json?_style=ieee")
    assert json_answer.status_code in (200, 202)
    assert flight.wait_for_background(timeout=300)
    ready = client.get("/bibliography.json?_style=ieee")
    assert ready.status_code == 200
    assert [(r["key"], r["html"]) for r in ready.get_json()["rows"]] == [
        (e.id, e.text) for e in _reference(synced, "ieee")
    ]
    assert client.get("/bibliography?_style=ieee").status_code == 200


def test_exports_and_reading_lists_take_the_same_path(tmp_path, zotero, synced):
    app = _app(tmp_path, zotero, citations={"render_budget_entries": 5})
    client = app.test_client()
    waiting = client.get("/items.txt?_style=nature")
    assert waiting.status_code == 202 and waiting.headers["Retry-After"]
    body = waiting.get_json()
    assert body["ok"] and body["preparing"] and body["style"] == "nature"
    assert body["total"] == len(list(iter_items(synced)))
    assert flight.wait_for_background(timeout=300)
    done = client.get("/items.txt?_style=nature")
    assert done.status_code == 200
    first = _reference(synced, "nature", "text")[0].text
    assert first in done.get_data(as_text=True)

    keys = [r["key"] for r in iter_items(synced)][:12]
    slug, _token = rl.create_list(synced, "Pay equity readings")
    rl.add_items(synced, slug, keys)
    listed = client.get(f"/lists/{slug}?_style=american-medical-association")
    assert listed.status_code == 202
    assert "being prepared" in listed.get_data(as_text=True)
    assert flight.wait_for_background(timeout=300)
    assert client.get(f"/lists/{slug}?_style=american-medical-association").status_code == 200


def test_after_a_sync_recently_used_styles_are_rendered_before_anyone_asks(
    tmp_path, zotero, library, synced
):
    app = _app(tmp_path, zotero, sync={"prerender": True})
    client = app.test_client()
    style = "modern-language-association"
    assert client.get(f"/bibliography?_style={style}").status_code == 200
    key = next(iter_items(synced))["key"]
    library.update_item(key, title="Freshly Rendered After The Sync")
    run_sync(synced, app.config["BIBLIO"])
    assert prerender.wait_for_prerender(timeout=300)
    rc = st.rendered_citations.c
    with st.connect(synced) as conn:
        text = conn.execute(
            select(rc.text).where(rc.item_key == key, rc.style == style, rc.fmt == "html")
        ).scalar_one()
    assert "Freshly Rendered After The Sync" in text
    before = _rendered_so_far()
    page = client.get(f"/bibliography?_style={style}")
    assert page.status_code == 200 and "Freshly Rendered After The Sync" in page.get_data(
        as_text=True
    )
    assert _rendered_so_far() == before  # served from what the sync prepared


def test_only_uncached_renders_spend_the_per_client_limit(tmp_path, zotero, synced):
    app = _app(
        tmp_path,
        zotero,
        web={"render_rate_limit": "2 per hour"},
        citations={"render_budget_entries": 100_000},
    )
    client = app.test_client()
    assert client.get("/bibliography?_style=apa").status_code == 200  # spends 1
    for _ in range(5):  # cached: free
        assert client.get("/bibliography?_style=apa").status_code == 200
    assert client.get("/items.bib").status_code == 200  # not a render at all
    assert client.get("/bibliography?_style=nature").status_code == 200  # spends 2
    refused = client.get("/bibliography?_style=harvard-cite-them-right")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many requests" in refused.get_data(as_text=True)
    as_json = client.get("/bibliography.json?_style=harvard-cite-them-right")
    assert as_json.status_code == 429 and as_json.get_json()["ok"] is False
    elsewhere = client.get(
        "/bibliography?_style=harvard-cite-them-right", environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert elsewhere.status_code == 200
    assert client.get("/bibliography?_style=nature").status_code == 200  # cached again


def _server_settings(synced, zotero) -> str:
    return (
        f'[zotero]\nlibrary_id = {zotero.library.group_id}\nbase_url = "{zotero.url}"\n'
        f'[database]\nurl = "{synced.url}"\n[mail]\nenabled = false\n'
        "[citations]\nrender_budget_entries = 10\n"
    )


STYLES = (
    "ieee",
    "nature",
    "chicago-author-date",
    "modern-language-association",
    "american-sociological-association",
    "harvard-cite-them-right",
)


def test_pages_keep_answering_while_uncached_bibliographies_are_prepared(tmp_path, zotero, synced):
    keys = [r["key"] for r in iter_items(synced)][:20]
    words = ["library", "workers", "equity", "pay", "faculty"]
    with biblio_run(tmp_path, _server_settings(synced, zotero)) as (base, _log):
        statuses: dict[str, list[int]] = {style: [] for style in STYLES}

        def bibliography(style: str) -> None:
            visitor = Client(base)
            deadline = time.monotonic() + 400
            while time.monotonic() < deadline:
                answer = visitor.open(f"/bibliography?_style={style}")
                statuses[style].append(answer.status)
                if answer.status != 202:
                    return
                time.sleep(int(answer.headers.get("Retry-After", "1")))

        heavy = [threading.Thread(target=bibliography, args=(s,)) for s in STYLES]
        for thread in heavy:
            thread.start()
        pages = []
        visitor = Client(base)
        while any(t.is_alive() for t in heavy):
            for n, key in enumerate(keys):
                pages.append(visitor.open(f"/items/{key}").status)
                pages.append(visitor.open(f"/items?q={words[n % len(words)]}").status)
                pages.append(visitor.open(f"/items?_sort=-year&_size={10 + n}").status)
        for thread in heavy:
            thread.join()
    assert pages and set(pages) == {200}
    assert all(s[-1] == 200 for s in statuses.values()), statuses
    assert any(202 in s for s in statuses.values()), statuses


def test_asked_again_while_another_process_renders_it_answers_from_its_progress(
    tmp_path, zotero, synced
):
    app = _app(tmp_path, zotero, citations={"render_budget_entries": 20})
    client = app.test_client()
    found = rendercache.assess(synced, item_versions(synced), "ieee", "en-US", "html")
    ident = rendercache.identity(found)
    before = _rendered_so_far()
    with flight.claim(synced, ident, wait=0) as held:  # another process is on it
        assert held
        for _ in range(2):
            answer = client.get("/bibliography?_style=ieee")
            assert answer.status_code == 202
            assert f"0 of {len(found.keys)} entries done" in answer.get_data(as_text=True)
        assert flight.progress(synced, "html:/bibliography?_style=ieee") is not None
        assert not flight.running(ident)  # joined, not started here
    assert flight.progress(synced, "html:/bibliography?_style=ieee") is None
    assert _rendered_so_far() == before
