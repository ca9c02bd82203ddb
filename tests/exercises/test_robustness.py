"""Notebook 05's checks: the gamma perturbation and the mean AUC drop per kind; solutions pass, mistakes are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medssl_lab.exercises import check_gamma_perturbation, check_mean_auc_drops


def gamma_perturbation(images, gamma):
    return images.clamp(0.0, 1.0) ** gamma


def mean_auc_drops(rows):
    clean = next(r["auc"] for r in rows if r["kind"] == "clean")
    drops: dict[str, list[float]] = {}
    for r in rows:
        if r["kind"] != "clean":
            drops.setdefault(r["kind"], []).append(clean - r["auc"])
    return {kind: float(np.mean(d)) for kind, d in drops.items()}


def unsolved(*args):
    raise NotImplementedError("not solved yet")


def test_solutions_pass(capsys) -> None:
    assert check_gamma_perturbation(gamma_perturbation).points(2) == 2
    assert check_mean_auc_drops(mean_auc_drops).points(2) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["✓ gamma_perturbation is correct on all 7 cases.", "✓ mean_auc_drops is correct on all 4 cases."]


@pytest.mark.parametrize(("check", "name"), [(check_gamma_perturbation, "gamma"), (check_mean_auc_drops, "drops")])
def test_a_stub_is_not_solved_yet_and_the_library_takes_over(check, name: str, capsys) -> None:
    result = check(unsolved)
    assert not result.solved and not result and result.points(2) == 0
    assert "is not solved yet" in capsys.readouterr().out
    assert result.function is result.library


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (lambda x, g: x**g, "clipped to [0, 1] before the power"),
        (lambda x, g: (x**g).clamp(0, 1), "the clip comes before the power"),
        (lambda x, g: x.clamp(0, 1) ** (1 / g), "not 1 / gamma"),
        (lambda x, g: (x.clamp(0, 1) * g).clamp(0, 1), "not a factor"),
        (lambda x, g: x.clamp(0, 1).squeeze(1) ** g, "keep the channel axis"),
    ],
)
def test_gamma_mistakes_are_named(student, cause: str) -> None:
    result = check_gamma_perturbation(student)
    assert result.solved and not result and cause in result.message


def test_forgetting_the_clip_shows_on_the_pixels_outside_the_range() -> None:
    message = check_gamma_perturbation(lambda x, g: x**g).message
    assert "slightly outside [0, 1]" in message and "not finite" in message


def test_a_numpy_result_is_refused() -> None:
    assert "torch tensor" in check_gamma_perturbation(lambda x, g: x.clamp(0, 1).numpy() ** g).message


def _drops_of(rows, summary, sign=1.0):
    clean = next(r["auc"] for r in rows if r["kind"] == "clean")
    by_kind: dict[str, list[float]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(sign * (clean - r["auc"]))
    return {k: summary(v) for k, v in by_kind.items()}


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (lambda rows: {k: v for k, v in _drops_of(rows, np.mean, -1.0).items() if k != "clean"}, "clean AUC minus"),
        (lambda rows: _drops_of(rows, np.mean), "leave it out of the result"),
        (
            lambda rows: {k: float(np.mean([0.0, *v])) for k, v in _drops_of(rows, list).items() if k != "clean"},
            "zero drop is counted",
        ),
        (lambda rows: {k: v for k, v in _drops_of(rows, max).items() if k != "clean"}, "not the largest drop"),
    ],
)
def test_drop_mistakes_are_named(student, cause: str) -> None:
    result = check_mean_auc_drops(student)
    assert result.solved and not result and cause in result.message


def test_a_failing_function_is_reported_without_a_crash(capsys) -> None:
    result = check_mean_auc_drops(lambda rows: rows[0]["drop"])
    assert result.solved and not result and "raised KeyError" in capsys.readouterr().out
    result = check_gamma_perturbation(lambda x, g: torch.pow(x, "2"))
    assert not result and "raised TypeError" in result.message


def test_feedback_gives_no_solution_away() -> None:
    messages = [
        check_gamma_perturbation(lambda x, g: x).message,
        check_mean_auc_drops(lambda rows: {r["kind"]: 0.0 for r in rows if r["kind"] != "clean"}).message,
    ]
    for message in messages:
        assert "clamp" not in message and "**" not in message and "np.mean" not in message
        assert "expected" in message
