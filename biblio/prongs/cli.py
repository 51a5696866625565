"""``biblio prongs``: retag the cache, explain one item, set owners' overrides, count.

``retag`` recomputes every item's prongs from the current rules; ``explain KEY``
prints the item's effective prongs with their reasons, then every prong's live
score against its threshold (near misses included) so the rules can be tuned;
``override KEY PRONG add|remove|clear --by EMAIL`` records an audited owner's
decision; ``list`` prints the prongs with their counts. Settings problems print
one line naming the key and exit 2.
"""

from __future__ import annotations

from typing import Any

import click

from biblio.settings import Settings, SettingsError, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _fail(message: str, code: int = 2) -> click.exceptions.Exit:
    click.echo(f"error: {message}", err=True)
    return click.exceptions.Exit(code)


def _engine_rules(settings: Settings) -> tuple[Any, Any]:
    from biblio.db import engine_for
    from biblio.prongs.rules import load_rules

    try:
        rules = load_rules(settings)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    return engine_for(settings), rules


def format_reason(reason: dict[str, Any]) -> str:
    """One reason as a short line: what matched, where, and its weight."""
    kind = reason.get("kind")
    if kind in ("phrase", "regex"):
        counted = "" if reason.get("counted", True) else " (not counted: same group)"
        return (f"{kind} {reason.get('pattern')!r} in {reason.get('field')}: "
                f"\"{reason.get('match')}\" {reason.get('contribution', reason.get('weight')):+g}"
                f"{counted}")
    if kind in ("prefix-tag", "tag"):
        return f"Zotero tag {reason.get('tag')!r} (ground truth)"
    if kind == "collection":
        return f"Zotero collection {reason.get('collection')!r} (ground truth)"
    if kind == "override":
        note = f": {reason['note']}" if reason.get("note") else ""
        return f"owner override by {reason.get('by')} at {reason.get('at')}{note}"
    return str(reason)


@click.group("prongs")
def prongs_cli() -> None:
    """Tag items with the group's research prongs."""


@prongs_cli.command("retag")
def retag_command() -> None:
    """Recompute every item's prongs from the current rules."""
    from biblio.prongs.store import retag_conn
    from biblio.storage import transaction

    settings = _settings()
    engine, rules = _engine_rules(settings)
    with transaction(engine) as conn:
        result = retag_conn(conn, rules)
    click.echo(result.summary())


@prongs_cli.command("explain")
@click.argument("key")
def explain_command(key: str) -> None:
    """Print the prongs of item KEY with their reasons, and every prong's live score."""
    from biblio.prongs.store import explain_item
    from biblio.storage import connect

    settings = _settings()
    engine, _rules = _engine_rules(settings)
    with connect(engine) as conn:
        try:
            info = explain_item(conn, settings, key)
        except LookupError:
            raise _fail(f"no item {key!r} in the cache", 1) from None
    labels = info["labels"]
    click.echo(f"{info['key']} ({info['item_type']}): {info['title']}")
    if not info["prongs"]:
        click.echo("prongs: none")
    for entry in info["prongs"]:
        score = "" if entry["score"] is None else f", score {entry['score']:g}"
        click.echo(f"prong {entry['prong']} ({labels.get(entry['prong'], entry['prong'])})"
                   f" [{entry['source']}{score}]")
        for reason in entry["reasons"]:
            click.echo(f"  - {format_reason(reason)}")
    for o in info["overrides"]:
        click.echo(f"override: {o['action']} {o['prong']} by {o['by']} at {o['at']:%Y-%m-%d %H:%M}"
                   + (f" ({o['note']})" if o["note"] else ""))
    click.echo("live scores with the current rules:")
    for e in info["live"]:
        verdict = "assigned" if e.assigned else "not assigned"
        click.echo(f"  {e.prong}: {e.score:g} / threshold {e.threshold:g} -> {verdict}")
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
    from biblio.prongs.overrides import OverrideError, clear_override, set_override

    settings = _settings()
    engine, _rules = _engine_rules(settings)
    try:
        if action == "clear":
            changed = clear_override(engine, key, prong, by, settings=settings)
        else:
            changed = set_override(engine, key, prong, action, by, note, settings=settings)
    except OverrideError as exc:
        raise _fail(str(exc), 1) from None
    verb = {"add": "added", "remove": "removed", "clear": "cleared override of"}[action]
    click.echo(f"{verb} {prong} on {key}" if changed else f"no change: {prong} on {key}")


@prongs_cli.command("list")
def list_command() -> None:
    """Print each prong with its label and how many items have it (overrides applied)."""
    from sqlalchemy import func, select

    from biblio.catalog import Filters
    from biblio.storage import connect, items

    settings = _settings()
    engine, rules = _engine_rules(settings)
    with connect(engine) as conn:
        total = conn.execute(select(func.count()).select_from(items)
                             .where(Filters().where())).scalar_one()
        for prong in rules.prongs:
            n = conn.execute(select(func.count()).select_from(items)
                             .where(Filters(prong=prong.id).where())).scalar_one()
            click.echo(f"{prong.id:<16}{n:>7}  {prong.label}")
    click.echo(f"{'(items)':<16}{total:>7}")
