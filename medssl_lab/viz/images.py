"""Images and what the network sees of them: augmented views, robustness perturbations, display windows, image
grids and the pool."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from medssl_lab.augment import MultiCropAugment, denormalize, make_generator, to_float
from medssl_lab.data.intensity import apply_window
from medssl_lab.evaluation.perturbations import PERTURBATION_LEVELS, perturb


def _as_image_tensor(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One ``(H, W)`` image (uint8 or float in [0, 1]) as a ``(1, H, W)`` tensor, or a clear error."""
    t = torch.as_tensor(np.asarray(image)) if not isinstance(image, torch.Tensor) else image.detach().cpu()
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 2:
        raise ValueError(f"expected one grayscale image of shape (H, W), got {tuple(t.shape)}")
    return t.unsqueeze(0)


def _show(ax, img: torch.Tensor, title: str) -> None:
    ax.imshow(img.squeeze().float().cpu().numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def _views_of(augment: Callable[..., Any], batch: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """The views of any augmentation callable: a :class:`MultiCropAugment`, or one taking ``(batch)`` only."""
    try:
        views = augment(batch, generator=make_generator(seed))
    except TypeError:
        views = augment(batch)
    return [views] if isinstance(views, torch.Tensor) else list(views)


def plot_views(
    image: np.ndarray | torch.Tensor,
    augment: Callable[..., Any],
    n_samples: int = 3,
    seed: int = 0,
    panel_size: float = 1.6,
) -> Figure:
    """Show an image next to its augmented views, one row per random draw.

    Lets a reader see what the network is asked to match: global views covering most of
    the image and small local crops, with the intensity changes applied. Views are shown
    de-normalised to ``[0, 1]`` at their own resolution.

    Args:
        image: one ``(H, W)`` image, uint8 or float in ``[0, 1]``.
        augment: a :class:`~medssl_lab.augment.MultiCropAugment` (views named global and local), or any callable
            mapping a ``(B, H, W)`` batch to a tensor or a list of normalised views.
        n_samples: number of independent draws (rows).
        seed: seed of the draws (same seed, same figure).
        panel_size: size of each panel in inches.

    Returns:
        A figure with ``n_samples * (1 + number of views)`` axes.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    img = _as_image_tensor(image)
    views = _views_of(augment, img.expand(n_samples, *img.shape[1:]).contiguous(), seed)
    n_global = augment.config.n_global if isinstance(augment, MultiCropAugment) else len(views)
    ncols = 1 + len(views)
    fig, axes = plt.subplots(n_samples, ncols, figsize=(panel_size * ncols, panel_size * n_samples), squeeze=False)
    original = to_float(img)[0]
    for row in range(n_samples):
        _show(axes[row, 0], original, f"draw {row + 1}: input" + (f" {original.shape[-1]} px" if row == 0 else ""))
        for j, v in enumerate(views):
            kind = f"global {j + 1}" if j < n_global else f"local {j - n_global + 1}"
            title = f"{kind} ({v.shape[-1]} px)" if row == 0 else kind
            _show(axes[row, j + 1], denormalize(v[row].detach().float().cpu()).clamp(0, 1), title)
    fig.suptitle(f"{n_global} global + {len(views) - n_global} local views (seed {seed})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_perturbations(
    image: np.ndarray | torch.Tensor,
    levels: Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
    panel_size: float = 1.6,
) -> Figure:
    """Show an image under each robustness perturbation, one row per kind, severities left to right.

    Args:
        image: one ``(H, W)`` image, uint8 or float in ``[0, 1]``.
        levels: kind -> severities (default :data:`~medssl_lab.evaluation.perturbations.PERTURBATION_LEVELS`).
        seed: seed of the noise perturbation.
        panel_size: size of each panel in inches.

    Returns:
        A figure with ``len(levels) * (1 + max number of severities)`` axes; the first
        column is the clean image, unused panels are blank.
    """
    levels = dict(levels or PERTURBATION_LEVELS)
    if not levels:
        raise ValueError("levels is empty; pass at least one perturbation kind with severities")
    img = _as_image_tensor(image)
    clean = to_float(img)[0]
    ncols = 1 + max(len(v) for v in levels.values())
    nrows = len(levels)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
    for r, (kind, sevs) in enumerate(levels.items()):
        _show(axes[r, 0], clean, f"{kind}\nclean")
        for c in range(1, ncols):
            ax = axes[r, c]
            if c - 1 < len(sevs):
                s = float(sevs[c - 1])
                _show(ax, perturb(img, kind, s, seed=seed)[0], f"{kind} {s:g}")
            else:
                ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_pool_overview(pool, title: str = "pretraining pool", per_group: int = 6, seed: int = 0) -> Figure:
    """What the pool holds: images per (source, modality) as bars, and a few random examples of each group.

    Args:
        pool: an :class:`~medssl_lab.data.types.ImageSet` (e.g. from ``build_pool``).
        title: figure title.
        per_group: example images per (source, modality) group.
        seed: which examples are drawn.
    """
    groups = sorted({(str(s), str(m)) for s, m in zip(pool.source, pool.modality)})
    rng = np.random.default_rng(seed)
    fig = plt.figure(figsize=(1.3 * per_group + 4, 1.4 * len(groups) + 0.6), constrained_layout=True)
    grid = fig.add_gridspec(len(groups), per_group + 3)
    bars = fig.add_subplot(grid[:, :3])
    counts = [int(((pool.source == s) & (pool.modality == m)).sum()) for s, m in groups]
    names = [f"{s}\n{m}" for s, m in groups]
    bars.barh(names, counts, color="tab:blue")
    for y, n in enumerate(counts):
        bars.text(n, y, f" {n:,}", va="center", fontsize=8)
    bars.invert_yaxis()
    bars.set_xlabel("images")
    bars.set_xlim(0, max(counts) * 1.3)
    for row, (s, m) in enumerate(groups):
        members = np.flatnonzero((pool.source == s) & (pool.modality == m))
        for col, i in enumerate(rng.choice(members, min(per_group, len(members)), replace=False)):
            ax = fig.add_subplot(grid[row, 3 + col])
            ax.imshow(pool.images[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(pool.class_names[pool.labels[i, 0]].split("/")[-1], fontsize=7)
            ax.axis("off")
    fig.suptitle(f"{title}: {len(pool):,} images at {pool.images.shape[1]} px")
    return fig


def plot_windows(hu: np.ndarray, windows: Mapping[str, tuple[float, float]], panel_size: float = 2.4) -> Figure:
    """One panel per (centre, width) window of the same image in Hounsfield units (or any raw values)."""
    n = len(windows)
    fig, axes = plt.subplots(1, n, figsize=(panel_size * n, panel_size * 1.1), squeeze=False)
    for ax, (name, (c, w)) in zip(axes[0], windows.items()):
        ax.imshow(apply_window(hu, c, w), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{name}\nC {c:g} / W {w:g}", fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_image_grid(
    images: np.ndarray,
    index: Sequence[int] | np.ndarray,
    labels: np.ndarray | None = None,
    title: str = "",
    ncols: int = 8,
    panel_size: float = 1.1,
) -> Figure:
    """The images at ``index`` in rows of ``ncols``, each titled with its label when given."""
    nrows = max(1, int(np.ceil(len(index) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows * 1.15), squeeze=False)
    vmax = 255 if images.dtype == np.uint8 else 1.0
    for k, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if k < len(index):
            ax.imshow(images[index[k]], cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
            if labels is not None:
                ax.set_title(str(labels[index[k]]), fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
