"""Downstream gain of pretraining checkpoints over scratch on PneumoniaMNIST's low label fractions.

Usage:
    python benchmarks/downstream_gain.py --runs runs/recipe_search --variants base balanced ... --data-dir DIR

For each variant (a run folder of ``benchmarks/recipe_search.py``), fine-tunes its encoder
and trains the same architecture from scratch with the reproduction's loop (300 steps of
64 images, validation every 5 steps up to step 100), for each label fraction and seed. The
best step is chosen on validation AUC and the test split is scored once. Every run is
cached as JSON under ``RUNS/downstream/`` (an interrupted call continues); scratch runs are
shared by variants of the same architecture. One row per variant and fraction goes to
``benchmarks/results/downstream_gain.csv`` (replacing that variant's earlier rows).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch

from medssl_lab.evaluation.downstream import TrainConfig, train_classifier
from medssl_lab.evaluation.sampling import label_fraction_indices
from medssl_lab.pretrain import load_pretrained
from medssl_lab.reproduce import downstream_data

TABLE = Path(__file__).parent / "results" / "downstream_gain.csv"


def run_cached(
    path: Path, arm: str, fraction: float, seed: int, checkpoint: Path, splits: tuple, config: TrainConfig
) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    train, val, test = splits
    labelled = train.subset(label_fraction_indices(train.labels, fraction, seed=seed))
    result = train_classifier(arm, labelled, val, test, pretrained=checkpoint, config=config, seed=seed)
    record = {
        "arm": arm,
        "fraction": fraction,
        "seed": seed,
        "val_auc": result.best_val_auc,
        "test_auc": result.test_auc,
        "test_acc": result.test_acc,
        "best_step": result.best_step,
        "curve": result.curve,
        "seconds": result.seconds,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return record


def stats(records: list[dict], key: str) -> tuple[float, float]:
    values = [r[key] for r in records]
    return float(np.mean(values)), float(np.std(values))


def write_rows(variant: str, rows: list[dict], path: Path = TABLE) -> None:
    kept = [r for r in csv.DictReader(path.open())] if path.exists() else []
    kept = [r for r in kept if r["variant"] != variant] + [{k: str(v) for k, v in r.items()} for r in rows]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs/recipe_search")
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = downstream_data("pneumoniamnist", args.data_dir)
    cache = Path(args.runs) / "downstream"
    for variant in args.variants:
        checkpoint = Path(args.runs) / variant / "checkpoint.pt"
        pre = load_pretrained(checkpoint).config
        config = TrainConfig(dense_eval=(5, 100))
        arch = f"{pre.backbone}_{pre.image_size}px"
        rows = []
        for fraction in args.fractions:
            scratch, tuned = [], []
            for seed in args.seeds:
                scratch.append(
                    run_cached(
                        cache / f"scratch_{arch}_{fraction:g}_seed{seed}.json",
                        "scratch",
                        fraction,
                        seed,
                        checkpoint,
                        splits,
                        config,
                    )
                )
                tuned.append(
                    run_cached(
                        cache / f"finetune_{variant}_{fraction:g}_seed{seed}.json",
                        "finetune",
                        fraction,
                        seed,
                        checkpoint,
                        splits,
                        config,
                    )
                )
            row = {"variant": variant, "fraction": fraction, "seeds": len(args.seeds)}
            for arm, records in (("scratch", scratch), ("finetune", tuned)):
                for key in ("val_auc", "test_auc", "test_acc"):
                    row[f"{arm}_{key}"], row[f"{arm}_{key}_std"] = (round(v, 4) for v in stats(records, key))
            gains = [t["test_auc"] - s["test_auc"] for t, s in zip(tuned, scratch)]
            row["gain_test_auc"], row["gain_test_auc_std"] = (
                round(float(np.mean(gains)), 4),
                round(float(np.std(gains)), 4),
            )
            val_gains = [t["val_auc"] - s["val_auc"] for t, s in zip(tuned, scratch)]
            row["gain_val_auc"] = round(float(np.mean(val_gains)), 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
        write_rows(variant, rows)


if __name__ == "__main__":
    main()
