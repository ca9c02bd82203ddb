"""Image folders, synthetic phantoms and the pretraining pool."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medssl_lab.data.folder import load_image_folder
from medssl_lab.data.pool import build_pool, leave_out, pool_summary
from medssl_lab.data.resize import resize_uint8
from medssl_lab.data.synthetic import PHANTOM_CLASSES, make_phantoms
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError


def test_phantoms_are_seeded_labelled_and_distinct() -> None:
    a, b, c = make_phantoms(12, 48, seed=3), make_phantoms(12, 48, seed=3), make_phantoms(12, 48, seed=4)
    assert a.images.shape == (12, 48, 48) and a.images.dtype == np.uint8
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)
    assert np.bincount(a.labels).tolist() == [3, 3, 3, 3] and a.class_names == PHANTOM_CLASSES
    hu = make_phantoms(4, 48, seed=0, hu=True).images
    assert hu.min() < -900 and hu.max() > 600  # air and bone


def _write_folder(root: Path, sizes: dict[str, tuple[int, int]]) -> None:
    for name, (n, size) in sizes.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((size, size), 10 * i, np.uint8)).save(root / name / f"{i}.png")


def test_image_folder(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"b_class": (2, 20), "a_class": (3, 20)})
    data = load_image_folder(tmp_path, modality="X-ray")
    assert data.class_names == ("a_class", "b_class") and data.class_counts() == {"a_class": 3, "b_class": 2}
    assert data.images.shape == (5, 20, 20) and set(data.modality) == {"X-ray"}


def test_image_folder_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no images found"):
        load_image_folder(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        load_image_folder(tmp_path / "missing")
    _write_folder(tmp_path / "mixed", {"a": (1, 20), "b": (1, 24)})
    with pytest.raises(DataError, match="different sizes"):
        load_image_folder(tmp_path / "mixed")
    assert load_image_folder(tmp_path / "mixed", size=16).images.shape == (2, 16, 16)
    (tmp_path / "bad" / "a").mkdir(parents=True)
    (tmp_path / "bad" / "a" / "broken.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        load_image_folder(tmp_path / "bad")


def test_resize_keeps_mean_intensity() -> None:
    images = make_phantoms(6, 64, seed=1).images
    small = resize_uint8(images, 32)
    assert small.shape == (6, 32, 32) and small.dtype == np.uint8
    assert abs(float(small.mean()) - float(images.mean())) < 2.0


def test_pool_of_real_sources(data_dir: Path) -> None:
    pool = build_pool(size=32, data_dir=data_dir)
    assert pool.images.shape == (58954 + 4708, 32, 32) and pool.images.dtype == np.uint8
    assert pool_summary(pool) == [
        ("mednist", "CT", 30000),
        ("mednist", "MR", 8954),
        ("mednist", "X-ray", 20000),
        ("pneumoniamnist", "X-ray", 4708),
    ]
    assert pool.class_counts()["pneumoniamnist/normal"] == 1214
    assert pool.images.nbytes < 100e6
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2_000_000  # kB: the whole test process


def test_pool_with_imageset_sources() -> None:
    ph = make_phantoms(40, 48, seed=0)
    a = ImageSet(
        ph.images[:30],
        ph.labels[:30],
        ph.class_names,
        "multi-class",
        np.full(30, "CT", object),
        np.full(30, "ph_a", object),
    )
    b = ImageSet(
        ph.images[30:],
        ph.labels[30:],
        ph.class_names,
        "multi-class",
        np.full(10, "MR", object),
        np.full(10, "ph_b", object),
    )
    pool = build_pool([a, b], size=32)
    assert len(pool) == 40 and pool.images.shape[1:] == (32, 32)
    assert (pool.modality == "MR").sum() == 10 and set(pool.source) == {"ph_a", "ph_b"}
    without = leave_out(pool, "MR")
    assert len(without) == 30 and set(without.modality) == {"CT"} and set(without.source) == {"ph_a"}
    assert np.array_equal(without.images, pool.images[:30])
    for missing in ("X-ray", "CT"):
        with pytest.raises(ValueError, match="cannot leave out"):
            leave_out(without, missing)  # not in the pool; the pool's only modality
    family = pool.class_names[int(pool.labels[0, 0])]  # a class tag "<source>/<class>"
    without_family = leave_out(pool, family, "ph_b")
    kept = np.asarray(pool.class_names, dtype=object)[without_family.labels[:, 0]]
    assert family not in set(kept) and set(without_family.source) == {"ph_a"}
    assert 0 < len(without_family) < 30
