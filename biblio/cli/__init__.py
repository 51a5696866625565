"""The ``biblio`` command line: one group, built on Flask's ``FlaskGroup``.

Each package adds its own commands from its ``cli`` module (``sync``, ``scheduler``
from :mod:`biblio.sync.cli`; ``export`` from :mod:`biblio.exports.cli`; ``prongs …``
from :mod:`biblio.prongs.cli`; ``owners …``, ``mail …`` from
:mod:`biblio.membership.cli`; ``backup``, ``restore`` from :mod:`biblio.storage.cli`;
``run``, ``demo`` from :mod:`biblio.cli.serve`); this module adds ``settings``
(``--check FILE`` validates a file), ``--settings PATH`` and ``--version``. What the commands
share (settings, database, failing) is :mod:`biblio.cli.context`. Exit status: 0 ok,
1 the operation failed, 2 bad usage or bad settings, always with one line
``error: …`` on stderr. ``biblio --help`` and ``--version`` load no app and open no
database. ``flask --app biblio`` keeps working for Flask's own commands.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import click
from flask.cli import FlaskGroup

from biblio import __version__, configure_logging, subscribe_packages
from biblio.cli import context, serve
from biblio.exports import cli as exports_cli
from biblio.membership import cli as membership_cli
from biblio.prongs import cli as prongs_cli
from biblio.settings import SettingsError, describe, load_settings
from biblio.storage import cli as storage_cli
from biblio.sync import cli as sync_cli

#: The modules whose ``add_commands(group)`` adds their commands to ``biblio``.
COMMAND_MODULES: tuple[ModuleType, ...] = (
    sync_cli,
    exports_cli,
    prongs_cli,
    membership_cli,
    storage_cli,
    serve,
)

#: FlaskGroup's options for loading some app (``-e``, ``-A``, ``--debug``): biblio's
#: group always builds biblio's app from its settings, so they are left out.
_FLASK_OPTIONS = frozenset({"env_file", "app", "debug"})


@contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    """Show click's usage errors as one ``error:`` line, exit 2, like every other error."""
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # a bare group prints its help
    except click.UsageError as exc:
        where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        raise context.BadUsage(f"{where}{exc.format_message()}{hint}") from exc


class BiblioGroup(FlaskGroup):
    """``FlaskGroup`` that lists and finds its own commands only.

    FlaskGroup loads the app (running migrations) to list the app's and plugins'
    commands, so ``--help`` would touch the database; biblio's commands build what
    they need themselves. The package commands are added on first use rather than at
    import: each package's ``cli`` module imports :mod:`biblio.cli.context`, which runs
    this module first, so that module may still be half-imported here.
    """

    def __init__(self, *, command_modules: Sequence[ModuleType] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.params = [p for p in self.params if p.name not in _FLASK_OPTIONS]
        self._command_modules = tuple(command_modules)
        self._commands_added = False

    def _add_package_commands(self) -> None:
        if not self._commands_added:
            self._commands_added = True
            for module in self._command_modules:
                module.add_commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_package_commands()
        return click.Group.list_commands(self, ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._add_package_commands()
        return click.Group.get_command(self, ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return click.Group.parse_args(self, ctx, args)  # without FlaskGroup's app options

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _one_line_usage_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


@click.group(
    "biblio",
    cls=BiblioGroup,
    command_modules=COMMAND_MODULES,
    create_app=context.make_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
)
@click.option(
    "--settings",
    "settings_path",
    metavar="PATH",
    expose_value=False,
    is_eager=True,
    callback=context.remember_settings_path,
    help="Settings file (default: $BIBLIO_SETTINGS or ./settings.toml).",
)
@click.version_option(__version__, "--version", prog_name="biblio", message="%(prog)s %(version)s")
def cli() -> None:
    """biblio: a Zotero-backed research bibliography service."""
    configure_logging()
    subscribe_packages()


@cli.command("settings", with_appcontext=False)
@click.option(
    "--check",
    "check",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    default=None,
    help="Validate FILE (with the environment, as a command would read it) and exit.",
)
def settings_command(check: str | None) -> None:
    """Print every setting with its default and help, or check a settings file."""
    if check is None:
        click.echo(describe(), nl=False)
        return
    if not Path(check).is_file():
        context.fail(f"{check}: no such settings file", context.USAGE)
    try:
        settings = load_settings(check)
    except SettingsError as exc:
        context.fail(str(exc), context.USAGE)
    context.load_rules(settings)  # the [prongs] tables too; exits 2 naming the rule
    click.echo(f"{check}: ok")


def main() -> None:
    """The ``biblio`` console script (and ``python -m biblio``)."""
    cli(prog_name="biblio")
