"""The search language: parsed into a tree, compiled to FTS5 with every word quoted, or
refused with a message a visitor can act on. Property-based (Hypothesis): whatever is
typed, the parser either gives an expression a real FTS5 table (biblio's own DDL, its
tokenizer) runs without error, or raises :class:`SearchSyntaxError`, never anything else.
"""

from __future__ import annotations

import contextlib
import sqlite3
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from biblio.catalog import query
from biblio.catalog.query import SearchSyntaxError, fts_query, parse
from biblio.storage import ddl

WORDS = ["faculty", "status", "tenure", "librar", "paraprofessionals", "café", "o'brien"]


@pytest.fixture(scope="module")
def fts() -> sqlite3.Connection:
    """An in-memory database holding biblio's FTS5 tables, with a few rows."""
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        ddl.create_fts(conn)
    raw = engine.raw_connection().driver_connection
    raw.executemany(
        "INSERT INTO items_fts (key, title, creators, abstract, publication, tags, notes, "
        "fulltext) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("A", "Owning Faculty Status", "Doe, Jo", "tenure", "J", "faculty status", "", ""),
            ("B", "Paraprofessionals at work", "O'Brien, Pat", "", "", "pay", "a note", "café"),
            ("C", "Library unions", "Roe, Al", "unionization", "", "", "", "faculty"),
        ],
    )
    return raw


def keys(fts, q: str) -> set[str]:
    return {
        k
        for (k,) in fts.execute(
            "SELECT key FROM items_fts WHERE items_fts MATCH ?", (fts_query(q),)
        )
    }


@pytest.mark.parametrize(
    "q,expected",
    [
        ("faculty status", {"A"}),
        ("faculty OR unions", {"A", "C"}),
        ("faculty NOT tenure", {"C"}),
        ("faculty -tenure", {"C"}),
        ("(faculty OR paraprofessional) -tenure", {"B", "C"}),
        ("title:faculty", {"A"}),
        ('tag:"faculty status"', {"A"}),
        ("creator:o'brien", {"B"}),
        ("author:doe", {"A"}),
        ("fulltext:cafe", {"B"}),
        ("paraprofessional", {"B"}),  # word forms: the plural is found
        ("unionize", {"C"}),
        ("librar*", {"C"}),
        ('"status owning"', set()),  # a phrase keeps its order
        ('"owning faculty"', {"A"}),
        ("title:(unions OR status) AND NOT al", {"A"}),
        ("NEAR(faculty status)", set()),  # NEAR is a word here, not FTS5 syntax
    ],
)
def test_the_query_language_finds_what_it_says(fts, q, expected):
    assert keys(fts, q) == expected


@pytest.mark.parametrize(
    "q,message",
    [
        ("*", "A * on its own"),
        ("***", "A * on its own"),
        ('"faculty status', "quotation mark is never closed"),
        ("(faculty OR tenure", "parenthesis is never closed"),
        ("faculty)", "closing parenthesis has no opening"),
        ("tenure OR", "OR needs something to search for on both sides"),
        ("OR tenure", "OR needs something"),
        ("AND", "AND needs something"),
        ("faculty AND", "AND needs something"),
        ("NOT tenure", "NOT (or -) excludes from something else"),
        ("-tenure", "NOT (or -) excludes"),
        ("faculty OR -tenure", "NOT (or -) excludes"),
        ("faculty NOT", "NOT needs a word after it"),
        ("title:", "title: needs a word, phrase or group"),
        ("()", "nothing to search for inside"),
        ("-", "no words to search for"),
        ("&& —", "no words to search for"),
        ("x" * 501, "at most 500 can be searched"),
        ("(" * 9 + "a" + ")" * 9, "too deeply"),
        (" ".join(["w"] * 33), "more than 32 words"),
    ],
)
def test_bad_searches_get_a_message_that_says_what_to_change(q, message):
    with pytest.raises(
        SearchSyntaxError, match=message.replace("*", r"\*").replace("(", r"\(").replace(")", r"\)")
    ):
        parse(q)


def test_anything_that_is_not_syntax_is_a_word():
    assert parse("foo:bar") == query.Term(("foo", "bar"))  # an unknown field is words
    assert parse("non-MLS") == query.Term(("non", "MLS"))  # adjacent, like the tokenizer
    assert parse("librar*") == query.Term(("librar",), prefix=True)
    assert parse("and or not") == query.AllOf(
        (query.Term(("and",)), query.Term(("or",)), query.Term(("not",)))
    )  # operators are capitals only
    assert fts_query('say "hi"*') == '("say" AND "hi"*)'


def test_ranking_expression_keeps_wanted_words_and_phrases_drops_excluded_ones():
    tree = parse("faculty status -tenure note:ignored")
    ranking = query.fts5_ranking(tree, ddl.RANK_COLUMNS)
    assert ranking is not None
    assert '"faculty"' in ranking and '"faculty status"' not in ranking  # not side by side
    assert "tenure" not in ranking and "ignored" not in ranking
    side_by_side = query.fts5_ranking(parse("faculty status"), ddl.RANK_COLUMNS)
    assert side_by_side == '"faculty" OR "status" OR "faculty status"'
    assert query.fts5_ranking(parse("fulltext:cafe"), ddl.RANK_COLUMNS) is None


SYNTAX = st.sampled_from(['"', "(", ")", "*", "-", ":", "OR", "AND", "NOT", "title:", "tag:", " "])
PIECES = st.one_of(SYNTAX, st.sampled_from(WORDS), st.text(max_size=6))


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=14).map(" ".join) | st.text(max_size=80))
def test_any_text_gives_a_valid_fts5_query_or_a_friendly_error(fts, text):
    try:
        expression = fts_query(text)
    except SearchSyntaxError as exc:
        assert str(exc).endswith(".") and len(str(exc)) < 200
        return
    # FTS5 itself accepts it: no syntax error can come from what a visitor typed.
    fts.execute("SELECT count(*) FROM items_fts WHERE items_fts MATCH ?", (expression,)).fetchone()
    ranking = query.fts5_ranking(parse(text), ddl.RANK_COLUMNS)
    if ranking is not None:
        fts.execute(
            "SELECT count(*) FROM items_rank WHERE items_rank MATCH ?", (ranking,)
        ).fetchone()


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable, min_size=1, max_size=500))
def test_printable_text_up_to_the_limit_never_raises_anything_else(fts, text):
    with contextlib.suppress(SearchSyntaxError):
        fts.execute("SELECT count(*) FROM items_fts WHERE items_fts MATCH ?", (fts_query(text),))
