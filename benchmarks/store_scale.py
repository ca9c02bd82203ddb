"""Pretraining from a store of ten million images against the same run from a pool in memory, and its memory.

Usage: python benchmarks/store_scale.py --work DIR [--images 10000000] [--steps 40] [--repeats 2] [--cold]

1. **A synthetic store** of ``--images`` images at 32 px (10 million: 10.2 GB of shards, made once in ``DIR/store``
   and reused): a block of 100,000 random images, each shard a different roll of it, with the index tables a real
   ingest writes (four modality tags in turn). Opening it once builds the index cache.
2. **Throughput.** The cpu profile's pretraining step (``Pretrainer.fit``, batch 256, multi-crop, 2 threads) runs
   ``--steps`` steps after 5 warm-up steps, each run in a fresh process, alternating: from the store (read batch by
   batch, the next one in a background thread) and from an in-memory pool of 65,536 images (the size of the
   course's pool; a step's work does not depend on the pool's size). Medians over ``--repeats`` runs of each.
3. **Memory.** Each process reports its peak resident memory (``ru_maxrss``), store open and index included.
4. **Reading alone**: 400 random batches of 256 images from the store, no training: how many images per second one
   reading thread delivers, the ceiling for the accelerator it feeds.

``--cold`` drops the page cache before each store run (needs root), so that every read goes to the disk; without
it the store's pages may sit in the page cache from earlier runs, as they would on a machine with enough memory.
Take the figures on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHARD = 100_000
MODALITIES = ("CT", "MR", "X-ray", "ultrasound")

CHILD = """
import json, resource, sys, time
import numpy as np, torch
from medssl_lab.pretrain import PretrainConfig, Pretrainer
from medssl_lab.data.types import ImageSet
from medssl_lab.data.store.reader import open_store
torch.set_num_threads(2)
kind, store, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = time.perf_counter()
if kind in ("store", "read"):
    pool = open_store(store)
else:
    images = np.random.default_rng(0).integers(0, 256, (65536, 32, 32), dtype=np.uint8)
    modality = np.array(["CT", "MR", "X-ray", "ultrasound"] * 16384, dtype=object)
    pool = ImageSet(images, np.zeros(len(images), np.int64), ("x",), "unlabelled", modality)
opened = time.perf_counter() - start
if kind == "read":  # reading alone: random batches of 256, as the sampler draws them
    rng = np.random.default_rng(0)
    tick = time.perf_counter()
    for _ in range(steps):
        pool.images[rng.integers(0, len(pool), 256)]
    rate = steps * 256 / (time.perf_counter() - tick)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"kind": kind, "images": len(pool), "rate": rate, "peak_mb": peak, "open_s": opened}))
    sys.exit(0)
trainer = Pretrainer(PretrainConfig.for_profile("cpu", device="cpu", max_steps=steps + 5), pool)
trainer.fit(progress=False, stop_after=5)
tick = time.perf_counter()
trainer.fit(progress=False)
seconds = time.perf_counter() - tick
rate = steps * trainer.config.batch_size / seconds
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"kind": kind, "images": len(pool), "rate": rate, "peak_mb": peak, "open_s": opened}))
"""


def make_store(root: Path, n_images: int) -> None:
    """The synthetic store, written through the package's own shard writer (resumable: done shards are kept)."""
    from medssl_lab.data.store.layout import StoreLayout, create_or_check, save_shard
    from medssl_lab.data.store.rules import Rules

    create_or_check(root, Rules(size=32), files_per_shard=SHARD)
    layout = StoreLayout(root)
    layout.shards.mkdir(exist_ok=True)
    block = np.random.default_rng(0).integers(0, 256, (SHARD, 32, 32), dtype=np.uint8)
    done = set(layout.done_shards())
    start = time.perf_counter()
    for shard in range((n_images + SHARD - 1) // SHARD):
        if shard in done:
            continue
        n = min(SHARD, n_images - shard * SHARD)
        rows = [[r, "synthetic", "", r, MODALITIES[r % 4], "", "", "", "", ""] for r in range(n)]
        images = np.roll(block[:n], shard, axis=2)
        save_shard(layout, shard, images, rows, [], f"synthetic-{shard}", n, 0.0)
        if shard % 10 == 0:
            print(f"  shard {shard}: {(shard + 1) * SHARD:,} images, {time.perf_counter() - start:.0f} s", flush=True)


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def run(kind: str, store: Path, steps: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(store), str(steps)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder for the store (over 10 GB at 10 million images)")
    parser.add_argument("--images", type=int, default=10_000_000)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each store run (root)")
    args = parser.parse_args()
    store = Path(args.work) / "store"
    start = time.perf_counter()
    make_store(store, args.images)
    size_gb = sum(p.stat().st_size for p in (store / "shards").glob("*.npy")) / 1e9
    print(f"store: {args.images:,} images at 32 px, {size_gb:.1f} GB of shards ({time.perf_counter() - start:.0f} s)")
    results: dict[str, list[dict]] = {"memory": [], "store": []}
    for _ in range(args.repeats):
        for kind in ("memory", "store"):
            if kind == "store" and args.cold:
                drop_caches()
            results[kind].append(run(kind, store, args.steps))
            r = results[kind][-1]
            print(
                f"  {kind:<6} {r['images']:>11,} images: {r['rate']:6.1f} images/s, peak {r['peak_mb']:6.0f} MB, "
                f"opened in {r['open_s']:.1f} s",
                flush=True,
            )
    if args.cold:
        drop_caches()
    read = run("read", store, 400)
    print(f"  reading alone: {read['rate']:.0f} images/s in random batches of 256 (one thread)")
    rate = {k: statistics.median(r["rate"] for r in v) for k, v in results.items()}
    peak = max(r["peak_mb"] for r in results["store"])
    print(
        f"median images/s: store {rate['store']:.1f}, memory {rate['memory']:.1f}, "
        f"ratio {rate['store'] / rate['memory']:.3f} (target >= 0.95); store run peak memory {peak:.0f} MB "
        f"(target < 2048){'; cold page cache' if args.cold else ''}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
