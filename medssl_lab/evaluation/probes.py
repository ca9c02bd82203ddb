"""Judging frozen features without training a network: weighted kNN, a linear probe, nearest class means.

* :func:`knn_probe`: weighted cosine kNN, the SwAV/DINO protocol;
* :func:`linear_probe`: logistic regression, weight decay chosen on validation AUC;
* :func:`nearest_mean_scores` and :func:`few_shot_metric`: a classifier with nothing to tune, for few-shot sets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medssl_lab.config import resolve_device
from medssl_lab.evaluation.inference import to_proba
from medssl_lab.evaluation.metrics import check_task, compute_metrics, n_outputs, targets
from medssl_lab.evaluation.sampling import few_shot_draws
from medssl_lab.knn import knn_vote


def knn_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    task: str,
    k: int = 20,
    temperature: float = 0.07,
    n_classes: int | None = None,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Weighted k-nearest-neighbour classification on cosine similarity (the SwAV/DINO kNN protocol).

    Each test sample's ``k`` most similar training samples vote with weight
    ``exp(similarity / temperature)``; the normalised votes are class probabilities (for
    multi-label tasks, the weighted mean of each label). No training, no hyperparameter
    search: a quick check that the embedding puts similar images together. The vote is
    :func:`medssl_lab.knn.knn_vote`, the one the pretraining monitor uses.

    Args:
        train_x, test_x: ``(N, D)`` features (L2-normalised here).
        train_y, test_y: labels as in :func:`compute_metrics`.
        task: the task string.
        k: neighbours (capped at the number of training samples).
        temperature: vote sharpness (0.07 as in Wu et al. 2018 / DINO).
        n_classes: number of classes (default: from the labels).
        batch_size: test samples per similarity block (bounds memory).

    Returns:
        :func:`compute_metrics` of the test set.
    """
    multilabel = check_task(task)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    ytr = targets(train_y, multilabel)
    c = n_classes or n_outputs(task, train_y, test_y)
    tr = torch.as_tensor(np.asarray(train_x), dtype=torch.float32)
    te = torch.as_tensor(np.asarray(test_x), dtype=torch.float32)
    if tr.shape[1] != te.shape[1]:
        raise ValueError(f"train features have {tr.shape[1]} dimensions, test features {te.shape[1]}")
    votes = torch.as_tensor(ytr, dtype=torch.float32) if multilabel else F.one_hot(torch.as_tensor(ytr), c).float()
    return compute_metrics(task, test_y, knn_vote(tr, votes, te, k, temperature, batch_size).numpy())


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    task: str,
    weight_decays: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
    max_iter: int = 100,
    n_classes: int | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Logistic regression on frozen, standardised features; L2 strength chosen on validation AUC.

    Each candidate is fitted full-batch with L-BFGS (the problem is convex, so it is
    deterministic and fast); the test split is scored once, with the candidate of the
    best validation AUC: nothing is chosen on the test split.

    Args:
        train_x, val_x, test_x: ``(N, D)`` features; standardised with train statistics.
        train_y, val_y, test_y: labels as in :func:`compute_metrics`.
        task: the task string.
        weight_decays: candidate L2 penalties (on the weights, mean loss + wd/2 * ||W||^2).
        max_iter: L-BFGS iterations per candidate.
        n_classes: number of classes (default: from the labels).
        device: where to fit.

    Returns:
        Test ``{"auc", "acc"}`` plus ``"val_auc"`` and the chosen ``"weight_decay"``.
    """
    multilabel = check_task(task)
    if not weight_decays:
        raise ValueError("weight_decays needs at least one candidate")
    dev = resolve_device(device)
    c = n_classes or n_outputs(task, train_y, val_y, test_y)
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=dev)  # noqa: E731
    xtr, xva, xte = as_t(train_x), as_t(val_x), as_t(test_x)
    mean, std = xtr.mean(0, keepdim=True), xtr.std(0, keepdim=True).clamp_min(1e-6)
    xtr, xva, xte = ((x - mean) / std for x in (xtr, xva, xte))
    ytr = torch.as_tensor(targets(train_y, multilabel), device=dev)
    ytr = ytr.float() if multilabel else ytr.long()

    def fit(wd: float) -> nn.Linear:
        head = nn.Linear(xtr.shape[1], c).to(dev)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            opt.zero_grad()
            logits = head(xtr)
            loss = F.binary_cross_entropy_with_logits(logits, ytr) if multilabel else F.cross_entropy(logits, ytr)
            loss = loss + 0.5 * wd * head.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return head

    def scores(head: nn.Linear, x: Tensor) -> np.ndarray:
        with torch.no_grad():
            return to_proba(head(x), multilabel).cpu().numpy()

    best: tuple[float, float, nn.Linear] | None = None
    for wd in weight_decays:
        head = fit(float(wd))
        val_auc = compute_metrics(task, val_y, scores(head, xva))["auc"]
        key = val_auc if math.isfinite(val_auc) else -math.inf
        if best is None or key > best[0]:
            best = (key, float(wd), head)
    assert best is not None
    result = compute_metrics(task, test_y, scores(best[2], xte))
    return {**result, "val_auc": best[0] if math.isfinite(best[0]) else float("nan"), "weight_decay": best[1]}


def nearest_mean_scores(support_x: np.ndarray, support_y: np.ndarray, query_x: np.ndarray) -> np.ndarray:
    """Softmax over cosine similarity to each class's mean feature: a classifier with nothing to tune."""
    s = F.normalize(torch.as_tensor(support_x, dtype=torch.float32), dim=1)
    q = F.normalize(torch.as_tensor(query_x, dtype=torch.float32), dim=1)
    means = torch.stack([s[torch.as_tensor(support_y == c)].mean(0) for c in np.unique(support_y)])
    return torch.softmax(q @ F.normalize(means, dim=1).T / 0.1, dim=1).numpy()


def few_shot_metric(
    support_x: np.ndarray,
    support_y: np.ndarray,
    query_x: np.ndarray,
    query_y: np.ndarray,
    task: str,
    metric: str,
    shots: int,
    draws: int,
) -> tuple[float, float]:
    """Mean and spread over ``draws`` of ``metric`` ("acc" or "auc") of :func:`nearest_mean_scores`."""
    values = [
        compute_metrics(task, query_y, nearest_mean_scores(support_x[i], support_y[i], query_x))[metric]
        for i in few_shot_draws(support_y, shots, draws)
    ]
    return float(np.mean(values)), float(np.std(values))
