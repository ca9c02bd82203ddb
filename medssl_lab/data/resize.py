"""The one way the package resizes stored uint8 images: antialiased bilinear, in chunks to bound memory.

Every resize of data images kept as uint8 goes through here (image folders at load, store ingest, pools and image
stacks, downstream training sets), so an image resized at any of these steps has the same pixels.
Float images on the device are resampled elsewhere, on purpose: the augmentation's affine warp
(:func:`medssl_lab.augment.affine_warp`, crop, rotation and resize in one pass) and the evaluation input
(:func:`medssl_lab.evaluation.perturbations.prepare`, no rounding to 8 bits).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_uint8(images: np.ndarray, size: int, chunk: int = 2048) -> np.ndarray:
    """Resize (N, H, W) uint8 images to ``size`` x ``size`` (antialiased bilinear), in chunks to bound memory."""
    if images.shape[1:] == (size, size):
        return images
    out = np.empty((len(images), size, size), dtype=np.uint8)
    for start in range(0, len(images), chunk):
        block = torch.from_numpy(np.array(images[start : start + chunk])).unsqueeze(1)  # uint8 in, uint8 out
        resized = F.interpolate(block, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + chunk] = resized.squeeze(1).numpy()
    return out
