"""The switch between skipping and failing tests whose Chromium or PostgreSQL is absent:
a fresh machine skips them with the reason, CI (which requires them) fails them."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = """
import pytest

@pytest.mark.browser
def test_in_chromium():
    pass

@pytest.mark.postgres
def test_on_postgresql():
    pass

def test_plain():
    pass
"""


@pytest.fixture
def suite(pytester, monkeypatch):
    for name in ("BIBLIO_REQUIRE_BROWSER", "BIBLIO_REQUIRE_POSTGRES", "BIBLIO_TEST_POSTGRES_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BIBLIO_TEST_CHROMIUM", str(pytester.path / "no-chromium-here"))
    pytester.makeini("[pytest]\nmarkers =\n    browser\n    postgres\n")
    pytester.makeconftest(
        "from tests.conftest import pytest_collection_modifyitems, "
        "pytest_runtest_setup  # noqa: F401\n"
    )
    pytester.makepyfile(INNER)
    return pytester


def test_missing_chromium_and_postgresql_skip_with_the_reason(suite):
    result = suite.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*Chromium not found at *no-chromium-here*apt-get install*",
            "*BIBLIO_TEST_POSTGRES_URL is not set*",
        ]
    )


@pytest.mark.parametrize("variable", ["BIBLIO_REQUIRE_BROWSER", "BIBLIO_REQUIRE_POSTGRES"])
def test_where_required_a_missing_prerequisite_fails(suite, monkeypatch, variable):
    monkeypatch.setenv(variable, "1")
    result = suite.runpytest()
    result.assert_outcomes(passed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines([f"*{variable} is set, so these tests must run here*"])


def test_present_prerequisites_run(suite, monkeypatch):
    monkeypatch.setenv("BIBLIO_TEST_CHROMIUM", "/bin/true")
    monkeypatch.setenv("BIBLIO_TEST_POSTGRES_URL", "postgresql+psycopg://unused/db")
    monkeypatch.setenv("BIBLIO_REQUIRE_BROWSER", "1")
    monkeypatch.setenv("BIBLIO_REQUIRE_POSTGRES", "1")
    suite.runpytest().assert_outcomes(passed=3)
