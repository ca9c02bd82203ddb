"""The unlabelled pretraining pool: several sources at one size, every image tagged with modality and source.

Images stay uint8 in memory (about 1 kB each at 32 px), so a batch is one indexing
operation; balancing over modalities is a matter of sampling weights. A pool store (your own
images, ``medssl-lab ingest``) stays on disk and is read batch by batch.

Sampling (:mod:`medssl_lab.data.sampling`) and provenance (:mod:`medssl_lab.data.provenance`) live apart, so that
training loops and checkpoints need not import the sources; their names stay importable from here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import cast

import numpy as np

from medssl_lab.data.medmnist import load_medmnist, medmnist_subsets
from medssl_lab.data.mednist import load_mednist
from medssl_lab.data.provenance import describe_provenance, pool_provenance, pool_summary
from medssl_lab.data.sampling import balanced_weights, epoch_batches
from medssl_lab.data.stack import concatenate_images
from medssl_lab.data.store.layout import is_store
from medssl_lab.data.store.reader import open_store
from medssl_lab.data.types import ImageSet

__all__ = [
    "DEFAULT_SOURCES",
    "balanced_weights",
    "build_pool",
    "describe_provenance",
    "epoch_batches",
    "leave_out",
    "pool_provenance",
    "pool_summary",
]

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


def leave_out(pool: ImageSet, *names: str) -> ImageSet:
    """``pool`` without the images ``names`` match: the pool of a transfer experiment on images it never held.

    Each name is a modality (``"X-ray"``), a source (``"pneumoniamnist"``) or a class tag of the pool
    (``"mednist/CXR"``), so a whole modality or one family of images (chest X-rays, keeping hand X-rays) can go.

    Raises:
        ValueError: a name matches no image, or nothing would be left.
    """
    tags = np.asarray(pool.class_names, dtype=object)[pool.labels[:, 0]]
    held = {"modality": np.asarray(pool.modality), "source": np.asarray(pool.source), "class": tags}
    drop = np.zeros(len(pool), dtype=bool)
    for name in names:
        match = np.logical_or.reduce([column == name for column in held.values()])
        if not match.any():
            choices = {key: sorted(set(column.tolist())) for key, column in held.items()}
            raise ValueError(f"cannot leave out {name!r}: no image of the pool has it; the pool holds {choices}")
        drop |= match
    if not names or drop.all():
        raise ValueError(f"cannot leave out {list(names)}: name what to leave out, and not the whole pool")
    return pool.subset(np.flatnonzero(~drop))
