"""A first run without friction: ``biblio demo`` says where its data lives and how to use
it, makes an owner whose login works, leaves a settings file the other commands take,
and a taken port is one clear line naming ``--port``; ``biblio settings --check FILE``
says ok (exit 0) or what is wrong (exit 2, one line)."""

from __future__ import annotations

import re
import socket

from click.testing import CliRunner

from biblio import create_app
from biblio.cli import cli
from biblio.settings import load_settings


def test_the_demo_prints_its_data_commands_and_an_owner_login_that_works(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--no-serve", "--instance", str(tmp_path)], env={})
    assert result.exit_code == 0, result.output
    out = result.output
    settings_file = tmp_path / "settings.toml"
    assert f"biblio --settings {settings_file} owners add you@example.org" in out
    assert f"biblio --settings {settings_file} mail list" in out
    assert f"data           {tmp_path}" in out and "/-/admin/mail" in out
    login = re.search(r"sign in as (\S+), password (\S+)", out)
    assert login, out

    listed = runner.invoke(cli, ["--settings", str(settings_file), "owners", "list"], env={})
    assert listed.exit_code == 0 and login.group(1) in listed.output

    settings = load_settings(settings_file, environ={})
    assert settings["demo"]["mailbox"] == str(tmp_path / "mail")
    assert settings["web"]["public_url"] == "http://127.0.0.1:5000"
    assert "secret" not in settings_file.read_text()  # secrets never go in a file
    client = create_app(settings).test_client()
    page = client.get("/-/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post(
        "/-/admin/login",
        data={"csrf_token": token, "email": login.group(1), "password": login.group(2)},
    )
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/-/admin/")

    again = runner.invoke(cli, ["demo", "--no-serve", "--instance", str(tmp_path)], env={})
    new_login = re.search(r"sign in as (\S+), password (\S+)", again.output)
    assert again.exit_code == 0 and new_login.group(2) != login.group(2)  # a fresh password


def test_a_taken_port_is_one_line_naming_port(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["demo", "--port", str(port), "--instance", str(tmp_path)], env={}
        )
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: cannot serve the demo on 127.0.0.1:{port}")
    assert f"biblio demo --port {port + 1}" in line
    assert list(tmp_path.iterdir()) == []  # nothing was started or written


def test_settings_check_says_ok_or_names_the_problem(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text("[zotero]\nlibrary_id = 12345\n[web]\nport = 8000\n")
    runner = CliRunner()
    ok = runner.invoke(cli, ["settings", "--check", str(good)], env={})
    assert ok.exit_code == 0 and ok.output == f"{good}: ok\n"

    cases = {
        '[zotero]\nlibrary_id = "abc"\n': "[zotero] library_id must be an integer",
        "[zotero]\nlibrary_id = 1\nport = 2\n": "unknown key [zotero] port",
        "[zotero\n": "not valid TOML",
        "[web]\nport = 1\n": "[zotero] library_id is required",
        '[zotero]\nlibrary_id = 1\n[prongs.pathways]\nthreshold = "x"\n': "[prongs.pathways]",
    }
    for text, needle in cases.items():
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        result = runner.invoke(cli, ["settings", "--check", str(bad)], env={})
        assert result.exit_code == 2, (text, result.output)
        [line] = result.output.strip().splitlines()
        assert line.startswith("error: ") and needle in line, (text, line)
    missing = runner.invoke(cli, ["settings", "--check", str(tmp_path / "nope.toml")], env={})
    assert missing.exit_code == 2 and "no such settings file" in missing.output
    listing = runner.invoke(cli, ["settings"], env={})
    assert listing.exit_code == 0 and "zotero_oauth_key" in listing.output
