"""What the browser tests share: the distribution's Chromium, and the rule for when it is missing.

Playwright drives the Chromium of the distribution (``apt-get install chromium``; ``MEDSSL_CHROMIUM`` names another
binary) and never downloads a browser of its own. Without Chromium or Playwright a browser test is skipped, unless
``MEDSSL_REQUIRE_BROWSER=1`` (set by CI, which installs both): then it fails.
"""

from __future__ import annotations

import os
import shutil

import pytest

#: how every browser test launches Chromium (no sandbox: CI runs as root in a container; no GPU there)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu"]


def chromium() -> str | None:
    """The Chromium binary to drive, or None."""
    for name in (os.environ.get("MEDSSL_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    return None


def require(what: str) -> None:
    """Skip the test for lack of ``what``, or fail it when CI demands the browser tests."""
    if os.environ.get("MEDSSL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{what} is missing; CI installs it (.ci/run)")
    pytest.skip(f"{what} is missing")
