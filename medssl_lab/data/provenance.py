"""What a run was trained on, as a checkpoint records it and a reader sees it.

Apart from the pool, so that checkpoints and pretrained encoders can describe their data without importing the
data sources (DICOM, image codecs, stores).
"""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np

from medssl_lab import __version__
from medssl_lab.data.stack import ImageStack
from medssl_lab.data.types import ImageSet


def pool_summary(pool: ImageSet) -> list[tuple[str, str, int]]:
    """(source, modality, count) rows, sorted, for printing what the pool holds."""
    counts = Counter(zip(pool.source, pool.modality))
    return sorted((str(s), str(m), n) for (s, m), n in counts.items())


def pool_provenance(pool: ImageSet) -> dict:
    """What a run was trained on, for its checkpoint: image count and size, counts per source and modality, a hash
    of the pixels (two runs on the same data have the same one), and the package version."""
    if isinstance(pool.images, ImageStack):  # on disk: named by its files and rows, not read whole
        digest = pool.images.fingerprint()
    else:
        digest = hashlib.blake2b(np.ascontiguousarray(pool.images).data, digest_size=10).hexdigest()
    return {
        "images": len(pool),
        "size": int(pool.images.shape[-1]),
        "pixels_hash": digest,
        "counts": [list(row) for row in pool_summary(pool)],
        "package": __version__,
    }


def describe_provenance(provenance: dict | None) -> str:
    """One line a reader can check: ``63,662 images at 32 px (mednist CT 30,000, ...)``."""
    if not provenance:
        return "data not recorded (a checkpoint made before the package recorded it)"
    parts = ", ".join(f"{source} {modality} {n:,}" for source, modality, n in provenance["counts"])
    return f"{provenance['images']:,} images at {provenance['size']} px ({parts})"
