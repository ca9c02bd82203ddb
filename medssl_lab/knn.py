"""The weighted kNN vote on cosine similarity: the one vote of the kNN probe and of the pretraining monitor.

:func:`~medssl_lab.evaluation.probes.knn_probe` scores frozen features with it;
:class:`~medssl_lab.pretrain.monitor.KnnMonitor` scores the backbone during pretraining with it. Plain torch, no
random numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def knn_vote(
    bank: Tensor, votes: Tensor, queries: Tensor, k: int = 20, temperature: float = 0.07, batch_size: int = 1024
) -> Tensor:
    """Each query's class scores: its ``k`` most cosine-similar bank rows vote with weight ``exp(similarity / T)``.

    The SwAV/DINO kNN protocol (Wu et al. 2018). The weights are normalised, so a row of scores sums to 1 for one-hot
    votes; multi-label votes give the weighted mean of each label.

    Args:
        bank, queries: ``(N, D)`` and ``(M, D)`` features (L2-normalised here).
        votes: ``(N, C)`` float: one-hot classes, or 0/1 labels, of the bank rows.
        k: neighbours (capped at the bank's size).
        temperature: vote sharpness (0.07 as in Wu et al. 2018 / DINO).
        batch_size: queries per similarity block (bounds memory).

    Returns:
        ``(M, C)`` float32 scores in ``[0, 1]``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    bank = F.normalize(bank.float(), dim=1)
    queries = F.normalize(queries.float(), dim=1)
    if bank.shape[1] != queries.shape[1]:
        raise ValueError(f"bank features have {bank.shape[1]} dimensions, queries {queries.shape[1]}")
    if len(votes) != len(bank):
        raise ValueError(f"{len(votes)} votes for a bank of {len(bank)}")
    votes = votes.float()
    kk = max(1, min(int(k), len(bank)))
    scores = []
    for start in range(0, len(queries), batch_size):
        sim = queries[start : start + batch_size] @ bank.T
        top, idx = sim.topk(kk, dim=1)
        w = torch.exp((top - top[:, :1]) / temperature)  # shift by the row max: same votes, no overflow
        scores.append((w.unsqueeze(2) * votes[idx]).sum(1) / w.sum(1, keepdim=True))
    return torch.cat(scores).clamp_(0.0, 1.0) if scores else votes.new_zeros((0, votes.shape[1]))
