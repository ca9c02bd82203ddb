"""Raw pixel values to uint8, faithfully: one rule for every loader (image folders, DICOM, phantoms).

* Non-finite pixels (NaN, inf) are set to the lowest finite value of the image, with a
  warning that names the file and counts them; an image with no finite pixel is an error.
* Integer images wider than 8 bits are scaled by the depth the data really uses: the
  smallest of 8, 10, 12, 14 and 16 bits that holds the image's maximum (12-bit data in
  16-bit PNGs: 0..4095 -> 0..255), so the images of one set stay comparable.
* Float images are scaled by their finite minimum and maximum.
* Images in physical units (Hounsfield units for CT) are shown through a window
  (:func:`apply_window`): ``center - width/2 .. center + width/2`` maps linearly to 0..255.
* Colour becomes grey as BT.601 luma (:data:`LUMA_WEIGHTS`), as PIL's "L" conversion does.
* Every rule ends the same way (:func:`unit_to_uint8`): 0..1 times 255, rounded half to even, clipped.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from medssl_lab.errors import DataError

STORED_BITS = (8, 10, 12, 14, 16)  # the bit depths medical images are stored with
#: ITU-R BT.601 weights of R, G and B: grey that keeps the perceived brightness.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def unit_to_uint8(scaled: np.ndarray) -> np.ndarray:
    """0..1 to 0..255 uint8 (rounded half to even, clipped): the shared last step, so every loader rounds alike."""
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def apply_window(pixels: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map ``center - width/2 .. center + width/2`` linearly to 0..255 (clipped), as uint8.

    The one display window of the package (DICOM images, phantoms, widgets), computed in
    float32 so a window shows the same gray levels whatever the input dtype. DICOM's own
    LINEAR window function differs from it by under one gray level.
    """
    if not np.isfinite(width) or width <= 0:
        raise ValueError(
            f"window width must be > 0, got {width}; a window is (center, width), e.g. (-600, 1500) for the lungs in HU"
        )
    low = float(center) - float(width) / 2.0
    return unit_to_uint8((np.asarray(pixels, dtype=np.float32) - low) / float(width))


def replace_non_finite(pixels: np.ndarray, where: str) -> np.ndarray:
    """``pixels`` with NaN and inf set to the lowest finite value (a warning says how many), or a DataError."""
    pixels = np.asarray(pixels)
    if not np.issubdtype(pixels.dtype, np.floating):
        return pixels
    finite = np.isfinite(pixels)
    if finite.all():
        return pixels
    if not finite.any():
        raise DataError(f"{where}: every pixel is NaN or infinite. Remove or replace the file.")
    bad = int((~finite).sum())
    warnings.warn(
        f"{where}: {bad} NaN or infinite pixel(s) of {pixels.size} set to the image's lowest value", stacklevel=2
    )
    return np.where(finite, pixels, pixels[finite].min())


def to_uint8_by_range(pixels: np.ndarray, where: str) -> np.ndarray:
    """Scale an integer (by its bit depth in use) or float (by its finite range) image to uint8."""
    pixels = replace_non_finite(pixels, where)
    if pixels.dtype == np.uint8:
        return pixels
    if np.issubdtype(pixels.dtype, np.integer) and pixels.min() >= 0:
        bits = next((b for b in STORED_BITS if int(pixels.max()) < 2**b), math.ceil(math.log2(int(pixels.max()) + 1)))
        low, high = 0.0, float(2**bits - 1)
    else:
        low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.uint8)
    return unit_to_uint8((pixels.astype(np.float64) - low) / (high - low))
