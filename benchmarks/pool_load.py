"""How long loading the whole pretraining pool takes from the cache, and how much memory it needs.

Usage: python benchmarks/pool_load.py [--data-dir DIR] [--size 32]
The first run decodes MedNIST once into the cache; the figures are for a second, cached load
in a fresh process (as a user's later sessions see it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
import torch  # counted apart: every session pays it
from medssl_lab.data.pool import build_pool
t1 = time.perf_counter()
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pool = build_pool(size=int(sys.argv[2]), data_dir=sys.argv[1] or None)
t2 = time.perf_counter()
print(json.dumps({"n": len(pool), "import_s": t1 - t0, "load_s": t2 - t1, "pool_mb": pool.images.nbytes / 1e6,
                  "rss_imports_mb": rss_before / 1e3,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3}))
"""


def run_child(data_dir: str, size: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, data_dir, str(size)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    first = run_child(args.data_dir, args.size)
    print(f"first load (decodes MedNIST unless cached): {first['load_s']:.2f} s")
    second = run_child(args.data_dir, args.size)
    print(
        f"cached load: {second['n']} images at {args.size} px in {second['load_s']:.2f} s "
        f"(imports {second['import_s']:.2f} s)"
    )
    print(
        f"pool in memory: {second['pool_mb']:.1f} MB uint8; process peak RSS {second['peak_rss_mb']:.0f} MB "
        f"(of which {second['rss_imports_mb']:.0f} MB is python+torch before loading)"
    )
    print(
        f"n={second['n']} load_s={second['load_s']:.2f} pool_mb={second['pool_mb']:.1f} "
        f"peak_rss_mb={second['peak_rss_mb']:.0f}"
    )


if __name__ == "__main__":
    main()
