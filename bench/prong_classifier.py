"""Text-classifier experiment for prong tagging: design choice by CV, then one holdout score.

REQUIRES scikit-learn (and numpy). scikit-learn is NOT a biblio dependency and nothing in
biblio imports it: this is a bench script only. Install it into the venv to run it:

    .venv/bin/pip install scikit-learn
    .venv/bin/python bench/prong_classifier.py                 # CV of the design grid
    .venv/bin/python bench/prong_classifier.py --holdout h4    # fixed design vs rules on a holdout

Classifier: TF-IDF over word 1-2 grams (sublinear tf, accents stripped, lower-cased, optional
English stop list) and one-vs-rest logistic regression (class_weight balanced), one model per
prong. Training text is title, short title, abstract, publication/book title and the item's
non-``prong:`` tags; scoring text is the same without tags (the holdouts carry none). Rules are
the default rules of ``biblio/data/prong_rules.toml`` on the same text (no tags, collections
or notes), i.e. ``bench/prongs.py``'s text-only setting.

Combinations compared by repeated k-fold CV on the training sets: classifier only (p >= t);
OR (rules assign, or p >= t); fallback (the rules' verdict when they assign anything, else
p >= t). The rules were tuned on dev, holdout-1 and holdout-2, so on those rows they are
in-sample and every rule-involving score is optimistic; the script therefore also reports
each combination on the rows of a set the rules never saw (``--blind``, default h3).

Record (2026-11-23). Training sets dev+h1+h2+h3 (339 works), 5x5 CV. Classifier only, t=0.4:
no stop list C=10 0.841+-0.009, English stop list C=30 0.842+-0.008 (within 1 SD: smaller C,
no stop list). OR best 0.928 and fallback 0.924 on all 339, but on the h3 rows (rules blind)
OR 0.76-0.80 and fallback 0.74-0.80 against 0.884 for the classifier alone (rules alone 0.687).
Chosen before holdout-4 was scored: classifier only, no stop list, C=10, t=0.4. Holdout-4
(61 works, scored once): rules 0.784 [0.688, 0.856], classifier 0.808 [0.712, 0.886]
(bootstrap 95% CIs; difference +0.024 [-0.066, 0.112]). Below the 0.85 ship bar, so the
classifier was not shipped; its main errors were LIS-education false friends (cataloguing
and metadata education read as mlis-access) and support-staff pay read as pathways.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

try:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold
except ImportError as exc:  # pragma: no cover - depends on the environment
    sys.exit(
        f"bench/prong_classifier.py needs scikit-learn and numpy ({exc}); "
        "install with: .venv/bin/pip install scikit-learn"
    )

from prong_model import PRONGS, confusion, f1s, gold_matrix, load  # noqa: E402

from biblio.prongs import load_rules, tag_item  # noqa: E402

#: The design fixed by CV before holdout-4 was scored (see the module docstring).
CHOSEN = {"stop": None, "C": 10.0, "threshold": 0.4, "mode": "clf"}


def text(data: dict[str, Any], tags: bool) -> str:
    parts = [
        data.get(f) or ""
        for f in ("title", "shortTitle", "abstractNote", "publicationTitle", "bookTitle")
    ]
    if tags:
        parts += [
            str(t.get("tag", ""))
            for t in data.get("tags") or []
            if not str(t.get("tag", "")).casefold().startswith("prong:")
        ]
    return " . ".join(p for p in parts if p)


def rules_matrix(rows: list) -> Any:
    rules = load_rules({"prongs": {"model": ""}})  # the rules alone, as recorded above
    out = []
    for _k, data, _g, _s in rows:
        bare = {**data, "tags": [], "collections": []}
        assigned = {a.prong for a in tag_item(bare, {}, rules, [])}
        out.append([int(p in assigned) for p in PRONGS])
    return np.array(out)


def fit(texts: list[str], gold: Any, stop: str | None, c: float) -> tuple[Any, list[Any]]:
    vec = TfidfVectorizer(
        ngram_range=(1, 2),
        sublinear_tf=True,
        strip_accents="unicode",
        lowercase=True,
        stop_words=stop,
    )
    x = vec.fit_transform(texts)
    models = [
        LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, gold[:, j])
        for j in range(len(PRONGS))
    ]
    return vec, models


def proba(model: tuple[Any, list[Any]], texts: list[str]) -> Any:
    vec, models = model
    x = vec.transform(texts)
    return np.column_stack([m.predict_proba(x)[:, 1] for m in models])


def combine(mode: str, probs: Any, rules: Any, t: float) -> Any:
    clf = (probs >= t).astype(int)
    if mode == "clf":
        return clf
    if mode == "or":
        return np.maximum(rules, clf)
    silent = (rules.sum(1) == 0)[:, None]  # fallback: rules unless they assign nothing
    return np.where(silent, clf, rules)


def cross_validate(train: list[str], blind: str, repeats: int, folds: int) -> None:
    rows = [r for name in train for r in load(name)]
    gold, rules = gold_matrix(rows), rules_matrix(rows)
    t_train = [text(d, True) for _k, d, _g, _s in rows]
    t_score = [text(d, False) for _k, d, _g, _s in rows]
    blind_rows = np.array([s == blind for *_x, s in rows])
    print(
        f"training rows {len(rows)} ({', '.join(train)}); positives {gold.sum(0).tolist()}; "
        f"rules-blind rows ({blind}) {int(blind_rows.sum())}"
    )
    print(
        f"rules only: all rows {f1s(gold, rules).mean():.3f} (in-sample where tuned); "
        f"{blind} rows {f1s(gold[blind_rows], rules[blind_rows]).mean():.3f}"
    )
    grid = {
        "clf": (0.3, 0.4, 0.5, 0.6),
        "or": (0.4, 0.5, 0.6, 0.7, 0.8),
        "fallback": (0.3, 0.4, 0.5, 0.6),
    }
    print(f"\n{'stop':<8}{'C':>5}  {'mode':<9}{'t':>4}  {'CV macro':>14}  {blind + ' rows':>14}")
    for stop, c in itertools.product((None, "english"), (1.0, 3.0, 10.0, 30.0)):
        probs = np.zeros((repeats, len(rows), len(PRONGS)))
        for rep in range(repeats):
            for tr, va in KFold(folds, shuffle=True, random_state=rep).split(rows):
                model = fit([t_train[i] for i in tr], gold[tr], stop, c)
                probs[rep][va] = proba(model, [t_score[i] for i in va])
        for mode, ts in grid.items():
            for t in ts:
                preds = [combine(mode, p, rules, t) for p in probs]
                allm = np.array([f1s(gold, q).mean() for q in preds])
                blm = np.array([f1s(gold[blind_rows], q[blind_rows]).mean() for q in preds])
                print(
                    f"{stop or 'none':<8}{c:>5g}  {mode:<9}{t:>4}  "
                    f"{allm.mean():.3f}+-{allm.std():.3f}   {blm.mean():.3f}+-{blm.std():.3f}"
                )


def score_holdout(train: list[str], holdout: str, boot: int) -> None:
    rows = [r for name in train if name != holdout for r in load(name)]
    test = load(holdout)
    model = fit(
        [text(d, True) for _k, d, _g, _s in rows], gold_matrix(rows), CHOSEN["stop"], CHOSEN["C"]
    )
    gold = gold_matrix(test)
    rules = rules_matrix(test)
    probs = proba(model, [text(d, False) for _k, d, _g, _s in test])
    design = combine(CHOSEN["mode"], probs, rules, CHOSEN["threshold"])
    rng = np.random.default_rng(0)
    n = len(test)
    samples = [rng.integers(0, n, n) for _ in range(boot)]
    boots = {
        name: np.array([f1s(gold[i], pred[i]).mean() for i in samples])
        for name, pred in (("rules", rules), ("design", design))
    }
    used = ", ".join(t for t in train if t != holdout)
    print(f"{holdout}: {n} works; trained on {len(rows)} ({used}); design {CHOSEN}")
    for name, pred in (("rules", rules), ("design", design)):
        f = f1s(gold, pred)
        tp, fp, fn = confusion(gold, pred)
        lo, hi = np.percentile(boots[name], [2.5, 97.5])
        per = "  ".join(f"{p} {f[j]:.3f} ({tp[j]}/{fp[j]}/{fn[j]})" for j, p in enumerate(PRONGS))
        print(f"  {name:<7} macro-F1 {f.mean():.3f} [{lo:.3f}, {hi:.3f}]  {per}  (tp/fp/fn)")
    diff = boots["design"] - boots["rules"]
    lo, hi = np.percentile(diff, [2.5, 97.5])
    print(f"  design - rules {diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]")
    for j, (key, data, g, _s) in enumerate(test):
        if (design[j] != gold[j]).any():
            got = [p for i, p in enumerate(PRONGS) if design[j, i]]
            print(
                f"    {key} gold={sorted(g)} design={got} p={probs[j].round(2).tolist()} "
                f"{(data.get('title') or '')[:60]}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default="dev,h1,h2,h3", help="comma-separated: dev,h1,h2,h3,h4")
    ap.add_argument("--blind", default="h3", help="a training set the rules were never tuned on")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--holdout", help="score the chosen design and the rules on this set")
    ap.add_argument("--bootstrap", type=int, default=2000)
    args = ap.parse_args()
    train = [t.strip() for t in args.train.split(",") if t.strip()]
    if args.holdout:
        score_holdout(train, args.holdout, args.bootstrap)
    else:
        cross_validate(train, args.blind, args.repeats, args.folds)


if __name__ == "__main__":
    main()
