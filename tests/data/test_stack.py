"""ImageStack: images on disk that read like an array, only the rows asked for, in any order."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from medssl_lab.data.resize import resize_uint8
from medssl_lab.data.stack import ImageStack, concatenate_images
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError


@pytest.fixture
def shards(tmp_path: Path) -> tuple[list[Path], np.ndarray]:
    images = np.random.default_rng(0).integers(0, 256, (50, 16, 16), dtype=np.uint8)
    paths = []
    for i, (a, b) in enumerate(((0, 20), (20, 21), (21, 21), (21, 50))):  # an empty shard too
        paths.append(tmp_path / f"{i:06d}.npy")
        np.save(paths[-1], images[a:b])
    return paths, images


def test_indexing_reads_the_same_images_as_in_memory(shards: tuple[list[Path], np.ndarray]) -> None:
    paths, images = shards
    stack = ImageStack(paths, 16)
    assert stack.shape == (50, 16, 16) and len(stack) == 50 and stack.nbytes == 50 * 256
    index = np.array([49, 0, 20, 20, 21, 19, 3, 4, 5])  # across shards, repeated, unsorted, a run
    assert np.array_equal(stack[index], images[index])
    assert np.array_equal(stack[7], images[7]) and np.array_equal(stack[10:13], images[10:13])
    assert np.array_equal(np.asarray(stack), images)


def test_a_selection_reads_nothing_until_indexed_and_survives_pickling(shards: tuple[list[Path], np.ndarray]) -> None:
    paths, images = shards
    chosen = ImageStack(paths, 16).select(np.array([40, 2, 30]))
    again = pickle.loads(pickle.dumps(chosen))  # what a spawned DDP rank or data worker receives
    assert np.array_equal(again[np.array([2, 0])], images[[30, 40]])
    subset = ImageSet(chosen, np.zeros(3, np.int64), ("x",), "unlabelled").subset(np.array([1]))  # type: ignore[arg-type]
    assert isinstance(subset.images, ImageStack) and np.array_equal(subset.images[0], images[2])


def test_other_sizes_are_resized_on_reading_and_mixed_with_arrays(shards: tuple[list[Path], np.ndarray]) -> None:
    paths, images = shards
    memory = np.full((5, 32, 32), 7, np.uint8)
    mixed = concatenate_images([memory, ImageStack(paths, 8)], size=8)
    assert isinstance(mixed, ImageStack) and mixed.shape == (55, 8, 8)
    assert np.array_equal(
        mixed[np.array([0, 6])], np.stack([resize_uint8(memory[:1], 8)[0], resize_uint8(images[1:2], 8)[0]])
    )
    assert isinstance(concatenate_images([memory, memory], size=8), np.ndarray)


def test_a_damaged_shard_is_a_clear_error(tmp_path: Path, shards: tuple[list[Path], np.ndarray]) -> None:
    paths, _ = shards
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="shorter than its header"):
        ImageStack(paths, 16)[np.array([19])]
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="not a readable .npy shard"):
        ImageStack([tmp_path / "bad.npy"], 16)


def test_a_mapped_position_column_stays_mapped_and_names_the_same_images(
    shards: tuple[list[Path], np.ndarray], tmp_path: Path
) -> None:
    paths, images = shards
    order = np.random.default_rng(1).permutation(50)
    np.save(tmp_path / "position.npy", order.astype(np.uint32))
    mapped = ImageStack(paths, 16, np.load(tmp_path / "position.npy", mmap_mode="r"))
    plain = ImageStack(paths, 16, order)
    assert isinstance(mapped.positions, np.memmap) and plain.positions.dtype == np.int64
    assert mapped.fingerprint() == plain.fingerprint()  # a checkpoint's provenance does not see the column's type
    assert np.array_equal(mapped[np.arange(50)], images[order]) and np.array_equal(mapped[3], images[order[3]])
    assert isinstance(mapped.resized(8).positions, np.memmap)  # a view: still nothing copied
    both = concatenate_images([mapped, mapped], 16)
    assert isinstance(both, ImageStack) and np.array_equal(both[np.array([0, 50])], images[order[[0, 0]]])
    again = pickle.loads(pickle.dumps(mapped.select(np.array([4, 5]))))
    assert np.array_equal(again[np.arange(2)], images[order[[4, 5]]])


def test_a_run_longer_than_one_system_call_takes_is_read_whole(tmp_path: Path) -> None:
    images = np.random.default_rng(2).integers(0, 256, (2500, 4, 4), dtype=np.uint8)  # a run of 2,500 > IOV_MAX
    np.save(tmp_path / "000000.npy", images)
    stack = ImageStack([tmp_path / "000000.npy"], 4)
    assert np.array_equal(np.asarray(stack), images)
    out = np.zeros((2500, 4, 4), np.uint8)
    stack.read_into(out, np.arange(2500)[::-1], np.arange(2500))  # into the rows of a buffer, in reverse
    assert np.array_equal(out, images[::-1])
