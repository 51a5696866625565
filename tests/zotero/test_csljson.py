"""Zotero item data → CSL-JSON: every schema item type, base fields, creators, dates, Extra."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biblio.zotero.csljson import parse_date, schema_item_types, to_csl

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "biblio" / "data" / "zotero-schema.json").read_text()
)
CSL_TYPES = {z: c for c, zs in SCHEMA["csl"]["types"].items() for z in zs}


def test_schema_has_all_item_types():
    assert len(schema_item_types()) == 40


@pytest.mark.parametrize("item_type", [t["itemType"] for t in SCHEMA["itemTypes"]])
def test_every_item_type_converts(item_type):
    spec = next(t for t in SCHEMA["itemTypes"] if t["itemType"] == item_type)
    data = {"itemType": item_type}
    for f in spec["fields"]:
        data[f["field"]] = (
            "2019-05-17"
            if f.get("baseField") == "date" or f["field"] in ("date", "accessDate")
            else f"v-{f['field']}"
        )
    data["creators"] = [
        {"creatorType": c["creatorType"], "firstName": "Ana", "lastName": c["creatorType"]}
        for c in spec["creatorTypes"]
    ]
    csl = to_csl(data, "KEY1")
    assert csl["id"] == "KEY1"
    assert csl["type"] == CSL_TYPES.get(item_type, "document")
    title_field = next(
        (
            f["field"]
            for f in spec["fields"]
            if f["field"] == "title" or f.get("baseField") == "title"
        ),
        None,
    )
    if title_field:
        assert csl["title"] == f"v-{title_field}"
    primary = [c["creatorType"] for c in spec["creatorTypes"] if c.get("primary")]
    if primary and item_type not in ("attachment", "note", "annotation"):
        assert csl["author"][0]["family"] == primary[0]
    if any(f.get("baseField") == "date" or f["field"] == "date" for f in spec["fields"]):
        assert csl["issued"] == {"date-parts": [[2019, 5, 17]]}


@pytest.mark.parametrize(
    ("item_type", "field", "var"),
    [
        ("bookSection", "bookTitle", "container-title"),
        ("webpage", "websiteTitle", "container-title"),
        ("journalArticle", "publicationTitle", "container-title"),
        ("conferencePaper", "proceedingsTitle", "container-title"),
        ("thesis", "university", "publisher"),
        ("report", "reportNumber", "number"),
        ("case", "court", "authority"),
        ("film", "videoRecordingFormat", "medium"),
        ("journalArticle", "journalAbbreviation", "container-title-short"),
        ("book", "series", "collection-title"),
    ],
)
def test_base_fields(item_type, field, var):
    assert to_csl({"itemType": item_type, field: "X"})[var] == "X"


def test_creator_roles():
    csl = to_csl(
        {
            "itemType": "film",
            "creators": [
                {"creatorType": "director", "firstName": "David", "lastName": "Lynch"},
                {"creatorType": "producer", "name": "Studio Canal"},
                {"creatorType": "castMember", "firstName": "Naomi", "lastName": "Watts"},
                {"creatorType": "contributor", "firstName": "C", "lastName": "Contrib"},
            ],
        }
    )
    assert csl["author"] == [{"family": "Lynch", "given": "David"}]  # primary creator
    assert csl["producer"] == [{"literal": "Studio Canal"}]
    assert csl["performer"][0]["family"] == "Watts"
    assert csl["contributor"][0]["family"] == "Contrib"
    csl = to_csl(
        {
            "itemType": "book",
            "creators": [
                {"creatorType": "seriesEditor", "firstName": "S", "lastName": "Ed"},
                {"creatorType": "editor", "firstName": "E", "lastName": "Ed"},
                {"creatorType": "translator", "firstName": "T", "lastName": "Tr"},
                {"creatorType": "author", "firstName": "Ludwig", "lastName": "van Beethoven"},
            ],
        }
    )
    assert csl["collection-editor"][0]["family"] == "Ed"
    assert csl["editor"][0]["given"] == "E"
    assert csl["translator"][0]["family"] == "Tr"
    assert csl["author"][0] == {
        "family": "Beethoven",
        "given": "Ludwig",
        "non-dropping-particle": "van",
    }
    podcast = to_csl(
        {
            "itemType": "podcast",
            "creators": [
                {"creatorType": "podcaster", "firstName": "H", "lastName": "Host"},
                {"creatorType": "guest", "firstName": "G", "lastName": "Guest"},
            ],
        }
    )
    assert podcast["author"][0]["family"] == "Host" and podcast["guest"][0]["family"] == "Guest"
    talk = to_csl(
        {
            "itemType": "conferencePaper",
            "creators": [{"creatorType": "chair", "firstName": "C", "lastName": "Chair"}],
        }
    )
    assert "chair" in talk or "contributor" in talk


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019", {"date-parts": [[2019]]}),
        ("2019-03-05", {"date-parts": [[2019, 3, 5]]}),
        ("Spring 2019", {"date-parts": [[2019]], "season": 1}),
        ("Fall 2020", {"date-parts": [[2020]], "season": 3}),
        ("2019-2020", {"date-parts": [[2019], [2020]]}),
        ("2019-00-00 2019", {"date-parts": [[2019]]}),
        ("2019-03-00 March 2019", {"date-parts": [[2019, 3]]}),
        ("2018-00-00 Winter 2018", {"date-parts": [[2018]], "season": 4}),
        ("March 5, 2019", {"date-parts": [[2019, 3, 5]]}),
        ("2021-04-05T10:00:00Z", {"date-parts": [[2021, 4, 5]]}),
        ("n.d.", {"literal": "n.d."}),
    ],
)
def test_dates(text, expected):
    assert parse_date(text) == expected


def test_access_date_and_issued():
    csl = to_csl(
        {"itemType": "webpage", "date": "Spring 2019", "accessDate": "2021-04-05T10:00:00Z"}
    )
    assert csl["issued"] == {"date-parts": [[2019]], "season": 1}
    assert csl["accessed"] == {"date-parts": [[2021, 4, 5]]}


def test_extra_lines():
    csl = to_csl(
        {
            "itemType": "book",
            "title": "T",
            "date": "2009",
            "extra": "original-date: 1859\nOriginal Publisher: John Murray\ntype: dataset\n"
            "DOI: 10.1/x\nauthor: Darwin || Charles\njust a note",
        },
        "K",
    )
    assert csl["original-date"] == {"date-parts": [[1859]]}
    assert csl["original-publisher"] == "John Murray"
    assert csl["type"] == "dataset"
    assert csl["DOI"] == "10.1/x"
    assert csl["author"] == [{"family": "Darwin", "given": "Charles"}]
    assert csl["note"] == "just a note"


def test_extra_does_not_override_fields_and_isbn_first():
    csl = to_csl(
        {
            "itemType": "journalArticle",
            "DOI": "10.1/real",
            "extra": "DOI: 10.1/extra",
            "ISBN": "978-0-306-40615-7 0306406152",
        }
    )
    assert csl["DOI"] == "10.1/real"
    assert csl["ISBN"] == "978-0-306-40615-7"
    assert "note" not in csl


def test_id_defaults_to_item_key():
    assert to_csl({"itemType": "book", "key": "ABCD"})["id"] == "ABCD"
