"""Prototype assignments, cluster metrics, prototype galleries and UMAP plots.

SwAV (Caron et al. 2020; Ghesu et al. 2022) learns ``K`` prototypes and softly assigns
every image to them. After pretraining, the hard assignment (argmax of the prototype
scores) is a clustering of the data learned without labels. This module answers the
questions a reader asks of it:

* how many prototypes are actually used, and how evenly (:func:`usage_summary`)? A few
  prototypes taking everything is collapse;
* do the clusters follow the labels nobody showed the network, the MedNIST class or the
  imaging modality (:func:`cluster_metrics`, :func:`cluster_table`)?
* what does each prototype "mean" (:func:`nearest_to_prototypes`,
  :func:`plot_prototype_gallery`)?
* how is the embedding organised (:func:`compute_umap`, :func:`plot_embedding`,
  :func:`plot_side_by_side` for pretrained against random init)?

Every function takes plain arrays (scores, embeddings, labels), so it works with any
feature extractor. Plots use matplotlib's object-oriented API, return a
:class:`~matplotlib.figure.Figure` and never call ``plt.show()``, so they work headless.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "ClusterRow",
    "assign_prototypes",
    "cluster_metrics",
    "cluster_table",
    "compare_cluster_metrics",
    "compute_umap",
    "format_cluster_table",
    "nearest_to_prototypes",
    "plot_embedding",
    "plot_embedding_grid",
    "plot_prototype_gallery",
    "plot_side_by_side",
    "prototype_usage_counts",
    "purity",
    "subsample_index",
    "usage_summary",
]


# --------------------------------------------------------------------------- helpers


def _to_numpy(x: Any) -> np.ndarray:
    """Arrays, lists and (CPU or device) torch tensors as numpy, without importing torch here."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def _as_label_vector(labels: Any, n: int, name: str = "labels") -> np.ndarray:
    """Labels as a flat (N,) vector: accepts (N,) or (N, 1), numbers or strings."""
    arr = _to_numpy(labels)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a flat (N,) vector or (N, 1), got shape {arr.shape}; "
            "for multi-label data pick one label column"
        )
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries for {n} assignments/points; pass one per sample")
    return arr


def _encode(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique values, integer codes) of any labels, strings or objects included."""
    if labels.dtype == object:
        labels = labels.astype(str)
    uniques, codes = np.unique(labels, return_inverse=True)
    return uniques, codes.reshape(-1)


def _as_assignments(assignments: Any) -> np.ndarray:
    arr = _to_numpy(assignments)
    if arr.ndim != 1:
        raise ValueError(
            f"assignments must be a (N,) vector of cluster ids, got shape {arr.shape}; "
            "turn (N, K) prototype scores into ids with assign_prototypes(scores)"
        )
    return arr


# --------------------------------------------------------------------------- assignments and usage


def assign_prototypes(scores: Any) -> np.ndarray:
    """Hard cluster ids ``(N,)``: the best-scoring prototype of each sample.

    Pass the raw prototype scores (or the softmax of them), not Sinkhorn codes: the codes
    are spread over prototypes by construction and would hide collapse.
    """
    arr = _to_numpy(scores)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"scores must be an (N, K) matrix of prototype scores, got shape {arr.shape}")
    return arr.argmax(axis=1).astype(np.int64)


def prototype_usage_counts(assignments: Any, n_prototypes: int) -> np.ndarray:
    """Samples assigned to each of the ``n_prototypes`` prototypes, zeros included."""
    a = _as_assignments(assignments).astype(np.int64)
    if len(a) and (a.min() < 0 or a.max() >= n_prototypes):
        raise ValueError(f"assignments must lie in 0..{n_prototypes - 1}, got {a.min()}..{a.max()}")
    return np.bincount(a, minlength=n_prototypes)


def usage_summary(assignments: Any, n_prototypes: int) -> dict[str, float]:
    """How many prototypes are used and how evenly: the numbers that reveal collapse.

    Returns a dict with ``n_prototypes``, ``n_used`` (prototypes with at least one
    sample), ``used_fraction``, ``entropy`` (of the usage distribution, nats),
    ``max_entropy`` (``ln K``), ``perplexity`` (``exp(entropy)``: the number of equally
    used prototypes that would give the same entropy) and ``largest_share`` (fraction of
    samples in the biggest cluster). Collapse shows as ``perplexity`` near 1 and
    ``largest_share`` near 1.
    """
    counts = prototype_usage_counts(assignments, n_prototypes)
    total = counts.sum()
    if total == 0:
        raise ValueError("usage_summary got no assignments")
    p = counts[counts > 0] / total
    entropy = float(-(p * np.log(p)).sum())
    return {
        "n_prototypes": int(n_prototypes),
        "n_used": int((counts > 0).sum()),
        "used_fraction": float((counts > 0).mean()),
        "entropy": entropy,
        "max_entropy": float(math.log(n_prototypes)),
        "perplexity": float(math.exp(entropy)),
        "largest_share": float(counts.max() / total),
    }


# --------------------------------------------------------------------------- metrics


def purity(assignments: Any, labels: Any) -> float:
    """Sum over clusters of the majority label count, divided by ``N``.

    Easy to read (the accuracy of labelling each cluster by its majority) but it rises
    with the number of clusters (one sample per cluster gives 1), so read it with NMI/ARI.
    """
    a = _as_assignments(assignments)
    y = _as_label_vector(labels, len(a))
    if len(a) == 0:
        raise ValueError("purity of an empty clustering is undefined")
    _, ac = _encode(a)
    _, yc = _encode(y)
    table = np.zeros((ac.max() + 1, yc.max() + 1), dtype=np.int64)
    np.add.at(table, (ac, yc), 1)
    return float(table.max(axis=1).sum() / len(a))


def cluster_metrics(assignments: Any, labels: Any) -> dict[str, float]:
    """Agreement of a clustering with labels it never saw: purity, NMI, ARI and clusters used.

    ``labels`` may be integers or strings (e.g. the MedNIST class or the modality).
    NMI (normalised mutual information, 0..1) and ARI (adjusted Rand index, about 0 for
    chance, 1 for identical partitions) come from scikit-learn and, unlike purity, do not
    reward using many clusters.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    a = _as_assignments(assignments)
    y = _as_label_vector(labels, len(a))
    _, yc = _encode(y)
    _, ac = _encode(a)
    return {
        "purity": purity(ac, yc),
        "nmi": float(normalized_mutual_info_score(yc, ac)),
        "ari": float(adjusted_rand_score(yc, ac)),
        "n_clusters_used": int(len(np.unique(ac))),
    }


def compare_cluster_metrics(assignments: Any, labelings: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """:func:`cluster_metrics` against several labelings at once, e.g. ``{"class": y, "modality": m}``."""
    return {name: cluster_metrics(assignments, labels) for name, labels in labelings.items()}


class ClusterRow(NamedTuple):
    """One line of :func:`cluster_table`."""

    cluster: int | str
    size: int
    majority: str
    purity: float


def cluster_table(assignments: Any, labels: Any, max_rows: int | None = None) -> list[ClusterRow]:
    """One row per non-empty cluster, largest first: id, size, majority label, its share.

    The share (purity of that cluster) shows which prototypes are "about" one class or
    modality and which mix them.
    """
    a = _as_assignments(assignments)
    y = _as_label_vector(labels, len(a))
    names, yc = _encode(y)
    clusters, ac, sizes = np.unique(a, return_inverse=True, return_counts=True)
    table = np.zeros((len(clusters), len(names)), dtype=np.int64)
    np.add.at(table, (ac.reshape(-1), yc), 1)
    order = np.lexsort((clusters, -sizes))  # largest first, ties by cluster id
    rows = [
        ClusterRow(
            cluster=int(clusters[i]) if np.issubdtype(clusters.dtype, np.integer) else clusters[i],
            size=int(sizes[i]),
            majority=str(names[table[i].argmax()]),
            purity=float(table[i].max() / sizes[i]),
        )
        for i in order
    ]
    return rows[:max_rows] if max_rows is not None else rows


def format_cluster_table(rows: Sequence[ClusterRow], max_rows: int = 20) -> str:
    """The rows as aligned text, capped at ``max_rows`` lines (notebook output stays short)."""
    lines = [f"{'cluster':>7}  {'size':>6}  {'purity':>6}  majority"]
    for r in rows[:max_rows]:
        lines.append(f"{r.cluster!s:>7}  {r.size:>6d}  {r.purity:>6.2f}  {r.majority}")
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows} more clusters")
    return "\n".join(lines)


# --------------------------------------------------------------------------- prototypes


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (rows, dim) matrix, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def nearest_to_prototypes(
    embeddings: Any,
    prototypes: Any,
    k: int = 8,
    top_m: int | None = None,
    min_count: int = 1,
) -> dict[int, np.ndarray]:
    """The ``k`` samples closest (cosine) to each used prototype: what that prototype stands for.

    A prototype is kept if at least ``min_count`` samples have it as their best match
    (an unused prototype has no images of its own and its neighbours mislead). With
    ``top_m``, only the ``top_m`` most used prototypes are kept.

    Args:
        embeddings: ``(N, d)`` embeddings (normalised here, so raw ones are fine).
        prototypes: ``(K, d)`` prototype vectors, e.g. ``model.prototypes.weight``.
        k: neighbours per prototype (fewer if ``N < k``).
        top_m: keep only the most used prototypes.
        min_count: minimum number of assigned samples for a prototype to be kept.

    Returns:
        ``{prototype id: (k,) sample indices, most similar first}``, ordered by usage,
        most used first.
    """
    z = _unit_rows(_to_numpy(embeddings), "embeddings")
    c = _unit_rows(_to_numpy(prototypes), "prototypes")
    if z.shape[1] != c.shape[1]:
        raise ValueError(f"embeddings have dim {z.shape[1]} but prototypes have dim {c.shape[1]}; use the head's output")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    sims = z @ c.T  # (N, K); 60k x 300 floats is 72 MB, fine for this package's sizes
    counts = np.bincount(sims.argmax(axis=1), minlength=len(c))
    order = np.lexsort((np.arange(len(c)), -counts))
    keep = [int(j) for j in order if counts[j] >= min_count]
    if top_m is not None:
        keep = keep[:top_m]
    k = min(k, len(z))
    out: dict[int, np.ndarray] = {}
    for j in keep:
        col = sims[:, j]
        part = np.argpartition(-col, k - 1)[:k] if k < len(z) else np.arange(len(z))
        out[j] = part[np.argsort(-col[part], kind="stable")].astype(np.int64)
    return out


def plot_prototype_gallery(
    images: Any,
    nearest: Mapping[int, Sequence[int]],
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
    imgs = _to_numpy(images)
    if imgs.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {imgs.shape}")
    protos = list(nearest)[:max_prototypes]
    if not protos:
        raise ValueError("nearest is empty: no prototype to show (are any prototypes used?)")
    lab = None if labels is None else _as_label_vector(labels, len(imgs))
    cnt = counts if counts is None or isinstance(counts, Mapping) else _to_numpy(counts)
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


# --------------------------------------------------------------------------- UMAP


def subsample_index(n: int, max_points: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``max_points`` out of ``n`` (all if fewer)."""
    if max_points is None or n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def compute_umap(
    features: Any,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
    max_points: int | None = 5000,
    metric: str = "euclidean",
    n_epochs: int = 200,
    exact_knn_max: int = 20000,
    verbose: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """2-D UMAP coordinates of (a seeded subset of) ``features``.

    Kept fast for notebooks on small CPUs:

    * more than ``max_points`` rows are subsampled (seeded: the same points every run);
    * up to ``exact_knn_max`` points, the neighbour graph is computed exactly with
      scikit-learn and handed to UMAP, which skips pynndescent; that avoids most of
      the numba compilation of a first call (measured on a loaded 2-core machine,
      5000 points: about 15 s instead of about 75 s, then about 4 s per call);
    * ``n_epochs`` defaults to 200 instead of UMAP's 500 for small data sets, which
      barely changes the picture.

    The first call in a Python process still compiles some numba code (the layout
    optimiser): expect 10-20 s more than later calls. With a seed, UMAP runs
    single-threaded and is reproducible.

    Args:
        features: ``(N, d)`` embeddings or backbone features.
        n_neighbors, min_dist: UMAP's parameters (``n_neighbors`` is capped at ``n - 1``).
        seed: seed of the subsample and of UMAP.
        max_points: cap on the number of points (None: all).
        metric: ``"euclidean"`` (same neighbours as cosine for unit-norm embeddings) or
            ``"cosine"``; other UMAP metrics use UMAP's own neighbour search.
        n_epochs: optimisation epochs.
        exact_knn_max: largest number of points for the exact neighbour graph.

    Returns:
        ``(coords, index)``: ``(n, 2)`` float32 coordinates and the ``(n,)`` indices
        (sorted) of the rows they belong to; colour them with ``labels[index]``.
    """
    x = _to_numpy(features)
    if x.ndim != 2:
        raise ValueError(f"features must be an (N, d) matrix, got shape {x.shape}")
    if len(x) < 4:
        raise ValueError(f"UMAP needs at least 4 points, got {len(x)}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf; check the model (a diverged run?) before plotting")
    index = subsample_index(len(x), max_points, seed)
    x = np.ascontiguousarray(x[index], dtype=np.float32)
    k = int(min(n_neighbors, len(x) - 1))
    import warnings

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")  # random_state forces n_jobs=1: expected
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")  # no .transform(): not needed here
        warnings.filterwarnings("ignore", message=".*Tensorflow not installed.*")  # only ParametricUMAP needs it
        warnings.filterwarnings("ignore", category=FutureWarning)
        import umap

        knn = None
        if metric in ("euclidean", "cosine") and len(x) <= exact_knn_max:
            from sklearn.neighbors import NearestNeighbors

            algorithm = "brute" if metric == "cosine" else "auto"
            dist, ind = NearestNeighbors(n_neighbors=k, metric=metric, algorithm=algorithm).fit(x).kneighbors(x)
            knn = (ind.astype(np.int32), dist.astype(np.float32), None)
        reducer = umap.UMAP(
            n_neighbors=k,
            min_dist=min_dist,
            metric=metric,
            n_epochs=n_epochs,
            random_state=seed,
            precomputed_knn=knn if knn is not None else (None, None, None),
            verbose=verbose,
        )
        coords = reducer.fit_transform(x).astype(np.float32)
    if verbose:
        print(f"UMAP of {len(x)} points took {time.perf_counter() - start:.1f} s")
    return coords, index


# --------------------------------------------------------------------------- embedding plots


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
) -> Figure:
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
        The figure holding the axes.
    """
    xy = _to_numpy(coords)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must be (n, 2), got shape {xy.shape}")
    lab = _as_label_vector(colour_by, len(xy), "colour_by")
    names, codes = _encode(lab)
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
