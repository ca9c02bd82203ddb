"""Seeded, stratified draws of labelled images: label fractions, fixed shots per class, smaller evaluation splits."""

from __future__ import annotations

import numpy as np

from medssl_lab.data.types import ImageSet


def label_fraction_indices(labels: np.ndarray, fraction: float, seed: int = 0, min_per_class: int = 2) -> np.ndarray:
    """Seeded, stratified subset of a train split, for label-efficiency experiments.

    Each class keeps ``round(fraction * count)`` examples but at least ``min_per_class``
    (so 0.1 % of MedNIST still shows every class, and AUC stays defined); for multi-label
    data a random subset is topped up until every label has ``min_per_class`` positives
    and negatives. For one seed the subsets are nested (1 % lies inside 10 %), because
    each class is drawn from one fixed permutation.

    Args:
        labels: ``(N,)`` / ``(N, 1)`` class indices, or ``(N, L)`` 0/1 multi-label matrix.
        fraction: in ``(0, 1]``; 1.0 returns every index.
        seed: fixes the subset.
        min_per_class: floor per class (capped at the class size).

    Returns:
        Sorted int64 indices into ``labels``.
    """
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction} (1 % is 0.01)")
    n = len(y)
    if fraction >= 1.0:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if y.ndim == 1:
        parts = []
        for cls in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == cls))
            k = min(len(idx), max(min_per_class, int(round(fraction * len(idx)))))
            parts.append(idx[:k])
        return np.sort(np.concatenate(parts)).astype(np.int64)
    order = rng.permutation(n)
    chosen = np.zeros(n, dtype=bool)
    chosen[order[: max(1, int(round(fraction * n)))]] = True
    for j in range(y.shape[1]):
        for value in (0, 1):
            have = int(np.sum(y[chosen, j] == value))
            if have < min_per_class:
                extra = [i for i in order if not chosen[i] and y[i, j] == value][: min_per_class - have]
                chosen[extra] = True
    return np.flatnonzero(chosen).astype(np.int64)


def labels_per_class_indices(labels: np.ndarray, per_class: int | None, seed: int = 0) -> np.ndarray:
    """Seeded draw of ``per_class`` labelled images of every class (None: every image), for label efficiency in
    labels per class, the regime of few-label results.

    Each class is drawn from one fixed permutation per seed, so for one seed the draws are nested (the 5 images of a
    class lie inside its 10). A class with fewer images gives all it has.

    Returns:
        Sorted int64 indices into ``labels`` (``(N,)`` or ``(N, 1)`` class indices).
    """
    y = np.asarray(labels)
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1:
        raise ValueError(f"labels per class needs one class per image, got labels of shape {np.shape(labels)}")
    if per_class is None:
        return np.arange(len(y), dtype=np.int64)
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a whole number >= 1 or None (every label), got {per_class!r}")
    rng = np.random.default_rng(seed)
    parts = [rng.permutation(np.flatnonzero(y == cls))[:per_class] for cls in np.unique(y)]
    return np.sort(np.concatenate(parts)).astype(np.int64)


def per_class_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` indices of every class, drawn without replacement (few-shot support sets)."""
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
    )


def few_shot_draws(labels: np.ndarray, shots: int, draws: int, seed: int = 0) -> list[np.ndarray]:
    """``draws`` seeded support sets of ``shots`` indices per class (the same for every encoder)."""
    rng = np.random.default_rng(seed * 1000 + shots)
    return [per_class_indices(labels, shots, rng) for _ in range(draws)]


def limit_split(split: ImageSet, limit: int | None, seed: int = 0) -> ImageSet:
    """A stratified subset of at most about ``limit`` images (None or a smaller split: the split itself).

    Validation every few steps on all of MedNIST's 5,895 validation images would cost more than the training.
    """
    if limit is None or len(split) <= limit:
        return split
    return split.subset(label_fraction_indices(split.labels, limit / len(split), seed=seed))
