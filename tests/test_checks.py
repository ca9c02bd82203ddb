"""The shared settings checks: every config's message names the field, the value and what is allowed."""

from __future__ import annotations

import math

import pytest

from medssl_lab.checks import check_choices, check_numbers, check_whole


def test_messages_name_field_value_and_allowed() -> None:
    with pytest.raises(ValueError, match=r"^Cfg.mode='b'; choose one of \('a',\)$"):
        check_choices("Cfg", {"mode": "b"}, {"mode": ("a",)})
    with pytest.raises(ValueError, match=r"^Cfg.n=3.0; it must be a whole number >= 1$"):
        check_whole("Cfg", {"n": 3.0}, {"n": 1})
    with pytest.raises(ValueError, match=r"^Cfg.p=1.5; it must be a finite number in \[0.0, 1.0\]$"):
        check_numbers("Cfg", {"p": 1.5}, {"p": (0.0, 1.0)})
    with pytest.raises(ValueError, match=r"^Cfg.lr=0.0; it must be a finite number > 0.0$"):
        check_numbers("Cfg", {"lr": 0.0}, {"lr": (0.0, math.inf)}, open_low=("lr",))


def test_valid_and_optional_values_pass() -> None:
    check_whole("Cfg", {"n": None, "m": 2}, {"n": 1, "m": 2}, optional=("n",))
    check_numbers("Cfg", {"wd": 0.0, "lr": 1e-3}, {"wd": (0.0, math.inf), "lr": (0.0, math.inf)}, open_low=("lr",))
    with pytest.raises(ValueError, match="Cfg.flag=True"):  # a bool is not a count
        check_whole("Cfg", {"flag": True}, {"flag": 0})
