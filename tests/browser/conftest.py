"""The browser for the real-browser tests in this folder (each marked ``browser``)."""

from __future__ import annotations

import pytest

from tests import prerequisites
from tests.browser.harness import CHROMIUM_ARGS


@pytest.fixture
def browser():
    """Chromium driven by Playwright (Debian's: browser downloads are impossible here).

    Where Chromium is absent the tests skip (or, under BIBLIO_REQUIRE_BROWSER, fail)
    before this runs; see tests/prerequisites.py."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=prerequisites.chromium(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
