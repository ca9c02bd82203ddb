"""Gain against pretraining compute: the representation benchmark and the downstream gain at growing budgets.

Usage:
    python benchmarks/compute_curve.py --variants bal_e1 bal_e2 balanced bal_e8 bal_e16 \\
        --pool-variants bal_pool25 bal_pool50 balanced --data-dir DIR

Reads each budget's row of ``results/recipe_search.csv`` (benchmark figures, CPU-minutes)
and, where present, of ``results/downstream_gain.csv`` (fine-tuning minus scratch, test
AUC); scores random init and raw pixels beside them; writes ``results/compute_curve.csv``
and ``results/compute_curve.png``, and copies the CSV to ``medssl_lab/results/`` (package data: notebook 01 plots
it from an installed package too). Run ``recipe_search.py`` and ``downstream_gain.py`` for
the variants first.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import torch

from medssl_lab.data.pool import build_pool
from medssl_lab.evaluation.representation import load_benchmark_data, score_baselines
from medssl_lab.pretrain import PretrainConfig
from medssl_lab.viz import plot_compute_curve

RESULTS = Path(__file__).parent / "results"
PACKAGED = Path(__file__).parents[1] / "medssl_lab" / "results" / "compute_curve.csv"
FIGURES = ("pneumonia_10shot_auc", "mednist_fewshot_acc", "cluster_class_nmi", "score")
EPOCHS, POOL = "more epochs, whole pool", "more images, 4 epochs"


def read_rows(name: str) -> list[dict]:
    path = RESULTS / name
    return list(csv.DictReader(path.open())) if path.exists() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--variants",
        nargs="+",
        required=True,
        help="epoch budgets of one recipe on the whole pool, in the search table",
    )
    parser.add_argument(
        "--pool-variants",
        nargs="*",
        default=[],
        help="the same recipe on a share of the pool (include the whole-pool run for the line's end)",
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    search = {r["variant"]: r for r in read_rows("recipe_search.csv")}
    missing = [v for v in args.variants + args.pool_variants if v not in search]
    if missing:
        raise SystemExit(
            f"not in recipe_search.csv yet: {missing}; run benchmarks/recipe_search.py --only {' '.join(missing)}"
        )
    config = PretrainConfig.for_profile("cpu", **json.loads(search[args.variants[0]]["overrides"]))
    pool_size = len(build_pool(size=config.image_size, data_dir=args.data_dir))
    points, gains = [], []
    for series, variants in ((EPOCHS, args.variants), (POOL, args.pool_variants)):
        for variant in variants:
            row = search[variant]
            images = json.loads(row["overrides"]).get("pool_limit") or pool_size
            label = f"{row['epochs']} ep" if series == EPOCHS else f"{images / pool_size:.0%} pool"
            point = {
                "label": label,
                "series": series,
                "variant": variant,
                "cpu_minutes": float(row["cpu_minutes"]),
                **{k: float(row[k]) for k in FIGURES},
            }
            for gain in read_rows("downstream_gain.csv"):
                if gain["variant"] == variant:
                    gains.append(
                        {
                            "cpu_minutes": point["cpu_minutes"],
                            "fraction": float(gain["fraction"]),
                            "series": series,
                            "gain_test_auc": float(gain["gain_test_auc"]),
                            "gain_test_auc_std": float(gain["gain_test_auc_std"]),
                        }
                    )
                    point[f"gain_{gain['fraction']}"] = float(gain["gain_test_auc"])
                    point[f"gain_{gain['fraction']}_std"] = float(gain["gain_test_auc_std"])
            points.append(point)
    scores = score_baselines(config, load_benchmark_data(args.data_dir))
    baselines = {name.replace("_", " "): values for name, values in scores.items()}
    columns = list(dict.fromkeys(k for p in points for k in p))
    with (RESULTS / "compute_curve.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(points)
        for name, values in baselines.items():
            writer.writerow({"label": name, **{k: round(values[k], 4) for k in FIGURES}})
    shutil.copyfile(RESULTS / "compute_curve.csv", PACKAGED)
    fig = plot_compute_curve(points, baselines, FIGURES, gains)
    fig.savefig(RESULTS / "compute_curve.png", dpi=130)
    for p in points:
        print(p)
    for name, values in baselines.items():
        print(name, {k: round(values[k], 4) for k in FIGURES})


if __name__ == "__main__":
    main()
