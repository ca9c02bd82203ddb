"""The one weighted kNN vote, shared by the kNN probe and the pretraining monitor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medssl_lab.evaluation.metrics import compute_metrics
from medssl_lab.evaluation.probes import knn_probe
from medssl_lab.knn import knn_vote


def test_the_nearest_neighbours_vote_with_exp_similarity_over_temperature() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    votes = F.one_hot(torch.tensor([0, 1, 1]), 2).float()
    query = torch.tensor([[2.0, 0.0]])  # cosine 1, 0 and 1/sqrt(2) to the bank rows
    scores = knn_vote(bank, votes, query, k=2, temperature=0.5)
    w = [1.0, math.exp((1 / math.sqrt(2) - 1) / 0.5)]  # the two nearest: rows 0 and 2
    assert scores[0].tolist() == pytest.approx([w[0] / sum(w), w[1] / sum(w)], rel=1e-6)
    everyone = knn_vote(bank, votes, query, k=100, temperature=0.5)  # k capped at the bank's size
    assert everyone.sum().item() == pytest.approx(1.0) and everyone[0, 1] > scores[0, 1]
    with pytest.raises(ValueError, match="temperature must be > 0"):
        knn_vote(bank, votes, query, temperature=0.0)
    with pytest.raises(ValueError, match="3 votes for a bank of 2"):
        knn_vote(bank[:2], votes, query)


def test_the_probe_scores_the_vote() -> None:
    rng = np.random.default_rng(0)
    train_x, test_x = rng.normal(size=(60, 8)), rng.normal(size=(25, 8))
    train_y, test_y = rng.integers(0, 3, 60), rng.integers(0, 3, 25)
    vote = knn_vote(
        torch.as_tensor(train_x, dtype=torch.float32),
        F.one_hot(torch.as_tensor(train_y), 3).float(),
        torch.as_tensor(test_x, dtype=torch.float32),
        k=10,
        batch_size=7,  # blocks give the same scores
    )
    assert knn_probe(train_x, train_y, test_x, test_y, "multi-class", k=10) == compute_metrics(
        "multi-class", test_y, vote.numpy()
    )
