"""The parallel renderer gives the serial renderer's entries, in the same order."""

from __future__ import annotations

import pytest

from biblio.citations import StyleError, render_bibliography
from biblio.citations.pool import render_parallel
from biblio.zotero.csljson import to_csl


def article(id_, title, family, given, year, **kw):
    return {
        "id": id_,
        "type": "article-journal",
        "title": title,
        "author": [{"family": family, "given": given}],
        "issued": {"date-parts": [[year]]},
        "container-title": "Journal of Tests",
        **kw,
    }


@pytest.fixture(scope="module")
def items(sample_data):
    rows = sample_data["items"] if isinstance(sample_data, dict) else sample_data
    out = []
    for row in rows:
        data = row.get("data", row)
        if data.get("itemType") in ("attachment", "note", "annotation"):
            continue
        out.append(to_csl(data, data["key"]))
    # set-level cases: year suffixes, added given names, subsequent-author-substitute,
    # an item that cannot be read and one the style renders as nothing
    out += [
        article("clash-a", "Alpha", "Doe", "Jane", 2020),
        article("clash-b", "Beta", "Doe", "Jane", 2020),
        article("clash-c", "Gamma", "Doe", "John", 2020),
        article("same-1", "One", "Roe", "Ann", 2001),
        article("same-2", "Two", "Roe", "Ann", 2002),
        "not an item",
        {"id": "empty", "type": "article-journal"},
    ]
    return out


def summary(entries):
    return [(e.id, e.text, e.sort_key, e.error) for e in entries]


@pytest.mark.parametrize(
    "style", ["apa", "modern-language-association", "ieee", "chicago-notes-bibliography"]
)
def test_parallel_render_equals_serial_render(items, style):
    serial = render_bibliography(items, style, fmt="html")
    parallel = render_parallel(items, style, fmt="html", workers=2, chunk_size=16)
    assert summary(parallel) == summary(serial)
    # the set-level rules really were exercised
    texts = {e.id: e.text for e in serial}
    if style == "apa":
        assert "2020a" in texts["clash-a"] and "2020b" in texts["clash-b"]
    if style == "modern-language-association":
        assert texts["same-2"].startswith("———")
    if style == "ieee":
        assert [e.text.split("]")[0] for e in serial[:2]] == [
            '<div class="csl-left-margin">[1',
            '<div class="csl-left-margin">[2',
        ]
    assert serial[-1].error is not None  # the unreadable item, by the fallback, last


def test_small_sets_render_in_process_with_the_same_result(items):
    few = items[:10]
    assert summary(render_parallel(few, "apa", workers=2)) == summary(
        render_bibliography(few, "apa")
    )


def test_parallel_render_refuses_an_unknown_style_before_starting_workers(items):
    with pytest.raises(StyleError):
        render_parallel(items, "no-such-style", workers=2, chunk_size=16)
