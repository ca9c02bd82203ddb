"""Multi-crop views and medical-image augmentations, batched on the device.

SwAV (Caron et al. 2020) as used by Ghesu et al. 2022 learns from several views of each
image: a few large *global* crops and more small *local* crops. This module makes all the
views of a whole batch at once, on whatever device the batch already lives on, so that
augmentation costs almost nothing next to the backbone:

* geometry: crop, rotation, scaling and (optional) flips are composed into **one**
  ``(N, 2, 3)`` affine matrix per view and applied with a single sampling grid
  (:func:`affine_grid`, a faster equivalent of ``F.affine_grid``) and
  :func:`~torch.nn.functional.grid_sample` at the view's output size; all views of one
  size go through one call;
* intensity: windowing (contrast stretch), scale / shift, gamma, Gaussian blur and
  Gaussian noise, each a vectorised op with per-sample parameters of shape ``(N,1,1,1)``.
  There is no colour jitter: the images have one channel.

Each op of the views is declared in :data:`OPS` (MONAI's randomise / apply split): it
states how many uniforms it takes, turns its columns of the group's uniform table into
parameters, and applies them; the columns' offsets follow from that list.

Everything works on images in ``[0, 1]`` (zero padding = black background) and is
normalised once, at the end, by :func:`normalize`. The same primitive ops also make the
deterministic, graded perturbations of the robustness experiment
(:mod:`medssl_lab.evaluation.perturbations`), so training-time and test-time corruptions
are the same code.

Randomness: every random number comes from the ``generator`` passed in. Numbers are
drawn **on the generator's device** and then moved to the images' device. A CPU
generator (the default of :func:`make_generator`) therefore gives the same views on
cpu, cuda and mps, at the price of copying the noise field to the device; for GPU
training pass ``make_generator(seed, device="cuda")`` to keep all drawing on the GPU.
With ``generator=None`` torch's global RNG of the images' device is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, fields
from itertools import accumulate

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "MEAN",
    "OPS",
    "STD",
    "MultiCropAugment",
    "MultiCropConfig",
    "Op",
    "Params",
    "ViewGroup",
    "adjust_gamma",
    "affine_grid",
    "affine_theta",
    "affine_warp",
    "as_batch",
    "denormalize",
    "gaussian_blur",
    "gaussian_noise",
    "intensity_scale_shift",
    "make_generator",
    "normalize",
    "to_float",
    "uniform_columns",
    "window",
]

#: Fixed normalisation of [0, 1] images (one place): maps the range to about [-2, 2].
MEAN: float = 0.5
STD: float = 0.25

# --------------------------------------------------------------------------- basics


def as_batch(images: Tensor) -> Tensor:
    """Return ``images`` as ``(B, 1, H, W)`` (a view, no copy), or raise a clear error.

    Accepts ``(B, H, W)`` and ``(B, 1, H, W)``; anything else (RGB, a single 2D image)
    is refused because guessing the layout silently would mix up channels and batch.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"expected a torch.Tensor of images, got {type(images).__name__}; convert with torch.as_tensor")
    if images.ndim == 3:
        return images.unsqueeze(1)
    if images.ndim == 4 and images.shape[1] == 1:
        return images
    raise ValueError(
        f"expected images of shape (B, H, W) or (B, 1, H, W), got {tuple(images.shape)}; "
        "add a batch axis to a single image (img[None]) and convert colour images to one channel first"
    )


def to_float(images: Tensor) -> Tensor:
    """``uint8`` images -> ``(B, 1, H, W)`` float32 in ``[0, 1]``, on the same device.

    Float input is taken to be in ``[0, 1]`` already and is only cast and reshaped, so
    the function can sit at the start of every pipeline whatever it is fed.
    """
    x = as_batch(images)
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    if x.is_floating_point():
        return x.to(torch.float32)
    raise TypeError(f"expected uint8 images (0..255) or float images in [0, 1], got dtype {x.dtype}")


def normalize(x: Tensor) -> Tensor:
    """Fixed normalisation ``(x - MEAN) / STD`` of ``[0, 1]`` images: the single place it happens."""
    return (x - MEAN) / STD


def denormalize(x: Tensor) -> Tensor:
    """Inverse of :func:`normalize` (for plotting views)."""
    return x * STD + MEAN


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A seeded :class:`torch.Generator` (CPU by default: identical views on every device)."""
    return torch.Generator(device=device).manual_seed(int(seed))


def _rand(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device, normal: bool = False
) -> Tensor:
    """Uniform [0,1) (or standard normal) numbers drawn on the generator's device, moved to ``device``."""
    gdev = generator.device if generator is not None else device
    fn = torch.randn if normal else torch.rand
    out = fn(shape, generator=generator, device=gdev)
    return out.to(device, non_blocking=True)


# --------------------------------------------------------------------------- geometry


def affine_theta(
    in_hw: tuple[int, int],
    half_extent: Tensor,
    center: Tensor | None = None,
    angle_deg: Tensor | None = None,
    flip: Tensor | None = None,
) -> Tensor:
    """Compose crop, scaling, rotation and flips into one ``(N, 2, 3)`` matrix for ``affine_grid``.

    The output view's normalised coordinates ``q`` in ``[-1, 1]^2`` sample the input at
    ``center + P^-1 R(angle) diag(half_extent * flip) q``, where ``R`` acts in input *pixel*
    units (so rotations do not shear non-square images) and ``P`` converts pixels to the
    input's normalised coordinates. Positive angles turn the content counter-clockwise as
    displayed (row 0 at the top), like ``torch.rot90(x, 1, dims=(-2, -1))``.

    Args:
        in_hw: input height and width in pixels.
        half_extent: ``(N, 2)`` half width and half height of the sampled region, in input
            pixels (``(W/2, H/2)`` is the whole image; smaller zooms in).
        center: ``(N, 2)`` region centre (x, y) in normalised input coordinates; default 0.
        angle_deg: ``(N,)`` rotation in degrees; default 0.
        flip: ``(N, 2)`` of +1/-1 for (horizontal, vertical) flips; default no flip.
    """
    h, w = in_hw
    n = half_extent.shape[0]
    dev, dt = half_extent.device, half_extent.dtype
    sx, sy = half_extent[:, 0], half_extent[:, 1]
    if flip is not None:
        sx, sy = sx * flip[:, 0], sy * flip[:, 1]
    if angle_deg is None:
        cos, sin = torch.ones(n, device=dev, dtype=dt), torch.zeros(n, device=dev, dtype=dt)
    else:
        rad = angle_deg.to(dt) * (math.pi / 180.0)
        cos, sin = torch.cos(rad), torch.sin(rad)
    theta = torch.empty(n, 2, 3, device=dev, dtype=dt)
    theta[:, 0, 0] = cos * sx * (2.0 / w)
    theta[:, 0, 1] = -sin * sy * (2.0 / w)
    theta[:, 1, 0] = sin * sx * (2.0 / h)
    theta[:, 1, 1] = cos * sy * (2.0 / h)
    if center is None:
        theta[:, :, 2] = 0.0
    else:
        theta[:, :, 2] = center
    return theta


def affine_grid(theta: Tensor, size: tuple[int, int]) -> Tensor:
    """Sampling grid ``(N, H, W, 2)`` of ``theta``; equals ``F.affine_grid(..., align_corners=False)``.

    Written as two broadcast multiply-adds straight into the ``(N, H, W, 2)`` layout,
    instead of torch's batched matmul with an inner dimension of 3: about 2x faster on
    CPU at these sizes (it is the second-largest cost of the augmentation after
    ``grid_sample``) and no slower on GPU.
    """
    h, w = size
    xs = ((torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1).view(1, 1, w, 1)
    ys = ((torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1).view(1, h, 1, 1)
    t = theta.transpose(1, 2)[:, None, None]  # (N, 1, 1, 3, 2): columns x-coef, y-coef, offset
    return torch.addcmul(torch.addcmul(t[..., 2, :], xs, t[..., 0, :]), ys, t[..., 1, :])


def affine_warp(x: Tensor, theta: Tensor, size: tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Resample ``x`` (N,1,H,W) through ``theta`` (N,2,3) to ``size``; outside the image is 0 (black)."""
    # Not data/resize.py's uint8 resize: float resampling on the device that crops, turns and resizes in one pass.
    grid = affine_grid(theta.to(x.dtype), size)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


# --------------------------------------------------------------------------- intensity


def _per_sample(value: float | Tensor, x: Tensor) -> Tensor | float:
    """Scalars stay scalars; ``(N,)`` tensors become ``(N,1,1,1)`` on ``x``'s device."""
    if isinstance(value, Tensor):
        return value.to(device=x.device, dtype=x.dtype).reshape(-1, 1, 1, 1)
    return float(value)


def window(x: Tensor, low: float | Tensor, high: float | Tensor) -> Tensor:
    """Contrast stretch: map ``[low, high]`` to ``[0, 1]`` and clip, like a narrower display window."""
    lo, hi = _per_sample(low, x), _per_sample(high, x)
    return ((x - lo) / (hi - lo)).clamp_(0.0, 1.0)


def intensity_scale_shift(x: Tensor, scale: float | Tensor = 1.0, shift: float | Tensor = 0.0) -> Tensor:
    """``x * scale + shift`` (global gain and offset, as between scanners or exposures)."""
    return x * _per_sample(scale, x) + _per_sample(shift, x)


def adjust_gamma(x: Tensor, gamma: float | Tensor) -> Tensor:
    """``x ** gamma`` on ``x`` clipped to ``[0, 1]`` (non-linear contrast change; 1 is identity)."""
    return x.clamp(0.0, 1.0).pow(_per_sample(gamma, x))


def gaussian_noise(x: Tensor, std: float | Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Add zero-mean Gaussian noise of standard deviation ``std`` (per sample when a tensor)."""
    noise = _rand(tuple(x.shape), generator, x.device, normal=True)
    return x + noise.to(x.dtype) * _per_sample(std, x)


def _gaussian_kernels(sigma: Tensor, radius: int) -> Tensor:
    """``(N, 2*radius+1)`` normalised 1D Gaussian kernels; sigma ~ 0 gives a delta (identity)."""
    offsets = torch.arange(-radius, radius + 1, device=sigma.device, dtype=sigma.dtype)
    s = sigma.clamp_min(1e-3).reshape(-1, 1)
    k = torch.exp(-0.5 * (offsets / s) ** 2)
    return k / k.sum(dim=1, keepdim=True)


def _blur_matrices(k: Tensor, size: int, radius: int) -> Tensor:
    """``(N, size, size)`` banded matrices applying the ``(N, K)`` kernels along one axis (edges replicated)."""
    n, taps = k.shape
    offsets = torch.arange(-radius, radius + 1, device=k.device)
    cols = (torch.arange(size, device=k.device).unsqueeze(1) + offsets).clamp_(0, size - 1)  # (size, K)
    mats = torch.zeros(n, size, size, device=k.device, dtype=k.dtype)
    return mats.scatter_add_(2, cols.expand(n, size, taps), k.unsqueeze(1).expand(n, size, taps))


def gaussian_blur(x: Tensor, sigma: float | Tensor, max_sigma: float | None = None) -> Tensor:
    """Separable Gaussian blur with a per-sample ``sigma`` (in pixels); sigma 0 leaves a sample unchanged.

    Each sample's 1D kernel is folded into a banded ``(H, H)`` and ``(W, W)`` matrix (edges
    replicated), and the blur is two batched matmuls ``M_h @ X @ M_w^T``: exact, vectorised
    over the batch, device-agnostic, and on CPU several times faster than a grouped conv
    or a sum of shifted copies at these image sizes. The kernel radius is
    ``ceil(3 * max_sigma)``, fixed by ``max_sigma`` (default: the largest sigma given) so
    that nothing has to be read back from the device.

    Args:
        x: ``(N, 1, H, W)`` images.
        sigma: a float, or ``(N,)`` standard deviations.
        max_sigma: upper bound on sigma, fixing the kernel size; pass it when sigma is a
            device tensor to avoid a device-to-host sync.
    """
    n, _, h, w = x.shape
    if not isinstance(sigma, Tensor):
        sigma = torch.full((n,), float(sigma), device=x.device, dtype=x.dtype)
    sigma = sigma.to(device=x.device, dtype=x.dtype).reshape(-1)
    if max_sigma is None:
        max_sigma = float(sigma.max()) if sigma.numel() else 0.0
    if max_sigma <= 0.0:
        return x
    radius = max(1, math.ceil(3.0 * max_sigma))
    k = _gaussian_kernels(sigma, radius)
    m_w = _blur_matrices(k, w, radius)
    m_h = m_w if h == w else _blur_matrices(k, h, radius)
    out = torch.bmm(m_h, torch.bmm(x.reshape(n, h, w), m_w.transpose(1, 2)))
    return out.reshape(n, 1, h, w)


# --------------------------------------------------------------------------- multi-crop


def _check_range(name: str, value: tuple[float, float], low: float | None = None, high: float | None = None) -> None:
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"MultiCropConfig.{name} must be a (min, max) pair with min <= max, got {value!r}")
    if low is not None and value[0] < low:
        raise ValueError(f"MultiCropConfig.{name} must be >= {low}, got {value!r}")
    if high is not None and value[1] > high:
        raise ValueError(f"MultiCropConfig.{name} must be <= {high}, got {value!r}")


@dataclass
class MultiCropConfig:
    """Every knob of the multi-crop augmentation, with SwAV-like defaults for 28 px images.

    Scales are *area fractions* of the input (as in RandomResizedCrop). Probabilities
    switch an op on per sample; unselected samples get the op's identity parameters.
    Flips are off by default because left and right matter in medical images.
    """

    n_global: int = 2
    global_size: int = 28
    global_scale: tuple[float, float] = (0.4, 1.0)
    n_local: int = 4
    local_size: int = 16
    local_scale: tuple[float, float] = (0.1, 0.4)
    aspect_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    max_rotation_deg: float = 15.0
    scale_jitter: tuple[float, float] = (0.9, 1.1)  # zoom factor after cropping: > 1 zooms in
    hflip_p: float = 0.0
    vflip_p: float = 0.0
    intensity_p: float = 0.8  # scale, shift and gamma together
    intensity_scale: tuple[float, float] = (0.8, 1.2)
    intensity_shift: tuple[float, float] = (-0.1, 0.1)
    gamma: tuple[float, float] = (0.7, 1.4)  # drawn log-uniformly
    window_p: float = 0.3
    window_low: tuple[float, float] = (0.0, 0.2)
    window_high: tuple[float, float] = (0.8, 1.0)
    noise_p: float = 0.5
    noise_std: tuple[float, float] = (0.0, 0.05)
    blur_p: float = 0.3
    blur_sigma: tuple[float, float] = (0.1, 1.0)
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.n_global < 1 or self.n_local < 0:
            raise ValueError(
                f"need n_global >= 1 and n_local >= 0, got n_global={self.n_global}, n_local={self.n_local}"
            )
        if self.global_size < 1 or self.local_size < 1:
            raise ValueError(
                f"view sizes must be >= 1 px, got global_size={self.global_size}, local_size={self.local_size}"
            )
        for name in ("global_scale", "local_scale"):
            _check_range(name, getattr(self, name), low=1e-6, high=1.0)
        for name in ("aspect_ratio", "scale_jitter", "intensity_scale", "gamma"):
            _check_range(name, getattr(self, name), low=1e-6)
        for name in ("intensity_shift", "window_low", "window_high"):
            _check_range(name, getattr(self, name))
        for name in ("noise_std", "blur_sigma"):
            _check_range(name, getattr(self, name), low=0.0)
        if self.window_low[1] >= self.window_high[0]:
            raise ValueError(f"window_low {self.window_low} must lie below window_high {self.window_high}")
        for name in ("hflip_p", "vflip_p", "intensity_p", "window_p", "noise_p", "blur_p"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"MultiCropConfig.{name} is a probability in [0, 1], got {p}")
        if self.max_rotation_deg < 0:
            raise ValueError(f"max_rotation_deg must be >= 0, got {self.max_rotation_deg}")
        if self.interpolation not in ("bilinear", "nearest", "bicubic"):
            raise ValueError(f"interpolation must be 'bilinear', 'nearest' or 'bicubic', got {self.interpolation!r}")
        self.global_scale = tuple(self.global_scale)  # type: ignore[assignment]
        self.local_scale = tuple(self.local_scale)  # type: ignore[assignment]

    @classmethod
    def identity(cls, size: int, n_global: int = 1, n_local: int = 0) -> MultiCropConfig:
        """No crop, rotation, flip or intensity change: views are the resized input (for tests, demos)."""
        return cls(
            n_global=n_global,
            global_size=size,
            global_scale=(1.0, 1.0),
            n_local=n_local,
            local_size=size,
            local_scale=(1.0, 1.0),
            aspect_ratio=(1.0, 1.0),
            max_rotation_deg=0.0,
            scale_jitter=(1.0, 1.0),
            intensity_p=0.0,
            window_p=0.0,
            noise_p=0.0,
            blur_p=0.0,
        )

    def to_dict(self) -> dict:
        """Plain dict of the fields (for checkpoints and result tables)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _lerp(u: Tensor, lo: float, hi: float) -> Tensor:
    return lo + (hi - lo) * u


def _log_lerp(u: Tensor, bounds: tuple[float, float]) -> Tensor:
    """Log-uniform draw in ``bounds`` (for factors: zoom, aspect ratio, gamma)."""
    return torch.exp(_lerp(u, math.log(bounds[0]), math.log(bounds[1])))


# --------------------------------------------------------------------------- ops of the views

#: Per-view parameters of one op, by name.
Params = dict[str, Tensor]


@dataclass(frozen=True)
class ViewGroup:
    """What the ops of one group of views (one size) share besides their uniforms."""

    config: MultiCropConfig
    in_hw: tuple[int, int]
    scale: tuple[float, float]  # the group's crop area fractions (global or local)
    generator: torch.Generator | None


def _always(c: MultiCropConfig) -> bool:
    return True


@dataclass(frozen=True)
class Op:
    """One op of the views, split into drawing and applying like MONAI's random transforms.

    It owns ``n_uniforms`` columns of its group's uniform table, at offsets that follow from
    :data:`OPS`. ``randomize(u, group)`` turns those ``(N, n_uniforms)`` uniforms into
    per-view parameters (the op's identity where its per-sample switch is off);
    ``apply(views, params, group)`` applies them. Geometric ops have no ``apply``: their
    parameters are composed into the group's one affine warp. An op that is not ``active``
    for a config draws and applies nothing; its columns stay.
    """

    name: str
    n_uniforms: int
    randomize: Callable[[Tensor, ViewGroup], Params]
    apply: Callable[[Tensor, Params, ViewGroup], Tensor] | None = None
    active: Callable[[MultiCropConfig], bool] = _always


def _crop(u: Tensor, group: ViewGroup) -> Params:
    """Crop of an area fraction (the group's scale) and aspect ratio, placed inside the image."""
    h, w = group.in_hw
    area = _lerp(u[:, 0], *group.scale) * (h * w)
    ratio = _log_lerp(u[:, 1], group.config.aspect_ratio)
    # Keep the area exactly; where the aspect ratio does not fit, bend it towards the image's.
    cw = torch.sqrt(area * ratio).clamp(max=float(w))
    ch = (area / cw).clamp(max=float(h))
    cw = area / ch
    # Centre so that the (unrotated, unjittered) crop lies inside the image.
    cx = (2.0 * u[:, 2] - 1.0) * (1.0 - cw / w)
    cy = (2.0 * u[:, 3] - 1.0) * (1.0 - ch / h)
    return {"extent": torch.stack([cw, ch], 1), "center": torch.stack([cx, cy], 1)}


def _flip(u: Tensor, group: ViewGroup) -> Params:
    """+1 / -1 for (horizontal, vertical), each with its own probability."""
    c = group.config
    return {
        "flip": torch.stack([1.0 - 2.0 * (u[:, 0] < c.hflip_p).float(), 1.0 - 2.0 * (u[:, 1] < c.vflip_p).float()], 1)
    }


def _warp_theta(params: Params, in_hw: tuple[int, int]) -> Tensor:
    """The one ``(N, 2, 3)`` matrix of the geometric ops' parameters: crop, zoom, rotation, flips."""
    half = params["extent"] * (0.5 / params["zoom"]).unsqueeze(1)
    return affine_theta(in_hw, half, params["center"], params["angle"], params["flip"])


def _window(u: Tensor, group: ViewGroup) -> Params:
    c = group.config
    on = u[:, 0] < c.window_p
    low = torch.where(on, _lerp(u[:, 1], *c.window_low), 0.0)
    return {"low": low, "high": torch.where(on, _lerp(u[:, 2], *c.window_high), 1.0)}


def _scale_shift_gamma(u: Tensor, group: ViewGroup) -> Params:
    """Gain, offset and gamma (log-uniform) under one switch."""
    c = group.config
    on = u[:, 0] < c.intensity_p
    return {
        "scale": torch.where(on, _lerp(u[:, 1], *c.intensity_scale), 1.0),
        "shift": torch.where(on, _lerp(u[:, 2], *c.intensity_shift), 0.0),
        "gamma": torch.where(on, _log_lerp(u[:, 3], c.gamma), 1.0),
    }


def _blur(u: Tensor, group: ViewGroup) -> Params:
    c = group.config
    return {"sigma": torch.where(u[:, 0] < c.blur_p, _lerp(u[:, 1], *c.blur_sigma), 0.0)}


def _noise(u: Tensor, group: ViewGroup) -> Params:
    """The noise's std; the noise field itself comes from the generator, after the table."""
    c = group.config
    return {"std": torch.where(u[:, 0] < c.noise_p, _lerp(u[:, 1], *c.noise_std), 0.0)}


#: The ops of the views in the order of their columns in the uniform table (a switch column
#: first for the ops with a probability); the intensity ops apply in this order, after the
#: warp. Order and widths *are* the views' random stream (a seed's views, committed results
#: and the shipped encoder depend on them): the table is drawn row by row, so changing any
#: width changes every view of every seed.
OPS: tuple[Op, ...] = (
    Op("crop", 4, _crop),
    Op("rotation", 1, lambda u, g: {"angle": (2.0 * u[:, 0] - 1.0) * g.config.max_rotation_deg}),
    Op("zoom", 1, lambda u, g: {"zoom": _log_lerp(u[:, 0], g.config.scale_jitter)}),  # > 1 zooms in
    Op("flip", 2, _flip),
    Op("window", 3, _window, lambda v, p, g: window(v, p["low"], p["high"]), lambda c: c.window_p > 0),
    Op(
        "intensity",
        4,
        _scale_shift_gamma,
        lambda v, p, g: adjust_gamma(intensity_scale_shift(v, p["scale"], p["shift"]), p["gamma"]),
        lambda c: c.intensity_p > 0,
    ),
    Op(
        "blur",
        2,
        _blur,
        lambda v, p, g: gaussian_blur(v, p["sigma"], max_sigma=g.config.blur_sigma[1]),
        lambda c: c.blur_p > 0 and c.blur_sigma[1] > 0,
    ),
    Op(
        "noise",
        2,
        _noise,
        lambda v, p, g: gaussian_noise(v, p["std"], g.generator),
        lambda c: c.noise_p > 0 and c.noise_std[1] > 0,
    ),
)


def uniform_columns(ops: tuple[Op, ...] = OPS) -> dict[str, slice]:
    """Each op's columns of the uniform table, from the declared widths: ``{name: slice}``."""
    ends = accumulate(op.n_uniforms for op in ops)
    return {op.name: slice(end - op.n_uniforms, end) for op, end in zip(ops, ends)}


class MultiCropAugment:
    """Make ``n_global`` global then ``n_local`` local views of a batch, all on its device.

    Example:
        >>> aug = MultiCropAugment(MultiCropConfig(global_size=28))
        >>> views = aug(images_uint8, generator=make_generator(0))  # list of 6 tensors
    """

    def __init__(self, config: MultiCropConfig | None = None) -> None:
        self.config = config or MultiCropConfig()

    @property
    def n_views(self) -> int:
        """Total number of views per image."""
        return self.config.n_global + self.config.n_local

    @property
    def view_sizes(self) -> list[int]:
        """Output side length of each view, in the order :meth:`__call__` returns them."""
        c = self.config
        return [c.global_size] * c.n_global + [c.local_size] * c.n_local

    def __repr__(self) -> str:
        return f"MultiCropAugment({self.config!r})"

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """Views of ``images`` (uint8 (B,H,W) or (B,1,H,W), or float in [0,1]) on their device.

        Returns:
            ``n_global`` tensors ``(B,1,global_size,global_size)`` then ``n_local`` tensors
            ``(B,1,local_size,local_size)``, float32, normalised by :func:`normalize`.
        """
        x = to_float(images)
        c = self.config
        # Views are float32 whatever the caller's autocast: bmm/grid_sample would otherwise run in half.
        dev_type = x.device.type
        guard = torch.autocast(dev_type, enabled=False) if torch.is_autocast_enabled(dev_type) else nullcontext()
        with guard:
            views = self._group(x, c.n_global, c.global_size, c.global_scale, generator)
            if c.n_local:
                views += self._group(x, c.n_local, c.local_size, c.local_scale, generator)
        return views

    def _group(
        self, x: Tensor, n_views: int, size: int, scale: tuple[float, float], generator: torch.Generator | None
    ) -> list[Tensor]:
        """All views of one size: one table of uniforms, one warp and one pass of each intensity op."""
        c = self.config
        group = ViewGroup(c, (x.shape[-2], x.shape[-1]), scale, generator)
        columns = uniform_columns()
        u = _rand((n_views * x.shape[0], sum(op.n_uniforms for op in OPS)), generator, x.device)
        drawn = [(op, op.randomize(u[:, columns[op.name]], group)) for op in OPS if op.active(c)]
        geometry = {k: t for op, params in drawn if op.apply is None for k, t in params.items()}
        src = x if n_views == 1 else x.repeat(n_views, 1, 1, 1)
        v = affine_warp(src, _warp_theta(geometry, group.in_hw), (size, size), mode=c.interpolation)
        for op, params in drawn:
            if op.apply is not None:
                v = op.apply(v, params, group)
        v = normalize(v.clamp_(0.0, 1.0))
        return list(v.chunk(n_views, dim=0)) if n_views > 1 else [v]
