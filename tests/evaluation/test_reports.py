"""Report tables and verdicts: one tie threshold for gains over scratch and for robustness drops."""

from __future__ import annotations

import pytest

from medssl_lab.evaluation.reports import TIE, drops_against, gains_over_scratch, lost_least


def _record(arm: str, auc: float, seed: int = 0, fraction: float = 0.1) -> dict:
    return {"task": "pneumoniamnist", "fraction": fraction, "seed": seed, "arm": arm, "test_auc": auc}


def test_gains_over_scratch_compare_within_task_fraction_and_seed_and_call_small_gaps_a_tie() -> None:
    records = [
        _record("scratch", 0.80),
        _record("finetune", 0.85),
        _record("linear", 0.80 + TIE / 2),
        _record("hybrid", 0.75),
        _record("scratch", 0.90, seed=1),
        _record("finetune", 0.88, seed=1),
        _record("finetune", 0.99, fraction=1.0),  # no scratch run to compare with: left out
    ]
    gains = {(g["arm"], g["seed"]): g for g in gains_over_scratch(records)}
    assert set(gains) == {("finetune", 0), ("linear", 0), ("hybrid", 0), ("finetune", 1)}
    assert gains[("finetune", 0)]["verdict"] == "better" and gains[("finetune", 0)]["delta"] == pytest.approx(0.05)
    assert gains[("linear", 0)]["verdict"] == "tie" and gains[("hybrid", 0)]["verdict"] == "worse"
    assert gains[("finetune", 1)]["scratch_auc"] == 0.90 and gains[("finetune", 1)]["verdict"] == "worse"
    assert gains_over_scratch(records, tie=0.1)[0]["verdict"] == "tie"


def test_the_tie_is_about_one_seeds_noise() -> None:
    assert TIE == 0.01  # the notebooks' verdicts and their texts say 0.01


def test_lost_least_names_the_arm_only_when_the_drops_differ_by_more_than_the_tie() -> None:
    table = {
        "gaussian_noise": {"scratch": 0.17, "finetune": 0.06},
        "rotation": {"scratch": 0.020, "finetune": 0.020 + TIE / 2},
        "blur": {"scratch": 0.01, "finetune": 0.03, "linear": 0.005},
    }
    assert lost_least(table) == {"gaussian_noise": "finetune", "rotation": "tie", "blur": "linear"}
    assert lost_least(table, tie=0.5) == {kind: "tie" for kind in table}


def test_drops_against_sorts_the_kinds_into_less_more_and_tie() -> None:
    table = {
        "gamma": {"scratch": 0.040, "finetune": 0.005},
        "blur": {"scratch": 0.010, "finetune": 0.030},
        "scaling": {"scratch": 0.015, "finetune": 0.012},
        "gaussian_noise": {"scratch": 0.17, "finetune": 0.06},
    }
    assert drops_against(table, "finetune", kinds=["gamma", "blur", "scaling"]) == {
        "less": ["gamma"],
        "more": ["blur"],
        "tie": ["scaling"],
    }
    assert drops_against(table, "finetune")["less"] == ["gamma", "gaussian_noise"]  # every kind by default
    assert drops_against(table, "scratch", baseline="finetune")["more"] == ["gamma", "gaussian_noise"]
