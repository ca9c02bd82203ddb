"""The paper in miniature: accuracy, convergence and robustness of SwAV pretraining.

One pretraining run on the unlabelled pool (MedNIST + PneumoniaMNIST train), then for each
downstream task and label fraction and seed, four arms with the same backbone, budget and
training loop: ``scratch`` (random init), ``linear`` (frozen pretrained backbone + linear
head), ``finetune`` (pretrained init, all weights trained) and ``hybrid`` (fine-tuning plus
the SwAV loss on unlabelled pool batches). Hyperparameters and the best step are chosen
on validation splits; each test split is scored once per run.

Every finished run is written to ``runs/*.json`` at once, so an interrupted reproduction
continues where it stopped; the tables and plots are rebuilt from those files. TensorBoard event
files: the pretraining's in ``pretrain/``, each run's beside its JSON (``runs/<run>/``), so
``tensorboard --logdir OUT`` shows them all.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from medssl_lab.data.medmnist import load_medmnist
from medssl_lab.data.mednist import load_mednist
from medssl_lab.data.pool import DEFAULT_SOURCES, build_pool, describe_provenance, pool_provenance
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import TrainingError
from medssl_lab.evaluation.convergence import add_convergence
from medssl_lab.evaluation.downstream import ARMS, TrainConfig, train_classifier
from medssl_lab.evaluation.label_efficiency import (
    COLUMNS,
    EPOCHS,
    EVALUATIONS,
    FEW_LABEL_RECIPE,
    LABELS_PER_CLASS,
    MIN_STEPS,
    SMALL_SEEDS,
    run_label_efficiency,
    sorted_records,
)
from medssl_lab.evaluation.reports import label_efficiency_markdown, summary_markdown
from medssl_lab.evaluation.robustness import robustness_curve
from medssl_lab.evaluation.sampling import label_fraction_indices, limit_split
from medssl_lab.files import write_json
from medssl_lab.pretrain import PretrainConfig, Pretrained, load_pretrained, pretrain
from medssl_lab.profiles import DOWNSTREAM, PROTOCOL, VAL_LIMIT, profile_settings
from medssl_lab.runconfig import write_run_config

TASK_FRACTIONS: dict[str, tuple[float, ...]] = {"pneumoniamnist": (0.01, 0.1, 1.0), "mednist": (0.001, 0.01, 0.1)}


@dataclass
class ReproduceConfig:
    """The protocol's knobs; :meth:`for_profile` gives the sizes of each profile (:mod:`medssl_lab.profiles`)."""

    profile: str = "cpu"
    seeds: tuple[int, ...] = (0, 1, 2)
    tasks: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(TASK_FRACTIONS))
    per_class: dict[str, tuple[int | None, ...]] = field(
        default_factory=lambda: {task: LABELS_PER_CLASS for task in TASK_FRACTIONS}
    )  # labels per class of the label-efficiency protocol (None: every label)
    small_seeds: tuple[int, ...] = SMALL_SEEDS  # its seeds up to 25 labels per class (`seeds` above)
    few_label_recipe: dict[str, Any] = field(default_factory=lambda: dict(FEW_LABEL_RECIPE))
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
        unknown = (set(self.tasks) | set(self.per_class)) - set(TASK_FRACTIONS)
        if unknown:
            raise ValueError(
                f"ReproduceConfig.tasks has unknown tasks {sorted(unknown)}; choose from {tuple(TASK_FRACTIONS)}"
            )
        for task, fractions in self.tasks.items():
            if not fractions or not all(0 < f <= 1 for f in fractions):
                raise ValueError(f"ReproduceConfig.tasks[{task!r}] = {fractions}; label fractions must lie in (0, 1]")
        for task, sizes in self.per_class.items():
            if not all(size is None or (isinstance(size, int) and size >= 1) for size in sizes):
                raise ValueError(
                    f"ReproduceConfig.per_class[{task!r}] = {sizes}; labels per class are whole numbers >= 1, "
                    "or None for every label"
                )
        unknown_knobs = set(self.few_label_recipe) - {f.name for f in fields(TrainConfig)}
        if unknown_knobs:
            raise ValueError(f"ReproduceConfig.few_label_recipe has unknown TrainConfig fields {sorted(unknown_knobs)}")
        if "scratch" not in self.arms or not set(self.arms) <= set(ARMS):
            raise ValueError(f"ReproduceConfig.arms = {self.arms}; choose from {ARMS}, scratch included (the baseline)")
        if self.val_limit is not None and self.val_limit < 2:
            raise ValueError(f"ReproduceConfig.val_limit must be None or >= 2, got {self.val_limit}")

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> ReproduceConfig:
        """The protocol, downstream sizes and validation limit of ``profile``, with ``overrides`` on top."""
        preset = {
            **profile_settings(PROTOCOL, profile),
            **profile_settings(DOWNSTREAM, profile),
            "val_limit": VAL_LIMIT[profile],
        }
        return cls(profile=profile, **{**preset, **overrides})

    def train_config(self) -> TrainConfig:
        """The downstream knobs every run of the protocol shares."""
        return TrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            eval_every=self.eval_every,
            dense_eval=self.dense_eval,
            device=self.device,
        )


def downstream_data(task: str, data_dir: str | os.PathLike | None) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(train, val, test) of a downstream task: PneumoniaMNIST's official splits, MedNIST's seeded split."""
    if task == "mednist":
        mednist = load_mednist(data_dir, seed=0)
        return mednist.train, mednist.val, mednist.test
    medmnist = load_medmnist(task, data_dir=data_dir)
    return medmnist.train, medmnist.val, medmnist.test


def _run_name(task: str, fraction: float, arm: str, seed: int) -> str:
    return f"{task}_{fraction:g}_{arm}_seed{seed}.json"


def run_protocol(
    config: ReproduceConfig,
    out_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    sources: Sequence[str] | None = None,
) -> Path:
    """Pretrain (or resume), run every (task, fraction, seed, arm), then write results.csv, summary.md and plots.

    ``sources`` make the pretraining pool (default: MedNIST and PneumoniaMNIST's train split); see ``build_pool``.
    """
    out = Path(out_dir)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    pre_config = PretrainConfig.for_profile(config.profile, device=config.device, **config.pretrain_overrides)
    pool = build_pool(sources or DEFAULT_SOURCES, size=pre_config.image_size, data_dir=data_dir)
    provenance = pool_provenance(pool)
    train_cfg = config.train_config()
    _check_settings(out, train_cfg, config, provenance)
    data = {"sources": list(sources or DEFAULT_SOURCES), "data_dir": None if data_dir is None else str(data_dir)}
    write_run_config(out, "reproduce", run_settings(config, pre_config), data)
    started = time.perf_counter()
    pretrain(pre_config, pool, out / "pretrain", resume=True, progress=progress, data={**data, "synthetic": False})
    pretrain_s = time.perf_counter() - started
    encoder = load_pretrained(out / "pretrain")
    _run_fractions(config, out, encoder, pool, train_cfg, data_dir, progress)
    for task, sizes in config.per_class.items():
        train, val, test = downstream_data(task, data_dir)
        run_label_efficiency(
            task,
            (train, limit_split(val, config.val_limit), test),
            encoder,
            replace(train_cfg, **config.few_label_recipe),
            runs_dir=out / "per_class",
            sizes=sizes,
            seeds=(config.small_seeds, config.seeds),
            arms=config.arms,
            pool=pool,
            progress=progress,
        )
    return write_reports(
        out,
        {
            "pretrain_seconds": pretrain_s,
            "profile": config.profile,
            "data": describe_provenance(provenance),
            "package": provenance["package"],
        },
    )


def _run_fractions(
    config: ReproduceConfig,
    out: Path,
    encoder: Pretrained,
    pool: ImageSet,
    train_cfg: TrainConfig,
    data_dir: str | os.PathLike | None,
    progress: bool,
) -> None:
    """Every (task, label fraction, seed, arm) not yet in ``out/runs``, each written as it finishes."""
    for task, fractions in config.tasks.items():
        train, val, test = downstream_data(task, data_dir)
        val = limit_split(val, config.val_limit)
        for fraction in fractions:
            for seed in config.seeds:
                labelled = train.subset(label_fraction_indices(train.labels, fraction, seed=seed))
                for arm in config.arms:
                    path = out / "runs" / _run_name(task, fraction, arm, seed)
                    if path.exists():
                        continue
                    record = _run_arm(
                        arm,
                        labelled,
                        val,
                        test,
                        encoder,
                        pool,
                        train_cfg,
                        seed,
                        robustness=(task, fraction) == (config.robustness_task, config.robustness_fraction),
                        task=task,
                        fraction=fraction,
                        log_dir=path.with_name(path.stem),
                    )
                    write_json(path, record)
                    if progress:
                        print(
                            f"{task:<15} {fraction:<6g} {arm:<9} seed {seed}: test AUC {record['test_auc']:.3f} "
                            f"({record['seconds']:.0f} s)",
                            flush=True,
                        )


def run_settings(config: ReproduceConfig, pre_config: PretrainConfig) -> dict[str, Any]:
    """Every setting of a reproduction, as its ``config.yaml`` holds them: ``config``'s fields, with every field of
    the pretraining but its profile and device (the reproduction's own) as ``pretrain_overrides``, so that the file
    runs the same pretraining whatever the profile tables say later."""
    pretraining = {k: v for k, v in asdict(pre_config).items() if k not in ("profile", "device")}
    return {**asdict(config), "pretrain_overrides": pretraining}


def _run_arm(
    arm: str,
    labelled: ImageSet,
    val: ImageSet,
    test: ImageSet,
    encoder: Pretrained,
    pool: ImageSet,
    train_cfg: TrainConfig,
    seed: int,
    robustness: bool,
    task: str,
    fraction: float,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    """One run's record: its summary and curve, and the robustness rows when the protocol asks for them; its
    TensorBoard event files in ``log_dir``."""
    result = train_classifier(
        arm,
        labelled,
        val,
        test,
        pretrained=encoder,
        pool=pool if arm == "hybrid" else None,
        config=train_cfg,
        log_dir=log_dir,
        seed=seed,
    )
    record = result.record(task=task, fraction=fraction)
    if robustness:
        record["robustness"] = robustness_curve(
            result.model, test, image_size=result.config.image_size, device=train_cfg.device, seed=seed
        )
    return record


def _check_settings(out: Path, train_cfg: TrainConfig, config: ReproduceConfig, provenance: dict) -> None:
    """Record the settings every run depends on, and the pool's data, in ``settings.json``; refuse to mix runs made
    with other ones.

    Seeds, tasks, sizes and arms may change between invocations (runs are per seed, task and arm). A setting the
    file predates is taken as what its runs were made with: a TrainConfig field its default, anything else (the
    labels-per-class protocol's recipe and budget) the value asked for now, since no earlier run depended on it.
    """
    settings = {k: v for k, v in train_cfg.to_dict().items() if k not in ("device", "seed", "progress")}
    settings.update(
        val_limit=config.val_limit,
        robustness=[config.robustness_task, config.robustness_fraction],
        pool={k: v for k, v in provenance.items() if k != "package"},
        few_label_recipe=config.few_label_recipe,
        few_label_budget=dict(epochs=EPOCHS, min_steps=MIN_STEPS, evaluations=EVALUATIONS),
    )
    settings = json.loads(json.dumps(settings, default=float))  # tuples -> lists, as read back
    path = out / "settings.json"
    if path.exists():
        saved = json.loads(path.read_text())
        defaults = json.loads(json.dumps(TrainConfig().to_dict(), default=float))
        saved = {**{k: defaults.get(k, v) for k, v in settings.items()}, **saved}
        changed = sorted(k for k in settings.keys() | saved.keys() if settings.get(k) != saved.get(k))
        if changed:
            raise TrainingError(
                f"{out}: its runs were made with other settings ({', '.join(changed)} differ); "
                f"pass another --out, or delete {out / 'runs'}, {out / 'per_class'} and {path} to start over."
            )
    write_json(path, settings)


def load_records(out_dir: str | os.PathLike) -> list[dict]:
    """Every finished run of a reproduction folder, with convergence figures filled in."""
    return add_convergence([json.loads(p.read_text()) for p in sorted((Path(out_dir) / "runs").glob("*.json"))])


RESULT_COLUMNS = (
    "task",
    "fraction",
    "arm",
    "seed",
    "n_train",
    "test_auc",
    "test_acc",
    "best_val_auc",
    "best_step",
    "steps_to_target",
    "step_reduction_pct",
    "seconds",
)


def load_per_class(out_dir: str | os.PathLike) -> list[dict]:
    """Every finished run of the labels-per-class protocol of a reproduction folder, in table order."""
    return sorted_records([json.loads(p.read_text()) for p in (Path(out_dir) / "per_class").glob("*.json")])


def write_reports(out_dir: str | os.PathLike, meta: dict | None = None) -> Path:
    """results.csv, curves.csv, robustness.csv, label_efficiency.csv, summary.md and the plots, from ``runs/*.json``
    and ``per_class/*.json``."""
    import matplotlib.pyplot as plt

    from medssl_lab.viz import plot_convergence, plot_label_efficiency, plot_labels_per_class, plot_robustness

    out = Path(out_dir)
    records = load_records(out)
    per_class = load_per_class(out)
    with open(out / "label_efficiency.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(per_class)
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    with open(out / "curves.csv", "w", newline="") as handle:
        curve_writer = csv.writer(handle)
        curve_writer.writerow(["task", "fraction", "arm", "seed", "step", "val_auc"])
        for r in records:
            curve_writer.writerows([r["task"], r["fraction"], r["arm"], r["seed"], s, a] for s, a in r["curve"])
    robust = [
        {"task": r["task"], "fraction": r["fraction"], "arm": r["arm"], "seed": r["seed"], **row}
        for r in records
        for row in r.get("robustness", [])
    ]
    with open(out / "robustness.csv", "w", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["task", "fraction", "arm", "seed", "kind", "severity", "auc", "acc", "drop"]
        )
        writer.writeheader()
        writer.writerows(robust)
    (out / "summary.md").write_text(
        summary_markdown(records, robust, meta or {})
        + label_efficiency_markdown(per_class)
        + label_efficiency_markdown(per_class, metric="test_acc")
    )
    figures = [  # only of what has runs: a folder may hold labels-per-class runs alone (``tasks={}``)
        ("label_efficiency.png", plot_label_efficiency, records),
        ("convergence.png", plot_convergence, records),
        ("robustness.png", plot_robustness, robust),
        ("labels_per_class.png", plot_labels_per_class, per_class),
    ]
    for name, plot, rows in figures:
        if not rows:
            continue
        fig = plot(rows)
        fig.savefig(out / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
    return out / "summary.md"
