"""Exports in every format through the web and the CLI, parsed back with independent
readers (bibtexparser, rispy, pandas/openpyxl, python-docx), hostile values escaped in
HTML/RTF, ``_dl=1`` file names, styles and "cite", and clear errors for bad styles."""

from __future__ import annotations

import io
import json
import re
from datetime import date

import bibtexparser
import docx
import pandas as pd
import pytest
import rispy
from bibtexparser.bparser import BibTexParser

from biblio import create_app
from biblio import storage as st
from biblio.catalog.filters import Filters
from biblio.catalog.items import iter_items
from biblio.cli import cli
from biblio.exports import bibtex, documents, ris
from biblio.standin.library import StandinLibrary
from biblio.standin.server import StandinServer
from biblio.sync.run import run_sync
from biblio.zotero.csljson import schema_item_types, to_csl
from tests.conftest import make_settings

HOSTILE = '<script>alert("x")</script> {\\rtf1 \\par} & Ünïcødé 😀 = 1+1 \x07'
_UNESCAPE = {
    r"\textbackslash{}": "\\",
    r"\{": "{",
    r"\}": "}",
    r"\#": "#",
    r"\$": "$",
    r"\%": "%",
    r"\&": "&",
    r"\_": "_",
    r"\textasciitilde{}": "~",
    r"\textasciicircum{}": "^",
}


def _unlatex(value: str) -> str:
    value = re.sub(r"\\(?:emph|textbf|textsuperscript|textsubscript)\{([^{}]*)\}", r"\1", value)
    return re.sub("|".join(re.escape(k) for k in _UNESCAPE), lambda m: _UNESCAPE[m.group(0)], value)


@pytest.fixture
def hostile(tmp_path):
    """A library with one item carrying hostile-but-legal values, synced, and its app."""
    lib = StandinLibrary()
    key = lib.add_item(
        {
            "itemType": "journalArticle",
            "title": HOSTILE,
            "creators": [
                {"creatorType": "author", "firstName": "Ada {x}", "lastName": "O'Brien & Co"}
            ],
            "date": "2020-03",
            "publicationTitle": '=HYPERLINK("x")',
            "pages": "1-10",
            "tags": [{"tag": "pay_equity 100%"}],
        }
    )
    with StandinServer(lib) as zotero:
        settings = make_settings(tmp_path, zotero, sync={"prerender": False})
        engine = st.open_database(settings["database"]["url"])
        run_sync(engine, settings)
        app = create_app(settings)
        app.config.update(TESTING=True)
        yield key, app.test_client()
        st.dispose_all()


def _filename(resp):
    return re.search(r'filename="([^"]+)"', resp.headers["Content-Disposition"]).group(1)


def test_bibtex_round_trips_through_bibtexparser(client, synced):
    rows = {r["key"]: r for r in iter_items(synced)}
    resp = client.get("/items.bib")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False)
    db = bibtexparser.loads(resp.get_data(as_text=True), parser)
    assert len(db.entries) == len(rows)
    assert len({e["ID"] for e in db.entries}) == len(rows)  # unique citation keys
    titles = sorted(_unlatex(e.get("title", "")) for e in db.entries)
    assert titles == sorted(
        bibtex._RICH.sub("", r["data"].get("title", "")).strip() for r in rows.values()
    )
    article = next(e for e in db.entries if e["ENTRYTYPE"] == "article" and "doi" in e)
    assert article["journal"] and article["year"].isdigit()


def test_ris_round_trips_through_rispy(client, synced):
    rows = {r["key"]: r for r in iter_items(synced, Filters(prong="pathways"))}
    resp = client.get("/items.ris?prong=pathways")
    records = rispy.loads(resp.get_data(as_text=True))
    assert {r["id"] for r in records} == set(rows)
    for rec in records:
        data = rows[rec["id"]]["data"]
        assert rec.get("title", "") == " ".join(data.get("title", "").split())
        people = [c for c in data.get("creators", []) if c.get("creatorType") not in ris.ROLES]
        assert len(rec.get("authors", [])) == len(people)
        assert rec.get("keywords", []) == [t["tag"] for t in data.get("tags", [])]


def test_csljson_csv_and_xlsx_read_back(client, synced):
    rows = list(iter_items(synced))
    csl = client.get("/items.csljson").get_json()
    assert [c["id"] for c in csl] == [r["key"] for r in rows]
    csv = client.get("/items.csv")
    assert csv.mimetype == "text/plain"
    df = pd.read_csv(io.StringIO(csv.get_data(as_text=True)), keep_default_na=False)
    assert list(df["key"]) == [r["key"] for r in rows]
    assert {"prongs", "tags", "prong:pathways", "prong:worker-equity"} <= set(df.columns)
    by_key = {r["key"]: r for r in rows}
    for _, line in df.iterrows():
        assert line["prongs"] == "; ".join(p["prong"] for p in by_key[line["key"]]["prongs"])
    xlsx = client.get("/items.xlsx?prong=worker-equity&_dl=1")
    assert _filename(xlsx) == f"biblio-worker-equity-{date.today().isoformat()}.xlsx"
    sheet = pd.read_excel(io.BytesIO(xlsx.data), engine="openpyxl", keep_default_na=False)
    assert len(sheet) == len(list(iter_items(synced, Filters(prong="worker-equity"))))
    assert set(sheet["prong:worker-equity"]) == {"yes"}


def test_formatted_exports_and_file_names(client, synced):
    n = len(list(iter_items(synced, Filters(prong="pathways"))))
    text = client.get("/items.txt?prong=pathways&_style=apa")
    assert text.mimetype == "text/plain" and "inline" in text.headers["Content-Disposition"]
    body = text.get_data(as_text=True)
    assert "Citation Style Language" in body
    dl = client.get("/items.docx?prong=pathways&_style=apa&_dl=1")
    assert dl.headers["Content-Disposition"].startswith("attachment")
    assert _filename(dl) == f"biblio-pathways-apa-{date.today().isoformat()}.docx"
    document = docx.Document(io.BytesIO(dl.data))
    indented = [p for p in document.paragraphs if p.paragraph_format.first_line_indent]
    assert len(indented) == n
    assert any(r.italic for p in indented for r in p.runs)
    rtf = client.get("/items.rtf?prong=pathways").get_data(as_text=True)
    assert rtf.startswith("{\\rtf1") and rtf.count("\\fi-720") == n
    assert rtf.count("{") - rtf.count("\\{") == rtf.count("}") - rtf.count("\\}")
    page = client.get("/bibliography?prong=pathways")
    assert page.status_code == 200 and page.get_data(as_text=True).count('class="csl-entry"') == n
    html = client.get("/bibliography?prong=pathways&_dl=1")
    assert _filename(html) == f"biblio-pathways-apa-{date.today().isoformat()}.html"
    data = client.get("/bibliography.json?_style=modern-language-association").get_json()
    assert data["ok"] and data["count"] == len(list(iter_items(synced)))


def test_hostile_values_are_escaped(hostile):
    key, client = hostile
    page = client.get("/bibliography").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    doc = client.get("/bibliography?_dl=1").get_data(as_text=True)
    assert "<script>alert" not in doc
    rtf = client.get("/items.rtf").get_data(as_text=True)
    body = rtf.split("\\fi-720", 1)[1]
    assert "\\{\\\\rtf1 \\\\par\\}" in body  # \{\\rtf1 \\par\}: literal text
    assert not re.search(r"(?<!\\)\{\\rtf1", body)  # never an RTF group
    assert "\\u220?" in body  # Ü as \uN?
    assert "\\u-10179?\\u-8704?" in body  # the emoji as two UTF-16 units
    assert "\x07" not in rtf
    bib = bibtexparser.loads(client.get("/items.bib").get_data(as_text=True))
    assert _unlatex(bib.entries[0]["title"]) == HOSTILE.replace("\x07", "").strip()
    csv = client.get("/items.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in csv  # no spreadsheet formula
    cite = client.get(f"/items/{key}/cite?_style=apa").get_data(as_text=True)
    assert "<script>alert" not in cite
    text = client.get(f"/items/{key}/cite.json").get_json()["rows"][0]["text"]
    assert "<script>alert" in text  # plain text stays plain


def test_bad_style_and_locale_give_clear_400s(client, tmp_path):
    resp = client.get("/items.docx?_style=no-such-style", headers={"Accept": "application/json"})
    assert resp.status_code == 400
    assert resp.get_json() == {"ok": False, "status": 400, "error": resp.get_json()["error"]}
    assert "unknown style 'no-such-style'" in resp.get_json()["error"]
    assert client.get("/bibliography.json?_locale=xx-YY").status_code == 400
    assert client.get("/bibliography?_style=../../etc/passwd").status_code == 400


def test_broken_local_style_is_reported(tmp_path, zotero, synced):
    styles = tmp_path / "styles"
    styles.mkdir()
    (styles / "broken.csl").write_text(
        "<style xmlns='http://purl.org/net/xbiblio/csl'><info>", encoding="utf-8"
    )
    app = create_app(make_settings(tmp_path, zotero, citations={"styles_dir": str(styles)}))
    resp = app.test_client().get("/bibliography.json?_style=broken")
    assert resp.status_code == 400 and "cannot be parsed" in resp.get_json()["error"]


def test_styles_and_cite(client, synced):
    styles = client.get("/styles.json?q=chicago").get_json()
    assert styles["ok"] and all(
        "chicago" in (r["name"] + r["title"]).lower() for r in styles["rows"]
    )
    assert "CC BY-SA" in styles["attribution"]
    assert "CC BY-SA" in client.get("/styles?q=apa").get_data(as_text=True)
    key = next(iter_items(synced))["key"]
    cite = client.get(f"/items/{key}/cite.json?_style=chicago-author-date").get_json()
    row = cite["rows"][0]
    assert row["key"] == key and row["text"] and row["csl"]["id"] == key
    page = client.get(f"/items/{key}/cite").get_data(as_text=True)
    assert 'data-copy="cite-formatted"' in page and "<textarea" in page
    assert client.get("/items/NOSUCHKY/cite").status_code == 404


def test_every_zotero_item_type_converts_and_exports():
    types = [t for t in schema_item_types() if t not in ("note", "attachment", "annotation")]
    assert len(types) > 30
    rows = [
        {
            "key": f"K{n:07d}",
            "item_type": t,
            "meta": {"parsedDate": "2019-05-01"},
            "data": {
                "itemType": t,
                "title": f"A {t} on pay equity",
                "date": "2019-05-01",
                "creators": [{"creatorType": "author", "firstName": "Ann", "lastName": "Lee"}],
            },
        }
        for n, t in enumerate(types)
    ]
    csl = [to_csl(r["data"], r["key"]) for r in rows]
    assert all(c["type"] and c["title"] for c in csl)
    parsed = bibtexparser.loads(
        "".join(bibtex.entries(rows)), BibTexParser(ignore_nonstandard_types=False)
    )
    assert len(parsed.entries) == len(types)
    assert len(rispy.loads("".join(ris.records(rows)))) == len(types)
    from biblio.citations import render_bibliography

    entries = render_bibliography(csl, "apa", fmt="text")
    assert len(entries) == len(types) and all(e.text for e in entries)
    # APA leaves personal communications (and bare interviews) out; they get the fallback
    types_of = {c["id"]: c["type"] for c in csl}
    assert {types_of[e.id] for e in entries if e.error} <= {"personal_communication", "interview"}
    bib = documents.Bibliography("All types", entries)
    assert docx.Document(io.BytesIO(documents.docx_bytes(bib))).paragraphs


@pytest.mark.parametrize(
    "fmt", ["bibtex", "ris", "csljson", "csv", "xlsx", "html", "text", "rtf", "docx", "json"]
)
def test_cli_export_every_format(fmt, app, tmp_path, synced, settings, monkeypatch):
    monkeypatch.setenv("BIBLIO_SETTINGS", str(tmp_path / "settings.toml"))
    monkeypatch.setenv("BIBLIO_DATABASE__URL", settings["database"]["url"])
    monkeypatch.setenv("BIBLIO_ZOTERO__BASE_URL", settings["zotero"]["base_url"])
    out = tmp_path / f"out.{fmt}"
    result = app.test_cli_runner().invoke(
        cli, ["export", "--format", fmt, "--style", "apa", "--prong", "pathways", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    n = len(list(iter_items(synced, Filters(prong="pathways"))))
    data = out.read_bytes()
    if fmt == "bibtex":
        assert len(bibtexparser.loads(data.decode()).entries) == n
    elif fmt == "ris":
        assert len(rispy.loads(data.decode())) == n
    elif fmt in ("csljson", "json"):
        assert len(json.loads(data)) == n
    elif fmt == "csv":
        assert len(pd.read_csv(io.BytesIO(data))) == n
    elif fmt == "xlsx":
        assert len(pd.read_excel(io.BytesIO(data), engine="openpyxl")) == n
    elif fmt == "docx":
        assert (
            len(
                [
                    p
                    for p in docx.Document(io.BytesIO(data)).paragraphs
                    if p.paragraph_format.first_line_indent
                ]
            )
            == n
        )
    else:
        assert data.count(b"Citation Style Language") == 1


def test_cli_export_bad_style(app, tmp_path, settings, monkeypatch):
    monkeypatch.setenv("BIBLIO_SETTINGS", str(tmp_path / "settings.toml"))
    monkeypatch.setenv("BIBLIO_DATABASE__URL", settings["database"]["url"])
    monkeypatch.setenv("BIBLIO_ZOTERO__BASE_URL", settings["zotero"]["base_url"])
    result = app.test_cli_runner().invoke(cli, ["export", "--format", "text", "--style", "nope"])
    assert result.exit_code == 2 and "unknown style 'nope'" in result.output
