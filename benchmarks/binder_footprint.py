"""What a Binder pod holds while a student runs the course: the Jupyter server plus its kernels, against 2 GB.

Usage: python benchmarks/binder_footprint.py --data-dir DIR [--notebooks 01 02] [--profile cpu]

Runs the browser test (``tests/test_browser.py``: JupyterLab on 127.0.0.1, Chromium driven by Playwright, Run All
Cells) on the chosen notebooks in the chosen profile, one notebook after the other with each kernel shut down before
the next starts, as a student moving through the course does. It prints the peak resident memory of the server and
its kernels (RSS summed over the processes: an upper bound, since server and kernel share libraries). The browser is
not counted: on Binder it runs on the student's machine. The default, notebook 01 training in the cpu profile and
notebook 02 after it, is the heaviest part of the course (``medssl-lab notebooks run`` measured the kernels).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--notebooks", nargs="+", default=["01", "02"])
    args = parser.parse_args()
    env = dict(
        os.environ,
        MEDSSL_DATA_DIR=str(Path(args.data_dir).resolve()),
        MEDSSL_REQUIRE_BROWSER="1",
        MEDSSL_BROWSER_PROFILE=args.profile,
        MEDSSL_BROWSER_NOTEBOOKS=",".join(args.notebooks),
    )
    start = time.perf_counter()
    test = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "tests/test_browser.py"]
    result = subprocess.run(test, cwd=ROOT, env=env, capture_output=True, text=True)
    minutes = (time.perf_counter() - start) / 60
    found = re.search(r"peaked at (\d+) MB \(kernels (\d+) MB\)", result.stdout)
    if result.returncode != 0 or not found:
        print(result.stdout[-3000:], result.stderr[-2000:], sep="\n")
        print(f"the browser run failed after {minutes:.1f} min")
        return 1
    total, kernels = int(found[1]), int(found[2])
    print(f"profile {args.profile}, notebooks {' '.join(args.notebooks)}, in a real browser, {minutes:.1f} min")
    share = total / 2048
    print(f"Jupyter server + kernels: peak {total} MB ({share:.0%} of Binder's 2 GB); kernels alone {kernels} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
