"""Open a pool store as an :class:`~medssl_lab.data.types.ImageSet` whose images stay on disk until indexed.

The per-shard index tables are read once into compact columns (cached beside the shards as ``index-cache.npz``,
rebuilt when a shard or its table changes). Opening a store checks it first: its manifest, each shard's record,
``.npy`` header and length, and its index (a row per image, each in range), so damage is named before training. An
image seen twice (the same SOP Instance UID and frame, or the same pixels in a
data set, e.g. a file copied into two folders) is kept once: the first in shard order, whichever machine wrote it.
"""

from __future__ import annotations

import csv
import hashlib
import os
import zipfile
from collections import Counter
from pathlib import Path
from typing import cast

import numpy as np

from medssl_lab.data.stack import ImageStack, npy_layout
from medssl_lab.data.store.layout import StoreLayout, read_manifest
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError
from medssl_lab.files import atomic_file

CACHE = "index-cache.npz"
TAG_COLUMNS = ("source", "modality", "body_part")


def _cache_key(layout: StoreLayout, shards: list[int]) -> str:
    digest = hashlib.blake2b(digest_size=12)
    for k in shards:
        index = layout.index(k)
        stat = (index.stat().st_size, index.stat().st_mtime_ns) if index.exists() else None  # an edited table too
        digest.update(f"{k}:{layout.read_done(k)['digest']}:{stat}\n".encode())
    return digest.hexdigest()


def _parse_index(layout: StoreLayout, shards: list[int]) -> dict[str, np.ndarray]:
    """The tables of ``shards`` as columns: shard, row, instance key (uint64, 0 = none) and tag codes with names.

    Read one shard at a time into NumPy arrays, so that building the columns of ten million rows stays within a
    few hundred MB.
    """
    names: dict[str, dict[str, int]] = {c: {} for c in TAG_COLUMNS}
    parts: dict[str, list[np.ndarray]] = {c: [] for c in ("shard", "row", "instance_key", *TAG_COLUMNS)}
    for k in shards:
        try:
            with layout.index(k).open(newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader)
                where = {c: header.index(c) for c in ("row", "instance_key", *TAG_COLUMNS)}
                table = list(zip(*reader)) or [() for _ in header]
            rows = np.asarray(table[where["row"]], np.int64)
            instance_keys = np.asarray([int(v or "0", 16) for v in table[where["instance_key"]]], np.uint64)
        except (OSError, StopIteration, ValueError, IndexError, csv.Error) as exc:
            raise DataError(
                f"{layout.index(k)}: shard {k}'s index cannot be read ({type(exc).__name__}: {exc}); {redo(layout, k)}"
            ) from exc
        parts["shard"].append(np.full(len(rows), k, np.int32))
        parts["row"].append(rows)
        parts["instance_key"].append(instance_keys)
        for c in TAG_COLUMNS:
            codes = names[c]
            parts[c].append(np.asarray([codes.setdefault(v, len(codes)) for v in table[where[c]]], np.int32))
    columns = {c: np.concatenate(parts[c]) for c in ("shard", "row", "instance_key")}
    for c in TAG_COLUMNS:
        columns[f"{c}_codes"] = np.concatenate(parts[c])
        columns[f"{c}_names"] = np.asarray(list(names[c]), dtype=str)
    return columns


def read_index(root: str | os.PathLike) -> dict[str, np.ndarray]:
    """The store's index columns, from the cache when it matches the finished shards."""
    layout = StoreLayout(Path(root))
    shards = layout.done_shards()
    key = _cache_key(layout, shards)
    cache = layout.root / CACHE
    try:
        with np.load(cache) as held:
            if str(held["key"]) == key:
                return {name: held[name] for name in held.files if name != "key"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # no cache, or a damaged one: it is only a copy of the index tables, made again below
    columns = _parse_index(layout, shards)
    try:
        with atomic_file(cache, suffix=".npz", permissions=0o644) as tmp:
            np.savez(tmp, **{"key": np.asarray(key), **columns})  # type: ignore[arg-type]  # numpy stubs: allow_pickle
    except OSError:
        pass  # a read-only store is read again next time
    return columns


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


def redo(layout: StoreLayout, shard: int) -> str:
    """What to do about a damaged shard: ingest it again."""
    return (
        f"delete {layout.done(shard)} and run the same ingest again (it redoes that shard), or ingest the sources into "
        "a new folder"
    )


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


def check_index(layout: StoreLayout, shards: list[int], counts: np.ndarray, columns: dict[str, np.ndarray]) -> None:
    """Every shard's index has one row per image of the shard, each pointing at a different image of it."""
    which = np.searchsorted(shards, columns["shard"])  # the shard of each row, as a place in ``shards``
    rows_per_shard = np.bincount(which, minlength=len(shards))
    for k, n, m in zip(shards, counts.tolist(), rows_per_shard.tolist()):
        if n != m:
            raise DataError(f"{layout.index(k)}: {m} row(s), but the shard holds {n} image(s); {redo(layout, k)}")
    rows, limit = columns["row"], counts[which]
    bad = np.flatnonzero((rows < 0) | (rows >= limit))
    if bad.size:
        k, n, row = shards[which[bad[0]]], limit[bad[0]], rows[bad[0]]
        raise DataError(
            f"{layout.index(k)}: a row points at image {row}, past the end of its shard (images 0 to {n - 1}); "
            f"{redo(layout, k)}"
        )
    places = which.astype(np.int64) * (int(counts.max(initial=0)) + 1) + rows  # unique per (shard, row)
    order = np.argsort(places, kind="stable")
    twice = np.flatnonzero(np.diff(places[order]) == 0)
    if twice.size:
        first = order[twice[0]]
        k = shards[which[first]]
        raise DataError(f"{layout.index(k)}: two rows point at image {rows[first]}; {redo(layout, k)}")


def open_store(root: str | os.PathLike, size: int | None = None) -> ImageSet:
    """The images of the store at ``root`` (duplicates left out), at ``size`` px (default: the store's size).

    Labels are the modality (``class_names`` are ``"<store>/<modality>"``), ``source`` and ``modality`` come from the
    index, so balancing, cluster inspection and UMAP treat a store like any other source.
    """
    root = Path(root)
    manifest = read_manifest(root)
    layout = StoreLayout(root)
    shards = layout.done_shards()
    if not shards:
        raise DataError(f"{root}: the store has no finished shard yet; run `medssl-lab ingest ... --out {root}`")
    counts = shard_counts(layout, shards, manifest["rules"]["size"])
    columns = read_index(root)
    check_index(layout, shards, counts, columns)
    if not len(columns["row"]):
        rejected = Counter(r["reason"] for r in rejected_files(root))
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(rejected.items())) or "no files"
        raise DataError(
            f"{root}: the store holds no image (rejected files by reason: {reasons}; see shards/*.rejected.csv); "
            "ingest sources that hold images"
        )
    keys = columns["instance_key"]
    keep = keys == 0  # an image without a key is never a duplicate
    keep[np.unique(keys, return_index=True)[1]] = True
    kept = np.flatnonzero(keep)
    first_position = np.zeros(max(shards) + 1, np.int64)  # where each shard starts in the stack of all shards
    first_position[shards] = np.cumsum([0, *counts.tolist()])[:-1]
    positions = first_position[columns["shard"][kept]] + columns["row"][kept]
    stack = ImageStack([layout.images(k) for k in shards], size or manifest["rules"]["size"], positions)
    modality_codes = columns["modality_codes"][kept]
    modality_names = columns["modality_names"].astype(object)
    return ImageSet(
        images=cast(np.ndarray, stack),  # duck-typed: an array that reads on indexing
        labels=modality_codes.astype(np.int64),
        class_names=tuple(f"{root.name}/{m}" for m in columns["modality_names"]),
        task="unlabelled",
        modality=modality_names[modality_codes],
        source=columns["source_names"].astype(object)[columns["source_codes"][kept]],
    )
