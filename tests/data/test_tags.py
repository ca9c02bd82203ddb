"""CodedTags: a tag per image as integer codes, read like the object arrays of str that ImageSet holds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from medssl_lab.data.tags import CodedTags
from medssl_lab.data.types import ImageSet


def test_coded_tags_read_like_an_object_array_of_their_names(tmp_path: Path) -> None:
    np.save(tmp_path / "codes.npy", np.array([0, 1, 1, 2, 0], np.uint8))
    tags = CodedTags(np.load(tmp_path / "codes.npy", mmap_mode="r"), ["CT", "MR", "X-ray"])
    plain = np.array(["CT", "MR", "MR", "X-ray", "CT"], dtype=object)
    assert len(tags) == 5 and tags.shape == (5,) and tags.ndim == 1 and tags.dtype == object
    assert tags[3] == "X-ray" and isinstance(tags[3], str) and list(tags) == plain.tolist() == tags.tolist()
    assert np.array_equal(np.asarray(tags), plain) and np.array_equal(tags.astype(str), plain.astype(str))
    assert np.array_equal(tags == "MR", plain == "MR") and np.array_equal(tags != "CT", plain != "CT")
    assert not (tags == "US").any() and np.array_equal(tags == plain, np.ones(5, bool))
    subset = tags[np.array([True, False, False, True, True])]
    assert isinstance(subset, CodedTags) and list(subset) == ["CT", "X-ray", "CT"] and list(tags[1:3]) == ["MR"] * 2
    assert Counter(zip(tags, tags)) == Counter(zip(plain, plain)) and set(tags) == {"CT", "MR", "X-ray"}
    assert np.array_equal(np.concatenate([tags, plain]), np.concatenate([plain, plain]))
    assert "5 tags of 3 names" in repr(tags)


def test_an_image_set_takes_coded_tags_and_subsets_them() -> None:
    tags = CodedTags(np.array([0, 1, 0, 1], np.uint8), ["CT", "MR"])
    images = np.zeros((4, 8, 8), np.uint8)
    pool = ImageSet(images, np.zeros(4, np.int64), ("x",), "unlabelled", tags, tags)  # type: ignore[arg-type]
    part = pool.subset(np.array([1, 3]))
    assert isinstance(part.modality, CodedTags) and list(part.modality) == ["MR", "MR"] and len(pool.sample(2)) == 2
