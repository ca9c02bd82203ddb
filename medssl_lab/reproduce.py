"""The paper in miniature: accuracy, convergence and robustness of SwAV pretraining.

One pretraining run on the unlabelled pool (MedNIST + PneumoniaMNIST train), then for each
downstream task and label fraction and seed, four arms with the same backbone, budget and
training loop: ``scratch`` (random init), ``linear`` (frozen pretrained backbone + linear
head), ``finetune`` (pretrained init, all weights trained) and ``hybrid`` (fine-tuning plus
the SwAV loss on unlabelled pool batches). Hyperparameters and the best step are chosen
on validation splits; each test split is scored once per run.

Every finished run is written to ``runs/*.json`` at once, so an interrupted reproduction
continues where it stopped; the tables and plots are rebuilt from those files.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medssl_lab.augment import PROFILES
from medssl_lab.data.medmnist import load_medmnist
from medssl_lab.data.mednist import load_mednist
from medssl_lab.data.pool import build_pool, describe_provenance, pool_provenance
from medssl_lab.data.types import ImageSet
from medssl_lab.evaluate import (
    ARMS,
    TrainConfig,
    convergence_target,
    label_fraction_indices,
    robustness_curve,
    step_reduction,
    steps_to_reach,
    train_classifier,
)
from medssl_lab.errors import TrainingError
from medssl_lab.files import atomic_file
from medssl_lab.pretrain import CHECKPOINT_NAME, PretrainConfig, load_pretrained, pretrain

TASK_FRACTIONS: dict[str, tuple[float, ...]] = {"pneumoniamnist": (0.01, 0.1, 1.0), "mednist": (0.001, 0.01, 0.1)}


@dataclass
class ReproduceConfig:
    """The protocol's knobs; :meth:`for_profile` gives the sizes of each profile."""

    profile: str = "cpu"
    seeds: tuple[int, ...] = (0, 1, 2)
    tasks: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(TASK_FRACTIONS))
    arms: tuple[str, ...] = ARMS
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    eval_every: int = 25
    dense_eval: tuple[int, int] | None = (5, 100)  # validate every 5 steps up to step 100: convergence needs the grain
    val_limit: int | None = 1500  # stratified validation subset for the curves (MedNIST's val has 5,895)
    robustness_task: str = "pneumoniamnist"
    robustness_fraction: float = 0.1
    pretrain_overrides: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("ReproduceConfig.seeds is empty; give at least one seed, e.g. (0, 1, 2)")
        unknown = set(self.tasks) - set(TASK_FRACTIONS)
        if unknown:
            raise ValueError(f"ReproduceConfig.tasks has unknown tasks {sorted(unknown)}; choose from {tuple(TASK_FRACTIONS)}")
        for task, fractions in self.tasks.items():
            if not fractions or not all(0 < f <= 1 for f in fractions):
                raise ValueError(f"ReproduceConfig.tasks[{task!r}] = {fractions}; label fractions must lie in (0, 1]")
        if "scratch" not in self.arms or not set(self.arms) <= set(ARMS):
            raise ValueError(f"ReproduceConfig.arms = {self.arms}; choose from {ARMS}, scratch included (the baseline)")
        if self.val_limit is not None and self.val_limit < 2:
            raise ValueError(f"ReproduceConfig.val_limit must be None or >= 2, got {self.val_limit}")

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> "ReproduceConfig":
        presets: dict[str, dict[str, Any]] = {
            "smoke": dict(seeds=(0,), tasks={"pneumoniamnist": (0.1,), "mednist": (0.01,)}, steps=6, batch_size=32,
                          eval_every=3, dense_eval=None, val_limit=300, robustness_fraction=0.1),
            "cpu": dict(),
            "cpu_long": dict(),  # the longer pretraining, the same downstream protocol
            "gpu": dict(steps=1000, batch_size=128, eval_every=50, val_limit=None),
        }
        if profile not in presets:
            raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
        return cls(profile=profile, **{**presets[profile], **overrides})


def downstream_data(task: str, data_dir: str | os.PathLike | None) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(train, val, test) of a downstream task: PneumoniaMNIST's official splits, MedNIST's seeded split."""
    if task == "mednist":
        data = load_mednist(data_dir, seed=0)
        return data.train, data.val, data.test
    data = load_medmnist(task, data_dir=data_dir)
    return data.train, data.val, data.test


def _run_name(task: str, fraction: float, arm: str, seed: int) -> str:
    return f"{task}_{fraction:g}_{arm}_seed{seed}.json"


def run_protocol(config: ReproduceConfig, out_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                 progress: bool = True) -> Path:
    """Pretrain (or resume), run every (task, fraction, seed, arm), then write results.csv, summary.md and plots."""
    out = Path(out_dir)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    pre_config = PretrainConfig.for_profile(config.profile, device=config.device, **config.pretrain_overrides)
    # Every arm gets the pretrained architecture (scratch: fresh weights) and, for hybrid, its views.
    train_cfg = TrainConfig(steps=config.steps, batch_size=config.batch_size, lr=config.lr,
                            eval_every=config.eval_every, dense_eval=config.dense_eval, device=config.device,
                            backbone=pre_config.backbone, multicrop=pre_config.augment_config(),
                            image_size=pre_config.image_size)
    pool = build_pool(size=pre_config.image_size, data_dir=data_dir)
    provenance = pool_provenance(pool)
    _check_settings(out, train_cfg, config, provenance)
    started = time.perf_counter()
    pretrain(pre_config, pool, out / "pretrain", resume=True, progress=progress)
    pretrain_s = time.perf_counter() - started
    checkpoint = out / "pretrain" / CHECKPOINT_NAME
    encoder, _ = load_pretrained(checkpoint)
    for task, fractions in config.tasks.items():
        train, val, test = downstream_data(task, data_dir)
        if config.val_limit is not None and len(val) > config.val_limit:
            val = val.subset(label_fraction_indices(val.labels, config.val_limit / len(val), seed=0))
        for fraction in fractions:
            for seed in config.seeds:
                labelled = train.subset(label_fraction_indices(train.labels, fraction, seed=seed))
                for arm in config.arms:
                    path = runs_dir / _run_name(task, fraction, arm, seed)
                    if path.exists():
                        record = json.loads(path.read_text())
                    else:
                        result = train_classifier(
                            arm, labelled, val, test, pretrained=None if arm == "scratch" else encoder,
                            pool=pool if arm == "hybrid" else None, config=train_cfg, seed=seed,
                        )
                        record = {"task": task, "fraction": fraction, "arm": arm, "seed": seed, **result.summary(),
                                  "curve": result.curve}
                        if task == config.robustness_task and fraction == config.robustness_fraction:
                            record["robustness"] = robustness_curve(result.model, test, image_size=pre_config.image_size,
                                                                    device=config.device, seed=seed)
                        _write_json(path, record)
                        if progress:
                            print(f"{task:<15} {fraction:<6g} {arm:<9} seed {seed}: test AUC {record['test_auc']:.3f} "
                                  f"({record['seconds']:.0f} s)", flush=True)
    return write_reports(out, {"pretrain_seconds": pretrain_s, "profile": config.profile,
                               "data": describe_provenance(provenance), "package": provenance["package"]})


def _check_settings(out: Path, train_cfg: TrainConfig, config: ReproduceConfig, provenance: dict) -> None:
    """Record the settings every run depends on, and the pool's data, in ``settings.json``; refuse to mix runs made
    with other ones.

    Seeds, tasks and arms may change between invocations (runs are per seed, task and arm).
    """
    settings = {k: v for k, v in train_cfg.to_dict().items() if k not in ("device", "seed", "progress")}
    settings.update(val_limit=config.val_limit, robustness=[config.robustness_task, config.robustness_fraction],
                    pool={k: v for k, v in provenance.items() if k != "package"})
    settings = json.loads(json.dumps(settings, default=float))  # tuples -> lists, as read back
    path = out / "settings.json"
    if path.exists():
        saved = json.loads(path.read_text())
        changed = sorted(k for k in settings.keys() | saved.keys() if settings.get(k) != saved.get(k))
        if changed:
            raise TrainingError(f"{out}: its runs were made with other settings ({', '.join(changed)} differ); "
                                f"pass another --out, or delete {out / 'runs'} and {path} to start over.")
    else:
        _write_json(path, settings)


def _write_json(path: Path, record: dict) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=float))


def load_records(out_dir: str | os.PathLike) -> list[dict]:
    """Every finished run of a reproduction folder, with convergence figures filled in."""
    return add_convergence([json.loads(p.read_text()) for p in sorted((Path(out_dir) / "runs").glob("*.json"))])


def add_convergence(records: list[dict]) -> list[dict]:
    """Fill ``steps_to_target`` and ``step_reduction_pct`` of each record from its curve.

    The target is 95 % of the best validation AUC of the scratch run with the same task,
    fraction and seed; records need ``task, fraction, arm, seed, curve``.
    """
    by_key = {(r["task"], r["fraction"], r["seed"]): r for r in records if r["arm"] == "scratch"}
    for r in records:
        scratch = by_key.get((r["task"], r["fraction"], r["seed"]))
        target = convergence_target([tuple(c) for c in scratch["curve"]]) if scratch else math.nan
        r["steps_to_target"] = steps_to_reach([tuple(c) for c in r["curve"]], target) if scratch else None
        scratch_steps = steps_to_reach([tuple(c) for c in scratch["curve"]], target) if scratch else None
        r["step_reduction_pct"] = step_reduction(r["steps_to_target"], scratch_steps)
    return records


RESULT_COLUMNS = ("task", "fraction", "arm", "seed", "n_train", "test_auc", "test_acc", "best_val_auc", "best_step",
                  "steps_to_target", "step_reduction_pct", "seconds")


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "n/a"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def write_reports(out_dir: str | os.PathLike, meta: dict | None = None) -> Path:
    """results.csv, curves.csv, robustness.csv, summary.md and the three plots, from ``runs/*.json``."""
    import matplotlib.pyplot as plt

    from medssl_lab.viz import plot_convergence, plot_label_efficiency, plot_robustness

    out = Path(out_dir)
    records = load_records(out)
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    with open(out / "curves.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "fraction", "arm", "seed", "step", "val_auc"])
        for r in records:
            writer.writerows([r["task"], r["fraction"], r["arm"], r["seed"], s, a] for s, a in r["curve"])
    robust = [{"task": r["task"], "fraction": r["fraction"], "arm": r["arm"], "seed": r["seed"], **row}
              for r in records for row in r.get("robustness", [])]
    with open(out / "robustness.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["task", "fraction", "arm", "seed", "kind", "severity", "auc", "acc", "drop"])
        writer.writeheader()
        writer.writerows(robust)
    (out / "summary.md").write_text(summary_markdown(records, robust, meta or {}))
    for name, fig in (("label_efficiency.png", plot_label_efficiency(records)),
                      ("convergence.png", plot_convergence(records)),
                      ("robustness.png", plot_robustness(robust))):
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
    return out / "summary.md"


def summary_markdown(records: list[dict], robust: list[dict], meta: dict) -> str:
    """Markdown tables: test AUC / ACC (mean ± std over seeds), convergence, robustness drops."""
    arms = [a for a in ARMS if any(r["arm"] == a for r in records)]
    keys = sorted({(r["task"], r["fraction"]) for r in records})
    seeds = sorted({r["seed"] for r in records})
    lines = [f"Profile `{meta.get('profile', '?')}`; seeds {seeds}; mean ± std over seeds."
             + (f" Pretrained on {meta['data']}; medssl-lab {meta['package']}." if "data" in meta else ""), "",
             "### Test AUC", "", "| task | labels | " + " | ".join(arms) + " |", "|---|---:|" + "---:|" * len(arms)]
    for task, fraction in keys:
        cells = [_mean_std([r["test_auc"] for r in records if (r["task"], r["fraction"], r["arm"]) == (task, fraction, a)])
                 for a in arms]
        lines.append(f"| {task} | {fraction:g} | " + " | ".join(cells) + " |")
    lines += ["", "### Test ACC", "", "| task | labels | " + " | ".join(arms) + " |", "|---|---:|" + "---:|" * len(arms)]
    for task, fraction in keys:
        cells = [_mean_std([r["test_acc"] for r in records if (r["task"], r["fraction"], r["arm"]) == (task, fraction, a)])
                 for a in arms]
        lines.append(f"| {task} | {fraction:g} | " + " | ".join(cells) + " |")
    lines += ["", "### Convergence: steps to 95 % of scratch's best validation AUC (reduction vs scratch, %)", "",
              "| task | labels | " + " | ".join(arms) + " |", "|---|---:|" + "---:|" * len(arms)]
    for task, fraction in keys:
        cells = []
        for a in arms:
            rs = [r for r in records if (r["task"], r["fraction"], r["arm"]) == (task, fraction, a)]
            steps = [r["steps_to_target"] for r in rs if r["steps_to_target"] is not None]
            red = [r["step_reduction_pct"] for r in rs if r["step_reduction_pct"] is not None]
            reached = f"{len(steps)}/{len(rs)} reached"
            cells.append(f"{np.median(steps):.0f} ({np.mean(red):+.0f} %), {reached}" if steps and red else reached)
        lines.append(f"| {task} | {fraction:g} | " + " | ".join(cells) + " |")
    if robust:
        kinds = list(dict.fromkeys(r["kind"] for r in robust if r["kind"] != "clean"))
        lines += ["", f"### Robustness: mean AUC drop from clean over severities ({robust[0]['task']}, "
                  f"{robust[0]['fraction']:g} labels)", "", "| arm | clean AUC | " + " | ".join(kinds) + " |",
                  "|---|---:|" + "---:|" * len(kinds)]
        for a in arms:
            rows = [r for r in robust if r["arm"] == a]
            if rows:
                clean = _mean_std([r["auc"] for r in rows if r["kind"] == "clean"])
                drops = [f"{np.mean([r['drop'] for r in rows if r['kind'] == k]):.3f}" for k in kinds]
                lines.append(f"| {a} | {clean} | " + " | ".join(drops) + " |")
    if "pretrain_seconds" in meta:
        lines += ["", f"Pretraining took {meta['pretrain_seconds'] / 60:.1f} min in this invocation "
                  f"(0 when resumed from a finished checkpoint)."]
    return "\n".join(lines) + "\n"
