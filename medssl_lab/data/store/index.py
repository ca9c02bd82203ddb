"""A store's index as memory-mapped integer columns: built once from the shards' tables, shared by every process.

Opening a store needs, per image, where it is (shard and row), its tags (source, modality, body part) and whether it
copies an earlier one. The shards' tables hold that as text, which takes about a minute per ten million rows to
read. The first open of a store (and the first after a shard was added or changed) reads them, checks them, drops
the copies and writes what is left beside the shards, one ``.npy`` file per column in the smallest integer type
that holds it::

    STORE/index/<key>/position.npy     uint32 (uint64 from 2**32 images on): where each kept image is, counted over
                                       the shards in order (row r of shard k: the images of the shards before k, + r)
    STORE/index/<key>/source.npy       codes into the names in index.json: uint8 (uint16, uint32 for more names)
    STORE/index/<key>/modality.npy     the same
    STORE/index/<key>/body_part.npy    the same
    STORE/index/<key>/labels.npy       int64 (N, 1): the modality code as an ImageSet's labels (int64 by contract);
                                       its pages are read only where labels are used
    STORE/index/<key>/index.json       the names of the codes, each shard's image count, the columns' types, the key

``<key>`` hashes the finished shards' records and the size and time of their tables, so a folder never changes once
complete: it is written under a hidden name and renamed into place whole; older folders, and the
``index-cache.npz`` that stores written before kept, are removed then. Every later open maps the columns
(``np.load(mmap_mode="r")``): nothing is copied per process, the kernel keeps one copy in its page cache for every
process that opens the store, and only the pages that are read are loaded. A store in a read-only folder is parsed
at every open instead, and held in memory.

Bytes per image: 15 on disk (4 position, 3 tags with up to 255 names each, 8 labels), none copied per process.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medssl_lab.data.store.layout import StoreLayout, redo
from medssl_lab.errors import DataError

INDEX_FOLDER = "index"
LEGACY_CACHE = "index-cache.npz"  # the single-file cache of stores opened before the index folder
TAG_COLUMNS = ("source", "modality", "body_part")
FORMAT = 1


@dataclass(frozen=True)
class StoreIndex:
    """The index of a store's kept images, one row per image: columns memory-mapped from ``folder`` (None: held in
    memory, for a store whose folder is read-only)."""

    position: np.ndarray  #: (N,) unsigned: where each image is in the stack of the finished shards
    tags: dict[str, np.ndarray]  #: column -> (N,) unsigned codes
    names: dict[str, list[str]]  #: column -> the name of each code
    labels: np.ndarray  #: (N, 1) int64: the modality codes
    counts: list[int]  #: images of each finished shard, in order
    folder: Path | None = None


def cache_key(layout: StoreLayout, shards: list[int]) -> str:
    """A name for the finished shards as they are now: their records (digest, image count) and their tables' size
    and modification time (an edited table too)."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"index format {FORMAT}\n".encode())
    for k in shards:
        index = layout.index(k)
        stat = (index.stat().st_size, index.stat().st_mtime_ns) if index.exists() else None
        done = layout.read_done(k)
        digest.update(f"{k}:{done['digest']}:{done['images']}:{stat}\n".encode())
    return digest.hexdigest()


def smallest_uint(largest: int) -> np.dtype:
    """The smallest unsigned integer type that holds ``largest``."""
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if largest <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"{largest} does not fit in 64 bits")


def _read_table(layout: StoreLayout, k: int) -> tuple[np.ndarray, np.ndarray, dict[str, tuple]]:
    """Rows, instance keys and tag values of shard ``k``'s table."""
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
    return rows, instance_keys, {c: table[where[c]] for c in TAG_COLUMNS}


def parse_tables(layout: StoreLayout, shards: list[int]) -> dict[str, np.ndarray]:
    """The tables of ``shards`` as columns, every row (copies included): shard, row, instance key (uint64, 0 =
    none) and tag codes, with the names of the codes (``<tag>_names``). One shard at a time into NumPy arrays."""
    names: dict[str, dict[str, int]] = {c: {} for c in TAG_COLUMNS}
    parts: dict[str, list[np.ndarray]] = {c: [] for c in ("shard", "row", "instance_key", *TAG_COLUMNS)}
    for k in shards:
        rows, instance_keys, tags = _read_table(layout, k)
        parts["shard"].append(np.full(len(rows), k, np.int32))
        parts["row"].append(rows)
        parts["instance_key"].append(instance_keys)
        for c in TAG_COLUMNS:
            codes = names[c]
            parts[c].append(np.asarray([codes.setdefault(v, len(codes)) for v in tags[c]], np.int32))
    columns = {c: np.concatenate(parts[c]) for c in ("shard", "row", "instance_key")}
    for c in TAG_COLUMNS:
        columns[f"{c}_codes"] = np.concatenate(parts[c])
        columns[f"{c}_names"] = np.asarray(list(names[c]), dtype=str)
    return columns


def check_tables(layout: StoreLayout, shards: list[int], counts: np.ndarray, columns: dict[str, np.ndarray]) -> None:
    """Every shard's table has one row per image of the shard, each pointing at a different image of it."""
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


def build_index(layout: StoreLayout, shards: list[int], counts: np.ndarray) -> StoreIndex:
    """The index of the kept images, in memory: the tables read and checked, copies dropped (an image seen twice,
    by its instance key, is kept the first time in shard order; an image without a key always)."""
    columns = parse_tables(layout, shards)
    check_tables(layout, shards, counts, columns)
    keys = columns["instance_key"]
    keep = keys == 0
    keep[np.unique(keys, return_index=True)[1]] = True
    kept = np.flatnonzero(keep)
    first_position = np.zeros(max(shards) + 1, np.int64)  # where each shard starts in the stack of all shards
    first_position[shards] = np.cumsum([0, *counts.tolist()])[:-1]
    position = first_position[columns["shard"][kept]] + columns["row"][kept]
    tags, names = {}, {}
    for c in TAG_COLUMNS:
        names[c] = columns[f"{c}_names"].tolist()
        tags[c] = columns[f"{c}_codes"][kept].astype(smallest_uint(max(len(names[c]) - 1, 0)))
    labels = tags["modality"].astype(np.int64)[:, None]
    return StoreIndex(position.astype(smallest_uint(int(counts.sum()))), tags, names, labels, counts.tolist())


def _arrays(index: StoreIndex) -> dict[str, np.ndarray]:
    return {"position": index.position, **index.tags, "labels": index.labels}


def write_index(layout: StoreLayout, key: str, index: StoreIndex, replace: bool = False) -> Path:
    """Write ``index`` as the folder of ``key`` (whole: a hidden folder renamed into place) and remove the folders
    of other keys and the old single-file cache. Returns the folder (another process's, when it won the race).

    ``replace``: the folder of ``key`` is there but damaged; it is removed first."""
    base = layout.root / INDEX_FOLDER
    base.mkdir(exist_ok=True)
    final = base / key
    if replace:
        shutil.rmtree(final, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=base))
    try:
        arrays = _arrays(index)
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(array))
        record = {
            "format": FORMAT,
            "key": key,
            "images": len(index.position),
            "counts": index.counts,
            "names": index.names,
            "columns": {name: [array.dtype.str, list(array.shape)] for name, array in arrays.items()},
        }
        (tmp / "index.json").write_text(json.dumps(record))
        for path in tmp.iterdir():
            path.chmod(0o644)
        tmp.chmod(0o755)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "index.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # what is left when another process renamed its folder first
    _remove_stale(layout, keep=key)
    return final


def _remove_stale(layout: StoreLayout, keep: str) -> None:
    """Folders of other keys, hidden folders that a killed process left (a day old), the old single-file cache."""
    for path in (layout.root / INDEX_FOLDER).iterdir():
        hidden = path.name.startswith(".")
        if path.name != keep and (not hidden or time.time() - path.stat().st_mtime > 86400):
            shutil.rmtree(path, ignore_errors=True)  # a process that maps its files keeps reading them (POSIX)
    (layout.root / LEGACY_CACHE).unlink(missing_ok=True)


def load_index(layout: StoreLayout, key: str, counts: np.ndarray) -> StoreIndex | None:
    """The index folder of ``key``, its columns memory-mapped; None when it is missing, incomplete, damaged or
    made for other shard counts."""
    folder = layout.root / INDEX_FOLDER / key
    try:
        record = json.loads((folder / "index.json").read_text())
        if record.get("format") != FORMAT or record.get("key") != key or record["counts"] != counts.tolist():
            return None
        arrays = {}
        for name, (dtype, shape) in record["columns"].items():
            array = np.load(folder / f"{name}.npy", mmap_mode="r")
            if array.dtype.str != dtype or list(array.shape) != shape:
                return None
            arrays[name] = array
        tags = {c: arrays[c] for c in TAG_COLUMNS}
        names = {c: [str(v) for v in record["names"][c]] for c in TAG_COLUMNS}
        return StoreIndex(arrays["position"], tags, names, arrays["labels"], record["counts"], folder)
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None  # no folder yet, or a damaged one: it is only a copy of the tables, made again


def store_index(layout: StoreLayout, shards: list[int], counts: np.ndarray) -> StoreIndex:
    """The index of the store's finished ``shards`` (``counts`` images each, checked by the caller): mapped from its
    folder, which is built first when missing or stale."""
    key = cache_key(layout, shards)
    found = load_index(layout, key, counts)
    if found is not None:
        return found
    damaged = (layout.root / INDEX_FOLDER / key).exists()
    index = build_index(layout, shards, counts)
    try:
        write_index(layout, key, index, replace=damaged)
    except OSError:
        return index  # a read-only store: read again next time
    return load_index(layout, key, counts) or index
