"""The command line: the demo the README starts with, and JSON export."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from biblio.cli import cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_serves_the_synced_sample_library(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIBLIO_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "biblio", "demo", "--port", str(port), "--instance",
         str(tmp_path)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        body = None
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/sync.json",
                                            timeout=2) as response:
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
    result = runner.invoke(cli, ["export", "--format", "json", "-o", str(out)],
                           env={"BIBLIO_SETTINGS": str(tmp_path / "settings.toml"),
                                "BIBLIO_DATABASE__URL": app.config["BIBLIO"]["database"]["url"],
                                "BIBLIO_ZOTERO__BASE_URL":
                                    app.config["BIBLIO"]["zotero"]["base_url"]})
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text(encoding="utf-8"))
    regular = {k for k, d in library.items.items()
               if d["itemType"] not in ("note", "attachment", "annotation")
               and not d.get("deleted")}
    assert {r["key"] for r in records} == regular
    assert all(set(r) >= {"key", "version", "itemType", "prongs", "prong_reasons", "data"}
               for r in records)
    assert any(r["prongs"] for r in records)


def test_export_filters_by_tag(app, runner, library, tmp_path):
    tag = next(t["tag"] for d in library.items.values() for t in d.get("tags", [])
               if d["itemType"] not in ("note", "attachment"))
    env = {"BIBLIO_SETTINGS": str(tmp_path / "settings.toml"),
           "BIBLIO_DATABASE__URL": app.config["BIBLIO"]["database"]["url"]}
    result = runner.invoke(cli, ["export", "--tag", tag], env=env)
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert records and all(tag in [t["tag"] for t in r["data"]["tags"]] for r in records)
