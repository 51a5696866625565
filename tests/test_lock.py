"""The lock files agree with ``pyproject.toml``: every dependency is pinned to a version it
allows, with hashes, and the lock's direct dependencies are exactly pyproject's.

``requirements/test.lock`` (runtime + ``[test]``, what ``.ci/run`` installs with
``pip install --require-hashes``) and ``requirements/runtime.lock`` (runtime +
``[postgres]``, for deployments). A dependency added, removed or re-ranged in
pyproject.toml without running ``requirements/lock`` fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")


def parse_lock(path: Path) -> tuple[dict[str, str], set[str], set[str]]:
    """``(pins, direct, unhashed)``: version per package, the packages pinned for biblio
    itself ("via biblio (pyproject.toml)"), and pins without a hash."""
    pins: dict[str, str] = {}
    direct: set[str] = set()
    hashed: set[str] = set()
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        found = PIN.match(line)
        if found:
            current = canonicalize_name(found.group(1))
            pins[current] = found.group(2)
        elif current and "--hash=sha256:" in line:
            hashed.add(current)
        elif current and re.search(r"#\s+(via\s+)?biblio \(pyproject\.toml\)", line):
            direct.add(current)
    return pins, direct, set(pins) - hashed


def requirements(extra: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    listed = project["dependencies"] + project["optional-dependencies"][extra]
    return [Requirement(text) for text in listed]


@pytest.mark.parametrize("lock, extra", [("test.lock", "test"), ("runtime.lock", "postgres")])
def test_the_lock_pins_exactly_what_pyproject_asks_for_with_hashes(lock, extra):
    pins, direct, unhashed = parse_lock(ROOT / "requirements" / lock)
    assert len(pins) > 20 and unhashed == set()
    wanted = requirements(extra)
    names = {canonicalize_name(r.name) for r in wanted}
    assert direct == names, "run requirements/lock: pyproject.toml and the lock disagree"
    for req in wanted:
        name = canonicalize_name(req.name)
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])
        for extra_name in req.extras:  # e.g. psycopg[binary] needs psycopg-binary
            assert canonicalize_name(f"{req.name}-{extra_name}") in pins, req


def test_parse_lock_sees_a_disagreement(tmp_path):
    """The check above can fail: a lock missing a dependency, or pinning one pyproject
    no longer lists, or pinning without hashes, is caught."""
    text = (ROOT / "requirements" / "test.lock").read_text(encoding="utf-8")
    edited = re.sub(r"(?ms)^pyzotero==.*?(?=^\S)", "", text)  # a dependency dropped
    edited = edited.replace("    # via biblio (pyproject.toml)\n", "    # via\n", 1)
    edited += "left-pad==1.0\n    # via biblio (pyproject.toml)\n"
    path = tmp_path / "edited.lock"
    path.write_text(edited, encoding="utf-8")
    pins, direct, unhashed = parse_lock(path)
    names = {canonicalize_name(r.name) for r in requirements("test")}
    assert "pyzotero" not in pins and "left-pad" in direct and "left-pad" in unhashed
    assert names - direct and direct - names
