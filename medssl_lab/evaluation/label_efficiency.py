"""Label efficiency in labels per class: 5, 10, 25, 50, 100 and every label, the regime of few-label results.

A fraction of a data set hides how few labels a run really had (1 % of PneumoniaMNIST is still 47 images, where
scratch training is already strong); labels per class say it. Every arm of one (task, size, seed) gets the same
labelled images (:func:`~medssl_lab.evaluation.sampling.labels_per_class_indices`, nested within a seed), the same
budget and the same :class:`~medssl_lab.evaluation.downstream.TrainConfig`; the fine-tuning knobs of
:data:`FEW_LABEL_RECIPE` act only on the arms that fine-tune pretrained weights. Each finished run is written at once
as a JSON file, so an interrupted protocol continues where it stopped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from medssl_lab.data.types import ImageSet
from medssl_lab.evaluation.downstream import ARMS, TrainConfig, TrainResult, train_classifier
from medssl_lab.evaluation.sampling import labels_per_class_indices
from medssl_lab.files import write_json
from medssl_lab.pretrain import Pretrained

#: Labelled images per class; None is every label (``all`` in tables).
LABELS_PER_CLASS: tuple[int | None, ...] = (5, 10, 25, 50, 100, None)
#: Sizes up to this many labels per class vary most from draw to draw: they get :data:`SMALL_SEEDS`.
SMALL_SIZE = 25
SMALL_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
SEEDS: tuple[int, ...] = (0, 1, 2)

#: TrainConfig knobs of the few-label fine-tuning recipe: layer-wise learning-rate decay 0.5 (each backbone stage
#: towards the input at half the lr of the one above it), chosen on validation AUC at 10 and 25 labels per class over
#: 5 seeds among plain fine-tuning, head warm-up, LP-FT, their combinations and early stopping
#: (``benchmarks/few_label_recipes.py``, ``benchmarks/results/few_label_recipes.md``). It changes only the arms that
#: fine-tune pretrained weights (``finetune``, ``hybrid``).
FEW_LABEL_RECIPE: dict[str, Any] = dict(layer_decay=0.5)

#: The budget rule: this many passes over the labelled images, at least MIN_STEPS and at most the profile's steps.
EPOCHS = 30
MIN_STEPS = 150
EVALUATIONS = 15  # validations per run, evenly spaced


def size_name(per_class: int | None) -> str:
    """``"all"`` for every label, else the number: the ``labels_per_class`` column of the tables."""
    return "all" if per_class is None else str(per_class)


def seeds_for(per_class: int | None, small: Sequence[int] = SMALL_SEEDS, larger: Sequence[int] = SEEDS) -> list[int]:
    """The seeds of one size: more where a draw of few images varies most (up to :data:`SMALL_SIZE` per class)."""
    return list(small if per_class is not None and per_class <= SMALL_SIZE else larger)


def few_label_budget(base: TrainConfig, n_labelled: int) -> TrainConfig:
    """``base`` with its budget scaled to ``n_labelled`` images.

    Batches of at most the labelled set; :data:`EPOCHS` passes over it, but at least :data:`MIN_STEPS` steps (a
    network needs steps to fit even 10 images) and at most ``base.steps`` (every label: the profile's budget);
    :data:`EVALUATIONS` validations evenly spaced, so the best step is chosen on the same grain at every size. A head
    warm-up takes at most a fifth of the steps (a smoke run of 12 steps warms up for 2).
    """
    batch = min(base.batch_size, n_labelled)
    steps = min(base.steps, max(MIN_STEPS, math.ceil(EPOCHS * n_labelled / batch)))
    return replace(
        base,
        steps=steps,
        batch_size=batch,
        eval_every=max(1, steps // EVALUATIONS),
        dense_eval=None,
        head_warmup_steps=min(base.head_warmup_steps, steps // 5),
    )


def run_name(task: str, per_class: int | None, arm: str, seed: int) -> str:
    """The JSON file of one run in a protocol's runs folder."""
    return f"{task}_{size_name(per_class)}perclass_{arm}_seed{seed}.json"


def run_label_efficiency(
    task: str,
    splits: tuple[ImageSet, ImageSet, ImageSet],
    pretrained: Pretrained,
    base: TrainConfig,
    runs_dir: str | Path | None = None,
    sizes: Sequence[int | None] = LABELS_PER_CLASS,
    seeds: tuple[Sequence[int], Sequence[int]] = (SMALL_SEEDS, SEEDS),
    arms: Sequence[str] = ARMS,
    pool: ImageSet | None = None,
    progress: bool = False,
    on_result: Callable[[dict[str, Any], TrainResult], None] | None = None,
) -> list[dict[str, Any]]:
    """Every (size, seed, arm) of one task: a record per run (read back from ``runs_dir`` when it is there already).

    Args:
        task: the task's name, written in every record.
        splits: (train, val, test); the labelled images are drawn from train, the best step chosen on val and the
            test split scored once per run.
        pretrained: the encoder of the pretrained arms (and the scratch arm's architecture).
        base: the knobs every arm shares (the few-label recipe included); the budget is scaled per size.
        runs_dir: where each run's JSON is written as it finishes; None keeps them in memory only.
        sizes: labels per class (None: every label).
        seeds: (seeds of sizes up to :data:`SMALL_SIZE`, seeds of the larger ones).
        arms: the arms to run; ``hybrid`` needs ``pool``.
        pool: unlabelled images of the hybrid arm.
        progress: print a line per finished run.
        on_result: called with each trained run's record and result (its model, losses), e.g. to keep what a
            notebook shows; not called for runs read back from ``runs_dir``.
    """
    train, val, test = splits
    if runs_dir is not None:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
    records = []
    for per_class in sizes:
        for seed in seeds_for(per_class, *seeds):
            labelled = train.subset(labels_per_class_indices(train.labels, per_class, seed=seed))
            config = few_label_budget(base, len(labelled))
            for arm in arms:
                path = Path(runs_dir) / run_name(task, per_class, arm, seed) if runs_dir is not None else None
                if path is not None and path.exists():
                    records.append(json.loads(path.read_text()))
                    continue
                result = train_classifier(
                    arm, labelled, val, test, pretrained=pretrained, pool=pool, config=config, seed=seed
                )
                record = result.record(task=task, labels_per_class=size_name(per_class))
                if path is not None:
                    write_json(path, record)
                if on_result is not None:
                    on_result(record, result)
                if progress:
                    print(
                        f"{task:<15} {size_name(per_class):>4}/class {arm:<9} seed {seed}: test AUC "
                        f"{record['test_auc']:.3f}, best step {record['best_step']} ({record['seconds']:.0f} s)",
                        flush=True,
                    )
                records.append(record)
    return records


#: The columns of ``label_efficiency.csv``, one row per run.
COLUMNS = (
    "task",
    "labels_per_class",
    "arm",
    "seed",
    "n_train",
    "steps",
    "test_auc",
    "test_acc",
    "best_val_auc",
    "best_step",
    "seconds",
)


def _sort_key(record: dict[str, Any]) -> tuple:
    size = record["labels_per_class"]
    return (record["task"], math.inf if size == "all" else int(size), ARMS.index(record["arm"]), record["seed"])


def sorted_records(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records by task, size (``all`` last), arm in table order, seed."""
    return sorted(records, key=_sort_key)


def gains(
    records: Sequence[dict[str, Any]], arm: str = "finetune", baseline: str = "scratch", metric: str = "test_auc"
) -> list[dict[str, Any]]:
    """``arm`` minus ``baseline`` ``metric`` per (task, size): the mean over seeds of the paired differences (the same
    labelled images), their std, the worst seed, and how many seeds were paired."""
    rows = []
    keys = dict.fromkeys((r["task"], r["labels_per_class"]) for r in sorted_records(records))
    for task, size in keys:
        by_seed = {
            name: {
                r["seed"]: r[metric]
                for r in records
                if (r["task"], r["labels_per_class"], r["arm"]) == (task, size, name)
            }
            for name in (arm, baseline)
        }
        paired = [by_seed[arm][s] - by_seed[baseline][s] for s in by_seed[arm] if s in by_seed[baseline]]
        if paired:
            rows.append(
                dict(
                    task=task,
                    labels_per_class=size,
                    gain=float(np.mean(paired)),
                    std=float(np.std(paired)),
                    worst=float(np.min(paired)),
                    seeds=len(paired),
                )
            )
    return rows
