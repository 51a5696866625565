"""The command line: the demo the README starts with, JSON export, and the contract every
command keeps: ``--help``/``--version`` touch nothing, exit 0 ok, 1 the operation failed,
2 bad usage or bad settings, always with one ``error:`` line on stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from importlib import metadata

import click
import pytest
from click.testing import CliRunner

import biblio
from biblio.cli import cli
from tests.smtp_server import free_port


def test_demo_serves_the_synced_sample_library(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIBLIO_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "biblio", "demo", "--port", str(port), "--instance", str(tmp_path)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        body = None
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/-/sync.json", timeout=2
                ) as response:
                    body = json.load(response)
                    break
            except OSError:
                time.sleep(0.2)
        assert body is not None, "the demo never answered"
        assert body["ok"] and body["has_items"]
        assert body["runs"][0]["status"] == "ok" and body["runs"][0]["trigger"] == "demo"
        assert body["library"] == "groups/100001"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "sync ok: library version 0 ->" in out


def test_export_json_includes_keys_data_and_prongs(app, runner, library, tmp_path):
    out = tmp_path / "export.json"
    result = runner.invoke(
        cli,
        ["export", "--format", "json", "-o", str(out)],
        env={
            "BIBLIO_SETTINGS": str(tmp_path / "settings.toml"),
            "BIBLIO_DATABASE__URL": app.config["BIBLIO"]["database"]["url"],
            "BIBLIO_ZOTERO__BASE_URL": app.config["BIBLIO"]["zotero"]["base_url"],
        },
    )
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text(encoding="utf-8"))
    regular = {
        k
        for k, d in library.items.items()
        if d["itemType"] not in ("note", "attachment", "annotation") and not d.get("deleted")
    }
    assert {r["key"] for r in records} == regular
    assert all(
        set(r) >= {"key", "version", "itemType", "prongs", "prong_reasons", "data"} for r in records
    )
    assert any(r["prongs"] for r in records)


def test_export_filters_by_tag(app, runner, library, tmp_path):
    tag = next(
        t["tag"]
        for d in library.items.values()
        for t in d.get("tags", [])
        if d["itemType"] not in ("note", "attachment")
    )
    env = {
        "BIBLIO_SETTINGS": str(tmp_path / "settings.toml"),
        "BIBLIO_DATABASE__URL": app.config["BIBLIO"]["database"]["url"],
    }
    result = runner.invoke(cli, ["export", "--tag", tag], env=env)
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert records and all(tag in [t["tag"] for t in r["data"]["tags"]] for r in records)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("BIBLIO_", "FLASK_"))}


@pytest.fixture
def here(tmp_path, monkeypatch):
    """An empty working directory and no BIBLIO_* environment: only what a test writes."""
    for name in list(os.environ):
        if name.startswith("BIBLIO_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _invoke(args: list[str], **kwargs):
    return CliRunner().invoke(cli, args, **kwargs)


def _one_error_line(result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_help_in_an_empty_directory_exits_0_lists_the_commands_and_creates_no_files(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "biblio", "--help"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert list(tmp_path.iterdir()) == []
    for command in (
        "sync",
        "scheduler",
        "run",
        "demo",
        "export",
        "settings",
        "prongs",
        "owners",
        "mail",
        "backup",
        "restore",
    ):
        assert f"\n  {command} " in proc.stdout, command
    assert "--settings PATH" in proc.stdout and "--version" in proc.stdout
    for flask_internal in ("--app", "--debug", "--env-file", "limiter"):
        assert flask_internal not in proc.stdout


def test_version_prints_the_package_version_and_touches_nothing(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "biblio", "--version"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"biblio {biblio.__version__}\n"
    assert biblio.__version__ == metadata.version("biblio")
    assert list(tmp_path.iterdir()) == []


def test_subcommand_help_touches_no_database_even_with_a_settings_file(here):
    (here / "settings.toml").write_text("[zotero]\nlibrary_id = 1\n", encoding="utf-8")
    for args in (["sync"], ["export"], ["prongs", "list"], ["owners", "add"], ["run"]):
        result = _invoke([*args, "--help"])
        assert result.exit_code == 0, result.output
    assert [p.name for p in here.iterdir()] == ["settings.toml"]


#: Every command that reads the settings, with the arguments it needs to get that far.
READS_SETTINGS = [
    ["sync"],
    ["scheduler"],
    ["run"],
    ["demo", "--no-serve"],
    ["export"],
    ["prongs", "retag"],
    ["prongs", "explain", "KEY"],
    ["prongs", "override", "KEY", "pathways", "add", "--by", "o@example.org"],
    ["prongs", "list"],
    ["prongs", "train", "--out", "model.json"],
    ["prongs", "evaluate"],
    ["owners", "add", "o@example.org", "--password-stdin"],
    ["owners", "passwd", "o@example.org", "--password-stdin"],
    ["owners", "remove", "o@example.org", "--yes"],
    ["owners", "list"],
    ["owners", "digest"],
    ["mail", "flush"],
    ["mail", "list"],
    ["mail", "show", "1"],
    ["backup", "biblio-backup.sqlite3"],
    ["restore", "biblio-backup.sqlite3"],
]
#: The commands that read the prong rules too (they tag, filter or show by prong).
READS_RULES = [
    args for args in READS_SETTINGS if args[0] not in ("owners", "mail", "backup", "restore")
]

MALFORMED = {
    "a wrong type": (
        '[zotero]\nlibrary_id = "abc"\n',
        "settings.toml: [zotero] library_id must be an integer",
    ),
    "not TOML": ("[zotero\nlibrary_id = 1\n", "settings.toml: not valid TOML"),
    "an unknown key": (
        "[zotero]\nlibrary_id = 1\nlibrary = 2\n",
        "settings.toml: unknown key [zotero] library",
    ),
}


def _leaf_commands(group: click.Group, path: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name)


def test_the_settings_tests_cover_every_command_but_settings():
    # A leaf is covered by arguments that begin with its words (arguments may follow).
    words = [tuple(a for a in args if not a.startswith("-")) for args in READS_SETTINGS]
    leaves = set(_leaf_commands(cli)) - {("settings",)}
    assert {leaf for leaf in leaves if not any(w[: len(leaf)] == leaf for w in words)} == set()


@pytest.mark.parametrize("problem", list(MALFORMED))
@pytest.mark.parametrize("args", READS_SETTINGS, ids=" ".join)
def test_a_malformed_settings_file_exits_2_with_one_line_naming_the_key(here, args, problem):
    text, needle = MALFORMED[problem]
    (here / "settings.toml").write_text(text, encoding="utf-8")
    result = _invoke(args, input="a long enough password\n")
    assert result.exit_code == 2, result.output
    assert needle in _one_error_line(result)
    assert result.stdout == ""
    assert [p.name for p in here.iterdir()] == ["settings.toml"]  # no database opened


@pytest.mark.parametrize("args", READS_RULES, ids=" ".join)
def test_a_bad_prong_rule_exits_2_before_any_work(here, args):
    (here / "settings.toml").write_text(
        '[zotero]\nlibrary_id = 1\n[prongs.pathways]\nthreshold = "soon"\n', encoding="utf-8"
    )
    result = _invoke(["--settings", "settings.toml", *args])
    assert result.exit_code == 2, result.output
    assert "[prongs.pathways] threshold must be a number" in _one_error_line(result)
    assert [p.name for p in here.iterdir()] == ["settings.toml"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["nosuch"], "No such command 'nosuch'"),
        (["sync", "--bogus"], "biblio sync: No such option '--bogus'"),
        (["export", "--format", "bogus"], "Invalid value for '--format'"),
        (["export", "--year", "soon"], "--year: year must be a whole number"),
        (["export", "--decade", "1995"], "--decade: decade must be a year ending in 0"),
        (
            ["prongs", "override", "KEY", "pathways", "frobnicate", "--by", "o@example.org"],
            "Invalid value for '{add|remove|clear}'",
        ),
        (["owners", "add"], "Missing argument 'EMAIL'"),
        (["export", "--format", "docx"], "--format docx needs -o FILE"),
        (["export", "-q", "***"], "-q: A * on its own searches for nothing"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_bad_usage_exits_2_with_one_line(here, args, needle):
    (here / "settings.toml").write_text("[zotero]\nlibrary_id = 1\n", encoding="utf-8")
    result = _invoke(args)
    assert result.exit_code == 2, result.output
    assert needle in _one_error_line(result)
    assert [p.name for p in here.iterdir()] == ["settings.toml"]


def test_export_of_an_unknown_prong_exits_2_naming_the_known_ones(here):
    (here / "settings.toml").write_text("[zotero]\nlibrary_id = 1\n", encoding="utf-8")
    result = _invoke(["export", "--prong", "bogus"])
    assert result.exit_code == 2, result.output
    assert _one_error_line(result) == (
        "error: --prong: unknown prong 'bogus'; known prongs: mlis-access, pathways, worker-equity"
    )
    assert [p.name for p in here.iterdir()] == ["settings.toml"]


def test_a_sync_that_cannot_reach_zotero_exits_1_naming_the_library_url(here):
    port = free_port()  # nothing listens there once the probe socket is closed
    (here / "settings.toml").write_text(
        f'[zotero]\nlibrary_id = 7\nbase_url = "http://127.0.0.1:{port}"\n'
        "max_retries = 0\nretry_base_seconds = 0.01\n",
        encoding="utf-8",
    )
    started = time.monotonic()
    result = _invoke(["sync"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: sync failed: ")
    assert f"http://127.0.0.1:{port}/groups/7" in errors[0]
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    "args, needle",
    [
        (["export", "--list", "nosuch"], "no reading list 'nosuch'"),
        (["prongs", "explain", "NOSUCHKY"], "no item 'NOSUCHKY' in the cache"),
        (["owners", "remove", "nobody@example.org", "--yes"], "no owner with email"),
        (["owners", "add", "o@example.org", "--password-stdin"], "password too short"),
        (["export", "-o", "no-such-folder/out.json"], "cannot write no-such-folder/out.json"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_a_failed_operation_exits_1_with_one_line(here, args, needle):
    (here / "settings.toml").write_text("[zotero]\nlibrary_id = 1\n", encoding="utf-8")
    result = _invoke(args, input="short\n")
    assert result.exit_code == 1, result.output
    assert needle in _one_error_line(result)


def test_a_database_url_that_cannot_be_read_exits_2_and_one_that_cannot_be_opened_1(here):
    (here / "settings.toml").write_text("[zotero]\nlibrary_id = 1\n", encoding="utf-8")
    bad = _invoke(["owners", "list"], env={"BIBLIO_DATABASE__URL": "nonsense://x"})
    assert bad.exit_code == 2 and "[database] url nonsense://x" in _one_error_line(bad)
    blocked = here / "file"
    blocked.write_text("", encoding="utf-8")
    url = f"sqlite:///{blocked / 'sub' / 'x.sqlite3'}"
    unopenable = _invoke(["owners", "list"], env={"BIBLIO_DATABASE__URL": url})
    assert unopenable.exit_code == 1
    assert "cannot open the database" in _one_error_line(unopenable)


@pytest.mark.parametrize(
    "module",
    [
        "biblio.prongs.cli",
        "biblio.membership.cli",
        "biblio.sync.cli",
        "biblio.exports.cli",
        "biblio.storage.cli",
        "biblio.cli.serve",
        "biblio.cli.context",
    ],
)
def test_each_command_module_imports_first_and_the_group_still_has_every_command(module):
    code = (
        f"import {module}\nimport click\nfrom biblio.cli import cli\n"
        "print(' '.join(cli.list_commands(click.Context(cli))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "backup",
        "demo",
        "export",
        "mail",
        "owners",
        "prongs",
        "restore",
        "run",
        "scheduler",
        "settings",
        "sync",
    ]


def test_flask_app_biblio_still_loads_the_app(tmp_path):
    (tmp_path / "settings.toml").write_text(
        f'[zotero]\nlibrary_id = 1\n[database]\nurl = "sqlite:///{tmp_path / "db.sqlite3"}"\n',
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "biblio", "routes"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "/items" in proc.stdout and "/-/admin/" in proc.stdout


def test_export_takes_a_style_by_its_common_name(app, runner, tmp_path):
    env = {
        "BIBLIO_SETTINGS": str(tmp_path / "settings.toml"),
        "BIBLIO_DATABASE__URL": app.config["BIBLIO"]["database"]["url"],
    }
    result = runner.invoke(
        cli, ["export", "--format", "text", "--style", "vancouver", "--prong", "pathways"], env=env
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert any(line.startswith("1. ") for line in lines), lines[:5]  # NLM numbers, with a space
    same = runner.invoke(
        cli,
        ["export", "--format", "text", "--style", "nlm-citation-sequence", "--prong", "pathways"],
        env=env,
    )
    assert same.output == result.output
    apa = runner.invoke(cli, ["export", "--format", "text", "--style", "APA"], env=env)
    assert apa.exit_code == 0 and "(20" in apa.output


def test_export_of_an_unknown_style_exits_2_naming_close_ones(here):
    (here / "settings.toml").write_text("[zotero]\nlibrary_id = 1\n", encoding="utf-8")
    result = _invoke(["export", "--format", "text", "--style", "vancuver"])
    assert result.exit_code == 2, result.output
    line = _one_error_line(result)
    assert line.startswith("error: --style: unknown style 'vancuver'; did you mean ")
    assert "nlm-citation-sequence" in line
    assert [p.name for p in here.iterdir()] == ["settings.toml"]  # no database made
