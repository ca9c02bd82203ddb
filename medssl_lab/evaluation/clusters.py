"""What the prototypes learned without labels: assignments, usage, agreement with class and modality.

SwAV learns ``K`` prototypes and softly assigns every image to them. After pretraining, the hard assignment (the
argmax of the prototype scores) is a clustering of the data learned without labels. This module answers:

* how many prototypes are used, and how evenly (:func:`usage_summary`)? A few prototypes taking everything is
  collapse;
* do the clusters follow labels nobody showed the network, the MedNIST class or the modality
  (:func:`cluster_metrics`, :func:`cluster_table`), better than k-means on the raw pixels (:func:`pixel_kmeans`)?
* what does each prototype stand for (:func:`nearest_to_prototypes`)?

Every function takes plain arrays (scores, embeddings, labels), so it works with any feature extractor; the
figures are in :mod:`medssl_lab.viz`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

# --------------------------------------------------------------------------- helpers


def as_numpy(x: Any) -> np.ndarray:
    """Arrays, lists and (CPU or device) torch tensors as numpy, without importing torch here."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def label_vector(labels: Any, n: int, name: str = "labels") -> np.ndarray:
    """Labels as a flat (N,) vector: accepts (N,) or (N, 1), numbers or strings."""
    arr = as_numpy(labels)
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


def encode_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique values, integer codes) of any labels, strings or objects included."""
    if labels.dtype == object:
        labels = labels.astype(str)
    uniques, codes = np.unique(labels, return_inverse=True)
    return uniques, codes.reshape(-1)


def _as_assignments(assignments: Any) -> np.ndarray:
    arr = as_numpy(assignments)
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
    arr = as_numpy(scores)
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
    y = label_vector(labels, len(a))
    if len(a) == 0:
        raise ValueError("purity of an empty clustering is undefined")
    _, ac = encode_labels(a)
    _, yc = encode_labels(y)
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
    y = label_vector(labels, len(a))
    _, yc = encode_labels(y)
    _, ac = encode_labels(a)
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
    y = label_vector(labels, len(a))
    names, yc = encode_labels(y)
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
    z = _unit_rows(as_numpy(embeddings), "embeddings")
    c = _unit_rows(as_numpy(prototypes), "prototypes")
    if z.shape[1] != c.shape[1]:
        raise ValueError(
            f"embeddings have dim {z.shape[1]} but prototypes have dim {c.shape[1]}; use the head's output"
        )
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


def kmeans_assignments(features: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means clusters of L2-normalised features (the clustering of encoders without trained prototypes)."""
    import torch
    import torch.nn.functional as F
    from sklearn.cluster import KMeans

    x = F.normalize(torch.as_tensor(features, dtype=torch.float32), dim=1).numpy()
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(x)


def pixel_kmeans(images: np.ndarray, k: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """k-means on the raw pixels at ``size`` px, scaled to [0, 1]: the clustering the prototypes must beat."""
    from sklearn.cluster import KMeans

    from medssl_lab.data.resize import resize_uint8

    pixels = resize_uint8(np.asarray(images), size).reshape(len(images), -1).astype(np.float32) / 255.0
    return KMeans(k, n_init=3, random_state=seed).fit_predict(pixels)
