"""Prong tagging: rule types, reasons, ground truth, overrides, retag, sync and hostile input.

Black-box where it matters: the sample library is synced through the loopback
Zotero stand-in into a real SQLite file, the CLI runs as ``biblio``, and edits
happen in the stand-in's library before syncing again.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from biblio import storage as st
from biblio.catalog.items import effective_prongs
from biblio.cli import cli
from biblio.prongs import (
    OverrideError,
    clear_override,
    evaluate_item,
    load_rules,
    parse_rules,
    retag,
    set_override,
    tag_item,
)
from biblio.prongs.rules import default_rules_table, merged_table
from biblio.settings import SettingsError
from biblio.sync.run import run_sync
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]


def rules_of(**prongs):
    table = {"tag_prefix": "prong:"}
    for pid, body in prongs.items():
        table[pid] = {"threshold": 3, **body}
    return parse_rules(table, "test")


def item(**data):
    return {"itemType": "journalArticle", "title": "", "tags": [], "collections": [], **data}


def prongs_of(assignments):
    return sorted(a.prong for a in assignments)


# -- rule types ---------------------------------------------------------------------


def test_phrase_matches_words_case_and_hyphens_and_truncation():
    rules = rules_of(p={"patterns": [{"phrase": "post-MLS residenc*", "weight": 3}]})
    hit = tag_item(item(title="The Post MLS Residency Program at X"), {}, rules)
    assert prongs_of(hit) == ["p"]
    (reason,) = hit[0].reasons
    assert reason["kind"] == "phrase" and reason["field"] == "title"
    assert reason["match"] == "post mls residency" and reason["weight"] == 3
    # whole words only: "residencies" is truncated form, "premls" is not a word match
    assert tag_item(item(title="premls residency"), {}, rules) == []


def test_regex_pattern_and_field_restriction():
    rules = rules_of(
        p={"patterns": [{"regex": r"\bunioni[sz]\w*", "weight": 3, "fields": ["abstract"]}]}
    )
    assert prongs_of(tag_item(item(abstractNote="Unionizing library staff"), {}, rules)) == ["p"]
    # the same words in the title are outside the pattern's fields
    assert tag_item(item(title="Unionizing library staff"), {}, rules) == []


def test_weights_add_up_to_the_threshold_and_groups_count_once():
    rules = rules_of(
        p={
            "threshold": 4,
            "patterns": [
                {"phrase": "LIS education", "weight": 2, "group": "ctx"},
                {"phrase": "library school", "weight": 2, "group": "ctx"},
                {"phrase": "diversity", "weight": 2},
            ],
        }
    )
    # two patterns of one group count once: 2 < 4
    ev = evaluate_item(item(title="LIS education in the library school"), {}, rules)[0]
    assert ev.score == 2 and not ev.assigned
    assert [r["counted"] for r in ev.reasons] == [True, False]
    # context plus aspect reach the threshold
    ev = evaluate_item(item(title="Diversity in LIS education"), {}, rules)[0]
    assert ev.score == 4 and ev.assigned


def test_negative_weight_blocks_a_false_friend():
    rules = rules_of(
        p={
            "patterns": [
                {"phrase": "diversity", "weight": 3},
                {"regex": r"diversity[^.]{0,30}collections?", "weight": -3},
            ]
        }
    )
    assert prongs_of(tag_item(item(title="Diversity of the LIS workforce"), {}, rules)) == ["p"]
    ev = evaluate_item(item(title="Auditing diversity in book collections"), {}, rules)[0]
    assert ev.score == 0 and not ev.assigned
    assert {r["weight"] for r in ev.reasons} == {3, -3}


def test_field_weights_scale_contributions():
    table = {
        "field_weights": {"publication": 0.5},
        "p": {"threshold": 2, "patterns": [{"phrase": "library education", "weight": 2}]},
    }
    rules = parse_rules(table)
    assert tag_item(item(publicationTitle="Journal of Library Education"), {}, rules) == []
    assert prongs_of(tag_item(item(title="Library education"), {}, rules)) == ["p"]


def test_zotero_tags_collections_and_prefix_are_ground_truth():
    rules = rules_of(
        p={"tags": ["Residencies"], "collections": ["Credentials & pathways"]}, q={}, r={}
    )
    colls = {
        "PARENT01": {"name": "Credentials & pathways", "parent_key": None},
        "CHILD001": {"name": "Residencies", "parent_key": "PARENT01"},
    }
    hit = tag_item(item(tags=[{"tag": "residencies"}]), {}, rules)
    assert prongs_of(hit) == ["p"] and hit[0].source == "zotero-tag"
    # a sub-collection of a mapped collection counts too
    hit = tag_item(item(collections=["CHILD001"]), colls, rules)
    assert prongs_of(hit) == ["p"] and hit[0].source == "zotero-collection"
    assert hit[0].reasons == [{"kind": "collection", "collection": "Credentials & pathways"}]
    # prefix tags name prongs; unknown ids (prong:policy) are ignored
    hit = tag_item(item(tags=[{"tag": "Prong:Q"}, {"tag": "prong:policy"}]), {}, rules)
    assert prongs_of(hit) == ["q"] and hit[0].reasons == [{"kind": "prefix-tag", "tag": "Prong:Q"}]


def test_prefix_tags_are_not_searched_as_text():
    rules = rules_of(p={"patterns": [{"phrase": "pathways", "weight": 3}]}, pathways={})
    hit = tag_item(item(tags=[{"tag": "prong:pathways"}]), {}, rules)
    assert prongs_of(hit) == ["pathways"]


def test_default_rules_handle_the_false_friends():
    rules = load_rules(None)
    cases = {
        "Assessing diversity in academic library book collections": [],
        "Equity of access: information literacy training for users": [],
        "Certification of trustworthy digital repositories: CoreTrustSeal": [],
        "Guided pathways for community college students": [],
        "Cataloging and classification schemes through a critical lens": [],
        "Recruiting students of color into LIS programs": ["mlis-access"],
        "Paraprofessionals without the MLS: equivalent experience in hiring": ["pathways"],
        "The status and roles of paraprofessionals and their salaries": ["worker-equity"],
        "Salaries and faculty status of academic librarians": ["worker-equity"],
    }
    for title, expected in cases.items():
        assert prongs_of(tag_item(item(title=title), {}, rules)) == expected, title


# -- hostile input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"title": None, "abstractNote": None, "tags": None, "collections": None},
        {"title": 42, "tags": ["not a dict", {"tag": None}, {"tag": 7}], "collections": [None, 3]},
        {"title": "<script>alert(1)</script><b>Faculty status</b> &amp; <i>tenure</i>"},
        {"title": "Bibliothécaires sans diplôme : équivalence et apprentissage", "language": "fr"},
        {"title": "图书馆员的薪酬与工会", "abstractNote": "Библиотекари и профсоюзы \u0000 \ud800"},
    ],
)
def test_hostile_items_tag_without_errors(data):
    rules = load_rules(None)
    assert isinstance(tag_item(data, {"X": None, "Y": {"name": None}}, rules), list)


def test_html_is_stripped_and_entities_decoded():
    rules = load_rules(None)
    hit = tag_item(item(title="<b>Faculty&nbsp;status</b> &amp; tenure"), {}, rules)
    assert prongs_of(hit) == ["worker-equity"]
    assert hit[0].reasons[0]["match"] == "faculty status"


def test_huge_abstract_and_non_english_text():
    rules = load_rules(None)
    abstract = ("Lorem ipsum dolor sit amet. " * 4000)[
        :100_000
    ] + " Low morale among support staff."
    assert len(abstract) > 100_000
    assert prongs_of(tag_item(item(abstractNote=abstract), {}, rules)) == ["worker-equity"]
    assert tag_item(item(title="Die Bibliothek als Lernort " * 50), {}, rules) == []


# -- bad settings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"p": {"threshold": "high"}}, "[prongs.p] threshold must be a number"),
        ({"p": {"threshold": 0}}, "[prongs.p] threshold must be greater than 0"),
        ({"p": {"treshold": 3}}, "[prongs.p] has unknown key 'treshold'"),
        ({"p": {"patterns": [{"regex": "(unclosed"}]}}, "[prongs.p] patterns[0].regex"),
        ({"p": {"patterns": [{"phrase": "x", "weight": "2"}]}}, "patterns[0].weight must be"),
        ({"p": {"patterns": [{"phrase": "x", "fields": ["body"]}]}}, "unknown field 'body'"),
        ({"p": {"patterns": [{"phrase": "x", "regex": "y"}]}}, "exactly one of phrase or regex"),
        ({"p": {"patterns": [{"phrase": "  "}]}}, "patterns[0].phrase must be a non-empty"),
        ({"p": {"tags": "one"}}, "[prongs.p] tags must be a list of strings"),
        ({"P Q": {}}, "is not a valid prong id"),
        ({"tag_prefix": 3, "p": {}}, "[prongs] tag_prefix must be a string"),
        ({"stray": 1, "p": {}}, "[prongs] unknown key 'stray'"),
    ],
)
def test_bad_rules_raise_one_line_naming_the_key(table, needle):
    with pytest.raises(SettingsError) as info:
        parse_rules(table, "settings.toml")
    message = str(info.value)
    assert needle in message and "\n" not in message and message.startswith("settings.toml")


def test_bad_rules_in_the_settings_file_are_reported_by_the_cli(tmp_path, zotero):
    (tmp_path / "settings.toml").write_text(
        f"[zotero]\nlibrary_id = {zotero.library.group_id}\n"
        '[database]\nurl = "sqlite:///' + str(tmp_path / "x.sqlite3") + '"\n'
        '[prongs.pathways]\nthreshold = "soon"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["prongs", "retag"], env={"BIBLIO_SETTINGS": str(tmp_path / "settings.toml")}
    )
    assert result.exit_code == 2
    assert "[prongs.pathways] threshold must be a number" in result.output


HOLDOUTS = [
    "prong_holdout.json",
    "prong_holdout2.json",
    "prong_holdout3.json",
    "prong_holdout4.json",
    "prong_train5.json",
    "prong_holdout5.json",
    "prong_train6.json",
    "prong_holdout6.json",
]


@pytest.mark.parametrize("position", range(len(HOLDOUTS)), ids=HOLDOUTS)
def test_holdout_sets_are_well_formed_and_disjoint(position):
    """bench/data/prong_holdout*.json: real works outside the sample library and every
    earlier held-out set, labelled by prong id, without group tags."""
    alphabet = set("23456789ABCDEFGHIJKLMNPQRSTUVWXYZ")
    data_dir = ROOT / "bench" / "data"
    data = json.loads((data_dir / HOLDOUTS[position]).read_text(encoding="utf-8"))
    lib = json.loads((ROOT / "biblio" / "data" / "sample_library.json").read_text(encoding="utf-8"))
    earlier = [
        it
        for name in HOLDOUTS[:position]
        for it in json.loads((data_dir / name).read_text(encoding="utf-8"))["items"]
    ]
    taken = {d.get("key") for d in lib["items"]} | {it["key"] for it in earlier}
    titles = {(d.get("title") or "").casefold() for d in lib["items"]} | {
        it["title"].casefold() for it in earlier
    }
    prongs = set(load_rules(None).ids())
    items = data["items"]
    assert data["version"] == 1 and len(items) >= 45
    keys = [it["key"] for it in items]
    assert len(set(keys)) == len(keys)
    for it in items:
        assert len(it["key"]) == 8 and set(it["key"]) <= alphabet, it["key"]
        assert it["key"] not in taken and it["title"].casefold() not in titles
        assert set(it["labels"]) <= prongs and it["tags"] == [] and it["source"].strip()
        assert it["title"].strip() and it["abstractNote"].strip() and it["itemType"]


def test_repo_settings_run_the_shipped_rules_unchanged():
    """The rules live once (biblio/data/prong_rules.toml): settings.toml holds only what a
    group changes, and the repository's own settings change nothing."""
    repo = tomllib.loads((ROOT / "settings.toml").read_text(encoding="utf-8"))
    assert "prongs" not in repo
    assert merged_table(repo) == default_rules_table()


# -- the cache: sync, retag, overrides, CLI -----------------------------------------


def _stored(engine, key):
    with st.connect(engine) as conn:
        return {p["prong"]: p for p in effective_prongs(conn, [key])[key]}


def _computed(engine):
    with st.connect(engine) as conn:
        rows = conn.execute(select(st.item_prongs)).mappings().all()
    return {(r["item_key"], r["prong"]): r for r in rows}


def _top_keys(library):
    return sorted(
        k
        for k, d in library.items.items()
        if not d.get("parentItem") and d.get("itemType") not in ("note", "attachment")
    )


def test_full_sync_tags_every_item_with_reasons(synced, library):
    computed = _computed(synced)
    assert computed, "the sample library yields prongs"
    keys = {k for k, _ in computed}
    assert keys <= set(_top_keys(library))
    for row in computed.values():
        assert row["reasons"], row
        assert row["source"] in ("rules", "model", "zotero-tag", "zotero-collection")
        if row["source"] == "rules":
            assert row["score"] >= 3
            assert any(r.get("counted") for r in row["reasons"])


def test_prefix_tag_items_come_from_zotero(synced, library):
    tagged = [
        k
        for k in _top_keys(library)
        if any(str(t.get("tag")).startswith("prong:") for t in library.items[k]["tags"])
    ]
    assert tagged
    for key in tagged:
        wanted = {t["tag"][6:] for t in library.items[key]["tags"] if t["tag"].startswith("prong:")}
        stored = _stored(synced, key)
        for prong in wanted:
            assert stored[prong]["source"] == "zotero-tag"


def test_incremental_sync_tags_new_and_edited_items(synced, settings, library):
    key = library.add_item(
        {
            "title": "Unionization and collective bargaining in academic libraries",
            "itemType": "journalArticle",
        }
    )
    run_sync(synced, settings)
    assert set(_stored(synced, key)) == {"worker-equity"}
    library.update_item(key, title="A history of the card catalogue")
    run_sync(synced, settings)
    assert _stored(synced, key) == {}


def test_collection_rename_retags_its_items(tmp_path, zotero, library):
    settings = make_settings(tmp_path, zotero, prongs={"pathways": {"collections": ["Alt routes"]}})
    engine = st.open_database(settings["database"]["url"])
    try:
        parent = library.add_collection("Reading")
        child = library.add_collection("Sub", parent=parent)
        key = library.add_item({"title": "A history of the card catalogue", "collections": [child]})
        run_sync(engine, settings)
        assert _stored(engine, key) == {}
        library.update_collection(parent, name="Alt routes")
        run_sync(engine, settings)
        assert _stored(engine, key)["pathways"]["source"] == "zotero-collection"
    finally:
        st.dispose_all()


def test_overrides_survive_resync_and_retag_and_are_audited(synced, settings, library):
    key = library.add_item({"title": "Faculty status and salaries of librarians"})
    other = _top_keys(library)[0]
    run_sync(synced, settings)
    assert set(_stored(synced, key)) == {"worker-equity"}

    assert set_override(
        synced, key, "pathways", "add", "owner@example.org", "route note", settings=settings
    )
    assert set_override(
        synced, key, "worker-equity", "remove", "owner@example.org", settings=settings
    )
    assert not set_override(
        synced, key, "worker-equity", "remove", "owner@example.org", settings=settings
    )  # unchanged: no second audit row
    expected = {"pathways"}
    assert set(_stored(synced, key)) == expected
    assert _stored(synced, key)["pathways"]["reasons"][0]["note"] == "route note"

    library.update_item(key, title="Faculty status, salaries and unions of librarians")
    library.update_item(other, title=library.items[other]["title"] + " (rev.)")
    run_sync(synced, settings)
    assert set(_stored(synced, key)) == expected
    run_sync(synced, settings, full=True)
    assert set(_stored(synced, key)) == expected
    retag(synced, settings)
    assert set(_stored(synced, key)) == expected
    # the computed tag is still there underneath; the override hides it
    assert (key, "worker-equity") in _computed(synced)

    assert clear_override(synced, key, "worker-equity", "owner2@example.org", settings=settings)
    assert set(_stored(synced, key)) == {"pathways", "worker-equity"}

    with st.connect(synced) as conn:
        rows = (
            conn.execute(
                select(st.audit_log)
                .where(st.audit_log.c.subject == f"item:{key}")
                .order_by(st.audit_log.c.id)
            )
            .mappings()
            .all()
        )
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("owner@example.org", "prong.add"),
        ("owner@example.org", "prong.remove"),
        ("owner2@example.org", "prong.clear"),
    ]
    old, new = json.loads(rows[1]["old"]), json.loads(rows[1]["new"])
    assert old["override"] is None and "worker-equity" in old["effective"]
    assert new["override"] == "remove" and "worker-equity" not in new["effective"]
    assert all(r["at"] is not None for r in rows)


def test_override_errors(synced, settings, library):
    key = _top_keys(library)[0]
    with pytest.raises(OverrideError, match="unknown prong"):
        set_override(synced, key, "policy", "add", "o@example.org", settings=settings)
    with pytest.raises(OverrideError, match="no item"):
        set_override(synced, "NOSUCHKY", "pathways", "add", "o@example.org", settings=settings)
    with pytest.raises(OverrideError, match="action"):
        set_override(synced, key, "pathways", "toggle", "o@example.org", settings=settings)
    with pytest.raises(OverrideError, match="owner"):
        set_override(synced, key, "pathways", "add", " ", settings=settings)


def test_retag_after_a_settings_change(synced, tmp_path, zotero, library):
    key = library.add_item({"title": "Makerspaces and the card catalogue"})
    settings = make_settings(tmp_path, zotero)
    run_sync(synced, settings)
    before = _computed(synced)
    assert _stored(synced, key) == {}
    changed = make_settings(
        tmp_path,
        zotero,
        prongs={
            "model": "",  # rules only: this test is about the rules
            "worker-equity": {"threshold": 1000},
            "pathways": {"patterns": [{"phrase": "makerspace*", "weight": 5}]},
        },
    )
    result = retag(synced, changed)
    after = _computed(synced)
    assert set(_stored(synced, key)) == {"pathways"}
    assert after[(key, "pathways")]["reasons"][0]["pattern"] == "makerspace*"
    # worker-equity now only where Zotero names it explicitly
    assert {r["source"] for (k, p), r in after.items() if p == "worker-equity"} <= {"zotero-tag"}
    assert any(p == "worker-equity" and r["source"] == "rules" for (k, p), r in before.items())
    assert result.items == len(_top_keys(library))


def _cli_env(tmp_path, settings):
    path = tmp_path / "cli-settings.toml"
    z, d, s = settings["zotero"], settings["database"], settings["sync"]
    path.write_text(
        f'[zotero]\nlibrary_id = {z["library_id"]}\nbase_url = "{z["base_url"]}"\n'
        f'[database]\nurl = "{d["url"]}"\n[sync]\nlock_file = "{s["lock_file"]}"\n',
        encoding="utf-8",
    )
    return {"BIBLIO_SETTINGS": str(path)}


def test_cli_explain_override_list_retag_and_export(synced, settings, library, tmp_path):
    env = _cli_env(tmp_path, settings)
    runner = CliRunner()
    key = library.add_item({"title": "Low morale and vocational awe among support staff"})
    run_sync(synced, settings)

    out = runner.invoke(cli, ["prongs", "explain", key], env=env)
    assert out.exit_code == 0, out.output
    assert "prong worker-equity (Worker equity) [rules" in out.output
    assert "phrase 'vocational awe' in title" in out.output
    assert "live scores with the current rules:" in out.output
    assert re.search(
        r"mlis-access: 0 / threshold 3\.5, learned vocabulary p=0\.\d+ -> not "
        r"assigned",
        out.output,
    ), out.output

    out = runner.invoke(
        cli,
        [
            "prongs",
            "override",
            key,
            "pathways",
            "add",
            "--by",
            "owner@example.org",
            "--note",
            "support-staff route",
        ],
        env=env,
    )
    assert out.exit_code == 0 and "added pathways" in out.output
    out = runner.invoke(cli, ["prongs", "explain", key], env=env)
    assert "owner override by owner@example.org" in out.output
    assert "support-staff route" in out.output
    out = runner.invoke(cli, ["prongs", "override", key, "nope", "add", "--by", "o@x"], env=env)
    assert out.exit_code == 1 and "unknown prong" in out.output
    out = runner.invoke(cli, ["prongs", "explain", "NOSUCHKY"], env=env)
    assert out.exit_code == 1 and "no item" in out.output

    out = runner.invoke(cli, ["prongs", "retag"], env=env)
    assert out.exit_code == 0 and out.output.startswith("retagged ")
    out = runner.invoke(cli, ["prongs", "list"], env=env)
    assert out.exit_code == 0
    assert [line.split()[0] for line in out.output.splitlines()] == [
        "mlis-access",
        "pathways",
        "worker-equity",
        "(items)",
    ]

    out = runner.invoke(cli, ["export", "--format", "json"], env=env)
    assert out.exit_code == 0, out.output
    records = {r["key"]: r for r in json.loads(out.output)}
    assert set(records) == {k for k in _top_keys(library) if not library.items[k].get("deleted")}
    mine = records[key]
    assert mine["prongs"] == ["pathways", "worker-equity"]
    assert mine["prong_reasons"]["pathways"][0]["kind"] == "override"
    assert any(r.get("pattern") == "vocational awe" for r in mine["prong_reasons"]["worker-equity"])
    assert all(set(r["prongs"]) == set(r["prong_reasons"]) for r in records.values())


def test_anchored_regex_on_item_type_and_no_match_across_fields():
    rules = rules_of(
        p={"patterns": [{"regex": "^thesis$", "weight": 3, "fields": ["type"]}]},
        q={
            "patterns": [
                {"phrase": "union contracts", "weight": 3, "fields": ["title", "abstract"]}
            ]
        },
    )
    assert prongs_of(tag_item(item(itemType="thesis"), {}, rules)) == ["p"]
    assert tag_item(item(itemType="journalArticle", title="thesis"), {}, rules) == []
    # "union" ends the title and "contracts" starts the abstract: not one phrase
    assert tag_item(item(title="The union", abstractNote="contracts of 1990"), {}, rules) == []
    hit = tag_item(item(title="x", abstractNote="Union contracts"), {}, rules)
    assert hit[0].reasons[0]["field"] == "abstract"


# -- pre-checks never change a result ---------------------------------------------


def _search_everything(monkeypatch):
    """Make the tagger search every pattern of every prong (no literal pre-check)."""
    from biblio.prongs.rules import Rules

    monkeypatch.setattr(Rules, "plan", lambda self, _bits: [list(p.patterns) for p in self.prongs])


def _all_evaluations(items, collections, notes, rules):
    from dataclasses import asdict

    return {
        key: [asdict(e) for e in evaluate_item(data, collections, rules, notes.get(key, []))]
        for key, data in items.items()
    }


def _corpora():
    """(items, collections, notes) of the sample library in every bench setting, and of
    both held-out sets: what bench/prongs.py scores."""
    lib = json.loads((ROOT / "biblio" / "data" / "sample_library.json").read_text("utf-8"))
    colls = {
        c["key"]: {"name": c.get("name", ""), "parent_key": c.get("parentCollection")}
        for c in lib["collections"]
    }
    notes: dict[str, list[str]] = {}
    for d in lib["items"]:
        if d.get("itemType") == "note" and d.get("parentItem"):
            notes.setdefault(d["parentItem"], []).append(d.get("note") or "")
    works = {d["key"]: d for d in lib["items"] if not d.get("parentItem")}
    no_prefix = {
        k: {
            **d,
            "tags": [
                t
                for t in d.get("tags") or []
                if not str(t.get("tag", "")).lower().startswith("prong:")
            ],
        }
        for k, d in works.items()
    }
    text = {k: {**d, "tags": [], "collections": []} for k, d in no_prefix.items()}
    out = [(works, colls, notes), (no_prefix, colls, notes), (text, colls, {})]
    for name in ("prong_holdout.json", "prong_holdout2.json"):
        data = json.loads((ROOT / "bench" / "data" / name).read_text("utf-8"))
        out.append(
            (
                {
                    it["key"]: {k: v for k, v in it.items() if k not in ("labels", "source")}
                    for it in data["items"]
                },
                {},
                {},
            )
        )
    return out


def test_literal_prechecks_change_no_evaluation_of_sample_and_holdouts(monkeypatch):
    """Every evaluation (score, source, reasons in order, assigned or not) of the sample
    library, holdout-1 and holdout-2 is the same with and without the pre-checks."""
    rules = load_rules(None)
    corpora = _corpora()
    fast = [_all_evaluations(*c, rules) for c in corpora]
    with monkeypatch.context() as m:
        _search_everything(m)
        slow = [_all_evaluations(*c, rules) for c in corpora]
    assert sum(len(c) for c in fast) > 500
    assert json.dumps(fast, sort_keys=True) == json.dumps(slow, sort_keys=True)
    assert any(e["reasons"] for c in fast for evs in c.values() for e in evs)


@pytest.mark.parametrize(
    "data",
    [
        # a pattern's words in different fields: pre-checks are per field, like matches
        item(title="Union contracts", abstractNote="for support staff"),
        item(title="Support staff", abstractNote="and their union contracts"),
        # separators, hyphens, punctuation and case around the literals
        item(title="PARA-PROFESSIONALS  to\u2013professional LIBRARIANS; MLS required."),
        item(title="Library\u00a0assistants' morale; the librarian\u2019s status"),
        # dotless i: an IGNORECASE regex's "i" matches it, so the pre-check must too
        item(title="Lıbrarıans and paraprofessıonals: tenure for lıbrarıans"),
        item(title="Students of colour in LIS programmes", abstractNote="tuıtıon and debt"),
        item(title="x " * 3000 + "recruitment into the library profession"),
        item(title="\u0000\n\x00 staff | classification", tags=[{"tag": "salary | equity"}]),
    ],
)
def test_prechecks_agree_with_searching_everything_on_edge_cases(data, monkeypatch):
    from dataclasses import asdict

    rules = load_rules(None)
    custom = rules_of(
        p={
            "patterns": [
                {"regex": r"librarians?\W+and\W+paraprofessionals?", "weight": 3},
                {"regex": r"\btenure\w*[^.;]{0,30}\blibrarians?\b", "weight": 3},
                {"phrase": "union contracts", "weight": 3, "fields": ["title", "abstract"]},
                {"regex": r"(?:support staff|paraprofessionals?)\W+(?:and|to)\W+\w+", "weight": 3},
                {"regex": r"staff\s", "weight": 3, "fields": ["title", "tags"]},
                {"regex": r"tu[iı]tion|debt", "weight": 3},
            ]
        }
    )
    got = [[asdict(e) for e in evaluate_item(data, {}, r)] for r in (rules, custom)]
    with monkeypatch.context() as m:
        _search_everything(m)
        want = [[asdict(e) for e in evaluate_item(data, {}, r)] for r in (rules, custom)]
    assert got == want


def test_required_literal_sets_of_a_proximity_regex():
    import re

    from biblio.prongs.rules import pattern_requirements

    found = pattern_requirements(
        re.compile(r"(?i:\btenure\w*[^.;]{0,30}\blibrarians?\b|\blibrarians?\b[^.;]{0,30}\btenure)")
    )
    assert set(found) == {frozenset({"librarian"}), frozenset({"tenure"})}
    found = pattern_requirements(
        re.compile(r"(?i:\b(pay|salary)\b[^.;]{0,30}\b(dissatisf\w*|satisf\w*))")
    )
    assert set(found) == {frozenset({"pay", "salary"}), frozenset({"dissatisf", "satisf"})}
    # nothing useful: always searched
    assert pattern_requirements(re.compile(r"(?i:\b\w+\b)")) == ()
    assert pattern_requirements(re.compile(r"(?i:a|b)")) == ()


def test_word_cache_starts_over_and_keeps_results(monkeypatch):
    import biblio.prongs.rules as rules_module

    rules = load_rules(None)
    data = item(title="Low morale among paraprofessionals", abstractNote="Faculty status")
    first = [a.as_dict() for a in tag_item(data, {}, rules)]
    monkeypatch.setattr(rules_module, "_TOKEN_CACHE", 3)
    for n in range(20):
        tag_item(item(title=f"word{n} other{n} more{n}"), {}, rules)
    assert len(rules._plan.seen) <= 3 + 10
    assert [a.as_dict() for a in tag_item(data, {}, rules)] == first
    assert first
