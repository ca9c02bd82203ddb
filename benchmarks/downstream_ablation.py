"""Compare downstream training recipes on one task: validation AUC (the selection criterion), test AUC, steps.

Used to investigate the paper-in-miniature's shortfalls: each ``--variant`` is a
name and TrainConfig overrides; every variant runs the same arms, label fractions and seeds
with one pretrained checkpoint. Choose recipes on the ``val_auc`` column only; ``test_auc``
is printed to report, not to select.

    python benchmarks/downstream_ablation.py --checkpoint OUT/pretrain --data-dir ../shared/data \\
        --fractions 0.01 0.1 --variant base: --variant slow_body:pretrained_lr_scale=0.1
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from medssl_lab.data.pool import build_pool
from medssl_lab.evaluation.convergence import add_convergence
from medssl_lab.evaluation.downstream import TrainConfig, train_classifier
from medssl_lab.evaluation.sampling import label_fraction_indices
from medssl_lab.pretrain import load_pretrained
from medssl_lab.reproduce import downstream_data


def parse_variant(text: str) -> tuple[str, dict]:
    """``name:key=value,key=value`` -> (name, overrides); values are read as JSON, else kept as strings."""
    name, _, rest = text.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


def mean_std(values: list) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint.pt or its run folder")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--task", default="pneumoniamnist")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=["scratch", "finetune"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--variant", action="append", default=None, help="name:key=value,... (repeatable)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = load_pretrained(args.checkpoint)
    train, val, test = downstream_data(args.task, args.data_dir)
    pool = build_pool(size=encoder.image_size, data_dir=args.data_dir) if "hybrid" in args.arms else None
    base = TrainConfig(steps=args.steps, eval_every=args.eval_every)
    print(
        f"task {args.task}; steps {args.steps}; eval every {args.eval_every}; seeds {args.seeds}; "
        f"checkpoint {args.checkpoint}"
    )
    print("variant        labels  arm       val_auc          test_auc         steps_to_95%  reduction_%  seconds")
    for name, overrides in map(parse_variant, args.variant or ["base:"]):
        for fraction in args.fractions:
            records = []
            for seed in args.seeds:
                labelled = train.subset(label_fraction_indices(train.labels, fraction, seed=seed))
                for arm in args.arms:
                    started = time.perf_counter()
                    result = train_classifier(
                        arm,
                        labelled,
                        val,
                        test,
                        pretrained=encoder,
                        pool=pool if arm == "hybrid" else None,
                        config=base,
                        seed=seed,
                        **overrides,
                    )
                    records.append(
                        {
                            "task": args.task,
                            "fraction": fraction,
                            "arm": arm,
                            "seed": seed,
                            "curve": result.curve,
                            "val": result.best_val_auc,
                            "test": result.test_auc,
                            "seconds": time.perf_counter() - started,
                        }
                    )
            add_convergence(records)
            for arm in args.arms:
                rows = [r for r in records if r["arm"] == arm]
                steps = [r["steps_to_target"] for r in rows]
                reached = [s for s in steps if s is not None]
                reductions = [r["step_reduction_pct"] for r in rows if r["step_reduction_pct"] is not None]
                print(
                    f"{name:<14} {fraction:<7g} {arm:<9} {mean_std([r['val'] for r in rows]):<16} "
                    f"{mean_std([r['test'] for r in rows]):<16} "
                    f"{(np.mean(reached) if reached else float('nan')):<6.1f} {len(reached)}/{len(steps)}   "
                    f"{(f'{np.mean(reductions):.0f}' if reductions else 'n/a'):<12} "
                    f"{np.mean([r['seconds'] for r in rows]):.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
