"""Pretraining recipe search, chosen on the representation benchmark (validation splits only).

Usage:
    python benchmarks/recipe_search.py --data-dir DIR --runs RUNS [--only NAME ...] [--list]

Each variant is the cpu profile as it stood before this search (``balance=None``, the pool
sampled as it is) with a few fields changed. It is pretrained into
``RUNS/<name>/`` (resumable: run the command again and an interrupted run continues),
then scored with :func:`medssl_lab.evaluation.representation.score_checkpoint`. One row per
variant is appended to ``benchmarks/results/recipe_search.csv`` with its settings, its
compute (wall minutes x torch threads) and its benchmark figures; variants already in the
table are skipped, so a search spread over several sessions adds up. Run at most two at
once on two cores, each with one thread (``--threads 1``, the default).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

import torch

from medssl_lab.data.pool import build_pool
from medssl_lab.pretrain import PretrainConfig, load_checkpoint, pretrain

TABLE = Path(__file__).parent / "results" / "recipe_search.csv"

SEARCH_START = dict(balance=None)  # the cpu profile's pool sampling before the search
WIDE = dict(backbone="resnet_small_wide")
STRONG_CROPS = dict(augment={"global_scale": (0.14, 1.0), "local_scale": (0.05, 0.14)})
BALANCED = dict(balance="source")
WEAK_INTENSITY = dict(
    augment={
        "intensity_p": 0.4,
        "intensity_scale": (0.9, 1.1),
        "intensity_shift": (-0.05, 0.05),
        "gamma": (0.85, 1.2),
        "window_p": 0.0,
    }
)

#: name -> PretrainConfig overrides of the cpu profile. Names say what changed.
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "balanced": BALANCED,
    # The balanced pool won the first round; the next variants change one thing on top of it.
    "bal_simclr": dict(BALANCED, method="simclr", n_local=0),
    "bal_wide_e1": dict(BALANCED, **WIDE, epochs=1),
    "bal_wide_e2": dict(BALANCED, **WIDE, epochs=2),
    "bal_strong_crops": dict(BALANCED, **STRONG_CROPS),
    "bal_weak_intensity": dict(BALANCED, **WEAK_INTENSITY),
    # Budgets of the balanced recipe, for the compute curve.
    "bal_e1": dict(BALANCED, epochs=1),
    "bal_e2": dict(BALANCED, epochs=2),
    "bal_pool25": dict(BALANCED, pool_limit=15916),  # a quarter of the 63,662-image pool, 4 epochs
    "bal_pool50": dict(BALANCED, pool_limit=31831),
    "bal_e8": dict(BALANCED, epochs=8),
    "bal_e16": dict(BALANCED, epochs=16),
    "bal_protos128": dict(BALANCED, n_prototypes=128),
    "bal_size64_e1": dict(BALANCED, image_size=64, global_size=64, local_size=32, epochs=1),
    # SwAV's queue: 4 batches of stored embeddings join each Sinkhorn batch from the second epoch on.
    "bal_queue": dict(BALANCED, queue_length=1024, queue_start_epoch=1),
    # The chosen recipe again with another seed: how far apart two runs of one recipe land.
    "balanced_seed1": dict(BALANCED, seed=1),
}


def pretrain_variant(name: str, overrides: dict[str, Any], runs: Path, data_dir: str | None) -> Path:
    """Pretrain (or finish pretraining) one variant; returns its run folder."""
    config = PretrainConfig.for_profile("cpu", **{"seed": 0, **SEARCH_START, **overrides})
    folder = runs / name
    checkpoint = folder / "checkpoint.pt"
    if checkpoint.exists() and load_checkpoint(checkpoint).get("stopped") == "finished":
        return folder
    pool = build_pool(size=config.image_size, data_dir=data_dir)
    pretrain(config, pool, folder, resume=True, progress=False)
    return folder


def table_row(
    name: str, overrides: dict[str, Any], folder: Path, scores: dict[str, float], threads: int
) -> dict[str, Any]:
    state = load_checkpoint(folder / "checkpoint.pt")
    last = state["history"][-1] if state["history"] else {}
    config = PretrainConfig(**state["config"])
    return {
        "variant": name,
        "overrides": json.dumps(overrides, sort_keys=True),
        "epochs": config.epochs,
        "steps": state["step"],
        "cpu_minutes": round(state.get("train_seconds", float("nan")) * threads / 60, 2),
        "loss": round(last.get("loss_avg", float("nan")), 3),
        "ln_k": round(math.log(config.n_prototypes), 3),
        "prototype_usage": round(last.get("prototype_usage", float("nan")), 3),
        **{k: round(v, 4) for k, v in scores.items()},
    }


def append_row(row: dict[str, Any], path: Path = TABLE) -> None:
    rows = list(csv.DictReader(path.open())) if path.exists() else []
    rows.append({k: str(v) for k, v in row.items()})
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def done_variants(path: Path = TABLE) -> set[str]:
    return {r["variant"] for r in csv.DictReader(path.open())} if path.exists() else set()


def markdown_table(path: Path = TABLE) -> str:
    """The search table as Markdown: the main validation figures per variant, best score in bold."""
    rows = list(csv.DictReader(path.open()))
    best = max(float(r["score"]) for r in rows)
    columns = (
        "cpu_minutes",
        "pneumonia_knn_auc",
        "pneumonia_linear_auc",
        "pneumonia_10shot_auc",
        "mednist_1shot_acc",
        "mednist_fewshot_acc",
        "cluster_class_nmi",
        "score",
    )
    lines = [
        "| variant | changed | " + " | ".join(c.replace("_", " ") for c in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for r in rows:
        cells = [f"**{r[c]}**" if c == "score" and float(r[c]) == best else r[c] for c in columns]
        lines.append(f"| {r['variant']} | `{r['overrides']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--runs", default="runs/recipe_search", help="folder for the variants' checkpoints")
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (compute is counted as wall x threads)")
    parser.add_argument("--pretrain-only", action="store_true", help="do not score or record")
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    parser.add_argument("--table", action="store_true", help="print the results table as Markdown and exit")
    args = parser.parse_args()
    if args.list:
        for name, overrides in VARIANTS.items():
            print(f"{name:<14} {overrides}")
        return
    if args.table:
        print(markdown_table())
        return
    torch.set_num_threads(args.threads)
    names = args.only or list(VARIANTS)
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; see --list")
    for name in names:
        if name in done_variants():
            print(f"{name}: already in {TABLE.name}, skipped")
            continue
        folder = pretrain_variant(name, VARIANTS[name], Path(args.runs), args.data_dir)
        if args.pretrain_only:
            continue
        from medssl_lab.evaluation.representation import load_benchmark_data, score_checkpoint

        scores = score_checkpoint(folder, load_benchmark_data(args.data_dir))
        row = table_row(name, VARIANTS[name], folder, scores, args.threads)
        append_row(row)
        print(json.dumps(row))


if __name__ == "__main__":
    main()
