"""Index batches and balancing weights: what every training loop draws from, stored or (for large pools) computed
batch by batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medssl_lab.data import sampling
from medssl_lab.data.sampling import (
    BatchOrder,
    ComputedBatches,
    Permutation,
    TagDraws,
    balanced_weights,
    epoch_batches,
)
from medssl_lab.data.tags import CodedTags


def test_balanced_weights_give_every_tag_the_same_total() -> None:
    tags = np.array(["CT"] * 30 + ["MR"] * 10, dtype=object)
    weights = balanced_weights(tags)
    assert np.isclose(weights.sum(), 1.0)
    assert np.isclose(weights[tags == "CT"].sum(), 0.5) and np.isclose(weights[tags == "MR"].sum(), 0.5)


def test_weighted_batches_draw_the_minority_as_often_as_the_majority() -> None:
    tags = np.array(["CT"] * 30 + ["MR"] * 10, dtype=object)
    drawn = torch.cat(list(epoch_batches(40, 8, torch.Generator().manual_seed(0), balanced_weights(tags)))).numpy()
    assert len(drawn) == 40 and 0.2 < (tags[drawn] == "MR").mean() < 0.8


def test_plain_batches_are_a_seeded_permutation() -> None:
    first = torch.cat(list(epoch_batches(40, 16, torch.Generator().manual_seed(0))))
    again = torch.cat(list(epoch_batches(40, 16, torch.Generator().manual_seed(0))))
    assert len(first) == 32 and len(set(first.tolist())) == 32 and torch.equal(first, again)
    kept = list(epoch_batches(40, 16, torch.Generator().manual_seed(0), drop_last=False))
    assert [len(b) for b in kept] == [16, 16, 8] and sorted(torch.cat(kept).tolist()) == list(range(40))


def test_the_computed_permutation_is_a_seeded_bijection_of_any_size() -> None:
    for n in (1, 2, 3, 255, 256, 257, 4096, 10_007):
        for key in (0, 1, 2**63 + 5):
            image = Permutation(n, key)(np.arange(n))
            assert np.array_equal(np.sort(image), np.arange(n)), (n, key)
    a, b = Permutation(10_007, 1)(np.arange(10_007)), Permutation(10_007, 2)(np.arange(10_007))
    assert np.mean(a == b) < 0.01 and np.mean(a == np.arange(10_007)) < 0.01  # other keys, other orders
    assert abs(np.corrcoef(np.arange(10_007), a)[0, 1]) < 0.05  # no trace of the input order


def test_computed_batches_cover_an_epoch_once_and_are_the_same_whenever_computed() -> None:
    batches = ComputedBatches(1000, 64, key=7)
    assert len(batches) == 15 and [len(b) for b in batches] == [64] * 15
    seen = torch.cat(list(batches)).tolist()
    assert len(set(seen)) == 960 and min(seen) >= 0 and max(seen) < 1000
    assert torch.equal(ComputedBatches(1000, 64, key=7)[3], batches[3]) and torch.equal(batches[-1], batches[14])
    assert not torch.equal(ComputedBatches(1000, 64, key=8)[3], batches[3])
    assert sorted(torch.cat(list(ComputedBatches(1000, 64, key=7, drop_last=False))).tolist()) == list(range(1000))
    with pytest.raises(IndexError):
        batches[15]


def test_balanced_draws_give_every_tag_the_same_share_without_weights() -> None:
    codes = np.zeros(20_000, np.uint8)
    codes[::10] = 1  # 10 % MR
    codes[7::1000] = 3  # 0.1 % of a third tag; tag 2 has no image
    draws = TagDraws(codes)
    drawn = draws(key=3, draws=np.arange(30_000))
    shares = np.bincount(codes[drawn], minlength=4) / len(drawn)
    assert np.allclose(shares, [1 / 3, 1 / 3, 0, 1 / 3], atol=0.02)
    rare = drawn[codes[drawn] == 3]
    assert set(rare.tolist()) == set(range(7, 20_000, 1000))  # all 20 images of the rare tag, each uniformly often
    assert np.array_equal(draws(3, np.arange(100, 200)), drawn[100:200])  # any draw computed alone is the same
    tags = CodedTags(codes, ["CT", "MR", "X-ray", "US"])
    assert np.allclose(balanced_weights(tags), balanced_weights(np.asarray(tags)))


def test_the_batch_order_of_a_pool_is_stored_up_to_the_limit_and_computed_above(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tags = np.array(["CT"] * 30 + ["MR"] * 10, dtype=object)
    small = BatchOrder(40, 8, seed=5, tags=tags)
    assert isinstance(small.epoch(2), list) and small.weights is not None
    before = list(epoch_batches(40, 8, torch.Generator().manual_seed(5 + 2), balanced_weights(tags)))
    assert all(torch.equal(a, b) for a, b in zip(small.epoch(2), before))  # the order committed runs used
    monkeypatch.setattr(sampling, "LARGE_POOL", 16)
    large = BatchOrder(40, 8, seed=5, tags=tags)
    assert large.weights is None and isinstance(large.epoch(2), ComputedBatches) and len(large.epoch(2)) == 5
    assert 0.3 < (tags[torch.cat(list(large.epoch(2))).numpy()] == "MR").mean() < 0.7  # balanced
    assert torch.equal(large.epoch(2)[1], BatchOrder(40, 8, seed=5, tags=tags).epoch(2)[1])
    plain = torch.cat(list(epoch_batches(40, 8, torch.Generator().manual_seed(0))))
    assert sorted(plain.tolist()) == list(range(40))  # large and unweighted: a computed permutation
