"""AUC and ACC as MedMNIST reports them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from medssl_lab.evaluation.metrics import compute_metrics


def test_binary_metrics_match_sklearn_for_both_score_layouts() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    expected = {"auc": roc_auc_score(y, p), "acc": accuracy_score(y, p > 0.5)}
    for scores in (p, p[:, None], np.stack([1 - p, p], 1)):
        got = compute_metrics("binary-class", y[:, None], scores)
        assert got == pytest.approx(expected)


def test_multiclass_metrics_are_macro_one_vs_rest_auc_and_argmax_acc() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    got = compute_metrics("multi-class", y, p)
    assert got["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert got["acc"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert compute_metrics("ordinal-regression", y, p) == pytest.approx(got)  # scored as MedMNIST does


def test_multilabel_metrics_mean_over_labels() -> None:
    y = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0], [1, 0, 1], [0, 1, 0]])
    p = np.array([[0.9, 0.2, 0.6], [0.3, 0.7, 0.4], [0.6, 0.4, 0.2], [0.1, 0.3, 0.5], [0.4, 0.1, 0.9], [0.2, 0.8, 0.3]])
    got = compute_metrics("multi-label, binary-class", y, p)
    assert got["auc"] == pytest.approx(roc_auc_score(y, p, average="macro"))
    assert got["acc"] == pytest.approx(np.mean([accuracy_score(y[:, j], p[:, j] > 0.5) for j in range(3)]))


def test_metrics_absent_class_gives_nan_with_explanation_and_bad_scores_raise() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1]])
    with pytest.warns(RuntimeWarning, match=r"class\(es\) \[2\] never occur"):
        got = compute_metrics("multi-class", np.array([0, 1, 0]), p)
    assert math.isnan(got["auc"]) and got["acc"] == 1.0
    with pytest.warns(RuntimeWarning, match="only class 1"):
        assert math.isnan(compute_metrics("binary-class", np.ones(3), np.array([0.2, 0.6, 0.9]))["auc"])
    with pytest.raises(ValueError, match="probabilities"):
        compute_metrics("binary-class", np.array([0, 1]), np.array([-2.0, 3.0]))  # logits
    with pytest.raises(ValueError, match="unknown task"):
        compute_metrics("regression", np.array([0, 1]), np.array([0.2, 0.8]))
