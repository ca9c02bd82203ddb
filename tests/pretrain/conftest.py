"""Pretraining tests compare runs bit for bit, and results depend on torch's thread count: the count stays as the
test found or set it (no re-check of the busy CPUs while a run trains, :mod:`medssl_lab.threads`)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fixed_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDSSL_ADAPT_THREADS", "0")
