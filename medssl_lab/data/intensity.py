"""Raw pixel values to uint8, faithfully: one rule for every loader (image folders, DICOM).

* Non-finite pixels (NaN, inf) are set to the lowest finite value of the image, with a
  warning that names the file and counts them; an image with no finite pixel is an error.
* Integer images wider than 8 bits are scaled by the depth the data really uses: the
  smallest of 8, 10, 12, 14 and 16 bits that holds the image's maximum (12-bit data in
  16-bit PNGs: 0..4095 -> 0..255), so the images of one set stay comparable.
* Float images are scaled by their finite minimum and maximum.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from medssl_lab.errors import DataError

STORED_BITS = (8, 10, 12, 14, 16)  # the bit depths medical images are stored with


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
    warnings.warn(f"{where}: {bad} NaN or infinite pixel(s) of {pixels.size} set to the image's lowest value",
                  stacklevel=2)
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
    scaled = (pixels.astype(np.float64) - low) / (high - low)
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)
