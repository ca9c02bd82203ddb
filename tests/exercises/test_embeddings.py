"""Notebook 02's check: a plain cosine kNN passes, the usual mistakes are named, ties go to the smaller label."""

from __future__ import annotations

import numpy as np
import pytest

from medssl_lab.exercises import check_knn_classify
from medssl_lab.exercises.embeddings import reference_knn


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def knn_classify(train_features, train_labels, test_features, k):
    nearest = np.argsort(-(unit(test_features) @ unit(train_features).T), axis=1)[:, :k]
    return np.array([np.bincount(votes).argmax() for votes in train_labels[nearest]])


def stub(*args):
    raise NotImplementedError("knn_classify is not solved yet")


def test_the_solution_passes(capsys: pytest.CaptureFixture[str]) -> None:
    result = check_knn_classify(knn_classify)
    assert result.points(2) == 2 and result.function is knn_classify
    assert capsys.readouterr().out.startswith("✓ knn_classify is correct on all 4 cases")


def test_a_stub_is_not_solved_yet_and_the_reference_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    result = check_knn_classify(stub)
    assert not result.solved and result.points(2) == 0 and result.function is reference_knn
    assert "… knn_classify is not solved yet" in capsys.readouterr().out


def euclidean(train, labels, test, k):
    distance = np.linalg.norm(test[:, None] - train[None], axis=2)
    return np.array([np.bincount(v).argmax() for v in labels[np.argsort(distance, axis=1)[:, :k]]])


def least_similar(train, labels, test, k):
    nearest = np.argsort(unit(test) @ unit(train).T, axis=1)[:, :k]
    return np.array([np.bincount(v).argmax() for v in labels[nearest]])


def skipped_first(train, labels, test, k):
    nearest = np.argsort(-(unit(test) @ unit(train).T), axis=1)[:, 1 : k + 1]
    return np.array([np.bincount(v).argmax() for v in labels[nearest]])


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (euclidean, "Euclidean distance on the raw features"),
        (least_similar, "LEAST similar"),
        (lambda tr, y, te, k: np.argsort(-(unit(te) @ unit(tr).T), axis=1)[:, :k], "row numbers"),
        (lambda tr, y, te, k: np.argsort(-(unit(te) @ unit(tr).T), axis=1)[:, 0], "row numbers"),
        (skipped_first, "most similar training sample was skipped"),
        (lambda tr, y, te, k: knn_classify(tr, y, te, k + 1), "k + 1 neighbours voted"),
    ],
)
def test_mistakes_are_named(student, cause: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = check_knn_classify(student)
    assert not result and result.solved and cause in result.message
    assert "Likely cause" in capsys.readouterr().out


def test_cosine_and_euclidean_disagree_on_the_2d_case() -> None:
    train = np.array([[10.0, 1.0], [0.5, 0.9]])
    labels = np.array([1, 0])
    test = np.array([[1.0, 0.1]])
    assert reference_knn(train, labels, test, 1).tolist() == [1]
    assert euclidean(train, labels, test, 1).tolist() == [0]


def test_a_tie_goes_to_the_smaller_label() -> None:
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    assert reference_knn(train, np.array([1, 0, 1]), np.array([[1.0, 0.05]]), 2).tolist() == [0]


def test_a_function_that_raises_is_reported_without_crashing() -> None:
    result = check_knn_classify(lambda tr, y, te, k: tr[1000])
    assert not result and "raised IndexError" in result.message


def test_a_list_is_told_to_be_an_array_without_a_wrong_cause() -> None:
    result = check_knn_classify(lambda *args: knn_classify(*args).tolist())
    assert "should be a numpy array" in result.message and "Likely cause" not in result.message


def test_the_feedback_gives_no_solution_away() -> None:
    result = check_knn_classify(lambda tr, y, te, k: np.zeros(len(te), dtype=np.int64))
    assert "expected" in result.message
    for fragment in ("argsort", "bincount", "np.linalg.norm", "@"):
        assert fragment not in result.message
