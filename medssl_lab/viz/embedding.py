"""2-D maps of an embedding (:func:`~medssl_lab.evaluation.embedding.compute_umap`), coloured by a label."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from medssl_lab.evaluation.clusters import as_numpy, encode_labels, label_vector


def _colours(n: int) -> list:
    """Distinct colours: tab10 up to 10 categories, tab20 up to 20, then a cyclic map."""
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    cmap = plt.get_cmap("hsv")
    rng = np.random.default_rng(0)  # shuffled so that neighbouring ids do not get near colours
    return [cmap(v) for v in rng.permutation(np.linspace(0, 1, n, endpoint=False))]


def plot_embedding(
    coords: Any,
    colour_by: Any,
    title: str = "",
    ax: Axes | None = None,
    point_size: float | None = None,
    max_legend: int = 20,
) -> Figure | SubFigure:
    """Scatter 2-D coordinates coloured by a categorical label, with a legend.

    Points are drawn in a random (fixed) order so that no category hides the others by
    being drawn last. With more than ``max_legend`` categories (e.g. 100 prototypes) the
    legend is replaced by a count in the title.

    Args:
        coords: ``(n, 2)`` coordinates (from :func:`compute_umap`).
        colour_by: ``(n,)`` labels, numbers or strings (index them like the coordinates).
        title: axes title.
        ax: draw into this axes; a new figure is made when None.

    Returns:
        The figure holding the axes (a :class:`~matplotlib.figure.SubFigure` when ``ax`` is in one).
    """
    xy = as_numpy(coords)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must be (n, 2), got shape {xy.shape}")
    lab = label_vector(colour_by, len(xy), "colour_by")
    names, codes = encode_labels(lab)
    fig: Figure | SubFigure
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4.5))
    else:
        fig = ax.figure
    colours = _colours(len(names))
    order = np.random.default_rng(0).permutation(len(xy))
    s = point_size if point_size is not None else float(np.clip(3000 / max(len(xy), 1), 1, 20))
    ax.scatter(
        xy[order, 0], xy[order, 1], c=[colours[c] for c in codes[order]], s=s, linewidths=0, alpha=0.8, rasterized=True
    )
    ax.set_xticks([])
    ax.set_yticks([])
    if len(names) <= max_legend:
        handles = [
            plt.Line2D([], [], marker="o", linestyle="", color=colours[i], markersize=5, label=str(name))
            for i, name in enumerate(names)
        ]
        ax.legend(handles=handles, fontsize=7, loc="best", markerscale=1.0, framealpha=0.7)
        ax.set_title(title, fontsize=10)
    else:
        ax.set_title(f"{title} ({len(names)} categories)" if title else f"{len(names)} categories", fontsize=10)
    return fig


def plot_embedding_grid(
    coords: Any,
    colourings: Mapping[str, Any],
    suptitle: str | None = None,
    panel_size: float = 4.0,
) -> Figure:
    """The same embedding coloured several ways, side by side (e.g. modality, class, cluster).

    Seeing the modality panel and the cluster panel next to each other shows at a glance
    whether the prototypes split the data the way the modalities do.
    """
    if not colourings:
        raise ValueError("colourings is empty; pass e.g. {'modality': modality[index]}")
    n = len(colourings)
    fig, axes = plt.subplots(1, n, figsize=(panel_size * n, panel_size), squeeze=False)
    for ax, (name, labels) in zip(axes[0], colourings.items()):
        plot_embedding(coords, labels, title=name, ax=ax)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return fig


def plot_side_by_side(
    coords_a: Any,
    coords_b: Any,
    labels: Any,
    titles: tuple[str, str] = ("pretrained", "random init"),
    labels_b: Any = None,
    suptitle: str | None = None,
    panel_size: float = 4.5,
) -> Figure:
    """Two embeddings of the same images, e.g. pretrained against random init, same colours.

    The point of the comparison: a randomly initialised network already separates
    images that differ in raw intensity statistics, so pretraining is judged by what it
    adds to that, not against a blank.

    Args:
        coords_a, coords_b: ``(n, 2)`` coordinates of the two models.
        labels: ``(n,)`` labels for ``coords_a`` (and ``coords_b`` unless ``labels_b``).
        labels_b: labels for ``coords_b`` if its points differ.
    """
    fig, axes = plt.subplots(1, 2, figsize=(panel_size * 2, panel_size), squeeze=False)
    plot_embedding(coords_a, labels, title=titles[0], ax=axes[0, 0])
    plot_embedding(coords_b, labels if labels_b is None else labels_b, title=titles[1], ax=axes[0, 1])
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return fig
