"""What evaluation feeds a model: the plain input (:func:`prepare`) and graded robustness perturbations of it.

Test-time counterparts of :mod:`medssl_lab.augment`, built from its primitive ops so that training-time and
test-time corruptions are the same code. Perturbations act on stored ``[0, 1]`` images, before :func:`prepare`
resizes and normalises them, like a change at acquisition time.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from medssl_lab.augment import (
    adjust_gamma,
    affine_theta,
    affine_warp,
    gaussian_blur,
    gaussian_noise,
    intensity_scale_shift,
    make_generator,
    normalize,
    to_float,
)

__all__ = [
    "PERTURBATIONS",
    "PERTURBATION_IDENTITY",
    "PERTURBATION_LEVELS",
    "iter_perturbations",
    "perturb",
    "prepare",
]

#: Perturbation kinds of the robustness experiment (notebook 05, `medssl-lab reproduce`), in table order.
PERTURBATIONS: tuple[str, ...] = (
    "intensity_scale",
    "intensity_shift",
    "gamma",
    "gaussian_noise",
    "blur",
    "rotation",
    "scaling",
)

#: Default graded severities per kind; units: gain, offset in [0,1] units, gamma exponent,
#: noise std in [0,1] units, blur sigma in pixels, degrees, zoom factor (< 1 shrinks).
PERTURBATION_LEVELS: dict[str, list[float]] = {
    "intensity_scale": [0.7, 0.85, 1.15, 1.3],
    "intensity_shift": [-0.2, -0.1, 0.1, 0.2],
    "gamma": [0.5, 0.75, 1.5, 2.0],
    "gaussian_noise": [0.02, 0.05, 0.1],
    "blur": [0.5, 1.0, 1.5],
    "rotation": [10.0, 20.0, 30.0],
    "scaling": [0.8, 0.9, 1.1, 1.2],
}

#: Severity at which each kind leaves the image unchanged.
PERTURBATION_IDENTITY: dict[str, float] = {
    "intensity_scale": 1.0,
    "intensity_shift": 0.0,
    "gamma": 1.0,
    "gaussian_noise": 0.0,
    "blur": 0.0,
    "rotation": 0.0,
    "scaling": 1.0,
}


def prepare(images: Tensor, size: int | None = None) -> Tensor:
    """Evaluation input: :func:`~medssl_lab.augment.to_float`, optional resize to ``size`` x ``size``, normalise.

    No augmentation. Downsampling is antialiased so that small evaluation images are not
    aliased versions of what the model saw in training.
    """
    x = to_float(images)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        down = size < min(x.shape[-2:])
        # Not data/resize.py's uint8 resize: float images on the device, resized without rounding to 8 bits.
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=down)
    return normalize(x)


def perturb(images: Tensor, kind: str, severity: float, seed: int = 0) -> Tensor:
    """Apply one deterministic perturbation to ``[0, 1]`` images (uint8 is converted first).

    Same primitives as the training augmentation. Geometry keeps the input size and fills
    with black; the result is clipped to ``[0, 1]`` like a stored image. Noise is drawn
    from a CPU generator seeded with ``seed``, so results match across devices and runs.

    Returns:
        ``(B, 1, H, W)`` float32 in ``[0, 1]``, not yet normalised (:func:`prepare` does that).
    """
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; choose one of {PERTURBATIONS}")
    x = to_float(images)
    s = float(severity)
    if s == PERTURBATION_IDENTITY[kind]:
        return x.clone()
    if kind == "intensity_scale":
        out = intensity_scale_shift(x, scale=s)
    elif kind == "intensity_shift":
        out = intensity_scale_shift(x, shift=s)
    elif kind == "gamma":
        if s <= 0:
            raise ValueError(f"gamma must be > 0, got {s}")
        out = adjust_gamma(x, s)
    elif kind == "gaussian_noise":
        if s < 0:
            raise ValueError(f"noise std must be >= 0, got {s}")
        out = gaussian_noise(x, s, make_generator(seed))
    elif kind == "blur":
        if s < 0:
            raise ValueError(f"blur sigma must be >= 0, got {s}")
        out = gaussian_blur(x, s)
    else:
        b, _, h, w = x.shape
        if kind == "scaling" and s <= 0:
            raise ValueError(f"scaling factor must be > 0, got {s}")
        zoom = s if kind == "scaling" else 1.0
        half = torch.tensor([[w / 2.0, h / 2.0]], device=x.device).div(zoom).expand(b, 2)
        angle = torch.full((b,), s if kind == "rotation" else 0.0, device=x.device)
        out = affine_warp(x, affine_theta((h, w), half, angle_deg=angle), (h, w))
    return out.clamp_(0.0, 1.0)


def iter_perturbations(levels: dict[str, list[float]] | None = None) -> Iterator[tuple[str, float]]:
    """Yield every ``(kind, severity)`` pair of ``levels`` (default :data:`PERTURBATION_LEVELS`)."""
    for kind, sevs in (levels or PERTURBATION_LEVELS).items():
        if kind not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {kind!r}; choose one of {PERTURBATIONS}")
        for s in sevs:
            yield kind, float(s)
