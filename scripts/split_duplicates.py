"""Pixel-identical images inside and across the train/val/test splits of the course's data sets.

Usage: python scripts/split_duplicates.py [--data-dir DIR]

An image of a test split with an exact copy in its train split is seen in training and scored as unseen. This
prints, for MedNIST (the package's seeded 80/10/10 split) and PneumoniaMNIST (the official split), how many
images are exact copies of another and how many of each evaluation split have a copy in train.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import defaultdict

import numpy as np

from medssl_lab.data.medmnist import load_medmnist
from medssl_lab.data.mednist import load_mednist


def report(name: str, splits: dict[str, np.ndarray]) -> None:
    """Print the copies of ``splits`` (split name -> (n, H, W) images)."""
    where: dict[bytes, list[str]] = defaultdict(list)  # pixel hash -> the split of every image with those pixels
    for split, images in splits.items():
        for image in images:
            where[hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).digest()].append(split)
    total = sum(len(images) for images in splits.values())
    print(f"{name}: {total} images, {len(where)} distinct ({total - len(where)} extra copies)")
    for split in splits:
        if split != "train":
            leaked = sum(places.count(split) for places in where.values() if "train" in places)
            print(f"  {split}: {leaked} of {len(splits[split])} images have an exact copy in train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the data folder (default: $MEDSSL_DATA_DIR)")
    args = parser.parse_args()
    mednist = load_mednist(args.data_dir)
    report("MedNIST", {s: mednist.all.images[mednist.split_index[s]] for s in ("train", "val", "test")})
    pneumonia = load_medmnist("pneumoniamnist", data_dir=args.data_dir)
    report(
        "PneumoniaMNIST", {"train": pneumonia.train.images, "val": pneumonia.val.images, "test": pneumonia.test.images}
    )


if __name__ == "__main__":
    main()
