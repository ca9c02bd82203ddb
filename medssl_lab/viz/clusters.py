"""What the prototypes learned: how evenly they are used, how the clusters agree with labels, their images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from medssl_lab.evaluation.clusters import as_numpy, label_vector


def plot_prototype_usage(counts: Mapping[str, np.ndarray], summaries: Mapping[str, Mapping[str, float]]) -> Figure:
    """Share of the images on each prototype, sorted, one panel per model: collapse shows as a few tall bars."""
    fig, axes = plt.subplots(1, len(counts), figsize=(5 * len(counts), 3), sharey=True, squeeze=False)
    for ax, (name, c) in zip(axes[0], counts.items()):
        k = len(c)
        ordered = np.sort(np.asarray(c))[::-1]
        ax.bar(
            np.arange(k), ordered / ordered.sum(), width=1.0, color="tab:blue" if name == "pretrained" else "tab:gray"
        )
        ax.axhline(1 / k, color="tab:red", ls=":", label="1/K (even use)")
        s = summaries[name]
        ax.set_title(f"{name}: {s['n_used']} used, perplexity {s['perplexity']:.1f}", fontsize=10)
        ax.set_xlabel("prototype (sorted by use)")
    axes[0, 0].set_ylabel("share of images")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_cluster_metrics(metrics: Mapping[str, Mapping[str, Mapping[str, float]]]) -> Figure:
    """Purity, NMI and ARI of each clustering (bars) against each labelling (panels), e.g. class and modality."""
    labelings = list(next(iter(metrics.values())))
    fig, axes = plt.subplots(1, len(labelings), figsize=(5 * len(labelings), 3.2), sharey=True, squeeze=False)
    width = 0.8 / len(metrics)
    for ax, label in zip(axes[0], labelings):
        for i, (name, m) in enumerate(metrics.items()):
            values = [m[label][key] for key in ("purity", "nmi", "ari")]
            ax.bar(np.arange(3) + (i - (len(metrics) - 1) / 2) * width, values, width, label=name)
        ax.set_xticks(range(3), ["purity", "NMI", "ARI"])
        ax.set_title(f"clusters vs {label}", fontsize=10)
        ax.set_ylim(0, 1)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_prototype_gallery(
    images: Any,
    nearest: Mapping[int, Sequence[int] | np.ndarray],
    labels: Any = None,
    max_prototypes: int = 12,
    per_row: int = 8,
    counts: Any = None,
    panel_size: float = 1.1,
    row_name: str = "prototype",
) -> Figure:
    """For each prototype (a row), its nearest images, annotated with their label.

    Args:
        images: ``(N, H, W)`` uint8 images (or floats in [0, 1]) indexed by ``nearest``.
        nearest: output of :func:`nearest_to_prototypes`.
        labels: optional ``(N,)`` labels shown under each image (e.g. class or modality;
            combine them beforehand, like ``"CT/HeadCT"``).
        max_prototypes: rows shown (the first ones of ``nearest``, i.e. the most used).
        per_row: images per row.
        counts: optional usage counts (``(K,)`` array or ``{id: count}``), shown in the row titles.
        row_name: what a row is called in its title ("prototype", "cluster").

    Returns:
        A figure with ``min(len(nearest), max_prototypes) * per_row`` axes.
    """
    imgs = as_numpy(images)
    if imgs.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {imgs.shape}")
    protos = list(nearest)[:max_prototypes]
    if not protos:
        raise ValueError("nearest is empty: no prototype to show (are any prototypes used?)")
    lab = None if labels is None else label_vector(labels, len(imgs))
    cnt = counts if counts is None or isinstance(counts, Mapping) else as_numpy(counts)
    vmax = 255 if imgs.dtype == np.uint8 else 1.0
    fig, axes = plt.subplots(
        len(protos), per_row, figsize=(panel_size * per_row, panel_size * len(protos) * 1.15), squeeze=False
    )
    for r, j in enumerate(protos):
        idx = list(nearest[j])[:per_row]
        for c in range(per_row):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(idx):
                ax.imshow(imgs[idx[c]], cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
                if lab is not None:
                    ax.set_xlabel(str(lab[idx[c]]), fontsize=6, labelpad=1)
        title = f"{row_name} {j}" + (f" (n={int(cnt[j])})" if cnt is not None else "")
        axes[r, 0].set_ylabel(title, fontsize=7, rotation=0, ha="right", va="center", labelpad=4)
    fig.suptitle(f"images of {len(protos)} {row_name}s", fontsize=9)
    fig.tight_layout()
    return fig


def plot_cluster_protocol(
    summary: Sequence[Mapping[str, Any]], columns: Sequence[str] = ("class_nmi", "class_ari")
) -> Figure:
    """Each metric against the cluster count, one line per clustering (mean, bars: spread over seeds).

    Drawn from :func:`medssl_lab.evaluation.clusters.summarise_protocol`: where two lines cross, a claim that one
    clustering beats the other depends on the count. Pixel k-means is dashed for pixels in [0, 1] ("raw") and
    dotted for unit-length ones, with a marker per resolution; the prototypes, whose count is the model's, are
    one star.
    """
    lines: dict[str, list[Mapping[str, Any]]] = {}
    for row in summary:
        name = row["method"] + (f", {row['size']} px {row['scaling']}" if row["size"] is not None else "")
        lines.setdefault(name, []).append(row)
    sizes = sorted({r["size"] for r in summary if r["size"] is not None})
    markers = dict(zip(sizes, "osD^v"))
    fig, axes = plt.subplots(1, len(columns), figsize=(5.2 * len(columns), 3.6), squeeze=False)
    for ax, column in zip(axes[0], columns):
        for name, rows in lines.items():
            rows = sorted(rows, key=lambda r: r["n_clusters"])
            x = [r["n_clusters"] for r in rows]
            y, err = [r[column] for r in rows], [r[f"{column}_std"] for r in rows]
            first = rows[0]
            if first["method"] == "prototypes":
                ax.errorbar(x, y, err, marker="*", ms=14, ls="none", color="tab:red", label=name, zorder=3)
            elif first["size"] is not None:
                style = "--" if first["scaling"] == "raw" else ":"
                ax.errorbar(x, y, err, marker=markers[first["size"]], ls=style, color="tab:gray", label=name, ms=5)
            else:
                color = "tab:blue" if first["method"].startswith("pretrained") else "tab:olive"
                ax.errorbar(x, y, err, marker="o", ls="-", color=color, label=name, ms=5)
        label, metric = column.rsplit("_", 1)
        ax.set_xscale("log", base=2)
        ticks = sorted({r["n_clusters"] for r in summary})
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel("clusters")
        ax.set_title(f"{metric.upper() if metric != 'purity' else metric} against {label}", fontsize=10)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
