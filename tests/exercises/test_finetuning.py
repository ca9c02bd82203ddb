"""Notebook 04's checks: steps to a target AUC and the binary ROC AUC; the solution passes, mistakes are named."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medssl_lab.exercises import check_binary_auc, check_steps_to_target


def steps_to_target(curve, target):
    for step, auc in curve:
        if auc >= target:
            return step
    return None


def binary_auc(labels, scores):
    labels, scores = np.asarray(labels).ravel(), np.asarray(scores, dtype=float).ravel()
    positives, negatives = scores[labels == 1][:, None], scores[labels == 0][None, :]
    return float(np.mean((positives > negatives) + 0.5 * (positives == negatives)))


def not_solved(*args):
    raise NotImplementedError


def test_solutions_pass_and_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_steps_to_target(steps_to_target).points(2) == 2
    assert check_binary_auc(binary_auc).points(2) == 2
    assert capsys.readouterr().out.splitlines() == [
        "✓ steps_to_target is correct on all 5 cases.",
        "✓ binary_auc is correct on all 5 cases.",
    ]


def test_a_rank_formula_passes_too() -> None:
    from scipy.stats import rankdata

    def by_ranks(labels, scores):
        labels, ranks = np.asarray(labels), rankdata(scores)
        n_pos, n_neg = labels.sum(), (1 - labels).sum()
        return (ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)

    assert check_binary_auc(by_ranks)


@pytest.mark.parametrize("check", [check_steps_to_target, check_binary_auc])
def test_a_stub_is_not_solved_yet(check, capsys: pytest.CaptureFixture[str]) -> None:
    result = check(not_solved)
    assert not result.solved and not result and result.points(2) == 0
    assert "is not solved yet" in capsys.readouterr().out


@pytest.mark.parametrize("check", [check_steps_to_target, check_binary_auc])
def test_an_exception_is_named_without_a_crash(check) -> None:
    result = check(lambda *args: [][0])
    assert not result and result.solved and "raised IndexError" in result.message


def _first(curve, target, reached):
    return next((i for i, (step, auc) in enumerate(curve) if reached(auc, target)), None)


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (lambda c, t: _first(c, t, lambda a, t: a >= t), "position in the list, not the step"),
        (lambda c, t: None if (i := _first(c, t, lambda a, t: a > t)) is None else c[i][0], "equals it (at least, >=)"),
        (lambda c, t: max(((a, s) for s, a in c if not math.isnan(a)))[1], "step of the best AUC"),
    ],
)
def test_steps_mistakes_are_named(student, cause: str) -> None:
    result = check_steps_to_target(student)
    assert not result and cause in result.message


@pytest.mark.parametrize("never", [0, -1])
def test_a_number_for_never_is_told_to_be_none(never: int) -> None:
    result = check_steps_to_target(lambda c, t: never if steps_to_target(c, t) is None else steps_to_target(c, t))
    assert "expected None" in result.message and "never reaches 0.95" in result.message


def test_a_nan_on_the_curve_is_a_named_case() -> None:
    result = check_steps_to_target(lambda c, t: next((s for s, a in c if not a < t), None))  # nan passes 'not a < t'
    assert "first AUC is nan" in result.message and "result is 5, expected step 15" in result.message


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (lambda y, s: float(np.mean((np.asarray(s) > 0.5) == (np.asarray(y) == 1))), "accuracy at threshold 0.5"),
        (lambda y, s: float(np.mean(np.asarray(s)[y == 1][:, None] > np.asarray(s)[y == 0])), "counted as 0"),
        (lambda y, s: float(np.mean(np.asarray(s)[y == 1][:, None] >= np.asarray(s)[y == 0])), "counted as 1"),
        (lambda y, s: binary_auc(1 - np.asarray(y), s), "1 - AUC"),
    ],
)
def test_auc_mistakes_are_named(student, cause: str) -> None:
    result = check_binary_auc(student)
    assert not result and cause in result.message


def test_feedback_gives_no_solution_away() -> None:
    messages = [
        check_steps_to_target(lambda c, t: 1).message,
        check_binary_auc(lambda y, s: 0.25).message,
    ]
    for message in messages:
        assert "expected" in message
        assert ">= target" not in message and "0.5 *" not in message and "== negatives" not in message
