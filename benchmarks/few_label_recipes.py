"""Few-label fine-tuning recipes, chosen on validation AUC only.

Usage:
    python benchmarks/few_label_recipes.py --data-dir DIR --runs RUNS.jsonl [--sizes 10 25] [--seeds 0 1 2]
        [--only NAME ...] [--encoder CHECKPOINT]

Every recipe fine-tunes the same encoder (default: the shipped cpu encoder) on the same labelled images per
(size, seed) of PneumoniaMNIST (``labels_per_class_indices``), with the labels-per-class budget
(``few_label_budget`` of the cpu profile) and validation as in the protocol; ``scratch`` and ``linear`` are there
for reference. Each finished run is appended to ``RUNS`` at once, so an interrupted search continues where it
stopped. The tables (``benchmarks/results/few_label_recipes.csv`` and ``.md``) give validation and test AUC per
recipe and size (mean ± std over seeds); the recipe is chosen on the mean validation AUC over every size and seed,
the test column is read only to report it. Run at most two at once on two cores, each with one thread.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medssl_lab.evaluation.downstream import TrainConfig, train_classifier
from medssl_lab.evaluation.label_efficiency import few_label_budget
from medssl_lab.evaluation.sampling import labels_per_class_indices, limit_split
from medssl_lab.pretrain import load_pretrained
from medssl_lab.pretrain.checkpoint import shipped_encoder
from medssl_lab.profiles import VAL_LIMIT
from medssl_lab.reproduce import downstream_data

RESULTS = Path(__file__).parent / "results"

#: name -> (arm, TrainConfig knobs on top of the cpu profile's). Names say what changed.
RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "scratch": ("scratch", {}),
    "linear": ("linear", {}),
    "plain": ("finetune", {}),  # the fine-tuning of the 1 % / 10 % / 100 % protocol
    "warmup20": ("finetune", dict(head_warmup_steps=20)),  # the new head first, 20 steps at the linear arm's lr
    "lpft50_lr0.1": ("finetune", dict(head_warmup_steps=50, pretrained_lr_scale=0.1)),  # LP-FT, Kumar et al. 2022
    "llrd0.5": ("finetune", dict(layer_decay=0.5)),  # each stage towards the input at half the lr
    "lpft50_llrd0.5": ("finetune", dict(head_warmup_steps=50, layer_decay=0.5)),
    "warmup20_llrd0.5": ("finetune", dict(head_warmup_steps=20, layer_decay=0.5)),
    "warmup20_patience3": ("finetune", dict(head_warmup_steps=20, patience=3)),  # early stopping on the grid
}


def run_search(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (size, seed, recipe) not yet in ``args.runs``; returns all records of the file."""
    torch.set_num_threads(args.threads)
    runs = Path(args.runs)
    done = [json.loads(line) for line in runs.read_text().splitlines()] if runs.exists() else []
    finished = {(r["k"], r["recipe"], r["seed"]) for r in done}
    encoder = load_pretrained(args.encoder or shipped_encoder("cpu"))
    train, val, test = downstream_data(args.task, args.data_dir)
    val = limit_split(val, VAL_LIMIT["cpu"])
    for k in args.sizes:
        for seed in args.seeds:
            labelled = train.subset(labels_per_class_indices(train.labels, k, seed=seed))
            budget = few_label_budget(TrainConfig.for_profile("cpu"), len(labelled))
            for name in args.only or RECIPES:
                if (k, name, seed) in finished:
                    continue
                arm, knobs = RECIPES[name]
                result = train_classifier(
                    arm, labelled, val, test, pretrained=encoder, config=replace(budget, **knobs), seed=seed
                )
                record = dict(
                    task=args.task,
                    k=k,
                    recipe=name,
                    arm=arm,
                    seed=seed,
                    test=result.test_auc,
                    val=result.best_val_auc,
                    step=result.best_step,
                    s=result.seconds,
                )
                print(json.dumps(record), flush=True)
                with runs.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
                done.append(record)
    return done


def summarise(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Rows of mean ± std per (recipe, size), and the chosen fine-tuning recipe: best mean validation AUC."""
    rows = []
    for name in dict.fromkeys(r["recipe"] for r in records):
        for k in sorted({r["k"] for r in records if r["recipe"] == name}):
            runs = [r for r in records if (r["recipe"], r["k"]) == (name, k)]
            rows.append(
                dict(
                    recipe=name,
                    labels_per_class=k,
                    seeds=len(runs),
                    val_auc=float(np.mean([r["val"] for r in runs])),
                    val_std=float(np.std([r["val"] for r in runs])),
                    test_auc=float(np.mean([r["test"] for r in runs])),
                    test_std=float(np.std([r["test"] for r in runs])),
                    best_step=float(np.median([r["step"] for r in runs])),
                )
            )
    tuned = {r["recipe"] for r in records if r["arm"] == "finetune"}
    chosen = max(tuned, key=lambda n: np.mean([r["val"] for r in records if r["recipe"] == n]))
    return rows, chosen


def write_tables(rows: list[dict[str, Any]], chosen: str, command: str) -> None:
    with open(RESULTS / "few_label_recipes.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "# Few-label fine-tuning recipes (PneumoniaMNIST, shipped cpu encoder)",
        "",
        f"`{command}`; validation AUC chooses, test AUC is reported only. Mean ± std over seeds.",
        "",
        "| recipe | knobs | labels per class | seeds | val AUC | test AUC | median best step |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        knobs = ", ".join(f"{k}={v}" for k, v in RECIPES[r["recipe"]][1].items()) or "-"
        lines.append(
            f"| {r['recipe']} | {knobs} | {r['labels_per_class']} | {r['seeds']} | {r['val_auc']:.4f} ± "
            f"{r['val_std']:.4f} | {r['test_auc']:.3f} ± {r['test_std']:.3f} | {r['best_step']:.0f} |"
        )
    lines += ["", f"Chosen on validation (mean over sizes and seeds): **{chosen}**."]
    (RESULTS / "few_label_recipes.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--runs", required=True, help="JSON lines of finished runs (appended; resumable)")
    parser.add_argument("--task", default="pneumoniamnist")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 25])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", choices=list(RECIPES))
    parser.add_argument("--encoder", help="a checkpoint (default: the shipped cpu encoder)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tables-only", action="store_true", help="write the tables from RUNS, train nothing")
    args = parser.parse_args()
    records = [json.loads(line) for line in Path(args.runs).read_text().splitlines()] if args.tables_only else []
    records = records or run_search(args)
    rows, chosen = summarise(records)
    write_tables(rows, chosen, "python benchmarks/few_label_recipes.py --data-dir DATA --runs RUNS.jsonl")
    print((RESULTS / "few_label_recipes.md").read_text())


if __name__ == "__main__":
    main()
