"""Checks of notebook 04's exercises: steps to reach a target validation AUC, and the ROC AUC of a binary task.

``steps_to_target`` is compared with the package's :func:`~medssl_lab.evaluation.convergence.steps_to_reach` on
validation curves written out (one that crosses, one that never gets there, one that hits the target exactly, one
with an undefined AUC); ``binary_auc`` with scikit-learn's ``roc_auc_score`` on rankings a student can check by
hand and on seeded predictions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from medssl_lab.evaluation.convergence import steps_to_reach
from medssl_lab.exercises.feedback import Case, CheckResult, Mistake, Problem, array_problem, run_check

Curve = Sequence[tuple[int, float]]

# ---------------------------------------------------------------------------- steps to target

CROSSING = [(5, 0.71), (10, 0.86), (15, 0.91), (20, 0.95), (25, 0.93)]
NEVER = [(25, 0.80), (50, 0.88), (75, 0.91), (100, 0.90)]
EXACT = [(5, 0.82), (10, 0.90), (15, 0.92), (20, 0.89)]
WITH_NAN = [(5, math.nan), (10, 0.70), (15, 0.88), (20, 0.93)]


def _steps_cases() -> list[Case]:
    return [
        Case("a curve every 5 steps that crosses 0.90 between steps 10 and 15", (CROSSING, 0.90)),
        Case("a curve every 25 steps that never reaches 0.95", (NEVER, 0.95)),
        Case("a curve that hits the target 0.90 exactly at step 10", (EXACT, 0.90)),
        Case("a curve whose first AUC is nan (undefined), target 0.85", (WITH_NAN, 0.85)),
        Case("a curve already above the target at its first evaluation", (CROSSING, 0.70)),
    ]


def _index_not_step(curve: Curve, target: float) -> int | None:
    for i, (_, auc) in enumerate(curve):
        if auc >= target:
            return i
    return None


def _strictly_above(curve: Curve, target: float) -> int | None:
    for step, auc in curve:
        if auc > target:
            return int(step)
    return None


def _best_step(curve: Curve, target: float) -> int | None:
    finite = [(auc, step) for step, auc in curve if math.isfinite(auc)]
    best_auc, step = max(finite)
    return int(step) if best_auc >= target else None


def _step_problem(got: Any, want: int | None) -> Problem:
    """None must be None; a step must be a whole number equal to the library's."""
    if want is None:
        if got is None:
            return None
        if isinstance(got, int | np.integer) and not isinstance(got, bool) and got in (0, -1):
            return (
                f"the result is {got!r}, expected None: the curve never reaches the target, and {got!r} reads as a step"
            )
        return f"the result is {got!r}, expected None (the curve never reaches the target)"
    if got is None:
        return f"the result is None, expected step {want} (the curve does reach the target)"
    if isinstance(got, bool) or not isinstance(got, int | np.integer):
        return f"the result should be a step (a whole number), but it is {type(got).__name__} {got!r}"[:160]
    if got != want:
        return f"the result is {got}, expected step {want}"
    return None


def check_steps_to_target(student: Callable[[Curve, float], Any]) -> CheckResult:
    """``steps_to_target(curve, target)``: the first step whose validation AUC is at least ``target``, else None."""
    return run_check(
        "steps_to_target",
        student,
        steps_to_reach,
        _steps_cases(),
        _step_problem,
        mistakes=[
            Mistake(
                "this is the position in the list, not the step: each entry is a (step, AUC) pair", _index_not_step
            ),
            Mistake(
                "the target counts as reached when the AUC equals it (at least, >=), not only above it", _strictly_above
            ),
            Mistake(
                "this is the step of the best AUC; the question is when the curve first reaches the target",
                _best_step,
            ),
        ],
        library_name="medssl_lab.evaluation.convergence.steps_to_reach",
    )


# ---------------------------------------------------------------------------- binary AUC


def sklearn_auc(labels: Any, scores: Any) -> float:
    """ROC AUC from scikit-learn, the reference the course's metrics use."""
    return float(roc_auc_score(np.asarray(labels), np.asarray(scores, dtype=np.float64)))


def _noisy_predictions(seed: int, n: int, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` labels (about 30 % positive) and scores that rank them well but not perfectly."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.int64)
    scores = 1 / (1 + np.exp(-(1.5 * labels - 0.75 + rng.normal(size=n))))
    if decimals is not None:
        scores = np.round(scores, decimals)
    return labels, scores


def _auc_cases() -> list[Case]:
    return [
        Case(
            "perfect ranking: 3 normal then 3 pneumonia, scores 0.10 to 0.45",
            (np.array([0, 0, 0, 1, 1, 1]), np.array([0.10, 0.20, 0.30, 0.35, 0.40, 0.45])),
        ),
        Case(
            "reversed ranking: the same 6 images, pneumonia scored lowest",
            (np.array([1, 1, 1, 0, 0, 0]), np.array([0.10, 0.20, 0.30, 0.35, 0.40, 0.45])),
        ),
        Case("all 8 scores equal (3 pneumonia, 5 normal)", (np.array([1, 0, 0, 1, 0, 0, 1, 0]), np.full(8, 0.7))),
        Case("200 random predictions (seed 0)", _noisy_predictions(0, 200)),
        Case("40 predictions rounded to 1 decimal: many ties (seed 1)", _noisy_predictions(1, 40, decimals=1)),
    ]


def _pairs(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """The positives' scores as a column and the negatives' as a row: compared, they give every pair."""
    y, s = np.asarray(labels).ravel(), np.asarray(scores, dtype=np.float64).ravel()
    return s[y == 1][:, None], s[y == 0][None, :]


def _accuracy(labels: Any, scores: Any) -> float:
    y, s = np.asarray(labels).ravel(), np.asarray(scores, dtype=np.float64).ravel()
    return float(np.mean((s >= 0.5) == (y == 1)))


def _ties_as_zero(labels: Any, scores: Any) -> float:
    pos, neg = _pairs(labels, scores)
    return float(np.mean(pos > neg))


def _ties_as_one(labels: Any, scores: Any) -> float:
    pos, neg = _pairs(labels, scores)
    return float(np.mean(pos >= neg))


def _reversed(labels: Any, scores: Any) -> float:
    return 1.0 - sklearn_auc(labels, scores)


def check_binary_auc(student: Callable[[Any, Any], Any]) -> CheckResult:
    """``binary_auc(labels, scores)``: P(a random positive scores above a random negative), ties counting half."""
    return run_check(
        "binary_auc",
        student,
        sklearn_auc,
        _auc_cases(),
        lambda got, want: array_problem(got, want, atol=1e-9, rtol=0.0, what="the AUC"),
        mistakes=[
            Mistake(
                "this is the accuracy at threshold 0.5; the AUC compares the scores of positive and negative "
                "images pair by pair, with no threshold",
                _accuracy,
            ),
            Mistake("tied pairs were counted as 0; a tie counts half a pair", _ties_as_zero),
            Mistake("tied pairs were counted as 1; a tie counts half a pair", _ties_as_one),
            Mistake(
                "this is 1 - AUC: the negatives were ranked above the positives (labels and scores swapped, "
                "or the classes the wrong way round)",
                _reversed,
            ),
        ],
        library_name="sklearn.metrics.roc_auc_score",
    )
