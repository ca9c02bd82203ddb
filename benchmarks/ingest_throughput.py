"""Ingest throughput on real DICOM files: files and images per second, with 1 and 2 worker processes.

Usage: python benchmarks/ingest_throughput.py [--copies 10] [--size 64] [--work DIR]

The tree is the real DICOM files that ship with pydicom and pydicom-data (CT, MR, CR, US, NM, secondary captures,
multi-frame volumes and cine loops, plus the non-image objects and broken files of pydicom's test suite), copied
``--copies`` times into numbered folders, as a hospital export of many studies looks. Each worker count ingests the
whole tree into a fresh store (``medssl_lab.data.store.ingest.ingest``, 50 files per shard so that both workers have
work), ``--repeats`` times in alternating order; the figures are medians. Copies share their SOP Instance UIDs, so
the store keeps each image once when it is opened; the ingest still decodes every file, which is what is timed.
Take the figures on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from medssl_lab.data.dicom import example_dicom_folders
from medssl_lab.data.store.ingest import ingest
from medssl_lab.data.store.rules import Rules


def build_tree(root: Path, copies: int) -> int:
    """``copies`` copies of every example DICOM file under ``root``; returns the number of files."""
    files = [f for folder in example_dicom_folders().values() for f in sorted(folder.rglob("*")) if f.is_file()]
    for copy in range(copies):
        for i, source in enumerate(files):
            target = root / f"study{copy:04d}" / f"{i:04d}_{source.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return len(files) * copies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="medssl-ingest-"))
    n_files = build_tree(work / "tree", args.copies)
    print(f"{n_files} files ({args.copies} copies of the example DICOMs), {args.size} px")
    rates: dict[int, list[float]] = {w: [] for w in args.workers}
    for repeat in range(args.repeats):
        for workers in args.workers if repeat % 2 == 0 else args.workers[::-1]:
            store = work / f"store_{workers}"
            shutil.rmtree(store, ignore_errors=True)
            start = time.perf_counter()
            report = ingest([str(work / "tree")], store, Rules(size=args.size), 50, workers, progress=False)
            seconds = time.perf_counter() - start
            rates[workers].append(report.files / seconds)
            rejected = sum(report.rejected.values())
            print(
                f"{workers} worker(s): {seconds:6.1f} s, {report.files / seconds:6.1f} files/s, "
                f"{report.images / seconds:7.1f} images/s ({report.images} images, {rejected} files rejected)",
                flush=True,
            )
    images_per_file = report.images / report.files
    median = {w: statistics.median(r) for w, r in rates.items()}
    for workers, rate in median.items():
        print(f"median, {workers} worker(s): {rate:.1f} files/s, {rate * images_per_file:.1f} images/s")
    if 1 in median and 2 in median:
        print(f"2 workers / 1 worker: {median[2] / median[1]:.2f}x")
    if args.work is None:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
