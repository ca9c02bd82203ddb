"""The in-memory form every loader returns: uint8 images plus labels and tags."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def random_subset_index(n: int, k: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded random subset of ``k`` out of ``n`` (all of them when ``k`` is None or >= ``n``).

    The one way the package draws "a smaller random part" (pool limits, notebook subsets, UMAP points), so the same
    seed always gives the same images.
    """
    if k is None or n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


@dataclass
class ImageSet:
    """Grayscale images held as uint8, with labels and per-image tags.

    Attributes:
        images: (N, H, W) uint8: an array, or an :class:`~medssl_lab.data.stack.ImageStack` that reads on indexing.
        labels: (N, L) int64 as in the source (L=1 for single-label tasks).
        class_names: name of each class index (or of each label for multi-label tasks).
        task: "binary-class", "multi-class", "multi-label, binary-class" or "ordinal-regression".
        modality: (N,) per-image modality tag ("CT", "MR", "X-ray", ...).
        source: (N,) per-image source data set name.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    task: str
    modality: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    source: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W) uint8, got {self.images.shape} {self.images.dtype}")
        if self.labels.ndim == 1:
            self.labels = self.labels[:, None]
        if len(self.labels) != n:
            raise ValueError(f"{len(self.labels)} labels for {n} images")
        self.labels = self.labels.astype(np.int64, copy=False)
        if len(self.modality) == 0:
            self.modality = np.full(n, "unknown", dtype=object)
        if len(self.source) == 0:
            self.source = np.full(n, "unknown", dtype=object)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def targets(self) -> np.ndarray:
        """Labels as a flat (N,) vector for single-label tasks, (N, L) for multi-label ones."""
        return self.labels if self.task.startswith("multi-label") else self.labels[:, 0]

    def subset(self, index: np.ndarray) -> ImageSet:
        """The images at ``index`` (an integer or boolean array), with their labels and tags.

        Images kept on disk (:class:`~medssl_lab.data.stack.ImageStack`) stay there: the subset reads nothing.
        """
        select = getattr(self.images, "select", None)
        return ImageSet(
            select(index) if select is not None else self.images[index],
            self.labels[index],
            self.class_names,
            self.task,
            self.modality[index],
            self.source[index],
        )

    def sample(self, k: int | None, seed: int = 0) -> ImageSet:
        """A seeded random subset of ``k`` images in their stored order (all when ``k`` is None or >= the size)."""
        return self if k is None or len(self) <= k else self.subset(random_subset_index(len(self), k, seed))

    def class_counts(self) -> dict[str, int]:
        """Images per class (per positive label for multi-label tasks)."""
        if self.task.startswith("multi-label"):
            counts = self.labels.sum(axis=0)
        else:
            counts = np.bincount(self.labels[:, 0], minlength=len(self.class_names))
        return {name: int(c) for name, c in zip(self.class_names, counts)}
