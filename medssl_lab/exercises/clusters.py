"""Checks of notebook 03's exercises: the nearest prototype of an embedding, and the purity of a clustering.

Both compare with the package's own cluster code (:mod:`medssl_lab.evaluation.clusters`) on small named
cases: a few vectors written out, MedNIST class names as labels, and seeded random arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from medssl_lab.evaluation.clusters import assign_prototypes, encode_labels, purity
from medssl_lab.exercises.feedback import Case, CheckResult, Mistake, Problem, array_problem, run_check

# ---------------------------------------------------------------------------- nearest prototype


def _unit(x: Any) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _cosine(embeddings: Any, prototypes: Any) -> np.ndarray:
    return _unit(embeddings) @ _unit(prototypes).T


def library_nearest_prototype(embeddings: Any, prototypes: Any) -> np.ndarray:
    """The package's hard assignment (:func:`assign_prototypes`) of cosine scores: the notebook's clusters."""
    return assign_prototypes(_cosine(embeddings, prototypes))


# Three 2-D embeddings and three prototypes of lengths 1, 0.5 and 2.83: the long prototype wins every raw dot
# product, but by angle each embedding has its own nearest prototype.
TINY_EMBEDDINGS = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, 1.0]])
TINY_PROTOTYPES = np.array([[1.0, 0.0], [0.0, 0.5], [2.0, 2.0]])


def _random_vectors(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(50, 16))
    prototypes = rng.normal(size=(8, 16)) * rng.uniform(0.2, 3.0, size=(8, 1))  # lengths differ, as before training
    return embeddings, prototypes


def _nearest_prototype_cases() -> list[Case]:
    return [
        Case("3 embeddings, 3 prototypes of lengths 1, 0.5 and 2.83", (TINY_EMBEDDINGS, TINY_PROTOTYPES)),
        Case("the same 3 embeddings made 5 times longer", (TINY_EMBEDDINGS * 5, TINY_PROTOTYPES)),
        Case("50 random embeddings, 8 prototypes of random lengths, 16 dims (seed 0)", _random_vectors(0)),
    ]


def _raw_dot(embeddings: Any, prototypes: Any) -> np.ndarray:
    return (_unit(embeddings) @ np.asarray(prototypes, dtype=np.float64).T).argmax(axis=1)


def _least_similar(embeddings: Any, prototypes: Any) -> np.ndarray:
    return _cosine(embeddings, prototypes).argmin(axis=1)


def _column(embeddings: Any, prototypes: Any) -> np.ndarray:
    return _cosine(embeddings, prototypes).argmax(axis=1, keepdims=True)


def _indices_problem(got: Any, want: np.ndarray) -> Problem:
    """Exact indices, one per embedding, as integers."""
    problem = array_problem(got, want, atol=0.0, rtol=0.0, what="the result", where=lambda i: f"embedding {i[0]}")
    if problem is None and np.asarray(got).dtype.kind not in "iu":
        return f"the result holds {np.asarray(got).dtype} numbers, expected integer indices (one prototype row each)"
    return problem


def check_nearest_prototype(student: Callable[[Any, Any], Any]) -> CheckResult:
    """``nearest_prototype(embeddings, prototypes)``: (N,) index of each embedding's most similar prototype (cosine)."""
    return run_check(
        "nearest_prototype",
        student,
        library_nearest_prototype,
        _nearest_prototype_cases(),
        _indices_problem,
        resembles=lambda got, wrong: array_problem(got, wrong, atol=1e-6),
        mistakes=[
            Mistake(
                "the prototypes were not normalised: a long prototype wins a raw dot product without being "
                "closer in angle; divide every prototype by its length too",
                _raw_dot,
            ),
            Mistake(
                "this is the least similar prototype (argmin); the nearest one has the largest cosine", _least_similar
            ),
            Mistake("the result is one column (N, 1); return a flat (N,) vector, one index per embedding", _column),
            Mistake(
                "this is the (N, K) matrix of similarities; return for each embedding the index of its best prototype",
                _cosine,
            ),
        ],
        library_name="medssl_lab.evaluation.clusters.assign_prototypes (on cosine scores)",
    )


# ---------------------------------------------------------------------------- purity

# Six images in three clusters, written out: cluster 0 holds two HeadCT and a Hand (majority HeadCT, 2 of 3),
# clusters 1 and 2 hold only Hands (2 of 2, 1 of 1).
SIX_CLUSTERS = np.array([0, 0, 0, 1, 1, 2])
SIX_LABELS = np.array(["HeadCT", "HeadCT", "Hand", "Hand", "Hand", "Hand"], dtype=object)

MEDNIST_CLASSES = ("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT")


def _random_clustering(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """200 images in 10 clusters; each cluster leans to one class, as a clustering of MedNIST would."""
    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, 10, size=200)
    leaning = rng.integers(0, len(MEDNIST_CLASSES), size=10)[clusters]
    classes = np.where(rng.random(200) < 0.6, leaning, rng.integers(0, len(MEDNIST_CLASSES), size=200))
    return clusters, np.asarray(MEDNIST_CLASSES, dtype=object)[classes]


def _purity_cases() -> list[Case]:
    return [
        Case("6 images in 3 clusters (HeadCT, HeadCT, Hand | Hand, Hand | Hand)", (SIX_CLUSTERS, SIX_LABELS)),
        Case(
            "the same 6 images with cluster ids 5, 9 and 12 (prototype numbers)",
            (np.array([5, 5, 5, 9, 9, 12]), SIX_LABELS),
        ),
        Case("200 images in 10 clusters, MedNIST class names (seed 0)", _random_clustering(0)),
        Case(
            "the 200 images with integer labels 0..5 (seed 0)",
            (_random_clustering(0)[0], np.random.default_rng(1).integers(0, 6, 200)),
        ),
    ]


def _counts(assignments: Any, labels: Any) -> np.ndarray:
    """Contingency table: rows clusters, columns labels."""
    _, a = encode_labels(np.asarray(assignments))
    _, y = encode_labels(np.asarray(labels))
    table = np.zeros((a.max() + 1, y.max() + 1), dtype=np.int64)
    np.add.at(table, (a, y), 1)
    return table


def _mean_of_cluster_purities(assignments: Any, labels: Any) -> float:
    table = _counts(assignments, labels)
    return float(np.mean(table.max(axis=1) / table.sum(axis=1)))


def _over_clusters(assignments: Any, labels: Any) -> float:
    table = _counts(assignments, labels)
    return float(table.max(axis=1).sum() / len(table))


def _inverse_purity(assignments: Any, labels: Any) -> float:
    table = _counts(assignments, labels)
    return float(table.max(axis=0).sum() / table.sum())


def check_purity(student: Callable[[Any, Any], Any]) -> CheckResult:
    """``purity(assignments, labels)``: the share of images whose label is their cluster's majority label."""
    return run_check(
        "purity",
        student,
        purity,
        _purity_cases(),
        lambda got, want: array_problem(got, want, atol=1e-9, rtol=0.0, what="the purity"),
        mistakes=[
            Mistake(
                "this is the plain mean of the clusters' own purities: a one-image cluster then weighs as much as a "
                "big one; count images, not clusters",
                _mean_of_cluster_purities,
            ),
            Mistake(
                "the count of majority images was divided by the number of clusters; divide by the number of images",
                _over_clusters,
            ),
            Mistake(
                "this is purity the wrong way round (inverse purity): for each label its majority cluster; "
                "take for each cluster its majority label",
                _inverse_purity,
            ),
        ],
        library_name="medssl_lab.evaluation.clusters.purity",
    )
