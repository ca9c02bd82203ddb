"""Steps to the target scratch sets, and the reduction."""

from __future__ import annotations

import math

import pytest

from medssl_lab.evaluation.convergence import convergence_target, step_reduction, steps_to_reach


def test_steps_to_reach_and_step_reduction() -> None:
    scratch = [(50, 0.70), (100, 0.80), (150, 0.86), (200, 0.90), (250, 0.89)]
    pretrained = [(50, 0.80), (100, 0.87), (150, 0.91)]
    target = convergence_target(scratch)
    assert target == pytest.approx(0.855)
    assert steps_to_reach(scratch, target) == 150 and steps_to_reach(pretrained, target) == 100
    assert steps_to_reach(pretrained, 0.95) is None
    assert steps_to_reach([(10, float("nan")), (20, 0.9)], 0.5) == 20
    assert step_reduction(100, 150) == pytest.approx(100 / 3)
    assert step_reduction(30, 200) == pytest.approx(85.0)  # the paper's headline figure
    assert step_reduction(300, 150) == pytest.approx(-100.0)
    assert step_reduction(None, 150) is None


def test_add_convergence_measures_every_arm_against_scratch_of_the_same_run() -> None:
    from medssl_lab.evaluation.convergence import add_convergence

    scratch = {"task": "t", "fraction": 0.1, "seed": 0, "arm": "scratch", "curve": [[10, 0.5], [20, 0.9], [30, 1.0]]}
    tuned = {"task": "t", "fraction": 0.1, "seed": 0, "arm": "finetune", "curve": [[10, 0.96], [20, 0.99]]}
    alone = {"task": "t", "fraction": 0.1, "seed": 1, "arm": "finetune", "curve": [[10, 0.9]]}
    add_convergence([scratch, tuned, alone])
    assert scratch["target"] == pytest.approx(0.95) and scratch["steps_to_target"] == 30
    assert tuned["steps_to_target"] == 10 and tuned["step_reduction_pct"] == pytest.approx(100 * (1 - 10 / 30))
    assert alone["steps_to_target"] is None and math.isnan(alone["target"])
