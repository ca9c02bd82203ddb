"""How files become pool images: the settings a store records, apart from the decoding itself.

Kept free of pydicom, so that reading a store's manifest (:mod:`~medssl_lab.data.store.layout`) and parsing the
command line do not load the DICOM stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from medssl_lab.data.windowing import WINDOW_PRESETS


@dataclass(frozen=True)
class Rules:
    """How files become pool images (recorded in the store, so every shard follows the same rules)."""

    size: int = 64
    ct_window: tuple[float, float] = (40.0, 400.0)
    percentiles: tuple[float, float] = (0.5, 99.5)
    stride: int = 1
    allow_burned_in: bool = False
    default_modality: str = "unknown"  # the tag of plain image files, which carry none


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
