"""How files become pool images: the settings a store records, apart from the decoding itself.

Kept free of pydicom, so that reading a store's manifest (:mod:`~medssl_lab.data.store.layout`) and parsing the
command line do not load the DICOM stack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from medssl_lab.data.windowing import WINDOW_PRESETS

#: the image sizes a store may hold, px: below 8 no image is worth learning from (decode rejects smaller sources
#: as ``too_small``); at 1024 one image already takes 1 MiB on disk, and pretraining resizes to its own size
SIZE_RANGE = (8, 1024)


@dataclass(frozen=True)
class Rules:
    """How files become pool images (recorded in the store, so every shard follows the same rules)."""

    size: int = 64
    ct_window: tuple[float, float] = (40.0, 400.0)
    percentiles: tuple[float, float] = (0.5, 99.5)
    stride: int = 1
    allow_burned_in: bool = False
    default_modality: str = "unknown"  # the tag of plain image files, which carry none

    def __post_init__(self) -> None:
        """Refuse settings that would make every file a rejection, before any file is read."""
        problems = rules_problems(self)
        if problems:
            raise ValueError("ingest settings: " + "; ".join(problems))


def _whole(value: object, low: int, high: float = math.inf) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _pair(value: object) -> tuple[float, float] | None:
    """Two finite numbers, or None."""
    try:
        first, second = (float(v) for v in value)  # type: ignore[attr-defined]  # anything iterable
    except (TypeError, ValueError):
        return None
    return (first, second) if math.isfinite(first) and math.isfinite(second) else None


def rules_problems(rules: Rules) -> list[str]:
    """What is wrong with ``rules``, one sentence per setting: the option, the value, what is allowed."""
    low, high = SIZE_RANGE
    problems = []
    if not _whole(rules.size, low, high):
        problems.append(
            f"--size {rules.size!r} (Rules.size): the store's image size must be a whole number of pixels from {low} "
            f"to {high}; 64 (the default) suits pretraining, which resizes to its own size"
        )
    if not _whole(rules.stride, 1):
        problems.append(f"--stride {rules.stride!r} (Rules.stride): keep every STRIDE-th frame, a whole number >= 1")
    window = _pair(rules.ct_window)
    if window is None or window[1] <= 0:
        problems.append(f"--ct-window {rules.ct_window!r} (Rules.ct_window): want CENTER,WIDTH with a width > 0")
    percentiles = _pair(rules.percentiles)
    if percentiles is None or not 0 <= percentiles[0] < percentiles[1] <= 100:
        problems.append(f"Rules.percentiles={rules.percentiles!r}: want (LOW, HIGH) with 0 <= LOW < HIGH <= 100")
    if not isinstance(rules.default_modality, str) or not rules.default_modality.strip():
        problems.append(f"--modality {rules.default_modality!r} (Rules.default_modality): give a tag, e.g. X-ray")
    return problems


def named_window(text: str) -> tuple[float, float]:
    """A CT window from a preset name (``abdomen``, ``lung``, ...) or ``CENTER,WIDTH``."""
    if text in WINDOW_PRESETS:
        return WINDOW_PRESETS[text]
    try:
        center, width = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise ValueError(f"CT window {text!r}: use a preset ({', '.join(WINDOW_PRESETS)}) or CENTER,WIDTH") from exc
    if width <= 0:
        raise ValueError(f"CT window {text!r}: the width must be positive")
    return center, width
