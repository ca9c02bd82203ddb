"""Settings checked before any work starts: one message format (field, value, what is allowed) for every config."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def check_choices(owner: str, values: Mapping[str, Any], allowed: Mapping[str, Iterable[Any]]) -> None:
    """Each ``values[name]`` must be one of ``allowed[name]``."""
    for name, options in allowed.items():
        options = tuple(options)
        if values[name] not in options:
            raise ValueError(f"{owner}.{name}={values[name]!r}; choose one of {options}")


def check_whole(
    owner: str, values: Mapping[str, Any], minimum: Mapping[str, int], optional: Iterable[str] = ()
) -> None:
    """Each ``values[name]`` must be an int (not a bool) >= ``minimum[name]``; names in ``optional`` may be None."""
    optional = set(optional)
    for name, low in minimum.items():
        value = values[name]
        if value is None and name in optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{owner}.{name}={value!r}; it must be a whole number >= {low}")


def check_numbers(
    owner: str, values: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]], open_low: Iterable[str] = ()
) -> None:
    """Each ``values[name]`` must be a finite number in ``ranges[name]`` (above the low end for ``open_low``)."""
    open_low = set(open_low)
    for name, (low, high) in ranges.items():
        value = values[name]
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number or value > high or value < low or (name in open_low and value == low):
            bound = f"> {low}" if name in open_low else f">= {low}"
            allowed = bound if high == math.inf else f"in [{low}, {high}]"
            raise ValueError(f"{owner}.{name}={value!r}; it must be a finite number {allowed}")
