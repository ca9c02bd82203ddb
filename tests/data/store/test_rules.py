"""The settings a store records: refused when they would make every file a rejection, naming the option."""

from __future__ import annotations

import pytest

from medssl_lab.data.store.rules import SIZE_RANGE, Rules, named_window

BAD = {
    "size 0": ({"size": 0}, "--size 0"),
    "negative size": ({"size": -32}, "--size -32"),
    "absurd size": ({"size": 100_000}, "--size 100000"),
    "size below 8": ({"size": 4}, "--size 4"),
    "fractional size": ({"size": 32.5}, "--size 32.5"),
    "size True": ({"size": True}, "--size True"),
    "stride 0": ({"stride": 0}, "--stride 0"),
    "window width 0": ({"ct_window": (40.0, 0.0)}, "--ct-window"),
    "window not numbers": ({"ct_window": ("a", "b")}, "--ct-window"),
    "percentiles reversed": ({"percentiles": (99.5, 0.5)}, "Rules.percentiles"),
    "empty modality": ({"default_modality": " "}, "--modality"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_settings_that_reject_every_file_are_refused_naming_the_option(case: str) -> None:
    settings, option = BAD[case]
    with pytest.raises(ValueError, match="^ingest settings: ") as info:
        Rules(**settings)  # type: ignore[arg-type]
    assert option in str(info.value)


def test_the_size_names_its_range_and_every_size_in_it_is_taken() -> None:
    with pytest.raises(ValueError, match=f"from {SIZE_RANGE[0]} to {SIZE_RANGE[1]}"):
        Rules(size=0)
    assert [Rules(size=size).size for size in SIZE_RANGE] == list(SIZE_RANGE)
    assert Rules().size == 64
    with pytest.raises(ValueError, match="--size 0 .*--stride 0"):  # every problem at once
        Rules(size=0, stride=0)


def test_named_windows_and_center_width() -> None:
    assert named_window("40,400") == (40.0, 400.0)
    with pytest.raises(ValueError, match="width must be positive"):
        named_window("40,-1")
