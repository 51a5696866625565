"""Fidelity fixes of the citation layer, each checked on a CSL processor test-suite fixture
(copied into ``tests/data/csl_suite`` with its source named) or, where the suite is silent,
on a real style against the text citeproc-js 2.4.63 (Zotero's engine) prints for the item
(the same comparison ``bench/fidelity/run.py`` makes).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from biblio.citations import render_bibliography
from biblio.citations.styles import checkout_style

SUITE = Path(__file__).parent.parent / "data" / "csl_suite"
_SECTION = re.compile(r">>=+ ([A-Z-]+) =+>>\n(.*?)\n<<=+ \1 =+<<", re.S)


def _normalise(text: str) -> str:
    text = re.sub(r">\s+<", "><", text.strip())
    return " ".join(html.unescape(text).split())


def fixture(name: str, tmp_path: Path) -> tuple[str, str]:
    """(expected, biblio's) output of a test-suite fixture: the bibliography in
    ``bibliography`` mode; in ``citation`` mode one line per single-item citation, which
    for a style without a bibliography is the entry biblio renders for that item."""
    sections = dict(_SECTION.findall((SUITE / f"{name}.txt").read_text("utf-8")))
    (tmp_path / f"{name}.csl").write_text(sections["CSL"], "utf-8")
    items = json.loads(sections["INPUT"])
    if sections["MODE"].strip() == "bibliography":
        entries = render_bibliography(items, name, styles_dir=tmp_path)
        body = "".join(f'<div class="csl-entry">{e.text}</div>' for e in entries)
        return _normalise(sections["RESULT"]), _normalise(f'<div class="csl-bib-body">{body}</div>')
    assert "<bibliography" not in sections["CSL"]
    by_id = {item["id"]: item for item in items}
    cited = [c[0]["id"] for c in json.loads(sections.get("CITATION-ITEMS", "[]"))]
    lines = [
        render_bibliography([by_id[i]], name, styles_dir=tmp_path)[0].text
        for i in cited or list(by_id)
    ]
    return _normalise(sections["RESULT"]), _normalise("\n".join(lines))


def text(items, style):
    return [e.text for e in render_bibliography(items, style, "en-US", "text")]


def article(id_, title="A title", authors=(("Doe", "Jane"),), year=2020, **kw):
    return {
        "id": id_,
        "type": "article-journal",
        "title": title,
        "author": [{"family": f, "given": g} for f, g in authors],
        "issued": {"date-parts": [[year]]},
        "container-title": "Journal of Tests",
        **kw,
    }


# -- fixtures of the CSL test suite ------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        # a style-level <locale> date format keeps its delimiter ("2011 Aug 5", Vancouver)
        "date_RangeDelimiter",
        # initials as citeproc-js makes them, and initialize="false" keeping names whole
        "name_InitialsInitializeTrue",
        "name_InitialsInitializeFalse",
        # Chinese, Japanese and Korean names: family and given name written together
        "name_AsianGlyphs",
        # particles read out of family and given names ("van Happel", "Gustav von")
        "bugreports_parseName",
        "name_ParticleCaps3",
        # year suffixes for citations that stay alike after names are disambiguated
        "disambiguate_YearSuffixTwoPairsFirstNameBibliography",
        # chicago page ranges as citeproc-js shortens them
        "page_Chicago",
    ],
)
def test_a_csl_suite_fixture_renders_as_expected(name, tmp_path):
    expected, ours = fixture(name, tmp_path)
    assert ours == expected


# -- dates ------------------------------------------------------------------------------


def test_vancouver_dates_print_year_month_and_day_apart():
    item = article("v", issued={"date-parts": [[2011, 8, 5]]}, volume="3", page="1-9")
    assert "2011 Aug 5;3:1–9" in text([item], "nlm-citation-sequence")[0]


# -- names ------------------------------------------------------------------------------


def test_hyphenated_given_names_initialise_as_citeproc_js_does():
    item = article("h", authors=(("Park", "Jung-ran"), ("Wong", "K-Lee"), ("Sartre", "Jean-Paul")))
    assert text([item], "apa")[0].startswith("Park, J., Wong, K.-L., & Sartre, J.-P. (2020).")
    # with initialize-with="" citeproc-js keeps the lower-case part: "J ran"
    assert text([item], "nlm-citation-sequence")[0].startswith("1. Park J ran, Wong KL, Sartre JP.")
    # styles printing full given names still punctuate an initial: "K.-Lee"
    assert text([item], "chicago-author-date")[0].startswith(
        "Park, Jung-ran, K.-Lee Wong, and Jean-Paul Sartre. 2020."
    )


def test_chinese_names_print_family_and_given_together_and_titles_lose_italics():
    item = article(
        "z",
        "图书馆学研究",
        authors=(("王", "小明"), ("Chen", "Wei")),
        year=2019,
        **{"container-title": "中国图书馆学报"},
    )
    assert text([item], "nlm-citation-sequence")[0].startswith("1. 王小明, Chen W.")
    # italics set on the title itself are dropped for text without Latin letters...
    chicago = render_bibliography([item], "chicago-author-date", fmt="html")[0].text
    assert chicago == "王小明, and Wei Chen. 2019. “图书馆学研究.” 中国图书馆学报."
    # ...but not italics set on a group around it (APA)
    apa = render_bibliography([item], "apa", fmt="html")[0].text
    assert apa == "王小明, &amp; Chen, W. (2019). 图书馆学研究. <i>中国图书馆学报</i>."


def test_sort_only_particles_print_with_the_family_name_but_sort_without_it():
    items = [
        article("m", authors=(("van der Maaten", "Laurens"),)),
        article("g", authors=(("Garfield", "Eugene"),)),
        article("t", authors=(("Tanaka", "Yuki"),)),
    ]
    entries = render_bibliography(items, "harvard-cite-them-right", fmt="text")
    assert [e.id for e in entries] == ["g", "m", "t"]
    assert entries[1].text.startswith("van der Maaten, L.")


def test_a_cs_names_without_a_cs_name_gets_one_default_name_once():
    item = article("a", authors=(("Doe", "Jane"),))
    for _ in range(3):
        render_bibliography([item], "nlm-citation-sequence")
    with checkout_style("nlm-citation-sequence", "en-US") as style:
        names = style.root.get_macro("author").children()[0]
        assert [child.tag.split("}")[-1] for child in names.iterchildren()].count("name") == 1


# -- text case ---------------------------------------------------------------------------


def test_capitalize_first_leaves_words_that_already_have_capitals():
    item = {
        "id": "x",
        "type": "article",
        "title": "Attention is all you need",
        "author": [{"family": "Vaswani", "given": "Ashish"}],
        "issued": {"date-parts": [[2017]]},
        "publisher": "arXiv",
        "number": "arXiv:1706.03762",
    }
    assert "(arXiv:1706.03762)" in text([item], "apa")[0]
    assert "Preprint, arXiv" in text([item], "chicago-author-date")[0]


# -- variables ---------------------------------------------------------------------------


def test_key_value_lines_in_a_note_are_read_as_variables():
    item = {
        "id": "d",
        "type": "book",
        "title": "On the origin of species",
        "author": [{"family": "Darwin", "given": "Charles"}],
        "issued": {"date-parts": [[2009]]},
        "publisher": "Penguin",
        "note": "original-date: 1859\n{:editor: Burrow || J. W.}",
    }
    assert text([item], "apa")[0].endswith("Penguin. (Original work published 1859)")


def test_a_type_test_with_several_types_holds_for_any_of_them():
    # ASA's <if type="thesis manuscript">: citeproc-js reads several types as "any"
    item = {
        "id": "t",
        "type": "thesis",
        "title": "Work motivation",
        "author": [{"family": "Gifford", "given": "Martin"}],
        "issued": {"date-parts": [[1967]]},
        "genre": "MA thesis",
        "publisher": "University of British Columbia",
        "publisher-place": "Vancouver",
    }
    assert text([item], "american-sociological-association")[0].endswith(
        "MA thesis, University of British Columbia, Vancouver."
    )


# -- disambiguation ----------------------------------------------------------------------


def test_year_suffixes_follow_what_given_names_can_tell_apart():
    items = [
        article("jane", "A study by another Doe", (("Doe", "Jane"),)),
        article("john1", "First study", (("Doe", "John"),)),
        article("john2", "Second study", (("Doe", "John"),)),
    ]
    # APA shows initials only: J. Doe and J. Doe look alike, all three get suffixes
    assert [t.split(". ", 2)[1][:7] for t in text(items, "apa")] == [
        "(2020a)",
        "(2020b)",
        "(2020c)",
    ]
    # Cite Them Right tells Jane from John by the full given name, printed in full
    assert text(items, "harvard-cite-them-right") == [
        "Doe, Jane (2020) “A study by another Doe,” Journal of Tests [Preprint].",
        "Doe, John (2020a) “First study,” Journal of Tests [Preprint].",
        "Doe, John (2020b) “Second study,” Journal of Tests [Preprint].",
    ]


# -- styles without a bibliography --------------------------------------------------------


def test_a_style_without_a_bibliography_renders_its_citation_for_each_item(tmp_path):
    (tmp_path / "cite-only.csl").write_text(
        '<style xmlns="http://purl.org/net/xbiblio/csl" class="note" version="1.0">'
        "<info><id/><title/><updated>2009-08-10T04:49:00+09:00</updated></info>"
        '<citation><layout><text variable="title"/></layout></citation></style>'
    )
    entries = render_bibliography([article("a", "Alpha")], "cite-only", styles_dir=tmp_path)
    assert [(e.text, e.error) for e in entries] == [("Alpha", None)]


def test_apa_capitalises_the_first_word_of_a_subtitle_as_zotero_has_citeproc_js_do():
    # Zotero runs citeproc-js with uppercase_subtitles for APA-family styles
    item = article("c", "Vocational awe: librarianship and the lies we tell ourselves")
    assert "Vocational awe: Librarianship and the lies we tell ourselves." in text([item], "apa")[0]
    # other styles print the title as entered
    assert "“Vocational awe: librarianship and the lies" in text([item], "ieee")[0]


def test_a_sort_macro_with_a_date_sorts_by_the_date_alone_and_undated_items_last():
    # elsevier-harvard sorts by author, then by its "issued" macro descending; that macro
    # prints "n.d." for an undated item, which citeproc-js does not use as a key
    def report(id_, year=None):
        item = {
            "id": id_,
            "type": "webpage",
            "title": f"Page {id_}",
            "author": [{"literal": "American Library Association"}],
        }
        if year:
            item["issued"] = {"date-parts": [[year]]}
        return item

    items = [report("undated"), report("old", 2002), report("new", 2021)]
    entries = render_bibliography(items, "elsevier-harvard", fmt="text")
    assert [e.id for e in entries] == ["new", "old", "undated"]
