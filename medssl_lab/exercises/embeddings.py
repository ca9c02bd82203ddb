"""Checks of notebook 02's exercises: a plain k-nearest-neighbour classifier on cosine similarity.

The package's :func:`~medssl_lab.evaluation.probes.knn_probe` is a *weighted* vote (the SwAV/DINO
protocol), so the reference here is written out plainly: unit-length features, the ``k`` most
similar training samples, a majority vote with ties going to the smallest label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from medssl_lab.exercises.feedback import Case, CheckResult, Mistake, Problem, array_problem, run_check


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _vote(neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority vote per row; ``argmax`` of the counts gives ties to the smallest label."""
    return np.array([np.bincount(row, minlength=n_classes).argmax() for row in neighbour_labels], dtype=np.int64)


def _neighbours(train: np.ndarray, test: np.ndarray, k: int, block: int = 512) -> np.ndarray:
    """Row numbers of each test sample's ``k`` most similar training samples (cosine), most similar first.

    Blocks of test samples and a partial sort keep it quick on a notebook's real features.
    """
    unit_train, unit_test = _unit(train), _unit(test)
    k = min(k, len(unit_train))
    rows = []
    for start in range(0, len(unit_test), block):
        similarity = unit_test[start : start + block] @ unit_train.T
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
        rows.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(rows)


def reference_knn(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, k: int
) -> np.ndarray:
    """Majority vote of the ``k`` most similar training samples (cosine similarity)."""
    labels = np.asarray(train_labels, dtype=np.int64)
    return _vote(labels[_neighbours(train_features, test_features, k)], int(labels.max()) + 1)


def _clusters(seed: int, n_train: int, n_test: int, n_classes: int, dim: int = 8) -> tuple[np.ndarray, ...]:
    """Seeded features around one random direction per class, at random lengths (lengths carry no class)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, n_classes, n)
        x = (centres[y] + 0.9 * rng.normal(size=(n, dim))) * rng.uniform(0.2, 5.0, size=(n, 1))
        return x.astype(np.float32), y.astype(np.int64)

    x_train, y_train = draw(n_train)
    x_test, _ = draw(n_test)
    return x_train, y_train, x_test


def _knn_cases() -> list[Case]:
    # Long vectors along the x axis are class 1, short ones along the y axis class 0, one pointing
    # the other way class 2: each test point points along x but lies closer (Euclidean) to the short ones.
    long_and_short = (
        np.array([[10.0, 1.0], [9.0, -1.0], [0.5, 0.9], [0.6, 0.7], [0.4, 1.0], [-1.0, -0.2]], dtype=np.float32),
        np.array([1, 1, 0, 0, 0, 2]),
        np.array([[1.0, 0.1], [0.8, -0.05]], dtype=np.float32),
    )
    return [
        Case("2-D: long vectors and short ones (6 training points, 2 test points), k = 1", (*long_and_short, 1)),
        Case("seeded random, 3 classes in 8-D (60 training, 20 test samples), k = 5", (*_clusters(0, 60, 20, 3), 5)),
        Case("seeded random, 3 classes in 8-D, k = 1", (*_clusters(1, 40, 20, 3), 1)),
        Case("seeded random, 2 classes, k = 4 (ties: the smaller label wins)", (*_clusters(2, 30, 20, 2), 4)),
    ]


def _euclidean(train: np.ndarray, labels: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    distance = np.linalg.norm(np.asarray(test, np.float64)[:, None] - np.asarray(train, np.float64)[None], axis=2)
    labels = np.asarray(labels, dtype=np.int64)
    return _vote(labels[np.argsort(distance, axis=1, kind="stable")[:, :k]], int(labels.max()) + 1)


def _least_similar(train: np.ndarray, labels: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(_unit(test) @ _unit(train).T, axis=1, kind="stable")[:, :k]
    labels = np.asarray(labels, dtype=np.int64)
    return _vote(labels[order], int(labels.max()) + 1)


def _indices(train: np.ndarray, labels: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    return _neighbours(train, test, k)


def _nearest_skipped(train: np.ndarray, labels: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.int64)
    order = np.argsort(-(_unit(test) @ _unit(train).T), axis=1, kind="stable")[:, 1 : k + 1]
    return _vote(labels[order], int(labels.max()) + 1)


def _one_more(train: np.ndarray, labels: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    return reference_knn(train, labels, test, k + 1)


def _labels_problem(got: Any, want: np.ndarray) -> Problem:
    if not isinstance(got, np.ndarray):
        return f"the predictions should be a numpy array, but they are {type(got).__name__}"
    return array_problem(got, want, atol=0, rtol=0, what="the predicted label", where=lambda i: f"test sample {i[0]}")


def _resembles(got: Any, wrong: np.ndarray) -> Problem:
    # (N, 1) and (N,) are the same answer: neighbours' row numbers show up in either shape
    if not isinstance(got, np.ndarray):
        return "not a numpy array"
    return array_problem(np.squeeze(np.asarray(got)), np.squeeze(wrong), atol=0, rtol=0)


def check_knn_classify(student: Callable[[np.ndarray, np.ndarray, np.ndarray, int], Any]) -> CheckResult:
    """``knn_classify(train_features, train_labels, test_features, k)``: majority vote of the k most similar."""
    return run_check(
        "knn_classify",
        student,
        reference_knn,
        _knn_cases(),
        _labels_problem,
        resembles=_resembles,
        mistakes=[
            Mistake(
                "the neighbours were chosen by Euclidean distance on the raw features: normalise every feature "
                "vector to length 1 first (cosine similarity), so that the direction counts and not the length",
                _euclidean,
            ),
            Mistake(
                "the k LEAST similar training samples voted: the most similar ones have the largest similarity, "
                "so sort in decreasing order",
                _least_similar,
            ),
            Mistake(
                "the result holds the neighbours' row numbers in the training set: return their labels' majority vote",
                _indices,
            ),
            Mistake(
                "the most similar training sample was skipped: the test samples are not in the training set, "
                "so the first neighbour counts",
                _nearest_skipped,
            ),
            Mistake("k + 1 neighbours voted: exactly k should", _one_more),
        ],
        library_name="medssl_lab.exercises.embeddings.reference_knn",
    )
