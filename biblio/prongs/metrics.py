"""Precision, recall and F1 of prong assignments against labels, and their table.

Shared by ``biblio prongs evaluate`` and ``bench/prongs.py`` so the group's figures and
the benchmark's are computed and printed the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def scores(
    pred: Mapping[str, set[str]],
    gold: Mapping[str, set[str]],
    prongs: Sequence[str],
    keys: Sequence[str],
) -> dict[str, Any]:
    """Per prong tp/fp/fn, precision, recall, F1 and support over ``keys``; macro-F1."""
    table = {}
    for p in prongs:
        tp = sum(1 for k in keys if p in pred[k] and p in gold[k])
        fp = sum(1 for k in keys if p in pred[k] and p not in gold[k])
        fn = sum(1 for k in keys if p not in pred[k] and p in gold[k])
        prec = tp / (tp + fp) if tp + fp else 1.0
        rec = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        table[p] = {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "precision": prec,
            "recall": rec,
            "f1": f1,
            "support": tp + fn,
        }
    macro = sum(v["f1"] for v in table.values()) / len(table)
    return {"per_prong": table, "macro_f1": macro, "n": len(keys)}


def table_lines(result: Mapping[str, Any]) -> list[str]:
    """The result of :func:`scores` as a fixed-width table, header first, macro-F1 last."""
    lines = [f"{'prong':<16}{'support':>8}{'P':>7}{'R':>7}{'F1':>7}{'tp':>5}{'fp':>5}{'fn':>5}"]
    for p, v in result["per_prong"].items():
        lines.append(
            f"{p:<16}{v['support']:>8}{v['precision']:>7.3f}{v['recall']:>7.3f}"
            f"{v['f1']:>7.3f}{v['tp']:>5}{v['fp']:>5}{v['fn']:>5}"
        )
    lines.append(f"macro-F1 {result['macro_f1']:.3f}")
    return lines
