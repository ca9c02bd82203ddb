"""Open a pool store as an :class:`~medssl_lab.data.types.ImageSet` whose images stay on disk until indexed.

The per-shard index tables are read once into integer columns kept beside the shards in ``index/`` and
memory-mapped by every process that opens the store (:mod:`medssl_lab.data.store.index`; rebuilt when a shard or its
table changes). Opening a store checks it first: its manifest, each shard's record, ``.npy`` header and length, and
(when its index is built) its tables (a row per image, each in range), so damage is named before training. An
image seen twice (the same SOP Instance UID and frame, or the same pixels in a
data set, e.g. a file copied into two folders) is kept once: the first in shard order, whichever machine wrote it.

A store of more than :data:`~medssl_lab.data.sampling.LARGE_POOL` images opens compact: its tags are
:class:`~medssl_lab.data.tags.CodedTags` over the mapped code columns and its labels the mapped column, so a process
holds nothing per image (a smaller store's tags are object arrays, as every other source's).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path
from typing import cast

import numpy as np

from medssl_lab.data import sampling
from medssl_lab.data.stack import ImageStack, npy_layout
from medssl_lab.data.store.index import store_index
from medssl_lab.data.store.layout import StoreLayout, read_manifest, redo
from medssl_lab.data.tags import CodedTags
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError


def _tables(root: str | os.PathLike, table: str) -> list[dict[str, str]]:
    """The rows of one table (``"index"`` or ``"rejected"``) of every finished shard, in shard order."""
    read_manifest(root)  # a clear error for a folder that is no store
    layout = StoreLayout(Path(root))
    rows: list[dict[str, str]] = []
    for k in layout.done_shards():
        with getattr(layout, table)(k).open(newline="") as handle:
            rows += [{**row, "shard": str(k)} for row in csv.DictReader(handle)]
    return rows


def stored_rows(root: str | os.PathLike) -> list[dict[str, str]]:
    """One dict per stored image: the index columns (source, file, frame, modality, the salted keys...) and its
    ``shard``, in shard order, copies included (:func:`open_store` keeps the first).

    What a store holds about its images, for reading without knowing its file layout (notebook 06 groups a
    patient's images by their key).
    """
    return _tables(root, "index")


def rejected_files(root: str | os.PathLike) -> list[dict[str, str]]:
    """One dict per file that gave no image: ``source``, ``file``, ``reason``, ``detail`` (and its ``shard``).

    What an ingest left out and why, read back from the store at any later time.
    """
    return _tables(root, "rejected")


def stored_image(root: str | os.PathLike, source: str, file: str, frame: int = 0) -> np.ndarray | None:
    """The store's image of one frame of one file (uint8, at the store's size), the first copy in shard order; None
    when the store holds none (another source, a rejected file, or its paths were not kept).

    ``file`` is the path relative to its source folder, as the ingest recorded it (``keep_paths``).
    """
    for row in stored_rows(root):
        if (row["source"], row["file"], row["frame"]) == (source, file, str(frame)):
            shard = np.load(StoreLayout(Path(root)).images(int(row["shard"])), mmap_mode="r")
            return np.array(shard[int(row["row"])])
    return None


def image_bytes(root: str | os.PathLike) -> int:
    """Bytes on disk of the store's finished image shards: what its image size costs (one byte per pixel)."""
    read_manifest(root)
    layout = StoreLayout(Path(root))
    return sum(layout.images(k).stat().st_size for k in layout.done_shards())


def shard_counts(layout: StoreLayout, shards: list[int], size: int) -> np.ndarray:
    """Each finished shard's image count, checked: its ``.json``, its ``.npy`` header (uint8, ``(n, size, size)``
    with ``size`` from store.json) and the length of its file agree."""
    counts = []
    for k in shards:
        n, path = layout.read_done(k)["images"], layout.images(k)
        if not path.is_file():
            raise DataError(f"{path}: shard {k}'s images are missing; {redo(layout, k)}")
        shape, offset = npy_layout(path)  # a DataError for what is no (n, H, W) uint8 array
        if tuple(shape) != (n, size, size):
            raise DataError(
                f"{path}: holds {shape[0]} image(s) of {shape[1]}x{shape[2]} px, but its record says {n} and "
                f"store.json says {size}x{size} px; {redo(layout, k)}"
            )
        if path.stat().st_size < offset + n * size * size:
            raise DataError(
                f"{path}: the file is cut short ({path.stat().st_size:,} bytes, its header needs "
                f"{offset + n * size * size:,}); {redo(layout, k)}"
            )
        counts.append(n)
    return np.asarray(counts, np.int64)


def open_store(root: str | os.PathLike, size: int | None = None, compact: bool | None = None) -> ImageSet:
    """The images of the store at ``root`` (duplicates left out), at ``size`` px (default: the store's size).

    Labels are the modality (``class_names`` are ``"<store>/<modality>"``), ``source`` and ``modality`` come from the
    index, so balancing, cluster inspection and UMAP treat a store like any other source. ``compact`` (default: for
    a store of more than ``LARGE_POOL`` images) keeps the tags and labels as the index's mapped integer columns
    instead of making arrays of them.
    """
    root = Path(root)
    manifest = read_manifest(root)
    layout = StoreLayout(root)
    shards = layout.done_shards()
    if not shards:
        raise DataError(f"{root}: the store has no finished shard yet; run `medssl-lab ingest ... --out {root}`")
    counts = shard_counts(layout, shards, manifest["rules"]["size"])
    index = store_index(layout, shards, counts)
    if not len(index.position):
        rejected = Counter(r["reason"] for r in rejected_files(root))
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(rejected.items())) or "no files"
        raise DataError(
            f"{root}: the store holds no image (rejected files by reason: {reasons}; see shards/*.rejected.csv); "
            "ingest sources that hold images"
        )
    stack = ImageStack([layout.images(k) for k in shards], size or manifest["rules"]["size"], index.position)
    compact = len(index.position) > sampling.LARGE_POOL if compact is None else compact
    tags = {c: CodedTags(index.tags[c], index.names[c]) for c in ("modality", "source")}
    return ImageSet(
        images=cast(np.ndarray, stack),  # duck-typed: an array that reads on indexing
        labels=index.labels if compact else np.array(index.labels),
        class_names=tuple(f"{root.name}/{m}" for m in index.names["modality"]),
        task="unlabelled",
        modality=cast(np.ndarray, tags["modality"]) if compact else np.asarray(tags["modality"]),
        source=cast(np.ndarray, tags["source"]) if compact else np.asarray(tags["source"]),
    )
