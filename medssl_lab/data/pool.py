"""The unlabelled pretraining pool: several sources at one size, every image tagged with modality and source.

Images stay uint8 in memory (about 1 kB each at 32 px), so a batch is one indexing
operation; balancing over modalities is a matter of sampling weights. A pool store (your own
images, ``medssl-lab ingest``) stays on disk and is read batch by batch.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import cast

import numpy as np
import torch

from medssl_lab import __version__
from medssl_lab.data.medmnist import load_medmnist, medmnist_subsets
from medssl_lab.data.mednist import load_mednist
from medssl_lab.data.stack import ImageStack, concatenate_images
from medssl_lab.data.store.layout import is_store
from medssl_lab.data.store.reader import open_store
from medssl_lab.data.types import ImageSet

DEFAULT_SOURCES = ("mednist", "pneumoniamnist")


def _load_source(name: str, data_dir: str | os.PathLike | None, size: int) -> ImageSet:
    if name == "mednist":
        return load_mednist(data_dir).all
    if name in medmnist_subsets():
        return load_medmnist(name, data_dir=data_dir).train
    if is_store(name):
        return open_store(name, size)
    raise ValueError(
        f"unknown pool source {name!r}; use 'mednist', a MedMNIST subset name, a pool store folder "
        "(made by `medssl-lab ingest`) or an ImageSet"
    )


def build_pool(
    sources: Sequence[str | ImageSet] = DEFAULT_SOURCES,
    size: int = 32,
    data_dir: str | os.PathLike | None = None,
) -> ImageSet:
    """Concatenate ``sources`` at ``size`` px into one pool.

    Args:
        sources: ``"mednist"`` (all 58,954 images), MedMNIST subset names (their train
            split, e.g. ``"pneumoniamnist"``), pool store folders (read on indexing, never whole),
            or ready :class:`ImageSet` objects.
        size: common image size.
        data_dir: data folder, as in the loaders.

    Labels are kept as "<source>/<class>" tags for later analysis (clusters, UMAP);
    pretraining never reads them.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"pool image size must be a whole number of pixels >= 8, got {size!r}")
    sets = [s if isinstance(s, ImageSet) else _load_source(str(s), data_dir, size) for s in sources]
    if not sets:
        raise ValueError("build_pool needs at least one source")
    tags: list[str] = []
    labels = []
    for part in sets:
        src = str(part.source[0]) if len(part) else "unknown"
        names = [f"{src}/{c}" for c in part.class_names]
        tags += [n for n in names if n not in tags]
        labels.append(np.array([tags.index(n) for n in names], dtype=np.int64)[part.labels[:, 0]])
    return ImageSet(
        images=cast(np.ndarray, concatenate_images([p.images for p in sets], size)),  # or an ImageStack (duck-typed)
        labels=np.concatenate(labels),
        class_names=tuple(tags),
        task="unlabelled",
        modality=np.concatenate([p.modality for p in sets]),
        source=np.concatenate([p.source for p in sets]),
    )


def pool_summary(pool: ImageSet) -> list[tuple[str, str, int]]:
    """(source, modality, count) rows, sorted, for printing what the pool holds."""
    counts = Counter(zip(pool.source, pool.modality))
    return sorted((str(s), str(m), n) for (s, m), n in counts.items())


def pool_provenance(pool: ImageSet) -> dict:
    """What a run was trained on, for its checkpoint: image count and size, counts per source and modality, a hash
    of the pixels (two runs on the same data have the same one), and the package version."""
    if isinstance(pool.images, ImageStack):  # on disk: named by its files and rows, not read whole
        digest = pool.images.fingerprint()
    else:
        digest = hashlib.blake2b(np.ascontiguousarray(pool.images).data, digest_size=10).hexdigest()
    return {
        "images": len(pool),
        "size": int(pool.images.shape[-1]),
        "pixels_hash": digest,
        "counts": [list(row) for row in pool_summary(pool)],
        "package": __version__,
    }


def describe_provenance(provenance: dict | None) -> str:
    """One line a reader can check: ``63,662 images at 32 px (mednist CT 30,000, ...)``."""
    if not provenance:
        return "data not recorded (a checkpoint made before the package recorded it)"
    parts = ", ".join(f"{source} {modality} {n:,}" for source, modality, n in provenance["counts"])
    return f"{provenance['images']:,} images at {provenance['size']} px ({parts})"


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
