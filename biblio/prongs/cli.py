"""``biblio prongs``: retag the cache, explain one item, set owners' overrides, count.

``retag`` recomputes every item's prongs from the current rules; ``explain KEY``
prints the item's effective prongs with their reasons, then every prong's live
score against its threshold (near misses included) so the rules can be tuned;
``override KEY PRONG add|remove|clear --by EMAIL`` records an audited owner's
decision; ``list`` prints the prongs with their counts; ``train`` and ``evaluate``
build and measure the learned vocabulary. Every command checks the settings and the
rules first: a problem there prints one line naming the key and exits 2.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine

from biblio import storage as st
from biblio.catalog.filters import Filters, live_items
from biblio.catalog.items import effective_prongs
from biblio.cli import context
from biblio.prongs.fields import is_prefix_tag
from biblio.prongs.metrics import scores, table_lines
from biblio.prongs.model import ModelError, dump_model, model_text, train
from biblio.prongs.overrides import OverrideError, clear_override, set_override
from biblio.prongs.rules import Rules
from biblio.prongs.store import explain_item, retag_conn
from biblio.prongs.tagger import tag_item
from biblio.settings import Settings


def _open(settings: Settings) -> tuple[Engine, Rules]:
    """The rules (checked first: a bad one exits 2) and the database."""
    rules = context.load_rules(settings)
    return context.open_engine(settings), rules


def format_reason(reason: dict[str, Any]) -> str:
    """One reason as a short line: what matched, where, and its weight."""
    kind = reason.get("kind")
    if kind in ("phrase", "regex"):
        counted = "" if reason.get("counted", True) else " (not counted: same group)"
        return (
            f"{kind} {reason.get('pattern')!r} in {reason.get('field')}: "
            f'"{reason.get("match")}" {reason.get("contribution", reason.get("weight")):+g}'
            f"{counted}"
        )
    if kind in ("prefix-tag", "tag"):
        return f"Zotero tag {reason.get('tag')!r} (ground truth)"
    if kind == "collection":
        return f"Zotero collection {reason.get('collection')!r} (ground truth)"
    if kind == "override":
        note = f": {reason['note']}" if reason.get("note") else ""
        return f"owner override by {reason.get('by')} at {reason.get('at')}{note}"
    if kind == "model":
        terms = ", ".join(f"{t!r} {c:+g}" for t, c in reason.get("terms") or [])
        verdict = {
            "assigns": f"assigns (>= {reason.get('assign'):g})",
            "confirms": f"confirms the rules (>= {reason.get('confirm'):g})",
            "vetoes": f"vetoes the rules (< {reason.get('confirm'):g})",
            "silent": f"below {reason.get('assign'):g}",
        }.get(str(reason.get("verdict")), "")
        return f"learned vocabulary: probability {reason.get('probability', 0):.3f}, {verdict}" + (
            f"; terms {terms}" if terms else ""
        )
    return str(reason)


@click.group("prongs")
def prongs_cli() -> None:
    """Tag items with the group's research prongs."""


@prongs_cli.command("retag")
def retag_command() -> None:
    """Recompute every item's prongs from the current rules."""
    engine, rules = _open(context.load_settings())
    with st.transaction(engine) as conn:
        result = retag_conn(conn, rules)
    click.echo(result.summary())


@prongs_cli.command("explain")
@click.argument("key")
def explain_command(key: str) -> None:
    """Print the prongs of item KEY with their reasons, and every prong's live score."""
    settings = context.load_settings()
    engine, _rules = _open(settings)
    with st.connect(engine) as conn:
        try:
            info = explain_item(conn, settings, key)
        except LookupError:
            context.fail(f"no item {key!r} in the cache")
    labels = info["labels"]
    click.echo(f"{info['key']} ({info['item_type']}): {info['title']}")
    if not info["prongs"]:
        click.echo("prongs: none")
    for entry in info["prongs"]:
        score = "" if entry["score"] is None else f", score {entry['score']:g}"
        click.echo(
            f"prong {entry['prong']} ({labels.get(entry['prong'], entry['prong'])})"
            f" [{entry['source']}{score}]"
        )
        for reason in entry["reasons"]:
            click.echo(f"  - {format_reason(reason)}")
    for o in info["overrides"]:
        click.echo(
            f"override: {o['action']} {o['prong']} by {o['by']} at {o['at']:%Y-%m-%d %H:%M}"
            + (f" ({o['note']})" if o["note"] else "")
        )
    click.echo("live scores with the current rules:")
    for e in info["live"]:
        verdict = "assigned" if e.assigned else "not assigned"
        model = "" if e.probability is None else f", learned vocabulary p={e.probability:.3f}"
        click.echo(f"  {e.prong}: {e.score:g} / threshold {e.threshold:g}{model} -> {verdict}")
        if not e.assigned:
            for reason in e.reasons:
                click.echo(f"    - {format_reason(reason)}")


@prongs_cli.command("override")
@click.argument("key")
@click.argument("prong")
@click.argument("action", type=click.Choice(["add", "remove", "clear"]))
@click.option("--by", "by", required=True, metavar="EMAIL", help="The owner deciding.")
@click.option("--note", default=None, help="Why (shown with the prong).")
def override_command(key: str, prong: str, action: str, by: str, note: str | None) -> None:
    """Add or remove PRONG on item KEY for good, or clear the override."""
    settings = context.load_settings()
    engine, _rules = _open(settings)
    try:
        if action == "clear":
            changed = clear_override(engine, key, prong, by, settings=settings)
        else:
            changed = set_override(engine, key, prong, action, by, note, settings=settings)
    except OverrideError as exc:
        context.fail(str(exc))
    verb = {"add": "added", "remove": "removed", "clear": "cleared override of"}[action]
    click.echo(f"{verb} {prong} on {key}" if changed else f"no change: {prong} on {key}")


@prongs_cli.command("list")
def list_command() -> None:
    """Print each prong with its label and how many items have it (overrides applied)."""
    engine, rules = _open(context.load_settings())
    with st.connect(engine) as conn:
        total = conn.execute(
            select(func.count()).select_from(st.items).where(live_items())
        ).scalar_one()
        for prong in rules.prongs:
            n = conn.execute(
                select(func.count()).select_from(st.items).where(Filters(prong=prong.id).where())
            ).scalar_one()
            click.echo(f"{prong.id:<16}{n:>7}  {prong.label}")
    click.echo(f"{'(items)':<16}{total:>7}")


def _labelled_file(path: str) -> list[tuple[dict[str, Any], set[str]]]:
    """(Zotero data, labels) of every work in a labelled-set file (``bench/data`` format);
    a file that is not one exits 2, like a bad option."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        context.fail(f"{path}: cannot read labelled works ({exc})", context.USAGE)
    works = raw.get("items") if isinstance(raw, dict) else None
    if not isinstance(works, list):
        context.fail(f"{path}: expected an object with an 'items' list", context.USAGE)
    out = []
    for i, work in enumerate(works):
        labels = work.get("labels") if isinstance(work, dict) else None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            context.fail(f"{path}: items[{i}] needs 'labels', a list of prong ids", context.USAGE)
        out.append((work, set(labels)))
    return out


def _library_labels(engine: Engine) -> list[tuple[dict[str, Any], set[str]]]:
    """Works the group has decided on: a ground-truth tag/collection or an owner override.

    Their effective prongs are their complete labels (a prong they lack is a negative).
    """
    with st.connect(engine) as conn:
        decided = select(st.item_prongs.c.item_key).where(
            st.item_prongs.c.source.in_(("zotero-tag", "zotero-collection"))
        )
        overridden = select(st.prong_overrides.c.item_key)
        rows = conn.execute(
            select(st.items.c.key, st.items.c.data).where(
                live_items(),
                st.items.c.parent_key.is_(None),
                or_(st.items.c.key.in_(decided), st.items.c.key.in_(overridden)),
            )
        ).all()
        prongs = effective_prongs(conn, [k for k, _d in rows])
    return [(dict(data or {}), {p["prong"] for p in prongs[key]}) for key, data in rows]


@prongs_cli.command("train")
@click.option(
    "--labels",
    "label_files",
    multiple=True,
    metavar="FILE",
    help='Labelled works (JSON: {"items": [{Zotero fields..., "labels": [...]}]}),'
    " e.g. bench/data/prong_*.json; repeatable.",
)
@click.option(
    "--from-library/--no-from-library",
    default=True,
    show_default=True,
    help="Also learn from cached items the group has decided on (prong tags, "
    "prong collections, owners' overrides).",
)
@click.option(
    "--out",
    "out",
    required=True,
    metavar="PATH",
    help="Where to write the model; point [prongs] model at it, then retag.",
)
@click.option(
    "--c",
    "c",
    default=10.0,
    show_default=True,
    help="Inverse regularisation strength of the logistic regressions.",
)
def train_command(label_files: tuple[str, ...], from_library: bool, out: str, c: float) -> None:
    """Train the learned vocabulary from labelled works (needs scikit-learn)."""
    engine, rules = _open(context.load_settings())
    works = [w for f in label_files for w in _labelled_file(f)]
    if from_library:
        works += _library_labels(engine)
    ids = rules.ids()
    unknown = sorted({p for _w, labels in works for p in labels} - set(ids))
    if unknown:
        context.fail(
            f"unknown prong id {unknown[0]!r} in the labels (prongs: {', '.join(ids)})",
            context.USAGE,
        )
    if not works:
        context.fail(
            "no labelled works: give --labels FILE or decide on items in the library", context.USAGE
        )
    try:
        obj = train(
            [model_text(w, rules.tag_prefix) for w, _l in works],
            [labels for _w, labels in works],
            ids,
            c=c,
            threshold=rules.model_assign,
            meta={"trained_on": {"files": list(label_files), "library": from_library}},
        )
    except ModelError as exc:
        context.fail(str(exc))
    dump_model(obj, out)
    counts = ", ".join(f"{p} {obj['prongs'][p]['positives']}" for p in ids)
    click.echo(f"trained on {len(works)} works ({counts}); {len(obj['idf'])} terms -> {out}")
    click.echo(f'next: set [prongs] model = "{out}" in settings.toml, then `biblio prongs retag`')


def _without_ground_truth(data: dict[str, Any], rules: Rules) -> dict[str, Any]:
    """The item as the tagger would see it if the group had not filed it: no collections,
    no tags that name a prong."""
    named = {t for p in rules.prongs for t in p.tags}

    def names_prong(tag: Any) -> bool:
        name = str(tag.get("tag", "") if isinstance(tag, dict) else "")
        return is_prefix_tag(name, rules.tag_prefix) or name.strip().casefold() in named

    return {
        **data,
        "collections": [],
        "tags": [t for t in data.get("tags") or [] if not names_prong(t)],
    }


@prongs_cli.command("evaluate")
@click.option(
    "--labels",
    "label_files",
    multiple=True,
    metavar="FILE",
    help="Labelled works, as for train; repeatable.",
)
@click.option(
    "--from-library/--no-from-library",
    default=False,
    show_default=True,
    help="Also score the cached items the group has decided on (their prong "
    "tags and collections are hidden from the tagger, so it must find them).",
)
@click.option("--rules-only", is_flag=True, help="Score the rules without the learned vocabulary.")
@click.option("--show-errors/--no-show-errors", default=True, show_default=True)
def evaluate_command(
    label_files: tuple[str, ...], from_library: bool, rules_only: bool, show_errors: bool
) -> None:
    """Precision, recall and F1 of the current rules (and model) on labelled works."""
    engine, rules = _open(context.load_settings())
    if rules_only:
        rules = dataclasses.replace(rules, model=None)
    works = [w for f in label_files for w in _labelled_file(f)]
    if from_library:
        works += _library_labels(engine)
    if not works:
        context.fail("no labelled works: give --labels FILE or --from-library", context.USAGE)
    keys = [str(i) for i in range(len(works))]
    gold = {k: labels for k, (_d, labels) in zip(keys, works, strict=True)}
    pred = {
        k: {a.prong for a in tag_item(_without_ground_truth(data, rules), {}, rules)}
        for k, (data, _l) in zip(keys, works, strict=True)
    }
    click.echo(
        f"{len(works)} labelled works; "
        f"{'rules only' if rules.model is None else 'rules + learned vocabulary'}"
    )
    for line in table_lines(scores(pred, gold, rules.ids(), keys)):
        click.echo(line)
    errors = [(data, k) for k, (data, _l) in zip(keys, works, strict=True) if pred[k] != gold[k]]
    if show_errors and errors:
        click.echo("disagreements (+ assigned wrongly, - missed):")
        for data, k in errors:
            click.echo(
                f"  {data.get('key', '?')} +{sorted(pred[k] - gold[k])} "
                f"-{sorted(gold[k] - pred[k])}  {str(data.get('title') or '')[:70]}"
            )


def add_commands(group: click.Group) -> None:
    """Add the ``prongs`` group to the ``biblio`` group."""
    group.add_command(prongs_cli)
