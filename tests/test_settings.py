"""Settings: layers, types, secrets and one-line errors naming the key."""

import pytest

from biblio.cli import cli
from biblio.settings import SettingsError, load_settings

BASE = "[zotero]\nlibrary_id = 42\n"


def write(tmp_path, text):
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_file_env_and_overrides_in_order(tmp_path):
    path = write(tmp_path, BASE + "[sync]\ninterval_minutes = 15\n")
    env = {"BIBLIO_SYNC__INTERVAL_MINUTES": "5", "BIBLIO_ZOTERO__BASE_URL": "http://x"}
    s = load_settings(path, environ=env)
    assert s["zotero"]["library_id"] == 42
    assert s["sync"]["interval_minutes"] == 5  # env beats file
    assert s["zotero"]["base_url"] == "http://x"
    assert s["web"]["page_size"] == 50  # default
    s = load_settings(path, overrides={"sync": {"interval_minutes": 7}}, environ=env)
    assert s["sync"]["interval_minutes"] == 7  # factory argument beats env


def test_settings_file_from_environment(tmp_path):
    path = write(tmp_path, "[zotero]\nlibrary_id = 9\n")
    assert load_settings(environ={"BIBLIO_SETTINGS": str(path)})["zotero"]["library_id"] == 9


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[zotero]\nlibrary_id = "abc"\n', "[zotero] library_id must be an integer"),
        ("[zotero\nlibrary_id = 1\n", "not valid TOML"),
        ("[sync]\ninterval_minutes = 5\n", "[zotero] library_id is required"),
        (BASE + "[sync]\nintervall_minutes = 5\n", "unknown key [sync] intervall_minutes"),
        (BASE + "[nonsense]\na = 1\n", "unknown section [nonsense]"),
        (BASE + 'api_key = "secret"\n', "[zotero] api_key is a secret"),
        (BASE + '[web]\nenv = "staging"\n', "[web] env must be one of"),
        (BASE + '[mail]\nenabled = "maybe"\n', "[mail] enabled must be true or false"),
        (
            BASE + "[database]\nbusy_timeout_seconds = -1\n",
            "[database] busy_timeout_seconds must be at least 0",
        ),
        (BASE + "[database]\nbusy_timeout_seconds = nan\n", "must be a finite number"),
        (BASE + '[web]\npublic_url = "biblio.example.org"\n', "must be an absolute http(s) URL"),
        (BASE + '[web]\npublic_url = "https://x.org/?a=1"\n', "no user, query or fragment"),
    ],
)
def test_bad_files_name_the_key(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert needle in message
    assert "\n" not in message and str(path) in message


def test_bad_environment_value_names_the_key(tmp_path):
    path = write(tmp_path, BASE)
    with pytest.raises(SettingsError, match=r"environment: \[sync\] interval_minutes"):
        load_settings(path, environ={"BIBLIO_SYNC__INTERVAL_MINUTES": "often"})


def test_secrets_come_from_environment(tmp_path):
    path = write(tmp_path, BASE)
    s = load_settings(path, environ={"ZOTERO_API_KEY": "k", "BIBLIO_SECRET_KEY": "s"})
    assert s["zotero"]["api_key"] == "k" and s["web"]["secret_key"] == "s"


def test_production_refuses_to_start_without_secret_key(tmp_path):
    path = write(tmp_path, BASE + '[web]\nenv = "production"\npublic_url = "https://b.example"\n')
    with pytest.raises(SettingsError, match="BIBLIO_SECRET_KEY is required"):
        load_settings(path, environ={})
    assert load_settings(path, environ={"BIBLIO_SECRET_KEY": "x" * 32})


def test_production_refuses_to_start_without_an_https_public_url(tmp_path):
    secret = {"BIBLIO_SECRET_KEY": "x" * 32}
    path = write(tmp_path, BASE + '[web]\nenv = "production"\n')
    with pytest.raises(SettingsError, match=r"\[web\] public_url is required") as info:
        load_settings(path, environ=secret)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    plain = {**secret, "BIBLIO_WEB__PUBLIC_URL": "http://biblio.example.org"}
    with pytest.raises(SettingsError, match="must be https://"):
        load_settings(path, environ=plain)
    good = {**secret, "BIBLIO_WEB__PUBLIC_URL": "https://biblio.example.org/group"}
    assert load_settings(path, environ=good)["web"]["public_url"].endswith("/group")
    # Development keeps working without one (links then follow the request's host).
    assert load_settings(write(tmp_path, BASE), environ={})["web"]["public_url"] == ""


def test_cli_prints_one_line_and_exits_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    path = write(tmp_path, '[zotero]\nlibrary_id = "abc"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["--settings", str(path), "sync"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:")
    assert "[zotero] library_id must be an integer" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
