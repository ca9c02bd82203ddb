"""Transfer to what the pool never held: pretrain without one modality, fine-tune with few labels on it.

Usage:
    python benchmarks/leave_one_out.py --data-dir DIR --runs RUNS --with-pool CHECKPOINT
        [--leave-out X-ray] [--task pneumoniamnist] [--sizes 5 10 25] [--seeds 0 1 2 3 4] [--tables-only]

1. Pretrain with the cpu recipe on the default pool (MedNIST and PneumoniaMNIST's train split) without the
   ``--leave-out`` modality, for the same number of steps as the encoder ``--with-pool`` (the same recipe on the whole
   pool, e.g. a reproduction's ``pretrain/checkpoint.pt``), into ``RUNS/pretrain_without_<modality>/`` (resumable).
2. On the task (default PneumoniaMNIST: chest X-rays, so leaving out X-ray leaves the pool without a single one),
   run the labels-per-class protocol (``run_label_efficiency``): scratch once, and the linear probe and fine-tuning
   from each encoder, fine-tuning both with the few-label recipe and plain. Every run is a JSON file in ``RUNS``
   (an interrupted run continues).
3. Write ``benchmarks/results/leave_one_out.csv`` (one row per run; ``encoder`` says which) and ``.md``.
Run with one torch thread per process (``OMP_NUM_THREADS=1``) on a shared machine.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from medssl_lab.data.pool import DEFAULT_SOURCES, build_pool, leave_out
from medssl_lab.evaluation.downstream import TrainConfig
from medssl_lab.evaluation.label_efficiency import COLUMNS, FEW_LABEL_RECIPE, run_label_efficiency, sorted_records
from medssl_lab.evaluation.reports import label_efficiency_markdown
from medssl_lab.evaluation.sampling import limit_split
from medssl_lab.pretrain import PretrainConfig, load_checkpoint, load_pretrained, pretrain
from medssl_lab.profiles import VAL_LIMIT
from medssl_lab.reproduce import downstream_data

RESULTS = Path(__file__).parent / "results"


def pretrain_without(args: argparse.Namespace) -> Path:
    """The encoder pretrained without ``args.leave_out``, for as many steps as the one with it."""
    with_pool = load_checkpoint(args.with_pool)
    config = PretrainConfig(**with_pool["config"])
    pool = leave_out(build_pool(DEFAULT_SOURCES, size=config.image_size, data_dir=args.data_dir), args.leave_out)
    steps = with_pool["step"]
    epochs = -(-steps // (len(pool) // config.batch_size))  # enough epochs for the same steps; max_steps stops there
    out = Path(args.runs) / f"pretrain_without_{args.leave_out}"
    pretrain(replace(config, epochs=epochs, max_steps=steps, device="cpu"), pool, out, progress=False)
    return out


def run_arms(args: argparse.Namespace, without: Path) -> list[dict[str, Any]]:
    """Scratch once; linear and fine-tuning from the encoders with and without the modality, and plain fine-tuning
    from the one without (what the recipe adds to what travels)."""
    train, val, test = downstream_data(args.task, args.data_dir)
    splits = (train, limit_split(val, VAL_LIMIT["cpu"]), test)
    base = replace(TrainConfig.for_profile("cpu", device="cpu"), **FEW_LABEL_RECIPE)
    plain = replace(base, head_warmup_steps=0, layer_decay=1.0)
    common = dict(sizes=args.sizes, seeds=(args.seeds, args.seeds), progress=True)
    encoders = {"with": load_pretrained(args.with_pool, "cpu"), "without": load_pretrained(without, "cpu")}
    runs = Path(args.runs)
    records = [
        dict(r, encoder="none", recipe="-")
        for r in run_label_efficiency(
            args.task, splits, encoders["with"], base, runs / "scratch", arms=("scratch",), **common
        )
    ]
    variants = [("with", "recipe", base, ("linear", "finetune")), ("without", "recipe", base, ("linear", "finetune"))]
    variants += [("without", "plain", plain, ("finetune",))]  # does the recipe help the features travel?
    for name, recipe, config, arms in variants:
        folder = runs / f"{name}_{args.leave_out}_{recipe}"
        done = run_label_efficiency(args.task, splits, encoders[name], config, folder, arms=arms, **common)
        records += [dict(r, encoder=f"{name} {args.leave_out}", recipe=recipe) for r in done]
    return records


def write_tables(records: list[dict[str, Any]], args: argparse.Namespace) -> None:
    columns = ("encoder", "recipe", *COLUMNS)
    with open(RESULTS / "leave_one_out.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(records, key=lambda r: (r["encoder"], r["recipe"])))
    scratch = [r for r in records if r["arm"] == "scratch"]
    sections = []
    for encoder in sorted({r["encoder"] for r in records} - {"none"}):
        for recipe in sorted({r["recipe"] for r in records if r["encoder"] == encoder}, reverse=True):
            mine = [r for r in records if (r["encoder"], r["recipe"]) == (encoder, recipe)]
            named = [dict(r, task=f"{args.task}, pool {encoder}, {recipe}") for r in scratch + mine]
            sections.append(label_efficiency_markdown(sorted_records(named)))
    command = (
        f"python benchmarks/leave_one_out.py --data-dir DATA --runs RUNS --with-pool CHECKPOINT "
        f"--leave-out {args.leave_out} --task {args.task} --sizes {' '.join(map(str, args.sizes))} "
        f"--seeds {' '.join(map(str, args.seeds))}"
    )
    text = [
        f"# Leave one modality out: {args.leave_out}",
        "",
        f"`{command}` (OMP_NUM_THREADS=1). The encoder *with* is the cpu recipe pretrained on the whole pool; "
        f"*without* the same recipe, the same number of steps, on the pool without {args.leave_out}. "
        f"Fine-tuning with the few-label recipe ({FEW_LABEL_RECIPE}) and plain; scratch is the same runs in "
        "every table. Test AUC, mean ± std over seeds; the gains are paired by seed.",
        *sections,
    ]
    (RESULTS / "leave_one_out.md").write_text("\n".join(text) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--runs", required=True, help="folder of the pretraining and the runs (resumable)")
    parser.add_argument("--with-pool", required=True, help="checkpoint pretrained on the whole pool")
    parser.add_argument("--leave-out", default="X-ray")
    parser.add_argument("--task", default="pneumoniamnist")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 25])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--pretrain-only", action="store_true", help="stop after the pretraining")
    args = parser.parse_args()
    torch.set_num_threads(1)
    without = pretrain_without(args)
    if not args.pretrain_only:
        records = run_arms(args, without)
        write_tables(records, args)
        print((RESULTS / "leave_one_out.md").read_text())


if __name__ == "__main__":
    main()
