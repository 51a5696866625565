"""``biblio export``: cached items, or a reading list, in any export format.

The items are those matching the filters (one option per filter of
:data:`biblio.catalog.filters.FILTERS`: ``--prong``, ``--tag``, ``--collection``,
``--type``, ``--year``, ``--decade``, ``--creator``, ``-q``), as on the web's list pages, or the
reading list ``--list SLUG``. ``--format json`` (the default) writes biblio's own
records (Zotero data, prongs and their reasons); every other format is one of
:data:`biblio.exports.FORMATS`, the formatted ones in ``--style``/``--locale``.
Output goes to standard output, or to ``-o FILE`` (required for xlsx and docx). A
filter the web would answer with 400 (an unknown prong, a search with no words) and
an unknown style (``--style`` takes ids, titles and common names: ``vancouver``)
exit 2; a reading list that does not exist exits 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import click

from biblio import exports
from biblio.catalog.filters import FILTERS, BadParameter, Filters
from biblio.catalog.items import iter_items
from biblio.catalog.listing import describe
from biblio.citations import StyleError, stylenames
from biblio.cli import context
from biblio.reading_lists import get_list

#: ``json`` is biblio's own record; the others come from the export-format registry.
FORMAT_NAMES = ("json", *exports.FORMATS)


def _records(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """biblio's JSON records: key, version, type, prongs with reasons, Zotero data."""
    records = [
        {
            "key": r["key"],
            "version": r["version"],
            "itemType": r["item_type"],
            "prongs": [p["prong"] for p in r["prongs"]],
            "prong_reasons": {p["prong"]: p["reasons"] for p in r["prongs"]},
            "data": r["data"],
        }
        for r in rows
    ]
    yield json.dumps(records, ensure_ascii=False, indent=2) + "\n"


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One option per filter of :data:`biblio.catalog.filters.FILTERS` (``-q`` for search)."""
    for f in reversed(FILTERS):
        flag = "-q" if f.param == "q" else f"--{f.param}"
        command = click.option(flag, f"filter_{f.param}", default=None, help=f.help)(command)
    return command


def _filters(options: Mapping[str, str | None], prong_ids: tuple[str, ...]) -> Filters:
    """The filters of the options, refused (exit 2) where the web would answer 400."""
    values = {}
    for f in FILTERS:
        flag = "-q" if f.param == "q" else f"--{f.param}"
        try:
            values[f.attr] = f.parse(options.get(f"filter_{f.param}"), prong_ids)
        except BadParameter as exc:
            context.fail(f"{flag}: {str(exc).removeprefix(f'{f.param}: ')}", context.USAGE)
    return Filters(**values)


@click.command("export")
@click.option(
    "--format",
    "fmt",
    default="json",
    show_default=True,
    type=click.Choice(FORMAT_NAMES),
    help="json (data, prongs and reasons), a data format, or a formatted "
    "bibliography (html, text, rtf, docx) in --style.",
)
@click.option(
    "--style",
    default=None,
    help="CSL style: an id, a title or a common name such as apa, chicago, vancouver "
    "(default [citations] default_style).",
)
@click.option("--locale", default=None, help="CSL locale (default [citations] locale).")
@_filter_options
@click.option("--list", "list_slug", default=None, help="Export this reading list instead.")
@click.option(
    "-o",
    "output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write here instead of standard output.",
)
def export_command(
    fmt: str,
    style: str | None,
    locale: str | None,
    list_slug: str | None,
    output: str | None,
    **filter_values: str | None,
) -> None:
    """Export cached items (all matching, or a reading list) in any format."""
    settings = context.load_settings()
    rules = context.load_rules(settings)
    if fmt != "json" and exports.FORMATS[fmt].binary and not output:
        context.fail(f"--format {fmt} needs -o FILE", context.USAGE)
    filters = None
    if not list_slug:
        filters = _filters(filter_values, tuple(rules.ids()))
    cit = settings["citations"]
    try:
        resolved = stylenames.resolve_style(style or cit["default_style"], cit["styles_dir"])
    except StyleError as exc:
        if style:
            context.fail(f"--style: {exc}", context.USAGE)
        resolved = cit["default_style"]  # the settings' own; a formatted export reports it
    engine = context.open_engine(settings)
    options = exports.Options(
        style=resolved,
        locale=locale or cit["locale"],
        styles_dir=cit["styles_dir"],
    )
    if filters is None:
        found = get_list(engine, str(list_slug))
        if found is None:
            context.fail(f"no reading list {list_slug!r}")
        rows: Iterable[Mapping[str, Any]] = iter(found.live_rows)
        options.title, options.intro, options.notes = found.title, found.intro, found.notes
        options.order = "input"
        options.removed = [e.label or e.key for e in found.removed]
    else:
        rows = iter_items(engine, filters)
        phrase = describe(engine, filters, settings)
        options.description = f"Items {phrase or 'in the library'}"
        options.title = "Bibliography" + (f": items {phrase}" if phrase else "")
    if fmt == "json":
        chunks: Iterable[str | bytes] = _records(rows)
    else:
        try:
            chunks = exports.export(engine, fmt, rows, options)
        except StyleError as exc:
            context.fail(str(exc), context.USAGE)
    if output:
        try:
            with open(output, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
        except OSError as exc:
            context.fail(f"cannot write {output}: {exc.strerror or exc}")
        click.echo(f"wrote {fmt} to {output}", err=True)
    else:
        for chunk in chunks:
            click.echo(chunk, nl=False)


def add_commands(group: click.Group) -> None:
    """Add ``export`` to the ``biblio`` group."""
    group.add_command(export_command)
