"""Index batches and balancing weights: what every training loop draws from."""

from __future__ import annotations

import numpy as np
import torch

from medssl_lab.data.sampling import balanced_weights, epoch_batches


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
