"""Shared fixtures. Real-data tests read the data folder from $MEDSSL_DATA_DIR.

Without it they are skipped, unless $MEDSSL_REQUIRE_DATA=1 (as in CI), where a missing
data folder is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder (PneumoniaMNIST npz, MedNIST tar.gz)."""
    value = os.environ.get("MEDSSL_DATA_DIR")
    if not value or not Path(value).is_dir():
        message = f"real data folder not set or missing (MEDSSL_DATA_DIR={value!r})"
        if os.environ.get("MEDSSL_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return Path(value)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep each test session's caches (decoded MedNIST, downloads) out of the user's home, and torch's thread count
    fixed while a run trains.

    Session-wide, so that module-wide fixtures (loaded data sets) use it too; a pytest started by a test (nbval)
    shares it through $MEDSSL_TEST_CACHE.
    """
    if "MEDSSL_TEST_CACHE" not in os.environ:
        os.environ["MEDSSL_TEST_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", os.environ["MEDSSL_TEST_CACHE"])
        # results depend on torch's thread count: tests (and the notebooks nbval runs twice) keep the first one
        patch.setenv("MEDSSL_ADAPT_THREADS", "0")
        yield


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    """Close every matplotlib figure a test left open (figures are returned, never shown)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
