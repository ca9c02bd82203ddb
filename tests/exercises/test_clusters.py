"""Notebook 03's checks: the nearest prototype by cosine, and purity; the solution passes, usual mistakes are named."""

from __future__ import annotations

import numpy as np
import pytest

from medssl_lab.exercises import check_nearest_prototype, check_purity


def nearest_prototype(embeddings, prototypes):
    e = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    p = prototypes / np.linalg.norm(prototypes, axis=1, keepdims=True)
    return np.argmax(e @ p.T, axis=1)


def purity(assignments, labels):
    assignments, labels = np.asarray(assignments), np.asarray(labels)
    majority = 0
    for cluster in np.unique(assignments):
        _, counts = np.unique(labels[assignments == cluster], return_counts=True)
        majority += counts.max()
    return majority / len(assignments)


def not_solved(*args):
    raise NotImplementedError


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_solutions_pass_and_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_nearest_prototype(nearest_prototype).points(2) == 2
    assert check_purity(purity).points(2) == 2
    assert capsys.readouterr().out.splitlines() == [
        "✓ nearest_prototype is correct on all 3 cases.",
        "✓ purity is correct on all 4 cases.",
    ]


def test_the_notebook_goes_on_with_the_students_function_once_correct() -> None:
    assert check_nearest_prototype(nearest_prototype).function is nearest_prototype
    assert check_purity(lambda a, y: 0.0).function is not purity


@pytest.mark.parametrize("check", [check_nearest_prototype, check_purity])
def test_a_stub_is_not_solved_yet(check, capsys: pytest.CaptureFixture[str]) -> None:
    result = check(not_solved)
    assert not result.solved and not result and result.points(2) == 0
    assert "is not solved yet" in capsys.readouterr().out


@pytest.mark.parametrize("check", [check_nearest_prototype, check_purity])
def test_an_exception_is_named_without_a_crash(check) -> None:
    result = check(lambda *args: {}["missing"])
    assert not result and result.solved and "raised KeyError" in result.message


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (lambda e, p: np.argmax(_unit(e) @ p.T, axis=1), "prototypes were not normalised"),
        (lambda e, p: np.argmin(_unit(e) @ _unit(p).T, axis=1), "least similar prototype (argmin)"),
        (lambda e, p: np.argmax(_unit(e) @ _unit(p).T, axis=1)[:, None], "one column (N, 1)"),
        (lambda e, p: _unit(e) @ _unit(p).T, "(N, K) matrix of similarities"),
    ],
)
def test_nearest_prototype_mistakes_are_named(student, cause: str) -> None:
    result = check_nearest_prototype(student)
    assert not result and cause in result.message


def test_the_tiny_case_needs_normalised_prototypes() -> None:
    result = check_nearest_prototype(lambda e, p: np.argmax(e @ p.T, axis=1))
    assert "lengths 1, 0.5 and 2.83" in result.message and "embedding 0 is 2, expected 0" in result.message


def test_float_indices_are_told_their_type() -> None:
    result = check_nearest_prototype(lambda e, p: nearest_prototype(e, p).astype(float))
    assert "float64" in result.message and "integer" in result.message


def _cluster_table(a, y):
    _, a = np.unique(np.asarray(a), return_inverse=True)
    _, y = np.unique(np.asarray(y).astype(str), return_inverse=True)
    table = np.zeros((a.max() + 1, y.max() + 1))
    np.add.at(table, (a, y), 1)
    return table


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (lambda a, y: np.mean(_cluster_table(a, y).max(1) / _cluster_table(a, y).sum(1)), "plain mean of the clusters"),
        (lambda a, y: _cluster_table(a, y).max(1).sum() / len(np.unique(a)), "divided by the number of clusters"),
        (lambda a, y: _cluster_table(a, y).max(0).sum() / len(a), "inverse purity"),
    ],
)
def test_purity_mistakes_are_named(student, cause: str) -> None:
    result = check_purity(student)
    assert not result and cause in result.message and "6 images in 3 clusters" in result.message


def test_cluster_ids_that_are_prototype_numbers_are_a_named_case() -> None:
    def by_position(a, y):  # a table indexed by cluster id, sized by the number of clusters
        a, y = np.asarray(a), np.asarray(y).astype(str)
        classes = list(np.unique(y))
        table = np.zeros((len(np.unique(a)), len(classes)))
        for cluster, label in zip(a, y, strict=True):
            table[cluster, classes.index(label)] += 1
        return table.max(1).sum() / len(a)

    result = check_purity(by_position)
    assert "IndexError" in result.message and "cluster ids 5, 9 and 12" in result.message


def test_feedback_gives_no_solution_away() -> None:
    messages = [
        check_nearest_prototype(lambda e, p: np.zeros(len(e), np.int64)).message,
        check_purity(lambda a, y: 0.5).message,
    ]
    for message in messages:
        assert "expected" in message
        assert "argmax" not in message and "linalg.norm" not in message and "max(axis" not in message
