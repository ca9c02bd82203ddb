"""A store's index as memory-mapped integer columns: written once, rebuilt when stale, shared by processes, and a
process that opens a store of millions of images holds nothing per image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medssl_lab.data import sampling
from medssl_lab.data.sampling import BatchOrder
from medssl_lab.data.store.index import StoreIndex, build_index, cache_key, load_index, write_index
from medssl_lab.data.store.ingest import ingest
from medssl_lab.data.store.layout import StoreLayout, create_or_check
from medssl_lab.data.store.reader import open_store
from medssl_lab.data.store.rules import Rules
from medssl_lab.data.tags import CodedTags
from medssl_lab.pretrain import PretrainConfig, Pretrainer
from medssl_lab.training import BatchReader


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    """Six image files in two shards of three (PNG files: modality "unknown", source "photos")."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(photos / f"{i}.png")
    ingest([str(photos)], tmp_path / "small", Rules(size=16), files_per_shard=3, workers=1, progress=False)
    return tmp_path / "small"


def _folders(store: Path) -> list[Path]:
    return sorted(p for p in (store / "index").iterdir() if not p.name.startswith("."))


def test_the_index_columns_round_trip_mapped_in_the_smallest_types(small_store: Path) -> None:
    pool = open_store(small_store)
    (folder,) = _folders(small_store)
    layout = StoreLayout(small_store)
    counts = np.array([3, 3])
    mapped = load_index(layout, folder.name, counts)
    built = build_index(layout, [0, 1], counts)
    assert mapped is not None and mapped.folder == folder and isinstance(mapped.position, np.memmap)
    assert mapped.position.dtype == np.uint8 and mapped.tags["modality"].dtype == np.uint8  # 6 images, 1 name
    assert mapped.labels.dtype == np.int64 and mapped.labels.shape == (6, 1)
    for name in ("position", "labels"):
        assert np.array_equal(getattr(mapped, name), getattr(built, name))
    assert all(np.array_equal(mapped.tags[c], built.tags[c]) for c in built.tags) and mapped.names == built.names
    assert mapped.names["source"] == ["photos"] and list(pool.source) == ["photos"] * 6
    assert load_index(layout, folder.name, np.array([3, 4])) is None  # made for other shard counts: not used
    record = json.loads((folder / "index.json").read_text())
    assert record["columns"]["position"] == ["|u1", [6]] and record["counts"] == [3, 3]


def test_a_stale_or_old_cache_is_rebuilt_and_removed(small_store: Path) -> None:
    open_store(small_store)
    (first,) = _folders(small_store)
    legacy = small_store / "index-cache.npz"  # what the package wrote before the index folder
    legacy.write_bytes(b"PK\x03\x04 an old cache")
    table = small_store / "shards/000001.index.csv"
    lines = table.read_text().splitlines()
    lines[1] = lines[1].replace(",unknown,", ",CT,", 1)  # one image becomes a CT
    table.write_text("\n".join(lines) + "\n")
    os.utime(table, ns=(table.stat().st_atime_ns, table.stat().st_mtime_ns + 10**9))
    pool = open_store(small_store)
    (second,) = _folders(small_store)
    assert second != first and not first.exists() and not legacy.exists()  # the stale folder and old cache gone
    assert sorted(pool.modality.tolist()) == ["CT"] + ["unknown"] * 5
    assert len({p.name for p in (small_store / "index").iterdir()}) == 1  # no hidden folder left behind


def test_two_processes_see_the_same_index_from_the_same_files(small_store: Path) -> None:
    pool = open_store(small_store)
    script = (
        "import sys, json, numpy as np\n"
        "from medssl_lab.data.store.reader import open_store\n"
        "pool = open_store(sys.argv[1])\n"
        "print(json.dumps({'position': np.asarray(pool.images.positions).tolist(),\n"
        "    'file': str(pool.images.positions.filename), 'modality': list(pool.modality),\n"
        "    'pixels': int(np.asarray(pool.images).astype(np.int64).sum())}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(small_store)], capture_output=True, text=True, check=True)
    other = json.loads(out.stdout.strip().splitlines()[-1])
    assert other["position"] == np.asarray(pool.images.positions).tolist() == list(range(6))
    assert other["file"] == str(pool.images.positions.filename)  # one file, mapped by both: one page cache copy
    assert other["modality"] == list(pool.modality)
    assert other["pixels"] == int(np.asarray(pool.images).astype(np.int64).sum())


def synthetic_store(root: Path, n: int, per_shard: int, size: int = 8) -> Path:
    """A store of ``n`` images whose shard files are sparse (holes: read as zeros, no disk used) and whose index
    columns are written directly (no tables): four modalities, the last one rare."""
    create_or_check(root, Rules(size=size), files_per_shard=per_shard)
    layout = StoreLayout(root)
    layout.shards.mkdir()
    counts = []
    for k in range(-(-n // per_shard)):
        m = min(per_shard, n - k * per_shard)
        with layout.images(k).open("wb") as handle:
            header = {"descr": "|u1", "fortran_order": False, "shape": (m, size, size)}
            np.lib.format.write_array_header_1_0(handle, header)
            handle.truncate(handle.tell() + m * size * size)
        layout.done(k).write_text(json.dumps({"digest": f"synthetic-{k}", "files": m, "images": m}))
        counts.append(m)
    modality = (np.arange(n) % 97 % 4).astype(np.uint8)
    modality[modality == 3] = 0
    modality[::1000] = 3
    tags = {"source": np.zeros(n, np.uint8), "modality": modality, "body_part": np.zeros(n, np.uint8)}
    names = {"source": ["synthetic"], "modality": ["CT", "MR", "X-ray", "ultrasound"], "body_part": [""]}
    index = StoreIndex(np.arange(n, dtype=np.uint32), tags, names, modality.astype(np.int64)[:, None], counts)
    write_index(layout, cache_key(layout, list(range(len(counts)))), index)
    return root


def _private_kb() -> int:
    """This process's resident anonymous memory (what no other process shares), kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_an_opened_store_holds_nothing_per_image_in_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 3_000_000
    monkeypatch.setattr(sampling, "LARGE_POOL", 1_000_000)  # batches computed as for 100 M images
    store = synthetic_store(tmp_path / "big", n, per_shard=1_000_000)
    reader_kb = []
    for compact in (True, False):
        before = _private_kb()
        pool = open_store(store, compact=compact)
        order = BatchOrder(len(pool), 256, seed=1, tags=pool.modality)  # as the trainer draws: balanced
        reader = BatchReader(pool.images, torch.device("cpu"), workers=2)
        for batch in order.epoch(0)[:20]:
            assert reader.get(batch).shape == (256, 8, 8)
        reader_kb.append(_private_kb() - before)
        del pool, order, reader
    compact_kb, arrays_kb = reader_kb
    assert compact_kb < 6144, f"{compact_kb} kB for {n:,} images"  # about 2 bytes per image at most, all told
    assert arrays_kb > n * 16 / 1024  # tags as object arrays: 8 bytes per image each (the test can tell)


def test_a_large_pool_trains_from_computed_balanced_batches(small_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling, "LARGE_POOL", 4)  # a pool of 6 counts as large: the path of 100 M images
    pool = open_store(small_store, compact=True)
    assert isinstance(pool.modality, CodedTags) and isinstance(pool.images.positions, np.memmap)
    config = PretrainConfig.for_profile("smoke", batch_size=3, epochs=2, log_every=1, device="cpu", balance="source")
    torch.set_num_threads(1)
    trainer = Pretrainer(config, pool)
    batches = trainer._batch_order(0)
    assert trainer.weights is None and not isinstance(batches, list) and len(batches) == 2
    assert trainer._batch_order(0)[1].tolist() == batches[1].tolist()  # computed again: the same
    history = trainer.fit(progress=False)
    assert len(history.rows) == 4 and np.isfinite(history.column("loss")).all()
