"""Label fractions and smaller evaluation splits."""

from __future__ import annotations

import numpy as np
import pytest

from medssl_lab.evaluation.sampling import label_fraction_indices, labels_per_class_indices, limit_split


def mednist_like_train_labels() -> np.ndarray:
    counts = [8000, 7163, 8000, 8000, 8000, 8000]  # MedNIST's 80 % train split: 47,163 labels
    labels = np.repeat(np.arange(6), counts)
    return np.random.default_rng(0).permutation(labels)


def test_label_fractions_are_stratified_seeded_and_nested() -> None:
    labels = mednist_like_train_labels()
    assert len(labels) == 47163
    tiny = label_fraction_indices(labels, 0.001, seed=0)
    counts = np.bincount(labels[tiny], minlength=6)
    assert (counts >= 2).all() and counts.sum() < 60  # every class at 0.1 %, about 8 per class
    ten = label_fraction_indices(labels, 0.1, seed=0)
    assert np.allclose(np.bincount(labels[ten]) / np.bincount(labels), 0.1, atol=1e-3)  # stratified
    assert np.array_equal(ten, label_fraction_indices(labels, 0.1, seed=0))  # seeded
    assert not np.array_equal(ten, label_fraction_indices(labels, 0.1, seed=1))
    assert np.isin(label_fraction_indices(labels, 0.01, seed=0), ten).all()  # nested within a seed
    assert np.all(np.diff(ten) > 0) and ten.dtype == np.int64
    assert np.array_equal(label_fraction_indices(labels[:, None], 1.0, seed=3), np.arange(len(labels)))
    with pytest.raises(ValueError, match="fraction"):
        label_fraction_indices(labels, 0.0)


def test_labels_per_class_are_exact_seeded_and_nested() -> None:
    labels = mednist_like_train_labels()
    draws = {k: labels_per_class_indices(labels[:, None], k, seed=2) for k in (5, 10, 25)}
    for k, idx in draws.items():
        assert (np.bincount(labels[idx], minlength=6) == k).all() and idx.dtype == np.int64
        assert np.all(np.diff(idx) > 0)
    assert np.isin(draws[5], draws[10]).all() and np.isin(draws[10], draws[25]).all()  # nested within a seed
    assert np.array_equal(draws[10], labels_per_class_indices(labels, 10, seed=2))
    assert not np.array_equal(draws[10], labels_per_class_indices(labels, 10, seed=3))
    assert np.array_equal(labels_per_class_indices(labels, None), np.arange(len(labels)))
    few = np.array([0, 0, 1, 1, 1, 1])
    assert np.bincount(few[labels_per_class_indices(few, 3)]).tolist() == [2, 3]  # a small class gives all it has
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="per_class"):
            labels_per_class_indices(labels, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one class per image"):
        labels_per_class_indices(np.zeros((4, 3)), 2)


def test_label_fractions_multilabel_keep_every_label() -> None:
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=(2000, 5)) < np.array([0.5, 0.2, 0.05, 0.01, 0.3])).astype(int)
    idx = label_fraction_indices(y, 0.01, seed=0)
    assert (y[idx].sum(0) >= 2).all() and ((1 - y[idx]).sum(0) >= 2).all()
    assert len(idx) < 60


def test_limit_split_keeps_a_stratified_subset_or_the_whole_split() -> None:
    from medssl_lab.data.types import ImageSet

    labels = np.repeat([0, 1], [300, 100])
    split = ImageSet(np.zeros((400, 4, 4), np.uint8), labels, ("a", "b"), "binary-class")
    assert limit_split(split, None) is split and limit_split(split, 400) is split
    small = limit_split(split, 100)
    assert len(small) == 100 and np.bincount(small.labels[:, 0]).tolist() == [75, 25]
