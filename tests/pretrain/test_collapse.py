"""The advice on collapse: near ln K, few prototypes used, or a non-finite loss."""

from __future__ import annotations

import math

from medssl_lab.pretrain import collapse_hint


def test_collapse_hint() -> None:
    assert collapse_hint(1.0, 100, usage=0.5) is None
    assert "ln K" in collapse_hint(math.log(100), 100)
    assert "prototypes are used" in collapse_hint(1.0, 100, usage=0.01)
    assert collapse_hint(float("nan"), 10) is not None


# --- distributed (2 CPU processes, gloo) ------------------------------------------------
