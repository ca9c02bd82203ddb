"""A store of a hundred million images, simulated: memory per process with 8 processes, and reading speed.

Usage: python benchmarks/store_100m.py --work DIR [--images 100000000] [--size 64] [--processes 8] [--seconds 15]
       [--workers 1,2,4,8] [--keep] [--old-code CHECKOUT] [--large-pool N]

1. **The store** (``DIR/store``): ``--images`` images at ``--size`` px in shards of 100,000, each shard a real
   ``.npy`` file whose images are a hole (``truncate``: the file has its full length but takes no disk; its images
   read as zeros), with its record; the index columns written by the package's own writer
   (:func:`medssl_lab.data.store.index.write_index`), as the first open of an ingested store writes them, four
   modality tags (one of them rare). The shards' text tables are not written: reading 100 million rows of them
   takes about 10 minutes (about a minute per 10 million rows, ``store_scale.md``), once per store.
2. **Memory.** ``--processes`` processes start together, as the ranks of one node would, and each opens the store
   (``open_store``: compact, its columns memory-mapped), makes the balanced batch order the trainer makes
   (``BatchOrder``, balanced by modality) and draws and reads batches of 256 (``BatchReader``, 4 threads) for
   ``--seconds``. When all are done, each reports from ``/proc/self/smaps_rollup``: RSS, PSS (shared pages divided
   among the processes that map them), USS (its private pages), and the same before it opened the store (Python,
   NumPy, torch): the difference is what the store costs it.
3. **Reading.** One process draws and reads batches of 256 in the epoch's order with 1, 2, 4, 8 reading threads
   (``--workers``) for ``--seconds`` each: images per second, against what GPUs of the paper's kind would take
   (figures below). The holes are read through the page cache as real bytes would be (system calls, copies), but
   no disk is involved: this is the reader's own ceiling. ``--real-images N`` adds a store of N images of random
   pixels on the disk, read the same way with its pages dropped from the page cache before each run
   (``POSIX_FADV_DONTNEED``, this store's files only): the disk's share (a virtual disk's host may still cache).

``--old-code CHECKOUT`` (the package before the index columns, e.g. ``git archive 610d72f | tar -x -C CHECKOUT``)
measures the memory of the same processes with that code first: its single-file index cache, read into each
process, the object arrays of tags, the stored balancing weights and epoch order. At 100 million images that needs
about 5 GB per process, so measure it at a size that fits (``--images 10000000``) and scale.

Deletes the store at the end unless ``--keep``. Take the figures on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHARD = 100_000
MODALITIES = ["CT", "MR", "X-ray", "ultrasound"]
#: images/s that a GPU consumes training a ResNet-50 at 224 px with mixed precision (an assumption: NVIDIA's
#: DeepLearningExamples, PyTorch ResNet50 v1.5 README, pytorch-21.03 container; supervised training, one 224 px crop
#: per image: SwAV's 2x224 + 6x96 multi-crop is about 3.1 times the pixels, so the figures are upper bounds)
GPU_RATES = {"V100 16GB": (1200, 8322), "A100 80GB": (2470, 16621)}

CHILD = """
import json, os, sys, time
from pathlib import Path
store, seconds, workers, barrier = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
count, large_pool = int(sys.argv[5]), int(sys.argv[6])
import numpy as np, torch
from medssl_lab.data import sampling
if large_pool >= 0:
    sampling.LARGE_POOL = large_pool  # where the compact forms start (benchmark: both sides at one size)
from medssl_lab.data.store.reader import open_store
from medssl_lab.data.sampling import BatchOrder
from medssl_lab.training import BatchReader
def memory():
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":")
        fields[name] = int(value.split()[0])
    return {"rss": fields["Rss"], "pss": fields["Pss"], "uss": fields["Private_Clean"] + fields["Private_Dirty"],
            "anon": fields["Anonymous"]}
before = memory()
tick = time.perf_counter()
pool = open_store(store)
opened = time.perf_counter() - tick
order = BatchOrder(len(pool), 256, seed=0, tags=pool.modality)
ordered = time.perf_counter() - tick - opened
reader = BatchReader(pool.images, torch.device("cpu"), workers=workers)
batches, start, i = order.epoch(0), time.perf_counter(), 0
reader.prefetch(batches[0])
while time.perf_counter() - start < seconds and i < len(batches):
    batch = reader.get(batches[i])  # the batch order computed and the images read, as the training loop does
    if i + 1 < len(batches):
        reader.prefetch(batches[i + 1])
    i += 1
rate = i * 256 / (time.perf_counter() - start)
if count:
    (barrier / f"{os.getpid()}.done").touch()
    deadline = time.time() + 600
    while len(list(barrier.glob("*.done"))) < count and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # every process mapped and read what it will: measure together
print(json.dumps({"before": before, "after": memory(), "open_s": opened, "order_s": ordered, "rate": rate,
                  "images": len(pool), "compact": type(pool.modality).__name__, "batches": i}))
if count:
    (barrier / f"{os.getpid()}.measured").touch()
    while len(list(barrier.glob("*.measured"))) < count and time.time() < deadline:
        time.sleep(0.2)
"""

#: the same, with the package as it was before the index columns (``--old-code``): its single-file cache, the
#: trainer's balancing weights and stored epoch order, its one-thread reader
OLD_CHILD = (
    CHILD.replace(
        """order = BatchOrder(len(pool), 256, seed=0, tags=pool.modality)""",
        """from medssl_lab.data.sampling import balanced_weights, epoch_batches
weights = balanced_weights(pool.modality)
order = list(epoch_batches(len(pool), 256, torch.Generator().manual_seed(0), weights))""",
    )
    .replace("from medssl_lab.data.sampling import BatchOrder\n", "")
    .replace("batches, start, i = order.epoch(0)", "batches, start, i = order")
    .replace(
        'BatchReader(pool.images, torch.device("cpu"), workers=workers)',
        'BatchReader(pool.images, torch.device("cpu"))',
    )
)
#: writes the old single-file index cache of the simulated store from its index folder (run with the old code)
OLD_CACHE = """
import json, sys
import numpy as np
from pathlib import Path
from medssl_lab.data.store import reader
from medssl_lab.data.store.layout import StoreLayout
layout = StoreLayout(Path(sys.argv[1]))
(folder,) = [p for p in (layout.root / "index").iterdir() if not p.name.startswith(".")]
record = json.loads((folder / "index.json").read_text())
shards, counts = layout.done_shards(), record["counts"]
columns = {"key": np.asarray(reader._cache_key(layout, shards)),
    "shard": np.repeat(np.arange(len(counts), dtype=np.int32), counts),
    "row": np.concatenate([np.arange(n, dtype=np.int64) for n in counts]),
    "instance_key": np.zeros(sum(counts), np.uint64)}
for c in ("source", "modality", "body_part"):
    columns[c + "_codes"] = np.load(folder / (c + ".npy")).astype(np.int32)
    columns[c + "_names"] = np.asarray(record["names"][c], dtype=str)
np.savez(layout.root / reader.CACHE, **columns)
"""


def make_store(root: Path, n_images: int, size: int, real: bool = False) -> float:
    """The simulated store (sparse shards, or random pixels when ``real``; index columns); seconds taken."""
    from medssl_lab.data.store.index import StoreIndex, cache_key, write_index
    from medssl_lab.data.store.layout import StoreLayout, create_or_check
    from medssl_lab.data.store.rules import Rules

    start = time.perf_counter()
    create_or_check(root, Rules(size=size), files_per_shard=SHARD)
    layout = StoreLayout(root)
    layout.shards.mkdir(exist_ok=True)
    counts = []
    for k in range(-(-n_images // SHARD)):
        m = min(SHARD, n_images - k * SHARD)
        with layout.images(k).open("wb") as handle:
            if real:
                np.save(handle, np.random.default_rng(k).integers(0, 256, (m, size, size), dtype=np.uint8))
            else:
                header = {"descr": "|u1", "fortran_order": False, "shape": (m, size, size)}
                np.lib.format.write_array_header_1_0(handle, header)
                handle.truncate(handle.tell() + m * size * size)  # a hole: full length, no disk
        layout.done(k).write_text(json.dumps({"digest": f"synthetic-{k}", "files": m, "images": m}))
        counts.append(m)
    modality = (np.arange(n_images, dtype=np.uint32) % 3).astype(np.uint8)  # CT, MR, X-ray in turn
    modality[::1000] = 3  # and 0.1 % ultrasound
    tags = {"source": np.zeros(n_images, np.uint8), "modality": modality, "body_part": np.zeros(n_images, np.uint8)}
    names = {"source": ["synthetic"], "modality": MODALITIES, "body_part": [""]}
    labels = np.empty((n_images, 1), np.int64)
    labels[:, 0] = modality
    index = StoreIndex(np.arange(n_images, dtype=np.uint32), tags, names, labels, counts)
    del modality, labels
    write_index(layout, cache_key(layout, list(range(len(counts)))), index)
    return time.perf_counter() - start


def disk_use(root: Path) -> tuple[int, int]:
    """(bytes the files say they hold, bytes of disk they take)."""
    files = [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), sum(p.stat().st_blocks * 512 for p in files)


def child(
    store: Path, seconds: float, workers: int, barrier: Path, count: int, large: int, old: Path | None = None
) -> subprocess.Popen:
    """A reading process: this package's code, or the old one's (``old``: a checkout of it)."""
    code = OLD_CHILD if old is not None else CHILD
    arguments = [store, seconds, workers, barrier, count, large]
    env = {**os.environ, "PYTHONPATH": str(old)} if old is not None else None
    command = [sys.executable, "-c", code, *map(str, arguments)]
    cwd = old  # python -c puts its folder first on the path: the old checkout's package, not this one
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)


def result(process: subprocess.Popen) -> dict:
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"a reading process failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def memory(store: Path, processes: int, seconds: float, work: Path, large: int, old: Path | None = None) -> list[dict]:
    barrier = work / "barrier"
    shutil.rmtree(barrier, ignore_errors=True)
    barrier.mkdir()
    if old is not None:  # the old code's cache, as its first open would write it
        env = {**os.environ, "PYTHONPATH": str(old)}
        subprocess.run([sys.executable, "-c", OLD_CACHE, str(store.resolve())], check=True, env=env, cwd=old)
    running = [child(store, seconds, 4, barrier, processes, large, old) for _ in range(processes)]
    runs = [result(p) for p in running]
    n = runs[0]["images"]
    code = f"the old code ({old})" if old is not None else "this code"
    print(f"memory, {processes} processes at once (each: open, balanced order, {seconds:g} s of reading), {code}, MB:")
    print("  process   RSS before  RSS after   PSS after  USS after   store: RSS   PSS   USS  B/image(USS)")
    for i, r in enumerate(runs):
        b, a = r["before"], r["after"]
        grow = {k: (a[k] - b[k]) / 1024 for k in ("rss", "pss", "uss")}
        print(
            f"  {i:7d} {b['rss'] / 1024:11.0f} {a['rss'] / 1024:10.0f} {a['pss'] / 1024:11.0f} {a['uss'] / 1024:10.0f}"
            f"   {grow['rss']:10.0f} {grow['pss']:5.0f} {grow['uss']:5.0f}  {grow['uss'] * 2**20 / n:11.2f}"
        )
    together = sum(r["rate"] for r in runs)
    print(f"  reading meanwhile, all {processes} processes together: {together:.0f} images/s")
    opened = statistics.median(r["open_s"] for r in runs)
    ordered = statistics.median(r["order_s"] for r in runs)
    print(f"  median open {opened:.2f} s, balanced order (count table) {ordered:.2f} s; tags: {runs[0]['compact']}")
    return runs


def evict(store: Path) -> None:
    """Drop the store's shards from the page cache (this store's pages only: POSIX_FADV_DONTNEED)."""
    for path in (store / "shards").glob("*.npy"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def reading(
    store: Path, workers: list[int], seconds: float, work: Path, large: int, cold: bool = False
) -> dict[int, float]:
    rates = {}
    for w in workers:
        if cold:
            evict(store)
        rates[w] = result(child(store, seconds, w, work, 0, large))["rate"]
        print(f"  reading with {w} thread(s): {rates[w]:9.0f} images/s", flush=True)
    best = max(rates.values())
    for gpu, (one, eight) in GPU_RATES.items():
        print(
            f"  {gpu}: one GPU takes {one:,} images/s ({best / one:.1f}x covered), eight {eight:,} "
            f"({best / eight:.2f}x covered)"
        )
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for the store (its index takes 15 bytes per image)")
    parser.add_argument("--images", type=int, default=100_000_000)
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (the shards are holes)")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--keep", action="store_true", help="keep the store (default: delete it at the end)")
    parser.add_argument(
        "--old-code",
        type=Path,
        help="a checkout of the package before the index columns (git archive COMMIT): measure its memory too",
    )
    parser.add_argument(
        "--large-pool",
        type=int,
        default=-1,
        help="images above which pools are compact (default: the package's LARGE_POOL; 0: always; a number above "
        "--images: never, the forms used before, to measure them at a size that fits)",
    )
    parser.add_argument(
        "--real-images",
        type=int,
        default=0,
        help="also write a store of this many images of random pixels (disk: images x size^2 bytes) and read it "
        "with its pages dropped from the page cache before each run",
    )
    args = parser.parse_args()
    work = Path(args.work).resolve()
    store = work / "store"
    try:
        if not (store / "index").is_dir():
            shutil.rmtree(store, ignore_errors=True)
            print(f"store made in {make_store(store, args.images, args.size):.0f} s", flush=True)
        apparent, used = disk_use(store)
        print(
            f"store: {args.images:,} images at {args.size} px: {apparent / 1e9:,.1f} GB in its files, "
            f"{used / 1e9:.2f} GB on disk (the index columns; the shards are holes)",
            flush=True,
        )
        if args.old_code is not None:
            memory(store, args.processes, args.seconds, work, args.large_pool, args.old_code.resolve())
        runs = memory(store, args.processes, args.seconds, work, args.large_pool)
        workers = [int(w) for w in args.workers.split(",")]
        print("one process reading the shards' holes (the page cache, no disk):")
        rates = reading(store, workers, args.seconds, work, args.large_pool)
        summary = {
            "uss_store_mb": max((r["after"]["uss"] - r["before"]["uss"]) / 1024 for r in runs),
            "pss_store_mb": max((r["after"]["pss"] - r["before"]["pss"]) / 1024 for r in runs),
            "rates": rates,
        }
        if args.real_images:
            real = work / "real"
            shutil.rmtree(real, ignore_errors=True)
            made = make_store(real, args.real_images, args.size, real=True)
            print(f"one process reading {args.real_images:,} real images (made in {made:.0f} s), pages dropped first:")
            summary["cold_rates"] = reading(real, workers, args.seconds, work, args.large_pool, cold=True)
        print("summary " + json.dumps(summary))
    finally:
        if not args.keep:
            shutil.rmtree(store, ignore_errors=True)
            shutil.rmtree(work / "real", ignore_errors=True)
            shutil.rmtree(work / "barrier", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
