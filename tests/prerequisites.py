"""What some tests need from the machine: Chromium (with Playwright) and a PostgreSQL server.

Where one is missing its tests skip with a reason naming what to install or set, so the
README's test command passes on a fresh machine. CI installs both and sets
``BIBLIO_REQUIRE_BROWSER=1`` and ``BIBLIO_REQUIRE_POSTGRES=1``: there the same absence
fails the test instead, so a CI run never passes with those tests silently skipped.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

#: Debian's Chromium (Playwright cannot download browsers here); BIBLIO_TEST_CHROMIUM
#: names another binary.
DEFAULT_CHROMIUM = "/usr/bin/chromium"


@dataclass(frozen=True)
class Prerequisite:
    marker: str
    require_variable: str

    def missing(self, environ: Mapping[str, str]) -> str | None:
        """Why the tests marked ``marker`` cannot run here, or None if they can."""
        raise NotImplementedError

    def required(self, environ: Mapping[str, str]) -> bool:
        return environ.get(self.require_variable, "") not in ("", "0")

    def skip_if_missing(self, item: pytest.Item, environ: Mapping[str, str]) -> None:
        """At collection: mark ``item`` skipped if it needs what is missing here (and
        nothing requires it)."""
        reason = self._problem(item, environ)
        if reason is not None and not self.required(environ):
            item.add_marker(pytest.mark.skip(reason=reason))

    def fail_if_required(self, item: pytest.Item, environ: Mapping[str, str]) -> None:
        """At setup: fail ``item`` if it needs what is missing and it is required here."""
        reason = self._problem(item, environ)
        if reason is not None and self.required(environ):
            pytest.fail(
                f"{reason}, and {self.require_variable} is set, so these tests must run here",
                pytrace=False,
            )

    def _problem(self, item: pytest.Item, environ: Mapping[str, str]) -> str | None:
        return None if item.get_closest_marker(self.marker) is None else self.missing(environ)


class Browser(Prerequisite):
    def missing(self, environ: Mapping[str, str]) -> str | None:
        if importlib.util.find_spec("playwright") is None:
            return "Playwright is not installed (pip install -e '.[test]')"
        path = chromium(environ)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return (
                f"Chromium not found at {path} (apt-get install chromium, or set "
                "BIBLIO_TEST_CHROMIUM to a Chromium binary)"
            )
        return None


class Postgres(Prerequisite):
    def missing(self, environ: Mapping[str, str]) -> str | None:
        if not environ.get("BIBLIO_TEST_POSTGRES_URL"):
            return (
                "BIBLIO_TEST_POSTGRES_URL is not set (it names an empty PostgreSQL "
                "database the tests may reset; .ci/run starts one)"
            )
        if importlib.util.find_spec("psycopg") is None:
            return "psycopg is not installed (pip install -e '.[test]')"
        return None


def chromium(environ: Mapping[str, str] | None = None) -> str:
    """The Chromium binary the browser tests launch."""
    environ = os.environ if environ is None else environ
    named = environ.get("BIBLIO_TEST_CHROMIUM")
    if named:
        return shutil.which(named) or named
    return DEFAULT_CHROMIUM


BROWSER = Browser("browser", "BIBLIO_REQUIRE_BROWSER")
POSTGRES = Postgres("postgres", "BIBLIO_REQUIRE_POSTGRES")
ALL = (BROWSER, POSTGRES)
