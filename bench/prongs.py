"""Benchmark the prong tagger: accuracy on the labelled dev set and retag speed.

Accuracy: the default rules against ``tests/data/prong_labels.json`` (labels made by
reading each work of the sample library against the prong definitions), per prong
precision, recall and F1 and macro-F1, in three settings: everything Zotero gives;
without the explicit ``prong:`` tags (so items carrying them do not score for free);
and text only (title, abstract, publication, type: what a work brings with it
before the group files it). Then the same on a split: the keys visible while the
rules were first written (``bench/prongs_seen_keys.json``, 66 works) and the rest,
labelled later; and a fixed hash split into halves: a second tuning round looked only
at half A's confusions, so half B is what that round never saw. The confusions list
each false positive and false negative with key and title. Then the held-out sets
(``bench/data/prong_holdout.json``, seen since its first run, and
``prong_holdout2.json``, blind): real LIS works outside the sample library,
labelled before the tagger ever ran on them, scored on their text alone (they carry
no group tags); rules must never be tuned on its confusions. Speed: N top-level items
(default 10,000), synthetic and cloned LIS works, are synced through the loopback
stand-in into a temporary SQLite file and ``biblio prongs retag``'s work is timed.

    .venv/bin/python bench/prongs.py [--items 10000] [--no-speed] [--no-accuracy] [--no-holdout]

Snapshot check (for optimisations that must not change any result): ``--snapshot-write
PATH`` writes every evaluation (score, assignment, source, reasons, assigned or not) of
every sample-library work in the three settings above and of both held-out sets, plus
the ``item_prongs`` rows a retag of ``--snapshot-items`` LIS clones stores;
``--snapshot-check PATH`` recomputes them and fails unless they are byte-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from biblio.prongs import load_rules, tag_item  # noqa: E402
from biblio.prongs.metrics import scores, table_lines  # noqa: E402
from biblio.prongs.rules import Rules  # noqa: E402

SAMPLE = ROOT / "biblio" / "data" / "sample_library.json"
LABELS = ROOT / "tests" / "data" / "prong_labels.json"
SEEN = ROOT / "bench" / "prongs_seen_keys.json"
HOLDOUT = ROOT / "bench" / "data" / "prong_holdout.json"
HOLDOUT2 = ROOT / "bench" / "data" / "prong_holdout2.json"
HOLDOUT3 = ROOT / "bench" / "data" / "prong_holdout3.json"
_SEEN = "; the shipped learned vocabulary is trained on it, so with it on this is in-sample"
HELD_OUT = [
    ("holdout", HOLDOUT, "Held-out set 1 (64 real LIS works; rules tuned on it" + _SEEN + ")"),
    ("holdout2", HOLDOUT2, "Held-out set 2 (56; rules tuned on it" + _SEEN + ")"),
    ("holdout3", HOLDOUT3, "Held-out set 3 (57; rules never tuned on it" + _SEEN + ")"),
    (
        "holdout4",
        ROOT / "bench" / "data" / "prong_holdout4.json",
        "Held-out set 4 (61; rules never tuned on it" + _SEEN + ")",
    ),
    (
        "train5",
        ROOT / "bench" / "data" / "prong_train5.json",
        "Training set 5 (135; rules never tuned on it" + _SEEN + ")",
    ),
    (
        "holdout5",
        ROOT / "bench" / "data" / "prong_holdout5.json",
        "Held-out set 5 (80; blind for rules; scored once blind by bench/prong_model.py"
        + _SEEN
        + ")",
    ),
    (
        "train6",
        ROOT / "bench" / "data" / "prong_train6.json",
        "Training set 6 (135; rules never tuned on it" + _SEEN + ")",
    ),
    (
        "holdout6",
        ROOT / "bench" / "data" / "prong_holdout6.json",
        "Held-out set 6 (81; blind for rules; scored once blind by bench/prong_model.py"
        + _SEEN
        + ")",
    ),
]


def _strip_prefix_tags(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    data = dict(data)
    data["tags"] = [
        t
        for t in data.get("tags") or []
        if not str(t.get("tag", "")).strip().casefold().startswith(prefix)
    ]
    return data


def _text_only(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    data["tags"], data["collections"] = [], []
    return data


def predict(
    items: dict[str, dict[str, Any]],
    collections: dict[str, Any],
    notes: dict[str, list],
    rules: Rules,
    mode: str,
) -> dict[str, set[str]]:
    out = {}
    for key, data in items.items():
        if mode in ("no-prefix", "text"):
            data = _strip_prefix_tags(data, rules.tag_prefix or "prong:")
        if mode == "text":
            data = _text_only(data)
        item_notes = notes.get(key, []) if mode != "text" else []
        out[key] = {a.prong for a in tag_item(data, collections, rules, item_notes)}
    return out


def _print_table(title: str, result: dict[str, Any]) -> None:
    print(f"\n{title} (n={result['n']})")
    for line in table_lines(result):
        print(f"  {line}")


def load_dev() -> tuple[dict, dict, dict, dict, dict]:
    lib = json.loads(SAMPLE.read_text(encoding="utf-8"))
    labels = json.loads(LABELS.read_text(encoding="utf-8"))["labels"]
    collections = {
        c["key"]: {"name": c.get("name", ""), "parent_key": c.get("parentCollection")}
        for c in lib.get("collections", [])
    }
    items, titles, notes = {}, {}, {}
    for data in lib["items"]:
        if data.get("itemType") == "note" and data.get("parentItem"):
            notes.setdefault(data["parentItem"], []).append(data.get("note") or "")
        if data.get("key") in labels:
            items[data["key"]] = data
            titles[data["key"]] = data.get("title") or ""
    gold = {k: set(v) for k, v in labels.items() if k in items}
    return items, collections, notes, gold, titles


def accuracy(show_confusions: bool = True, rules: Rules | None = None) -> dict[str, Any]:
    rules = rules or load_rules(None)
    prongs = rules.ids()
    items, collections, notes, gold, titles = load_dev()
    missing = sorted(set(json.loads(LABELS.read_text())["labels"]) - set(items))
    if missing:
        print(f"warning: {len(missing)} labelled keys not in the sample library: {missing[:5]}")
    keys = sorted(gold)
    seen = set(json.loads(SEEN.read_text())["keys"]) if SEEN.exists() else set()
    held = [k for k in keys if k not in seen]
    half = [k for k in keys if hashlib.sha1(k.encode()).digest()[0] % 2 == 0]
    other = [k for k in keys if k not in set(half)]
    report: dict[str, Any] = {}
    for mode, title in (
        ("all", "Everything Zotero gives (prong: tags are ground truth)"),
        ("no-prefix", "Without the explicit prong: tags"),
        ("text", "Text only (no tags, collections or notes)"),
    ):
        pred = predict(items, collections, notes, rules, mode)
        res = scores(pred, gold, prongs, keys)
        report[mode] = res
        _print_table(title, res)
        if mode == "no-prefix":
            for name, subset in (
                ("seen while writing rules", [k for k in keys if k in seen]),
                ("held out (labelled later)", held),
                ("hash half A (round-2 tuning looked here)", half),
                ("hash half B (held out from round 2)", other),
            ):
                if subset:
                    r = scores(pred, gold, prongs, subset)
                    report[f"{mode}:{name}"] = r
                    _print_table(f"  without prong: tags, {name}", r)
        if show_confusions and mode in ("no-prefix", "text"):
            print(f"\n  confusions ({mode}):")
            for k in keys:
                fp, fn = pred[k] - gold[k], gold[k] - pred[k]
                if fp or fn:
                    mark = "" if k in seen else " [held out]"
                    print(f"    {k}{mark} +{sorted(fp)} -{sorted(fn)}  {titles[k][:90]}")
    return report


def holdout(
    show_confusions: bool = True,
    path: Path = HOLDOUT,
    title: str = "Held-out set 1 (real LIS works outside the sample, text only; seen since "
    "its first run)",
    rules: Rules | None = None,
) -> dict[str, Any]:
    """The default rules on a held-out set: per prong P/R/F1, macro-F1, confusions."""
    rules = rules or load_rules(None)
    prongs = rules.ids()
    data = json.loads(path.read_text(encoding="utf-8"))
    items = {
        it["key"]: {k: v for k, v in it.items() if k not in ("labels", "source")}
        for it in data["items"]
    }
    gold = {it["key"]: set(it["labels"]) for it in data["items"]}
    unknown = sorted({p for labels in gold.values() for p in labels} - set(prongs))
    if unknown:
        raise SystemExit(f"holdout labels name unknown prongs: {unknown}")
    pred = predict(items, {}, {}, rules, "text")
    keys = sorted(gold)
    res = scores(pred, gold, prongs, keys)
    _print_table(title, res)
    if show_confusions:
        print(f"\n  confusions ({path.name}):")
        for k in keys:
            fp, fn = pred[k] - gold[k], gold[k] - pred[k]
            if fp or fn:
                print(f"    {k} +{sorted(fp)} -{sorted(fn)}  {items[k].get('title', '')[:90]}")
    return res


def _lis_library(n_items: int) -> Any:
    """n_items top-level works cloned from the sample library's (LIS text: many matches)."""
    from biblio.standin.library import StandinLibrary

    lib = json.loads(SAMPLE.read_text(encoding="utf-8"))
    works = [d for d in lib["items"] if not d.get("parentItem")]
    items = []
    for i in range(n_items):
        data = dict(works[i % len(works)])
        data.pop("key", None)
        data.pop("version", None)
        data["title"] = f"{data.get('title', '')} ({i})"
        items.append(data)
    return StandinLibrary.from_dict(
        {"group": lib["group"], "collections": lib["collections"], "items": items}, copy=False
    )


@contextmanager
def _synced(lib: Any) -> Iterator[tuple[Any, Any]]:
    """(engine, settings) of a temporary SQLite cache after syncing ``lib`` through the
    stand-in (the default rules; no settings file, no environment)."""
    from biblio import storage, subscribe_packages
    from biblio.settings import load_settings
    from biblio.standin.server import StandinServer
    from biblio.sync.run import run_sync

    with tempfile.TemporaryDirectory() as tmp, StandinServer(lib) as server:
        path = Path(tmp) / "settings.toml"
        path.write_text(f"[zotero]\nlibrary_id = {lib.group_id}\n", encoding="utf-8")
        settings = load_settings(
            path,
            environ={},
            overrides={
                "zotero": {"base_url": server.url},
                "database": {"url": f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"},
                "sync": {"lock_file": str(Path(tmp) / "sync.lock")},
            },
        )
        engine = storage.open_database(settings["database"]["url"])
        subscribe_packages()  # tagging and search follow every sync
        run_sync(engine, settings)
        try:
            yield engine, settings
        finally:
            storage.dispose_all()


def speed(n_items: int, lis: bool = False) -> float:
    from biblio.prongs import retag
    from biblio.standin.synthetic import synthetic_library

    # n_items top-level items: the generator adds child notes/attachments (~15%) on top.
    lib = _lis_library(n_items) if lis else synthetic_library(int(n_items / 0.85) + 1, seed=7)
    with _synced(lib) as (engine, settings):
        started, cpu = time.perf_counter(), time.process_time()
        result = retag(engine, settings)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
    kind = "LIS works cloned from the sample library" if lis else "synthetic library"
    print(
        f"\nretag, {kind}: {result.items} top-level items (child notes and attachments "
        f"besides), {result.assignments} assignments, {seconds:.2f} s "
        f"(process CPU {cpu:.2f} s; machine is shared, so see uptime)"
    )
    return seconds


def _evaluations(
    items: dict[str, dict[str, Any]],
    collections: dict[str, Any],
    notes: dict[str, list],
    rules: Rules,
    mode: str,
) -> dict[str, Any]:
    from dataclasses import asdict

    from biblio.prongs import evaluate_item

    out = {}
    for key, data in sorted(items.items()):
        if mode in ("no-prefix", "text"):
            data = _strip_prefix_tags(data, rules.tag_prefix or "prong:")
        if mode == "text":
            data = _text_only(data)
        item_notes = notes.get(key, []) if mode != "text" else []
        out[key] = {
            "evaluations": [asdict(e) for e in evaluate_item(data, collections, rules, item_notes)],
            "assignments": [a.as_dict() for a in tag_item(data, collections, rules, item_notes)],
        }
    return out


def _stored_rows(n_items: int) -> list[list[Any]]:
    """``item_prongs`` rows after a retag of n_items LIS clones, keyed by title (unique)."""
    from sqlalchemy import select

    from biblio import storage
    from biblio.prongs import retag

    with _synced(_lis_library(n_items)) as (engine, settings):
        retag(engine, settings)
        ip, it = storage.item_prongs.c, storage.items.c
        with engine.connect() as conn:
            rows = [
                [title, prong, score, source, reasons, version]
                for title, prong, score, source, reasons, version in conn.execute(
                    select(
                        it.title, ip.prong, ip.score, ip.source, ip.reasons, ip.item_version
                    ).join_from(storage.item_prongs, storage.items, it.key == ip.item_key)
                )
            ]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def snapshot(n_items: int) -> str:
    """Every result the tagger gives on the dev library, both held-out sets and a retag."""
    rules = load_rules(None)
    items, collections, notes, _gold, _titles = load_dev()
    lib = json.loads(SAMPLE.read_text(encoding="utf-8"))
    every = {
        d["key"]: d
        for d in lib["items"]
        if not d.get("parentItem") and d.get("itemType") not in ("note", "attachment", "annotation")
    }
    out: dict[str, Any] = {}
    for mode in ("all", "no-prefix", "text"):
        out[f"sample:{mode}"] = _evaluations(every, collections, notes, rules, mode)
    for name, path in (("holdout", HOLDOUT), ("holdout2", HOLDOUT2)):
        data = json.loads(path.read_text(encoding="utf-8"))
        held = {
            it["key"]: {k: v for k, v in it.items() if k not in ("labels", "source")}
            for it in data["items"]
        }
        out[name] = _evaluations(held, {}, {}, rules, "text")
    if n_items:
        out["retag_rows"] = _stored_rows(n_items)
    return json.dumps(out, sort_keys=True, ensure_ascii=False, indent=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-accuracy", action="store_true")
    parser.add_argument("--no-holdout", action="store_true")
    parser.add_argument(
        "--rules-only",
        action="store_true",
        help='Turn the learned vocabulary off ([prongs] model = "").',
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    parser.add_argument("--snapshot-write", type=Path, default=None, metavar="PATH")
    parser.add_argument("--snapshot-check", type=Path, default=None, metavar="PATH")
    parser.add_argument("--snapshot-items", type=int, default=2_000)
    args = parser.parse_args()
    # the shipped configuration (rules + learned vocabulary) unless --rules-only
    rules = load_rules({"prongs": {"model": ""}}) if args.rules_only else load_rules(None)
    if args.snapshot_write or args.snapshot_check:
        text = snapshot(args.snapshot_items)
        if args.snapshot_write:
            args.snapshot_write.write_text(text, encoding="utf-8")
            print(f"snapshot: {len(text)} bytes written to {args.snapshot_write}")
            return
        old = args.snapshot_check.read_text(encoding="utf-8")
        if old != text:
            pairs = zip(old + "\0", text + "\0", strict=False)
            diff = next(i for i, (a, b) in enumerate(pairs) if a != b)
            raise SystemExit(
                f"snapshot differs from {args.snapshot_check} at char {diff}: "
                f"{old[diff - 200 : diff + 200]!r} vs {text[diff - 200 : diff + 200]!r}"
            )
        print(f"snapshot: identical to {args.snapshot_check} ({len(text)} bytes)")
        return
    out: dict[str, Any] = {}
    if not args.no_accuracy:
        out["accuracy"] = accuracy(rules=rules)
    for name, path, title in HELD_OUT if not args.no_holdout else ():
        if path.exists():
            out[name] = holdout(path=path, title=title, rules=rules)
    if not args.no_speed:
        out["retag_seconds"] = speed(args.items)
        out["retag_seconds_lis"] = speed(args.items, lis=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
