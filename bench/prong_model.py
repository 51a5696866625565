"""Rules + learned vocabulary (``biblio/prongs/model.py``): design by CV, one blind score.

REQUIRES scikit-learn (the ``learn`` extra) for training; scoring uses biblio's own code.

    .venv/bin/python bench/prong_model.py cv [--sets dev,h1,...] [--blind h3,h4]
    .venv/bin/python bench/prong_model.py holdout h5      # the pre-registered design, once
    .venv/bin/python bench/prong_model.py report          # out-of-fold figures per set
    .venv/bin/python bench/prong_model.py build           # biblio/data/prong_model.json

Every labelled set is (key, Zotero data, gold prongs). The rules see only the text the
works bring (title, abstract, publication; tags when the set has them, never ``prong:``).
CV: repeated k-fold; the model is trained on the other folds; the rules are fixed. The
rules were tuned on some sets (dev, h1, h2), so every design that uses them is judged on
the rows of rules-blind sets (``--blind``) as well as on all rows.

Designs: rules; model (p >= t); or (rules, or p >= t); veto-or ((rules and p >= lo) or p >= t:
the model removes the rules' matches it finds very unlikely and adds its confident ones);
blend (logit p + b * min(rules score / threshold, 2) >= logit t).

Record (2026-11-23), fixed BEFORE holdout-5 was scored. CV 5-fold x 3 on dev, h1-h4 and
train-5 (535 works; rules-blind rows: h3, h4, train-5 = 253). Rules alone: all 0.848,
blind 0.723 (pathways 0.642). Model (C=10, t=0.5): all 0.866, blind 0.868. veto-or C=10
t=0.5 lo=0.4: all 0.877, blind 0.872 [0.856, 0.866, 0.894]; blend C=10 t=0.5 b=0.5 blind
0.871; or-designs 0.82-0.83 blind (the rules' false friends come back). C=30 is no
better. Chosen: veto-or, C=10, assign 0.5, confirm 0.4 (DESIGN). Stop words removed (a
function-word list; negations kept) so that reasons name content words; CV unchanged
(model blind 0.890 vs 0.885 on the 400 works before train-5). Ship rule, fixed in
advance: biblio ships the design if its holdout-5 macro-F1 is above the rules'.

Holdout-5 (80 works, blind, scored once; model trained on the 535): rules 0.671
[0.556, 0.755]; model 0.821 [0.749, 0.879]; design 0.842 [0.773, 0.898] (mlis-access P 0.83
R 0.90 F1 0.864, pathways 0.80/0.80/0.800, worker-equity 0.86/0.86/0.864); design - rules
+0.176 [+0.084, +0.280] (bootstrap 95%). Shipped. The shipped model is then trained on
every set (holdout-5 included), so later figures on these sets are in-sample.

After holdout-5: terms seen in one training work only are dropped (min_df 2): 2,899 terms
instead of 16,640 (the file shrinks from 2.6 to about 0.4 MB), CV unchanged within noise
(design blind 0.869 vs 0.872; model 0.873 vs 0.868). Holdout-6 judges that version.

Before holdout-6, with train-6 (135 more works): CV 5x3 on dev, h1-h5, t5, t6 (750 works;
rules-blind rows h3, h4, h5, t5, t6 = 468). Rules alone: all 0.793, blind 0.692 (pathways
0.585). Model t=0.5: blind 0.864. veto-or t=0.5 lo=0.4: all 0.871, blind 0.865 [0.884,
0.829, 0.883]; blend t=0.5 b=0.5 blind 0.864. The design stays as it is (DESIGN, min_df 2).
Holdout-6 is scored once with the model trained on those 750.

Holdout-6 (81 works, blind, scored once): rules 0.727 [0.626, 0.808]; model 0.785 [0.688,
0.865]; design 0.796 [0.702, 0.872] (mlis-access P 0.94 R 0.81 F1 0.872, pathways
0.81/0.57/0.667, worker-equity 0.85/0.85/0.850); design - rules +0.070 [-0.029, +0.170].
Harder than holdout-5: a third of it is non-English-titled literature (Brazil, Germany,
the Netherlands, Norway) and special/law/health libraries, whose routes into the
profession (Referendariat, scopes of practice, law-librarian pathways) neither the rules
nor the model had seen. Since then the shipped model is trained on every set (831 works).

``report`` on all 831 (out-of-fold, 5-fold x 3): design 0.871 (rules 0.786); on the 549
works the rules never saw (h3-h6, t5, t6) design 0.863 [0.893, 0.824, 0.872] against rules
0.697 [0.740, 0.583, 0.768]; on the dev set 0.870 (the rules, tuned on it, 0.954).
Tried after holdout-6 and not kept (CV on the 549, design): word 1-2 grams 0.863; plus
character 4-grams 0.855; plus the rules' matched groups as features 0.859; plus a static
sentence embedding (model2vec distilled from all-MiniLM-L6-v2) 0.853 to 0.820.
A second reader labelling holdouts 5 and 6 from the same summaries agreed with the first
at macro-F1 0.988, so the gap to 0.90 is the tagger's, not the labels'.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import prongs as bench  # noqa: E402

from biblio.prongs import load_rules  # noqa: E402
from biblio.prongs.model import dump_model, model_text, parse_model, train  # noqa: E402

PRONGS = ["mlis-access", "pathways", "worker-equity"]
DATA = ROOT / "bench" / "data"
SETS = {
    "h1": DATA / "prong_holdout.json",
    "h2": DATA / "prong_holdout2.json",
    "h3": DATA / "prong_holdout3.json",
    "h4": DATA / "prong_holdout4.json",
    "t5": DATA / "prong_train5.json",
    "h5": DATA / "prong_holdout5.json",
    "t6": DATA / "prong_train6.json",
    "h6": DATA / "prong_holdout6.json",
}

Row = tuple[str, dict[str, Any], set[str], str]
#: The shipped design (C of the logistic regressions; assign and confirm probabilities).
DESIGN = {"C": 10.0, "assign": 0.5, "confirm": 0.4, "min_df": 2}
TRAIN_SETS = "dev,h1,h2,h3,h4,h5,h6,t5,t6"


def load(name: str) -> list[Row]:
    if name == "dev":
        items, _c, _n, gold, _t = bench.load_dev()
        return [
            (k, bench._strip_prefix_tags(items[k], "prong:"), gold[k], "dev") for k in sorted(gold)
        ]
    raw = json.loads(SETS[name].read_text(encoding="utf-8"))
    return [
        (
            it["key"],
            {k: v for k, v in it.items() if k not in ("labels", "source", "note")},
            set(it["labels"]),
            name,
        )
        for it in raw["items"]
    ]


def rules_scores(rows: list[Row]) -> tuple[Any, Any]:
    """(assigned 0/1, score / threshold) of the default rules, per row and prong."""
    rules = load_rules({"prongs": {"model": ""}})  # the rules alone
    from biblio.prongs import evaluate_item

    assigned, ratio = [], []
    for _k, data, _g, _s in rows:
        evs = {e.prong: e for e in evaluate_item({**data, "collections": []}, {}, rules, [])}
        assigned.append([int(evs[p].assigned) for p in PRONGS])
        ratio.append([evs[p].score / evs[p].threshold for p in PRONGS])
    return np.array(assigned), np.array(ratio)


def gold_matrix(rows: list[Row]) -> Any:
    return np.array([[int(p in g) for p in PRONGS] for _k, _d, g, _s in rows])


def confusion(gold: Any, pred: Any) -> tuple[Any, Any, Any]:
    """Per prong (tp, fp, fn) of 0/1 matrices."""
    return (gold & pred).sum(0), ((1 - gold) & pred).sum(0), (gold & (1 - pred)).sum(0)


def f1s(gold: Any, pred: Any) -> Any:
    tp, fp, fn = confusion(gold, pred)
    return 2 * tp / np.maximum(2 * tp + fp + fn, 1)


def fit_predict(train_rows: list[Row], test_rows: list[Row], c: float) -> Any:
    obj = train(
        [model_text(d) for _k, d, _g, _s in train_rows],
        [g for _k, _d, g, _s in train_rows],
        PRONGS,
        c=c,
        min_df=DESIGN["min_df"],
    )
    model = parse_model(obj)
    out = []
    for _k, d, _g, _s in test_rows:
        vec = model.vector(model_text(d))
        out.append([model.score(vec, pm)[0] for pm in model.prongs])
    return np.array(out)


def combine(design: str, p: Any, rules: Any, t: float, lo: float, ratio: Any = None) -> Any:
    m = (p >= t).astype(int)
    if design == "model":
        return m
    if design == "or":
        return np.maximum(rules, m)
    if design == "veto-or":
        return np.maximum(rules * (p >= lo), m)
    if design == "blend":  # logit(p) + lo * min(rules score / threshold, 2) >= logit(t)
        z = np.log(np.clip(p, 1e-9, 1 - 1e-9) / np.clip(1 - p, 1e-9, 1)) + lo * np.minimum(ratio, 2)
        return (z >= np.log(t / (1 - t))).astype(int)
    raise ValueError(design)


def cv(sets: list[str], blind: list[str], repeats: int, folds: int) -> None:
    from sklearn.model_selection import KFold

    rows = [r for s in sets for r in load(s)]
    gold = gold_matrix(rows)
    rules, ratio = rules_scores(rows)
    bl = np.array([r[3] in blind for r in rows])
    print(
        f"rows {len(rows)} ({', '.join(sets)}), positives {gold.sum(0).tolist()}, "
        f"rules-blind rows ({', '.join(blind)}) {int(bl.sum())}"
    )
    every, blind_f = f1s(gold, rules), f1s(gold[bl], rules[bl])
    print(
        f"rules: all {every.mean():.3f} {every.round(3).tolist()}  "
        f"blind {blind_f.mean():.3f} {blind_f.round(3).tolist()}"
    )
    grid = [("model", t, 0.0) for t in (0.4, 0.5, 0.6)]
    grid += [("or", t, 0.0) for t in (0.6, 0.7)]
    grid += [("veto-or", t, lo) for t, lo in itertools.product((0.5, 0.6, 0.7), (0.2, 0.3, 0.4))]
    grid += [("blend", t, b) for t, b in itertools.product((0.5, 0.6, 0.7), (0.5, 1.0, 1.5, 2.0))]
    for c in (10.0, 30.0):
        probs = np.zeros((repeats, len(rows), len(PRONGS)))
        for rep in range(repeats):
            for tr, va in KFold(folds, shuffle=True, random_state=rep).split(rows):
                probs[rep][va] = fit_predict([rows[i] for i in tr], [rows[i] for i in va], c)
        for design, t, lo in grid:
            preds = [combine(design, p, rules, t, lo, ratio) for p in probs]
            a = np.array([f1s(gold, q).mean() for q in preds])
            b = np.array([f1s(gold[bl], q[bl]) for q in preds])
            print(
                f"C={c:<4g} {design:<8} t={t:<4} lo={lo:<5} all {a.mean():.3f}+-{a.std():.3f}  "
                f"blind {b.mean(1).mean():.3f}+-{b.mean(1).std():.3f} "
                f"{b.mean(0).round(3).tolist()}"
            )


def build(sets: list[str], c: float, out: Path) -> None:
    """Train the shipped model (biblio/data/prong_model.json) on every labelled set given."""
    rows = [r for s in sets for r in load(s)]
    obj = train(
        [model_text(d) for _k, d, _g, _s in rows],
        [g for _k, _d, g, _s in rows],
        PRONGS,
        c=c,
        threshold=DESIGN["assign"],
        min_df=DESIGN["min_df"],
        meta={
            "trained_on": {s: sum(1 for r in rows if r[3] == s) for s in sets},
            "built_by": "bench/prong_model.py build",
            "design": DESIGN,
        },
    )
    dump_model(obj, out)
    print(f"{out}: {len(rows)} works, {len(obj['idf'])} terms, {out.stat().st_size / 1e6:.2f} MB")


def holdout(name: str, sets: list[str], boot: int) -> None:
    """Score rules, model and the design on a held-out set, the model trained on ``sets``."""
    test = load(name)
    rows = [r for s in sets if s != name for r in load(s)]
    gold = gold_matrix(test)
    rules, ratio = rules_scores(test)
    p = fit_predict(rows, test, DESIGN["C"])
    preds = {
        "rules": rules,
        "model": combine("model", p, rules, DESIGN["assign"], 0.0),
        "design": combine("veto-or", p, rules, DESIGN["assign"], DESIGN["confirm"]),
    }
    rng = np.random.default_rng(0)
    samples = [rng.integers(0, len(test), len(test)) for _ in range(boot)]
    print(
        f"{name}: {len(test)} works, positives {gold.sum(0).tolist()}; model trained on "
        f"{len(rows)} ({', '.join(s for s in sets if s != name)}); design {DESIGN}"
    )
    boots = {}
    for label, pred in preds.items():
        f = f1s(gold, pred)
        tp, fp, fn = confusion(gold, pred)
        boots[label] = np.array([f1s(gold[i], pred[i]).mean() for i in samples])
        lo, hi = np.percentile(boots[label], [2.5, 97.5])
        per = "  ".join(
            f"{q} P {tp[j] / max(tp[j] + fp[j], 1):.2f} "
            f"R {tp[j] / max(tp[j] + fn[j], 1):.2f} F1 {f[j]:.3f}"
            for j, q in enumerate(PRONGS)
        )
        print(f"  {label:<7} macro-F1 {f.mean():.3f} [{lo:.3f}, {hi:.3f}]  {per}")
    for label in ("model", "design"):
        d = boots[label] - boots["rules"]
        lo, hi = np.percentile(d, [2.5, 97.5])
        print(f"  {label} - rules {d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]")
    design = preds["design"]
    for j, (key, data, g, _s) in enumerate(test):
        if (design[j] != gold[j]).any():
            got = [q for i, q in enumerate(PRONGS) if design[j, i]]
            print(
                f"    {key} gold={sorted(g)} design={got} rules={rules[j].tolist()} "
                f"p={p[j].round(2).tolist()} {(data.get('title') or '')[:70]}"
            )


def report(sets: list[str], repeats: int) -> None:
    """Out-of-fold macro-F1 of the rules and of the shipped design, per labelled set."""
    from sklearn.model_selection import KFold

    rows = [r for s in sets for r in load(s)]
    gold = gold_matrix(rows)
    rules, _ratio = rules_scores(rows)
    probs = np.zeros((repeats, len(rows), len(PRONGS)))
    for rep in range(repeats):
        for tr, va in KFold(5, shuffle=True, random_state=rep).split(rows):
            probs[rep][va] = fit_predict([rows[i] for i in tr], [rows[i] for i in va], DESIGN["C"])
    names = np.array([r[3] for r in rows])
    masks = [(s, names == s) for s in sets] + [("all", names == names)]
    masks.append(("rules-blind", ~np.isin(names, ["dev", "h1", "h2"])))
    print(f"out-of-fold, 5-fold x {repeats}, design {DESIGN}; per prong {PRONGS}")
    for label, mask in masks:
        r = f1s(gold[mask], rules[mask])
        d = np.mean(
            [
                f1s(
                    gold[mask],
                    combine("veto-or", p, rules, DESIGN["assign"], DESIGN["confirm"])[mask],
                )
                for p in probs
            ],
            0,
        )
        print(
            f"  {label:<12} n={int(mask.sum()):<4} rules {r.mean():.3f} {r.round(3).tolist()}"
            f"  design {d.mean():.3f} {d.round(3).tolist()}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("cv")
    a.add_argument("--sets", default="dev,h1,h2,h3,h4")
    a.add_argument("--blind", default="h3,h4")
    a.add_argument("--repeats", type=int, default=3)
    a.add_argument("--folds", type=int, default=5)
    b = sub.add_parser("build")
    b.add_argument("--sets", default=TRAIN_SETS)
    b.add_argument("--out", type=Path, default=ROOT / "biblio" / "data" / "prong_model.json")
    r = sub.add_parser("report")
    r.add_argument("--sets", default=TRAIN_SETS)
    r.add_argument("--repeats", type=int, default=3)
    h = sub.add_parser("holdout")
    h.add_argument("name")
    h.add_argument("--sets", default=TRAIN_SETS)
    h.add_argument("--bootstrap", type=int, default=2000)
    args = ap.parse_args()
    if args.cmd == "cv":
        cv(args.sets.split(","), args.blind.split(","), args.repeats, args.folds)
    elif args.cmd == "report":
        report(args.sets.split(","), args.repeats)
    elif args.cmd == "build":
        build(args.sets.split(","), DESIGN["C"], args.out)
    else:
        holdout(args.name, args.sets.split(","), args.bootstrap)


if __name__ == "__main__":
    main()
