"""The pretraining loop: SwAV (or the SimCLR baseline) on the unlabelled pool.

One code path for every profile. The pool stays uint8 in memory (on the GPU when there is one), or on disk for a
pool store (read batch by batch, the next one while a step computes: :class:`~medssl_lab.training.BatchReader`); each
step indexes a batch, makes all multi-crop views on the device, computes the objective under autocast where it
helps, and steps the optimizer with a warm-up + cosine schedule. Checkpoints hold everything a run needs to continue
exactly where it stopped. Under ``torchrun`` the batch is split across processes (DDP) and Sinkhorn all-reduces
its sums.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medssl_lab.augment import MultiCropAugment, make_generator
from medssl_lab.config import progress_bar
from medssl_lab.data.provenance import pool_provenance
from medssl_lab.data.sampling import BatchOrder
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import TrainingError
from medssl_lab.pretrain.checkpoint import (
    CHECKPOINT_NAME,
    check_resumable,
    load_checkpoint,
    save_checkpoint,
    shipped_encoder,
)
from medssl_lab.pretrain.config import PretrainConfig, build_model
from medssl_lab.pretrain.distributed import process_device, rank_and_world, wrap_for_processes
from medssl_lab.pretrain.methods import make_objective
from medssl_lab.pretrain.monitor import KnnMonitor
from medssl_lab.pretrain.pretrained import Pretrained, load_pretrained
from medssl_lab.runconfig import write_run_config
from medssl_lab.tblog import RunLog, run_log
from medssl_lab.threads import adapt_threads
from medssl_lab.training import BatchReader, OptimizerStep, autocast_dtype, check_finite


@dataclass
class History:
    """What a run logged: one row per logging step, plus why it stopped."""

    rows: list[dict[str, float]] = field(default_factory=list)
    stopped: str = ""

    def column(self, name: str) -> np.ndarray:
        """One column, nan in the rows without it (``knn_accuracy`` is only in the monitor's rows)."""
        return np.array([r.get(name, math.nan) for r in self.rows], dtype=float)

    def write_csv(self, path: Path) -> None:
        """Every column any row has, in the order they first appear; empty where a row has none."""
        if not self.rows:
            return
        names = list(dict.fromkeys(name for row in self.rows for name in row))
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=names, restval="")
            writer.writeheader()
            writer.writerows(self.rows)


def _limit_pool(pool: ImageSet, config: PretrainConfig) -> ImageSet:
    """The seeded subset ``pool_limit`` asks for, after checking the pool can fill a batch."""
    if len(pool) == 0:
        raise TrainingError("the pretraining pool is empty; build it with medssl_lab.data.pool.build_pool")
    pool = pool.sample(config.pool_limit, config.seed)
    if len(pool) < config.batch_size:
        raise TrainingError(f"the pool has {len(pool)} images, fewer than one batch of {config.batch_size}")
    return pool


def _make_optimizer(model: nn.Module, config: PretrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


class Pretrainer:
    """Owns one pretraining run: model, objective, optimizer, schedule, randomness, history and checkpoints.

    Example:
        >>> trainer = Pretrainer(PretrainConfig.for_profile("smoke"), pool, out_dir="runs/smoke")
        >>> history = trainer.fit()
        >>> pretrained = trainer.pretrained()
    """

    def __init__(self, config: PretrainConfig, pool: ImageSet, out_dir: str | os.PathLike | None = None) -> None:
        self.config = config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.out_dir is not None and self.out_dir.exists() and not self.out_dir.is_dir():
            raise TrainingError(f"{self.out_dir} is a file, not a folder for checkpoint.pt; pass another --out.")
        self.rank, self.world = rank_and_world()
        self.device = process_device(config.device)
        if config.batch_size % self.world:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by the {self.world} processes")
        torch.manual_seed(config.seed)
        self.pool = _limit_pool(pool, config)
        self.provenance = pool_provenance(self.pool)
        self.reader = BatchReader(self.pool.images, self.device)
        self._order: tuple[int, Sequence[torch.Tensor]] = (-1, [])  # (epoch, its batches), made once per epoch
        tags = getattr(self.pool, config.balance) if config.balance else None
        self.order = BatchOrder(len(self.pool), config.batch_size, config.seed * 7919, tags)
        self.weights = self.order.weights  # balancing weights of a pool up to LARGE_POOL images (None above)
        self.augment = MultiCropAugment(config.augment_config())
        self.model = build_model(config).to(self.device)
        if config.channels_last:
            # torch's stubs for Module.to lack the memory_format keyword that it accepts (and documents)
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.objective = make_objective(
            self.model, config, wrap_for_processes(self.model, self.device, self.world), self.world
        )
        self.steps_per_epoch = len(self.pool) // config.batch_size
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.optimizer = _make_optimizer(self.model, config)
        self.amp_dtype = autocast_dtype(config.amp, self.device)
        self.optimizer_step = OptimizerStep(
            self.optimizer, self.amp_dtype, self.device, config.grad_clip, self.model.parameters()
        )
        self.aug_generator = make_generator(config.seed * 1000 + self.rank, self.device)
        # the online kNN monitor (first process only): its own subset and numpy generator, no training stream
        self.monitor = (
            KnnMonitor.from_pool(self.pool, config.knn_images, config.seed, self.device, self.amp_dtype)
            if config.knn_every and self.rank == 0
            else None
        )
        self.events = RunLog(None)  # the event files of a fit() in progress (pretrain/ scalars; tblog.py)
        self.step = 0
        self.train_seconds = 0.0  # wall time spent in fit(), summed over resumes: the run's compute cost
        self.history = History()

    def pretrained(self) -> Pretrained:
        """The trained model (in eval mode) with its config and data provenance."""
        return Pretrained(
            self.model.eval(), self.config, self.provenance, f"trained in this session ({self.step} steps)"
        )

    # ------------------------------------------------------------------ schedule
    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to ``min_lr_ratio * lr``."""
        c = self.config
        warmup = max(1, int(c.warmup_fraction * self.total_steps))
        if step < warmup:
            return c.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, self.total_steps - warmup)
        return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    def _batch_order(self, epoch: int) -> Sequence[torch.Tensor]:
        """Every batch of ``epoch`` (all processes'), the same on every rank and after a resume; kept for the epoch
        (computed batch by batch above ``LARGE_POOL`` images: :class:`~medssl_lab.data.sampling.BatchOrder`)."""
        if self._order[0] != epoch:
            self._order = (epoch, self.order.epoch(epoch))
        return self._order[1]

    def _my_index(self, step: int) -> torch.Tensor:
        """This process's disjoint share of the batch of ``step``."""
        per_rank = self.config.batch_size // self.world
        epoch, within = divmod(step, self.steps_per_epoch)
        return self._batch_order(epoch)[within][self.rank * per_rank : (self.rank + 1) * per_rank]

    # ------------------------------------------------------------------ one step
    def train_step(self, index: torch.Tensor, epoch: int) -> tuple[dict[str, float], bool]:
        """One optimisation step on the pool images at ``index`` (this process's share): its loss and diagnostics,
        and whether it is a logging step."""
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        views = self.augment(self.reader.get(index), generator=self.aug_generator)
        if c.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        diagnose = self.step % c.log_every == 0 or self.step == self.total_steps - 1
        loss, metrics = self.objective(views, epoch, self.amp_dtype, diagnose)
        check_finite(
            loss,
            f"at step {self.step} (epoch {epoch})",
            f"Try a lower lr (now {c.lr}), a longer warm-up, grad_clip, or amp='bf16'/'off' instead of "
            f"fp16. The last good checkpoint is kept in {self.out_dir}.",
        )
        self.optimizer_step(
            loss,
            before=lambda: self.objective.before_optimizer_step(self.step),
            after=self.objective.after_optimizer_step,
        )
        return {"loss": float(loss.detach()), **metrics}, diagnose

    # ------------------------------------------------------------------ the loop
    def fit(
        self,
        progress: bool = True,
        callback: Callable[[Pretrainer, dict], None] | None = None,
        stop_after: int | None = None,
    ) -> History:
        """Train until ``epochs`` (or ``max_steps``) are done, continuing from ``self.step``.

        Args:
            progress: show a tqdm bar (notebook-aware) on the first process.
            callback: called as ``callback(trainer, row)`` after each logged step (live plots).
            stop_after: pause after this many more steps (the run can be continued later).
        """
        c = self.config
        bar = progress_bar(
            total=self.total_steps,
            initial=self.step,
            desc=f"{c.method} {c.profile}",
            disable=not progress or self.rank != 0,
            dynamic_ncols=True,
        )
        self.model.train()
        end = self.total_steps if stop_after is None else min(self.total_steps, self.step + stop_after)
        # event files beside history.csv; a continued run hides what an earlier one logged after its checkpoint
        folder = self.out_dir if self.rank == 0 else None
        purge = self.step + 1 if self.step else 0
        with run_log(folder, purge_step=purge, stop_step=lambda: self.step) as self.events:
            try:
                self._run_steps(end, bar, callback)
            finally:
                bar.close()
            self.history.stopped = "finished" if self.step >= self.total_steps else "paused"
            done = f"{self.history.stopped} after {self.step} of {self.total_steps} steps"
            self.events.text("stopped", done, self.step)
        if self.out_dir is not None:
            self.save()
        return self.history

    def _run_steps(self, end: int, bar: Any, callback: Callable[[Pretrainer, dict], None] | None) -> None:
        """Steps up to ``end``: each one's batch (the next one read meanwhile), its row, its checkpoint."""
        c = self.config
        self._window: list[float] = []
        start_time, start_step = time.perf_counter(), self.step
        tick = start_time
        while self.step < end:
            index = self._my_index(self.step)
            if self.step + 1 < end:
                self.reader.prefetch(self._my_index(self.step + 1))  # read while this step computes
            metrics, logged = self.train_step(index, self.step // self.steps_per_epoch)
            adapt_threads()  # other work started or stopped beside the run: the thread count follows
            self.step += 1
            self.train_seconds += time.perf_counter() - tick
            tick = time.perf_counter()
            bar.update(1)
            img_per_s = (self.step - start_step) * c.batch_size / max(tick - start_time, 1e-9)
            self._log(metrics, logged, img_per_s, bar, callback)
            if self.out_dir is not None and (self.step % c.checkpoint_every == 0 or self.step == self.total_steps):
                self.save()

    def _log(
        self,
        metrics: dict[str, float],
        logged: bool,
        img_per_s: float,
        bar: Any,
        callback: Callable[[Pretrainer, dict], None] | None,
    ) -> None:
        """Average the loss since the last log; on logging steps, record a row (with the kNN monitor's accuracy when it
        is due), write it to the event files, call back and check for collapse."""
        self._window.append(metrics["loss"])
        if not logged:
            return
        row = {
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            "lr": self.lr_at(self.step - 1),
            **metrics,
            "loss_avg": float(np.mean(self._window)),
            "img_per_s": img_per_s,
        }
        if self.monitor is not None and self._knn_due(self.step - 1):
            row["knn_accuracy"] = self.monitor(self.model)
        self._window = []
        self.history.rows.append(row)
        self.events.scalars({k: v for k, v in row.items() if k != "step"}, self.step, prefix="pretrain/")
        shown = ("loss_avg", "prototype_usage", "embedding_std", "knn_accuracy")
        bar.set_postfix({k: f"{row[k]:.3f}" for k in shown if k in row})
        if callback is not None:
            callback(self, row)
        self._check_collapse(row)

    def _knn_due(self, step: int) -> bool:
        """Whether the monitor scores the logging step ``step`` (0-based): the first logging step at or after each
        multiple of ``knn_every`` (steps 0, 50, 100... with the cpu profile's 10 and 50), and the last step."""
        c = self.config
        return c.knn_every > 0 and (
            step == self.total_steps - 1 or step // c.knn_every != (step - c.log_every) // c.knn_every
        )

    def _check_collapse(self, row: dict) -> None:
        c = self.config
        if not c.collapse_check or self.step < max(c.collapse_min_steps, self.total_steps // 2):
            return
        hint = self.objective.collapse_hint(row["loss_avg"], row)
        if hint is not None:
            self.history.stopped = "collapse"
            if self.out_dir is not None:
                self.save()
            raise TrainingError(f"stopped at step {self.step}: {hint}")

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: weights, optimizer, scaler, RNG, queue, history."""
        return {
            "config": asdict(self.config),
            "data": self.provenance,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.optimizer_step.scaler.state_dict(),
            "step": self.step,
            "train_seconds": self.train_seconds,
            "aug_rng": self.aug_generator.get_state(),
            "queue": self.objective.state_dict(),
            "history": self.history.rows,
            "stopped": self.history.stopped,
        }

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the checkpoint (first process only) atomically; history also as CSV beside it.

        The event files are flushed first: whatever step a checkpoint holds, its rows are on disk, so a run killed
        later and resumed from it loses none of them in TensorBoard.
        """
        if path is None and self.out_dir is None:
            raise ValueError("no path given and the trainer has no out_dir")
        target = Path(path) if path is not None else Path(self.out_dir or ".") / CHECKPOINT_NAME
        if self.rank == 0:
            self.events.flush()
            save_checkpoint(self.state_dict(), target)
            self.history.write_csv(target.with_name("history.csv"))
        return target

    def load_state(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; every setting that changes the computation, and the data, must match."""
        check_resumable(state, self.config, self.provenance, self.out_dir or "the checkpoint")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.optimizer_step.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.aug_generator.set_state(state["aug_rng"].to(self.aug_generator.get_state().device))
        self.objective.load_state_dict(state["queue"])
        self.history = History(rows=list(state["history"]), stopped="")


def pretrain(
    config: PretrainConfig,
    pool: ImageSet,
    out_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    callback: Callable[[Pretrainer, dict], None] | None = None,
    data: Mapping[str, Any] | None = None,
) -> Pretrainer:
    """Run (or continue, when ``out_dir`` holds a checkpoint and ``resume``) a pretraining run.

    ``out_dir`` gets ``config.yaml``: ``config`` and ``data`` (where the pool came from, as the command line took
    it; see :class:`medssl_lab.runconfig.DataSettings`), which ``medssl-lab pretrain --config`` runs again.
    """
    trainer = Pretrainer(config, pool, out_dir)
    checkpoint = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None else None
    if resume and checkpoint is not None and checkpoint.exists():
        trainer.load_state(load_checkpoint(checkpoint))  # refuses other settings before config.yaml is replaced
    if out_dir is not None and trainer.rank == 0:
        write_run_config(out_dir, "pretrain", asdict(config), data)
    trainer.fit(progress=progress, callback=callback)
    return trainer


@dataclass(frozen=True)
class ShippedRun:
    """The encoder shipped with the package and the run that made it, as that run logged it."""

    path: Path  #: the shipped checkpoint (weights, config, provenance, history)
    config: PretrainConfig
    history: History
    steps: int
    made_by: str  #: the command that made it


def shipped_run(profile: str, **settings: Any) -> ShippedRun | None:
    """The run behind the encoder shipped for ``profile``; None when the package ships none for it, or when
    ``settings`` (PretrainConfig fields) ask for another run than the shipped one, e.g. ``method="simclr"``.

    The one answer to "can the shipped encoder stand in for a run of these settings?": :func:`ensure_pretrained`
    loads it instead of training, notebook 01 shows its logged run instead of training one.
    """
    unknown = set(settings) - {f.name for f in fields(PretrainConfig)}
    if unknown:
        raise ValueError(f"unknown PretrainConfig fields {sorted(unknown)}")
    path = shipped_encoder(profile)
    if path is None:
        return None
    state = load_checkpoint(path)
    config = PretrainConfig(**state["config"])
    if any(getattr(config, name) != value for name, value in settings.items()):
        return None
    history = History(rows=list(state.get("history", [])), stopped=state.get("stopped", ""))
    return ShippedRun(path, config, history, int(state.get("step", 0)), state.get("made_by", "?"))


def ensure_pretrained(
    output_dir: str | os.PathLike,
    profile: str = "cpu",
    data_dir: str | os.PathLike | None = None,
    device: str = "auto",
    seed: int = 0,
    shipped: bool = True,
    **overrides: Any,
) -> Pretrained:
    """Load-or-train: notebook 01's checkpoint in ``output_dir/pretrain``, else the encoder shipped for the profile,
    else a quick one.

    The shipped encoder (``shipped=True``, the ``cpu`` profile, when ``overrides`` ask for nothing it was not made
    with: :func:`shipped_run`) lets every later notebook start at once; without one,
    a short run of the same profile (a quarter of its epochs, at least one) is trained into that folder, so that
    every notebook runs on its own. ``origin`` of the result says which happened.
    """
    from medssl_lab.data.pool import build_pool

    folder = Path(output_dir) / "pretrain"
    checkpoint = folder / CHECKPOINT_NAME
    state = load_checkpoint(checkpoint) if checkpoint.exists() else {}
    if state.get("stopped") == "finished":
        found = load_pretrained(checkpoint, device)
        found.origin = f"loaded the pretrained checkpoint {checkpoint} ({found.describe()})"
        return found
    ready = shipped_run(profile, **overrides) if shipped else None
    if ready is not None:
        found = load_pretrained(ready.path, device)
        found.origin = (
            f"no checkpoint in {folder}: using the encoder shipped with medssl-lab ({found.describe()}; "
            f"made by `{ready.made_by}`)"
        )
        return found
    config = PretrainConfig.for_profile(profile, device=device, seed=seed, **overrides)
    config.epochs = max(1, config.epochs // 4)
    pool = build_pool(size=config.image_size, data_dir=data_dir)
    made = pretrain(config, pool, folder, resume=False).pretrained()
    made.origin = f"no checkpoint found: trained a quick one ({config.epochs} epoch(s)) into {checkpoint}"
    return made
