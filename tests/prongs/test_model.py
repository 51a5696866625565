"""The learned vocabulary: scoring parity with scikit-learn, the rules/model combination,
model-file validation, ``biblio prongs train`` end to end, and reasons on the item page.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from biblio.cli import cli
from biblio.prongs import evaluate_item, load_rules, parse_rules, retag, set_override, tag_item
from biblio.prongs.model import (
    BUILTIN,
    ModelError,
    load_model,
    model_text,
    parse_model,
    terms,
    train,
)
from biblio.settings import SettingsError
from biblio.sync.run import run_sync
from tests.conftest import make_settings
from tests.prongs.test_tagging import _cli_env

ROOT = Path(__file__).resolve().parents[2]


def _labelled(name):
    return json.loads((ROOT / "bench" / "data" / name).read_text(encoding="utf-8"))["items"]


def _tiny_model(
    tmp_path, weights, intercept=-4.0, terms_=("makerspace", "zine", "makerspace zine")
):
    """A hand-made model: every listed term has idf 1; pathways gets ``weights``."""
    obj = {
        "format": "biblio-prong-model",
        "version": 1,
        "idf": {t: 1.0 for t in terms_},
        "prongs": {"pathways": {"intercept": intercept, "threshold": 0.5, "weights": weights}},
    }
    path = tmp_path / "tiny-model.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _rules(model_path, **extra):
    table = {
        "tag_prefix": "prong:",
        "model": str(model_path),
        "model_assign": 0.5,
        "model_confirm": 0.3,
        **extra,
        "pathways": {
            "threshold": 3,
            "tags": ["routes"],
            "patterns": [{"phrase": "career ladder*", "weight": 4}],
        },
    }
    return parse_rules(table, "test")


def test_terms_are_unigrams_and_bigrams_without_function_words_or_html():
    got = terms(["The <i>Route</i> to Librarianship, without an MLS", "Café workers"])
    assert "route librarianship" in got and "without mls" in got and "without" in got
    assert "the" not in got and "to" not in got and "an" not in got
    assert "cafe" in got and "cafe workers" in got
    assert "mls cafe" not in got, "a bigram never spans two parts"
    assert not any("<" in t or t == "i" for t in got)


def test_scoring_matches_scikit_learn_exactly():
    pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    works = _labelled("prong_holdout3.json") + _labelled("prong_holdout4.json")
    docs = [model_text(w) for w in works]
    labels = [set(w["labels"]) for w in works]
    model = parse_model(train(docs, labels, ["pathways"], c=10.0, min_df=2))
    vec = TfidfVectorizer(analyzer=terms, sublinear_tf=True, min_df=2)
    x = vec.fit_transform(docs)
    clf = LogisticRegression(C=10.0, class_weight="balanced", max_iter=5000)
    clf.fit(x, [int("pathways" in g) for g in labels])
    expected = clf.predict_proba(x)[:, 1]
    pm = model.prong("pathways")
    got = [model.score(model.vector(d), pm)[0] for d in docs]
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) < 1e-3
    assert sum(p >= 0.5 for p in got) == sum(p >= 0.5 for p in expected)


def test_model_assigns_alone_with_its_terms_as_reasons(tmp_path):
    rules = _rules(_tiny_model(tmp_path, {"makerspace": 8.0}))
    [a] = tag_item({"title": "A makerspace for every branch", "tags": []}, {}, rules)
    assert a.prong == "pathways" and a.source == "model"
    [reason] = [r for r in a.reasons if r["kind"] == "model"]
    assert reason["verdict"] == "assigns" and reason["counted"]
    assert math.isclose(reason["probability"], 1 / (1 + math.exp(-4.0)), abs_tol=1e-4)
    assert reason["terms"][0][0] == "makerspace"


def test_model_confirms_or_vetoes_a_rules_match(tmp_path):
    # "zine" lifts the probability into [confirm, assign): the rules' match stands.
    rules = _rules(_tiny_model(tmp_path, {"zine": 3.5}))
    [ev] = evaluate_item({"title": "Career ladders and zine making"}, {}, rules)
    assert ev.assigned and ev.source == "rules" and 0.3 <= ev.probability < 0.5
    assert [r["verdict"] for r in ev.reasons if r["kind"] == "model"] == ["confirms"]
    # Without it the model finds the match very unlikely (p ~ 0.018) and vetoes it.
    [ev] = evaluate_item({"title": "Career ladders for the reading room"}, {}, rules)
    assert ev.score >= 3 and not ev.assigned and ev.probability < 0.3
    assert [r["verdict"] for r in ev.reasons if r["kind"] == "model"] == ["vetoes"]
    # Turned off, the same rules assign it again.
    off = _rules(_tiny_model(tmp_path, {"zine": 3.5}), model="")
    assert [
        a.prong for a in tag_item({"title": "Career ladders for the reading room"}, {}, off)
    ] == ["pathways"]


def test_ground_truth_tags_are_never_vetoed(tmp_path):
    rules = _rules(_tiny_model(tmp_path, {"makerspace": 8.0}))
    [a] = tag_item({"title": "Opening hours", "tags": [{"tag": "Routes"}]}, {}, rules)
    assert a.source == "zotero-tag"
    [a] = tag_item({"title": "Opening hours", "tags": [{"tag": "prong:pathways"}]}, {}, rules)
    assert a.source == "zotero-tag"


def test_model_text_ignores_prefix_tags_and_reads_publication_and_tags():
    data = {
        "title": "T",
        "abstractNote": "A",
        "publicationTitle": "P",
        "bookTitle": "B",
        "tags": [{"tag": "prong:pathways"}, {"tag": "Unions"}, {"tag": 7}],
    }
    assert model_text(data) == ["T", "A", "P", "B", "Unions"]


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda m: m.update(format="other"), "not a biblio-prong-model"),
        (lambda m: m.update(version=9), "unsupported version"),
        (lambda m: m.update(idf={}), "'idf' must be a non-empty object"),
        (lambda m: m["idf"].update(zine="x"), "idf['zine']: expected a finite number"),
        (
            lambda m: m["prongs"]["pathways"].update(threshold=1.5),
            "threshold: must be a probability",
        ),
        (
            lambda m: m["prongs"]["pathways"]["weights"].update(unknown=1.0),
            "'unknown' is not in the",
        ),
        (lambda m: m["prongs"]["pathways"].update(intercept=float("nan")), "intercept: expected a"),
        (lambda m: m["prongs"].update(pathways=[]), "needs 'intercept', 'threshold' and 'weights'"),
    ],
)
def test_bad_model_files_are_refused_with_the_reason(tmp_path, mutate, needle):
    raw = json.loads(_tiny_model(tmp_path, {"zine": 1.0}).read_text())
    mutate(raw)
    with pytest.raises(ModelError, match=needle.replace("[", r"\[").replace("(", r"\(")):
        parse_model(raw, "m.json")


@pytest.mark.parametrize(
    "extra, needle",
    [
        ({"model": "/no/such/model.json"}, "model: /no/such/model.json: cannot read the model"),
        ({"model": 3}, "model must be a string"),
        ({"model_assign": 1.5}, "model_assign must be a probability"),
        ({"model_confirm": 0.8}, "model_confirm (0.8) must not be above model_assign (0.5)"),
        ({"model_assign": "high"}, "model_assign must be a number"),
    ],
)
def test_bad_model_settings_raise_one_line_naming_the_key(extra, needle):
    with pytest.raises(SettingsError) as err:
        load_rules({"prongs": extra})
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_broken_model_file_is_a_settings_error(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(SettingsError, match="cannot read the model"):
        load_rules({"prongs": {"model": str(bad)}})


def test_builtin_model_loads_and_names_its_training_data():
    model = load_model(BUILTIN)
    assert {p.prong for p in model.prongs} == {"mlis-access", "pathways", "worker-equity"}
    assert model.meta["documents"] >= 600 and len(model.idf) > 1000
    assert load_rules(None).model is model, "the shipped defaults use it"


def test_hostile_text_scores_without_errors():
    rules = load_rules(None)
    for data in (
        {"title": None, "abstractNote": 5, "tags": "x"},
        {"title": "<script>alert(1)</script>" * 1000, "abstractNote": "é" * 100_000},
        {"title": "图书馆员的薪酬与职称", "abstractNote": "Bibliothécaires sans diplôme"},
    ):
        for ev in evaluate_item(data, {}, rules):
            assert ev.probability is None or 0.0 <= ev.probability <= 1.0


def test_train_cli_learns_from_files_and_the_library_then_retag_uses_it(
    synced, settings, library, zotero, tmp_path
):
    pytest.importorskip("sklearn")
    out = tmp_path / "our-model.json"
    env = _cli_env(tmp_path, settings)
    keys = [
        library.add_item({"title": "Zine libraries run by volunteers"}),
        library.add_item({"title": "Volunteer zine librarians"}),
    ]
    run_sync(synced, settings)
    for key in keys:
        set_override(synced, key, "pathways", "add", "owner@example.org", settings=settings)
    runner = CliRunner()
    files = [
        str(ROOT / "bench" / "data" / n) for n in ("prong_holdout3.json", "prong_holdout4.json")
    ]
    res = runner.invoke(
        cli,
        ["prongs", "train", "--labels", files[0], "--labels", files[1], "--out", str(out)],
        env=env,
    )
    assert res.exit_code == 0, res.output
    model = json.loads(out.read_text(encoding="utf-8"))
    library_works = model["meta"]["documents"] - 118
    assert library_works >= 2, "prong: tagged items and the override were learned from"
    assert model["prongs"]["pathways"]["weights"]["zine"] > 0, "the owners' decisions count"
    assert f'model = "{out}"' in res.output
    # point the settings at it and retag: assignments now carry its reasons
    own = make_settings(tmp_path, zotero, prongs={"model": str(out)})
    retag(synced, own)
    from tests.prongs.test_tagging import _computed

    reasons = [r for row in _computed(synced).values() for r in row["reasons"]]
    assert any(r.get("kind") == "model" for r in reasons)
    # bad input: unknown prong id in a labels file, unreadable file
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"items": [{"title": "x", "labels": ["policy"]}]}), encoding="utf-8")
    res = runner.invoke(cli, ["prongs", "train", "--labels", str(bad), "--out", str(out)], env=env)
    assert res.exit_code == 2 and "unknown prong id 'policy'" in res.output
    res = runner.invoke(
        cli,
        ["prongs", "train", "--labels", str(tmp_path / "none.json"), "--out", str(out)],
        env=env,
    )
    assert res.exit_code == 2 and "cannot read labelled works" in res.output


def test_item_page_shows_the_model_reason(client, synced, library):
    rules = load_rules(None)
    from sqlalchemy import select

    from biblio import storage as st

    with st.connect(synced) as conn:
        rows = conn.execute(
            select(st.item_prongs.c.item_key, st.item_prongs.c.reasons).where(
                st.item_prongs.c.source.in_(("rules", "model"))
            )
        ).all()
    keyed = [
        (k, r) for k, r in rows if any(x.get("kind") == "model" and x.get("counted") for x in r)
    ]
    assert keyed and rules.model is not None
    key = keyed[0][0]
    page = client.get(f"/items/{key}").get_data(as_text=True)
    assert "learned vocabulary: probability" in page


# -- borderline verdicts: stored at retag, reviewed by owners -------------------------


def test_doubt_kinds(tmp_path):
    from biblio.prongs.tagger import doubt

    rules = _rules(_tiny_model(tmp_path, {"makerspace": 8.0, "zine": 3.5}))
    cases = {
        "A makerspace for every branch": "model-only",
        "Career ladders for the reading room": "vetoed",
        "Career ladders and zine making": "weak",
        "Opening hours": None,
    }
    for title, kind in cases.items():
        [ev] = evaluate_item({"title": title}, {}, rules)
        assert doubt(ev, rules) == kind, title
    near = _rules(_tiny_model(tmp_path, {"zine": 3.95}))  # p = 0.4875, just under 0.5
    [ev] = evaluate_item({"title": "Zine day"}, {}, near)
    assert not ev.assigned and doubt(ev, near) == "near-miss"
    [ev] = evaluate_item({"title": "Zine day", "tags": [{"tag": "prong:pathways"}]}, {}, near)
    assert doubt(ev, near) is None, "ground truth is never doubtful"


def test_retag_stores_doubts_and_the_review_queue_skips_decided_items(
    synced, tmp_path, zotero, library
):
    from biblio import storage as st
    from biblio.prongs.store import review_queue

    tiny = _tiny_model(tmp_path, {"makerspace": 8.0, "zine": 3.5})
    settings = make_settings(
        tmp_path,
        zotero,
        prongs={
            "model": str(tiny),
            "model_confirm": 0.3,
            "pathways": {"patterns": [{"phrase": "career ladder*", "weight": 4}]},
        },
    )
    keys = {
        library.add_item({"title": t}): kind
        for t, kind in (
            ("A makerspace for every branch", "model-only"),
            ("Career ladders for the reading room", "vetoed"),
            ("Career ladders and zine making", "weak"),
        )
    }
    run_sync(synced, settings)
    result = retag(synced, settings)
    assert result.doubts >= 3 and "borderline for owners to review" in result.summary()
    with st.connect(synced) as conn:
        rows, total = review_queue(conn, prong="pathways", limit=500)
    found = {r["item_key"]: r["verdict"] for r in rows}
    assert {k: found.get(k) for k in keys} == keys
    assert total == len(rows)
    assert [r["item_key"] for r in rows][:1] == [
        min(rows, key=lambda r: abs(r["probability"] - 0.5))["item_key"]
    ], "most uncertain first"
    decided = next(iter(keys))
    set_override(synced, decided, "pathways", "remove", "owner@example.org", settings=settings)
    with st.connect(synced) as conn:
        rows, total2 = review_queue(conn, prong="pathways", limit=500)
        only_vetoed, _n = review_queue(conn, verdict="vetoed", limit=500)
    assert decided not in {r["item_key"] for r in rows} and total2 == total - 1
    assert {r["verdict"] for r in only_vetoed} == {"vetoed"}
    # an edit in Zotero retags the item and rebuilds its doubts
    vetoed = next(k for k, v in keys.items() if v == "vetoed")
    library.update_item(vetoed, title="Opening hours")
    run_sync(synced, settings)
    with st.connect(synced) as conn:
        rows, _n = review_queue(conn, prong="pathways", limit=500)
    assert vetoed not in {r["item_key"] for r in rows}


def test_evaluate_cli_scores_labelled_files_and_the_librarys_decisions(
    synced, settings, library, tmp_path
):
    env = _cli_env(tmp_path, settings)
    labels = tmp_path / "labels.json"
    labels.write_text(
        json.dumps(
            {
                "items": [
                    {
                        "key": "AAAAAAAA",
                        "title": "Unionization of academic librarians and pay equity "
                        "with teaching faculty",
                        "labels": ["worker-equity"],
                    },
                    {
                        "key": "BBBBBBBB",
                        "title": "Weeding the picture-book collection",
                        "labels": [],
                    },
                    {
                        "key": "CCCCCCCC",
                        "title": "Weeding the picture-book collection again",
                        "labels": ["pathways"],
                    },
                ]
            }
        ),
        encoding="utf-8",
    )
    runner = CliRunner()
    res = runner.invoke(cli, ["prongs", "evaluate", "--labels", str(labels)], env=env)
    assert res.exit_code == 0, res.output
    assert "3 labelled works; rules + learned vocabulary" in res.output
    line = next(x for x in res.output.splitlines() if x.startswith("pathways"))
    assert line.split()[-3:] == ["0", "0", "1"], line  # tp fp fn: the made-up label is missed
    assert "CCCCCCCC +[] -['pathways']" in res.output
    rules_only = runner.invoke(
        cli,
        ["prongs", "evaluate", "--labels", str(labels), "--rules-only", "--no-show-errors"],
        env=env,
    )
    assert "rules only" in rules_only.output and "disagreements" not in rules_only.output
    # the library's decided items: prong: tags are hidden, so the tagger must find them
    lib = runner.invoke(cli, ["prongs", "evaluate", "--from-library"], env=env)
    assert lib.exit_code == 0, lib.output
    n = int(lib.output.split(" labelled works")[0])
    assert n >= 1 and "macro-F1" in lib.output
    none = runner.invoke(cli, ["prongs", "evaluate"], env=env)
    assert none.exit_code == 2 and "no labelled works" in none.output
