"""Seeded, labelled synthetic phantoms: for unit tests and offline demos only, never passed off as medical data.

Each phantom is a CT-like slice in Hounsfield units: air around an elliptical body of soft
tissue, two lungs, a spine, and (by class) a lesion of one shape. Images come out as HU
(``float32``) or windowed to ``uint8`` (:data:`PHANTOM_WINDOW`, through the package's one
window function) like the other data sets of the package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medssl_lab.data.intensity import apply_window

PHANTOM_CLASSES: tuple[str, ...] = ("no_lesion", "round_lesion", "ring_lesion", "elongated_lesion")
AIR_HU, LUNG_HU, TISSUE_HU, BONE_HU, LESION_HU = -1000.0, -850.0, 40.0, 700.0, 120.0
#: (center, width) in HU of the uint8 phantoms: wide enough to show air, lungs, tissue and bone apart.
PHANTOM_WINDOW = (-300.0, 1600.0)


@dataclass
class PhantomSet:
    """Synthetic images with labels, as returned by :func:`make_phantoms`."""

    images: np.ndarray  # (N, H, W) uint8, or float32 HU when hu=True
    labels: np.ndarray  # (N,) int64, index into class_names
    class_names: tuple[str, ...] = PHANTOM_CLASSES


def _ellipse(
    yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float, angle: float = 0.0
) -> np.ndarray:
    """Mask of the ellipse centred at (cy, cx) with radii (ry, rx), turned by ``angle``: the shape of every organ."""
    c, s = np.cos(angle), np.sin(angle)
    y, x = yy - cy, xx - cx
    u, v = x * c + y * s, -x * s + y * c
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0


def phantom_hu(size: int, label: int, rng: np.random.Generator) -> np.ndarray:
    """One phantom slice of ``size`` x ``size`` pixels in HU, with the lesion of class ``label``."""
    if not 0 <= label < len(PHANTOM_CLASSES):
        raise ValueError(f"phantom label {label} out of range 0..{len(PHANTOM_CLASSES) - 1}")
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.full((size, size), AIR_HU, dtype=np.float32)
    cy, cx = 0.5 + rng.uniform(-0.03, 0.03), 0.5 + rng.uniform(-0.03, 0.03)
    body_ry, body_rx = rng.uniform(0.30, 0.36), rng.uniform(0.40, 0.46)
    img[_ellipse(yy, xx, cy, cx, body_ry, body_rx)] = TISSUE_HU
    for side in (-1, 1):
        lung = _ellipse(yy, xx, cy - 0.02, cx + side * 0.2, rng.uniform(0.18, 0.22), rng.uniform(0.11, 0.14))
        img[lung] = LUNG_HU
    img[_ellipse(yy, xx, cy + body_ry * 0.75, cx, 0.05, 0.05)] = BONE_HU
    if label > 0:
        side = rng.choice([-1, 1])
        ly, lx = cy + rng.uniform(-0.08, 0.08), cx + side * 0.2 + rng.uniform(-0.03, 0.03)
        r = rng.uniform(0.04, 0.07)
        if label == 1:
            lesion = _ellipse(yy, xx, ly, lx, r, r)
        elif label == 2:
            lesion = _ellipse(yy, xx, ly, lx, r * 1.2, r * 1.2) & ~_ellipse(yy, xx, ly, lx, r * 0.6, r * 0.6)
        else:
            lesion = _ellipse(yy, xx, ly, lx, r * 1.8, r * 0.5, rng.uniform(0, np.pi))
        img[lesion] = LESION_HU
    img += rng.normal(0.0, 15.0, size=img.shape).astype(np.float32)
    return img


def make_phantoms(n: int, size: int = 64, seed: int = 0, hu: bool = False) -> PhantomSet:
    """``n`` labelled phantoms with balanced classes, identical for the same ``seed``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % len(PHANTOM_CLASSES)
    rng.shuffle(labels)
    slices = np.stack([phantom_hu(size, int(lbl), rng) for lbl in labels])
    images = slices if hu else apply_window(slices, *PHANTOM_WINDOW)
    return PhantomSet(images=images, labels=labels)
