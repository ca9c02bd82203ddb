"""The labels-per-class protocol: sizes, seeds, the budget rule, resumable runs and the paired gains."""

from __future__ import annotations

from pathlib import Path

import pytest

import medssl_lab.evaluation.label_efficiency as le
from medssl_lab.evaluation.downstream import TrainConfig
from medssl_lab.evaluation.reports import label_efficiency_markdown

from .conftest import SMOKE, phantom_split


def test_the_budget_scales_with_the_labelled_images_within_the_profile_budget() -> None:
    base = TrainConfig(steps=300, batch_size=64, eval_every=25, dense_eval=(5, 100))
    few = le.few_label_budget(base, 10)
    assert (few.steps, few.batch_size, few.eval_every, few.dense_eval) == (150, 10, 10, None)  # at least 150 steps
    assert le.few_label_budget(base, 600).steps == 282  # 30 passes over 600 images in batches of 64
    every = le.few_label_budget(base, 4708)
    assert (every.steps, every.batch_size, every.eval_every) == (300, 64, 20)  # never more than the profile's
    smoke = le.few_label_budget(TrainConfig(steps=12, batch_size=32, head_warmup_steps=20), 10)
    assert (smoke.steps, smoke.head_warmup_steps) == (12, 2)  # smoke stays smoke; the warm-up a fifth of it at most
    assert le.few_label_budget(TrainConfig(head_warmup_steps=20), 10).head_warmup_steps == 20


def test_small_sizes_get_more_seeds_and_all_labels_is_named_all() -> None:
    assert le.seeds_for(5) == le.seeds_for(25) == [0, 1, 2, 3, 4]
    assert le.seeds_for(50) == le.seeds_for(None) == [0, 1, 2]
    assert [le.size_name(s) for s in le.LABELS_PER_CLASS] == ["5", "10", "25", "50", "100", "all"]


def test_every_arm_of_a_draw_gets_the_same_images_and_runs_resume_from_their_files(
    pretrained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    splits = (phantom_split(80, 1), phantom_split(40, 2), phantom_split(48, 3))
    base = TrainConfig(**{**SMOKE, "steps": 4})
    kwargs = dict(sizes=(3, None), seeds=((0, 1), (0,)), arms=("scratch", "finetune"))
    records = le.run_label_efficiency("phantoms", splits, pretrained, base, runs_dir=tmp_path, **kwargs)
    assert len(records) == (2 + 1) * 2 and len(list(tmp_path.glob("*.json"))) == 6
    assert {(r["labels_per_class"], r["n_train"]) for r in records} == {("3", 6), ("all", 80)}
    for size in ("3", "all"):
        for seed in (0, 1):
            pair = [r for r in records if (r["labels_per_class"], r["seed"]) == (size, seed)]
            assert len({r["n_train"] for r in pair}) <= 1 and len({r["steps"] for r in pair}) <= 1

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(le, "train_classifier", no_training)
    again = le.run_label_efficiency("phantoms", splits, pretrained, base, runs_dir=tmp_path, **kwargs)
    assert le.sorted_records(again) == le.sorted_records(records)


def test_gains_pair_the_arms_seed_by_seed_and_the_table_shows_them() -> None:
    rows = [
        dict(task="t", labels_per_class=size, arm=arm, seed=seed, test_auc=auc, test_acc=auc / 2)
        for size, arm, seed, auc in [
            ("all", "scratch", 0, 0.9),
            ("all", "finetune", 0, 0.9),
            ("10", "scratch", 0, 0.70),
            ("10", "scratch", 1, 0.80),
            ("10", "finetune", 0, 0.80),
            ("10", "finetune", 1, 0.84),
            ("10", "finetune", 2, 0.99),  # no scratch run of seed 2: not paired
        ]
    ]
    gains = le.gains(rows)
    assert [g["labels_per_class"] for g in gains] == ["10", "all"]  # sizes in order, all last
    assert gains[0]["gain"] == pytest.approx(0.07) and gains[0]["worst"] == pytest.approx(0.04)
    assert gains[0]["std"] == pytest.approx(0.03) and gains[0]["seeds"] == 2
    table = label_efficiency_markdown(rows)
    assert "| t | 10 | 3 | 0.750 ± 0.050 | 0.877 ± 0.082 | +0.070 ± 0.030 (worst +0.040) |" in table
    assert le.gains(rows, metric="test_acc")[0]["gain"] == pytest.approx(0.035)
    accuracy = label_efficiency_markdown(rows, metric="test_acc")
    assert "test ACC" in accuracy
    assert "| t | 10 | 3 | 0.375 ± 0.025 | 0.438 ± 0.041 | +0.035 ± 0.015 (worst +0.020) |" in accuracy
    assert label_efficiency_markdown([]) == ""
