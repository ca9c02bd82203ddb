"""Which images a training step sees: index batches and balancing weights.

Apart from the pool, so that every training loop can draw batches without importing the data sources (DICOM,
image codecs, stores).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def balanced_weights(tags: np.ndarray) -> np.ndarray:
    """Per-image sampling weights that give every tag (e.g. modality) the same total weight."""
    codes: dict[object, int] = {}  # a few distinct tags over up to millions of images: no sort, no string copies
    inverse = np.fromiter((codes.setdefault(t, len(codes)) for t in tags), np.int64, len(tags))
    weights = 1.0 / np.bincount(inverse)[inverse]
    return weights / weights.sum()


def epoch_batches(
    n: int, batch_size: int, generator: torch.Generator, weights: np.ndarray | None = None, drop_last: bool = True
) -> Iterator[torch.Tensor]:
    """Index batches for one epoch: a permutation, or ``n`` weighted draws with replacement when balancing."""
    if weights is None:
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.multinomial(
            torch.as_tensor(weights, dtype=torch.float64), n, replacement=True, generator=generator
        )
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]
