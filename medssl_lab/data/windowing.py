"""Display windows for DICOM images: named CT presets, the file's own window, and the uint8 the package eats.

Kept apart from the reader so that code which only needs the presets (a store's rules, widgets) does not import
pydicom. Every window goes through :func:`~medssl_lab.data.intensity.apply_window`, the package's one window
function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from medssl_lab.data.intensity import apply_window, unit_to_uint8
from medssl_lab.errors import DataError

if TYPE_CHECKING:  # only for annotations: dicom_image imports pydicom
    from medssl_lab.data.dicom_image import DicomImage

#: Common CT windows as (center, width) in HU.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "brain": (40.0, 80.0),
    "bone": (400.0, 1800.0),
    "abdomen": (40.0, 400.0),
}


def window_image(image: DicomImage, window: str | tuple[float, float] = "file") -> np.ndarray:
    """Display ``image`` as (frames, H, W) uint8 through a window.

    Args:
        image: the image to show.
        window: "file" for the file's own VOI LUT (preferred) or window center/width,
            a preset name from :data:`WINDOW_PRESETS` (CT presets, in HU), or a
            ``(center, width)`` pair in the units of ``image.pixels``.

    Raises:
        DataError: ``window="file"`` but the file carries no window or VOI LUT.
        ValueError: an unknown preset name or a width <= 0.
    """
    if isinstance(window, str):
        name = window.lower()
        if name == "file":
            if image.voi_lut is not None:
                return image.voi_lut
            if image.window_center is None or image.window_width is None:
                raise DataError(
                    f"{image.path}: the file has no window center/width or VOI LUT of its own; "
                    f"pass a preset ({', '.join(WINDOW_PRESETS)}), a (center, width) pair, "
                    "or use to_uint8() for a min-max scaling"
                )
            return apply_window(image.pixels, image.window_center, image.window_width)
        if name not in WINDOW_PRESETS:
            raise ValueError(f"unknown window {window!r}; use 'file', one of {list(WINDOW_PRESETS)} or (center, width)")
        return apply_window(image.pixels, *WINDOW_PRESETS[name])
    center, width = window
    return apply_window(image.pixels, center, width)


def to_uint8(image: DicomImage) -> np.ndarray:
    """(frames, H, W) uint8 for the rest of the package: the file's window, else min-max.

    The min-max fallback is taken over the whole volume, so the frames of a series
    stay comparable with each other.
    """
    if image.voi_lut is not None or (image.window_center is not None and image.window_width is not None):
        return window_image(image, "file")
    low, high = float(image.pixels.min()), float(image.pixels.max())
    if high <= low:
        return np.zeros(image.pixels.shape, dtype=np.uint8)
    return unit_to_uint8((image.pixels - low) / (high - low))
