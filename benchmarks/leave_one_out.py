"""Transfer to what the pool never held: pretrain without some images, fine-tune with few labels on them.

Usage:
    python benchmarks/leave_one_out.py --data-dir DIR --runs RUNS --with-pool CHECKPOINT
        [--leave-out X-ray ...] [--task pneumoniamnist] [--sizes 5 10 25] [--seeds 0 1 2 3 4] [--pretrain-only]

1. Pretrain with the cpu recipe on the default pool (MedNIST and PneumoniaMNIST's train split) without the
   ``--leave-out`` images (modalities, sources or class tags, as ``leave_out`` takes them: ``X-ray``, or
   ``mednist/CXR pneumoniamnist`` for the chest X-rays alone, keeping the hand X-rays), for the same number of
   steps as the encoder ``--with-pool`` (the same recipe on the whole pool, e.g. the shipped encoder or a
   reproduction's ``pretrain/checkpoint.pt``), into
   ``RUNS/pretrain_without_<names>/`` (resumable); and once more with the stronger intensity augmentation of
   :data:`TRAVEL_AUGMENT` (grey levels, contrast and windows the remaining modalities do not show), into
   ``RUNS/pretrain_without_<names>_intensity/``.
2. On the task (default PneumoniaMNIST: chest X-rays, so leaving out X-ray leaves the pool without a single one), run
   the labels-per-class protocol (``run_label_efficiency``): scratch once; the linear probe and fine-tuning from each
   encoder with the few-label recipe; plain fine-tuning from the encoder without (what the recipe adds to what
   travels), and the hybrid arm with the task's training images, labels unused, as its unlabelled side (what the
   left-out images teach when they come unlabelled with the task). Every run is a JSON file in ``RUNS`` (an
   interrupted run continues); the runs only this experiment has come first, the ones it shares with the
   labels-per-class protocol (scratch, the whole pool) last.
3. Write ``benchmarks/results/leave_one_out.csv`` (one row per run; ``encoder`` says which) and ``.md``; with
   ``--variants`` the rows of the other variants and of other ``--leave-out`` runs are kept.
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


#: Augmentation overrides of the variant meant to travel: every view's intensities changed, over wider ranges of
#: scale, shift and gamma, and intensity windows twice as often, so the encoder meets grey-level statistics beyond
#: those of the modalities it keeps (CT and MR slices have dark backgrounds; chest X-rays are mid-grey with bright
#: bone).
TRAVEL_AUGMENT: dict[str, Any] = dict(
    intensity_p=1.0, intensity_scale=(0.5, 1.5), intensity_shift=(-0.3, 0.3), gamma=(0.4, 2.5), window_p=0.6
)


#: the encoder pretrained on every image, the reference of every table
WHOLE_POOL = "whole pool"

#: the (encoder, recipe) pairs, in the order they run
VARIANTS = ("without", "without-plain", "without-hybrid", "without-intensity", "scratch", "with")

#: the hybrid arm with the task's own training images, labels unused, as its unlabelled side: a researcher with a
#: new modality has few labels but many unlabelled images of it, and the pretraining objective can learn from them
#: while the classifier learns from the few labels
HYBRID_ON_TASK = "hybrid on task images"


def pretrain_without(args: argparse.Namespace, augment: dict[str, Any] | None = None) -> Path:
    """The encoder pretrained without ``args.leave_out``, for as many steps as the one with it (and ``augment``
    on top of its augmentation, if given)."""
    with_pool = load_checkpoint(args.with_pool)
    config = PretrainConfig(**with_pool["config"])
    pool = leave_out(build_pool(DEFAULT_SOURCES, size=config.image_size, data_dir=args.data_dir), *args.leave_out)
    steps = with_pool["step"]
    epochs = -(-steps // (len(pool) // config.batch_size))  # enough epochs for the same steps; max_steps stops there
    names = "+".join(args.leave_out).replace("/", "-")
    out = Path(args.runs) / f"pretrain_without_{names}{'_intensity' if augment else ''}"
    augment = {**config.augment, **(augment or {})}
    config = replace(config, epochs=epochs, max_steps=steps, device="cpu", augment=augment)
    pretrain(config, pool, out, progress=False)
    return out


def run_arms(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Linear and fine-tuning (recipe) from the encoders without the images, plain fine-tuning and the hybrid arm on
    the task's unlabelled images from the first of them; then what the labels-per-class protocol shares: scratch, and
    the encoder of the whole pool."""
    train, val, test = downstream_data(args.task, args.data_dir)
    splits = (train, limit_split(val, VAL_LIMIT["cpu"]), test)
    base = replace(TrainConfig.for_profile("cpu", device="cpu"), **FEW_LABEL_RECIPE)
    plain = replace(base, head_warmup_steps=0, layer_decay=1.0)
    common = dict(sizes=args.sizes, seeds=(args.seeds, args.seeds), progress=True)
    out, both = " ".join(args.leave_out), ("linear", "finetune")
    variants = [
        (f"without {out}", "recipe", lambda: pretrain_without(args), base, both),
        (f"without {out}", "plain", lambda: pretrain_without(args), plain, ("finetune",)),
        (f"without {out}", HYBRID_ON_TASK, lambda: pretrain_without(args), base, ("hybrid",)),
        (f"without {out}, intensity", "recipe", lambda: pretrain_without(args, TRAVEL_AUGMENT), base, both),
        ("none", "-", lambda: args.with_pool, base, ("scratch",)),
        (WHOLE_POOL, "recipe", lambda: args.with_pool, base, both),
    ]
    records = []
    for key, (encoder, recipe, checkpoint, config, arms) in zip(VARIANTS, variants):
        if args.variants and key not in args.variants:
            continue
        name = "scratch" if encoder == "none" else f"{encoder} {recipe}".replace(",", "")
        folder = Path(args.runs) / name.replace(" ", "_").replace("/", "-")
        pretrained = load_pretrained(checkpoint(), "cpu")
        done = run_label_efficiency(args.task, splits, pretrained, config, folder, arms=arms, pool=train, **common)
        records += [dict(r, encoder=encoder, recipe=recipe) for r in done]
    return records


def committed_rows(skip: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The rows of ``leave_one_out.csv`` whose (encoder, recipe) this run does not repeat, typed as runs are."""
    path = RESULTS / "leave_one_out.csv"
    rows = list(csv.DictReader(path.open())) if path.exists() else []
    typed = [
        dict(
            r,
            **{k: int(r[k]) for k in ("seed", "n_train", "steps", "best_step")},
            **{k: float(r[k]) for k in ("test_auc", "test_acc", "best_val_auc", "seconds")},
        )
        for r in rows
    ]
    return [r for r in typed if (r["encoder"], r["recipe"]) not in skip]


def write_tables(records: list[dict[str, Any]], args: argparse.Namespace) -> None:
    columns = ("encoder", "recipe", *COLUMNS)
    with open(RESULTS / "leave_one_out.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(records, key=lambda r: (r["encoder"], r["recipe"])))
    scratch = [r for r in records if r["arm"] == "scratch"]
    named = []
    for encoder, recipe in sorted({(r["encoder"], r["recipe"]) for r in records} - {("none", "-")}):
        mine = [r for r in records if (r["encoder"], r["recipe"]) == (encoder, recipe)]
        named += [dict(r, task=f"{args.task}, {encoder}, {recipe}") for r in scratch + mine]
    encoders = {r["encoder"] for r in records} - {"none", WHOLE_POOL}
    left_out = sorted({e.removeprefix("without ").removesuffix(", intensity") for e in encoders})
    commands = [
        f"- `python benchmarks/leave_one_out.py --data-dir DATA --runs RUNS --with-pool CHECKPOINT --leave-out {names} "
        f"--task {args.task} --sizes {' '.join(map(str, args.sizes))} --seeds {' '.join(map(str, args.seeds))}`"
        for names in left_out
    ]
    text = [
        "# Leave images out of the pool",
        "",
        *commands,
        "",
        f"OMP_NUM_THREADS=1. The encoder of the *{WHOLE_POOL}* is the cpu recipe pretrained on all of it; *without* "
        "the same recipe, the same number of steps, on the pool without the images named (a modality, a source or "
        f"a class tag). Fine-tuning with the few-label recipe ({FEW_LABEL_RECIPE}) and plain; *{HYBRID_ON_TASK}*: the "
        "hybrid arm (recipe) with the task's training images, labels unused, as its unlabelled side. Scratch is the "
        "same runs in every row. Test AUC, mean ± std over seeds; the gains are paired by seed.",
        "",
        f"## {args.task}: every pool and recipe",
        label_efficiency_markdown(sorted_records(named)),
    ]
    (RESULTS / "leave_one_out.md").write_text("\n".join(text) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--runs", required=True, help="folder of the pretraining and the runs (resumable)")
    parser.add_argument("--with-pool", required=True, help="checkpoint pretrained on the whole pool")
    parser.add_argument("--leave-out", nargs="+", default=["X-ray"], help="modalities, sources or class tags")
    parser.add_argument("--task", default="pneumoniamnist")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 25])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--pretrain-only", action="store_true", help="stop after the pretraining")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        help="run only these; the other rows of leave_one_out.csv are kept as they are",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.pretrain_only:
        pretrain_without(args)
        pretrain_without(args, TRAVEL_AUGMENT)
    else:
        records = run_arms(args)
        records += committed_rows({(r["encoder"], r["recipe"]) for r in records}) if args.variants else []
        write_tables(records, args)
        print((RESULTS / "leave_one_out.md").read_text())


if __name__ == "__main__":
    main()
