"""The pretraining engine: SwAV (or the SimCLR baseline) on the unlabelled pool.

One code path for three sizes (``smoke``, ``cpu``, ``gpu``). The pool
stays uint8 in memory (on the GPU when there is one); each step indexes a batch, makes
all multi-crop views on the device, runs the model under autocast where it helps, and
steps the optimizer with a warm-up + cosine schedule. Checkpoints hold everything a run
needs to continue exactly where it stopped, are written atomically and load with
``torch.load(..., weights_only=True)``. Under ``torchrun`` the batch is split across
processes (DDP) and Sinkhorn all-reduces its sums.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from medssl_lab.augment import PROFILES, MultiCropAugment, MultiCropConfig, make_generator
from medssl_lab.checks import check_choices, check_numbers, check_whole
from medssl_lab.config import progress_bar, resolve_device
from medssl_lab.data.pool import balanced_weights, describe_provenance, epoch_batches, pool_provenance
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import TrainingError
from medssl_lab.files import atomic_file
from medssl_lab.losses import (
    FeatureQueue,
    NTXentLoss,
    SwAVLoss,
    assignment_entropy,
    collapse_hint,
    freeze_prototypes_grad,
    prototype_usage,
)
from medssl_lab.models import BACKBONES, SwAVModel, make_backbone

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class PretrainConfig:
    """Every knob of a pretraining run. Build one with :meth:`for_profile` and override fields."""

    profile: str = "cpu"
    method: str = "swav"  # "swav" or "simclr" (the plain contrastive baseline)
    backbone: str = "resnet_small"
    image_size: int = 32  # pool image size
    pool_limit: int | None = None  # use a seeded random subset of the pool (None: all)
    # Equal sampling weight per tag ("source", "modality") or None (as the pool is). "source" gives
    # PneumoniaMNIST's 4,708 images half of every batch instead of 7 %: the representation
    # benchmark's PneumoniaMNIST 10-shot AUC rose from 0.931 to 0.967 (benchmarks/results/recipe_search.csv).
    balance: str | None = "source"
    epochs: int = 4
    max_steps: int | None = None  # stop early (smoke runs, tests)
    batch_size: int = 256  # global batch (split across DDP processes)
    optimizer: str = "adamw"  # "adamw" or "sgd"
    lr: float = 2e-3
    weight_decay: float = 1e-5
    warmup_fraction: float = 0.05  # of all steps
    min_lr_ratio: float = 0.01
    grad_clip: float | None = 3.0
    n_prototypes: int = 64
    hidden_dim: int = 256
    proj_dim: int = 64
    temperature: float = 0.1
    epsilon: float = 0.05
    sinkhorn_iterations: int = 3
    queue_length: int = 0  # 0: no queue
    queue_start_epoch: int = 1
    freeze_prototypes_steps: int = 50
    n_global: int = 2
    n_local: int = 4
    global_size: int = 32
    local_size: int = 16
    augment: dict[str, Any] = field(default_factory=dict)  # other MultiCropConfig fields, e.g. {"global_scale": (0.2, 1.0)}
    amp: str = "auto"  # "auto" (bf16 on CUDA if supported, else fp16; off on CPU), "bf16", "fp16", "off"
    channels_last: bool = True
    collapse_check: bool = True  # stop with hints when the loss stays at ln K or few prototypes are used
    collapse_min_steps: int = 200  # ... checked only after this many steps and half the run
    log_every: int = 10
    checkpoint_every: int = 200  # steps
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        """Refuse impossible settings before any work starts, naming the field, the value and what is allowed."""
        values = asdict(self)
        check_choices("PretrainConfig", values, dict(method=("swav", "simclr"), optimizer=("adamw", "sgd"),
                                                     balance=(None, "source", "modality"),
                                                     amp=("auto", "bf16", "fp16", "off"), backbone=BACKBONES))
        check_whole("PretrainConfig", values, dict(
            image_size=8, epochs=1, batch_size=2, n_prototypes=2, hidden_dim=1, proj_dim=1, sinkhorn_iterations=1,
            queue_length=0, queue_start_epoch=0, freeze_prototypes_steps=0, n_global=2, n_local=0, global_size=4,
            local_size=4, collapse_min_steps=0, log_every=1, checkpoint_every=1, pool_limit=1, max_steps=1,
        ), optional=("pool_limit", "max_steps"))
        values["grad_clip"] = 1.0 if self.grad_clip is None else self.grad_clip  # None: no clipping
        check_numbers("PretrainConfig", values, dict(
            lr=(0.0, math.inf), temperature=(0.0, math.inf), epsilon=(0.0, math.inf), grad_clip=(0.0, math.inf),
            weight_decay=(0.0, math.inf), warmup_fraction=(0.0, 0.99), min_lr_ratio=(0.0, 1.0),
        ), open_low=("lr", "temperature", "epsilon", "grad_clip"))

    @classmethod
    def for_profile(cls, profile: str = "cpu", **overrides: Any) -> "PretrainConfig":
        """Defaults for ``smoke`` (seconds), ``cpu`` (about 11 minutes on 2 free cores), ``cpu_long`` (the cpu
        recipe for longer, under an hour) or ``gpu`` (ResNet-18, 64 px)."""
        presets: dict[str, dict[str, Any]] = {
            "smoke": dict(image_size=32, pool_limit=512, epochs=1, batch_size=64, global_size=16, local_size=8,
                          n_local=2, n_prototypes=16, hidden_dim=64, proj_dim=32, freeze_prototypes_steps=0,
                          log_every=2, checkpoint_every=4),
            "cpu": dict(),
            "cpu_long": dict(epochs=8),  # the cpu recipe for twice the epochs: the best downstream gain on validation
            "gpu": dict(backbone="resnet18", image_size=64, epochs=30, batch_size=512, global_size=64, local_size=32,
                        n_local=6, n_prototypes=300, hidden_dim=2048, proj_dim=128, queue_length=3840,
                        queue_start_epoch=5, freeze_prototypes_steps=300, lr=1e-3, checkpoint_every=1000),
        }
        if profile not in presets:
            raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown PretrainConfig fields {sorted(unknown)}")
        return cls(profile=profile, **{**presets[profile], **overrides})

    def augment_config(self) -> MultiCropConfig:
        """The multi-crop settings of this run."""
        unknown = set(self.augment) - {f.name for f in fields(MultiCropConfig)}
        if unknown:
            raise ValueError(f"PretrainConfig.augment has unknown MultiCropConfig fields {sorted(unknown)}")
        return MultiCropConfig.for_profile(
            self.profile, self.image_size, n_global=self.n_global, n_local=self.n_local,
            global_size=self.global_size, local_size=self.local_size, **self.augment,
        )


def build_model(config: PretrainConfig) -> SwAVModel:
    """The backbone + head + prototypes that ``config`` describes."""
    backbone, feat_dim = make_backbone(config.backbone, image_size=config.global_size)
    return SwAVModel(backbone, feat_dim, config.hidden_dim, config.proj_dim, config.n_prototypes)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The mixed-precision type of ``amp`` on ``device`` (None: full precision); the one rule for every loop."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    if amp in ("fp16", "auto"):
        return torch.float16
    raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {amp!r}")


def save_atomic(obj: dict, path: Path) -> None:
    """``torch.save`` without ever leaving a truncated checkpoint (see :func:`atomic_file`)."""
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint safely (tensors and plain containers only), with a clear error when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: no checkpoint there. Run `medssl-lab pretrain --out {path.parent}` first.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise TrainingError(f"{path}: not a readable medssl-lab checkpoint ({exc}). Delete it and pretrain again.") from exc
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise TrainingError(f"{path}: not a medssl-lab checkpoint (no model/config). Delete it and pretrain again.")
    return state


def load_pretrained(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[SwAVModel, PretrainConfig]:
    """The trained model (in eval mode) and its config, from a checkpoint file or its folder."""
    path = Path(path)
    state = load_checkpoint(path / CHECKPOINT_NAME if path.is_dir() else path)
    config = PretrainConfig(**state["config"])
    model = build_model(config)
    model.load_state_dict(state["model"])
    return model.to(resolve_device(device)).eval(), config


@dataclass
class History:
    """What a run logged: one row per logging step, plus why it stopped."""

    rows: list[dict[str, float]] = field(default_factory=list)
    stopped: str = ""

    def column(self, name: str) -> np.ndarray:
        return np.array([r[name] for r in self.rows], dtype=float)

    def write_csv(self, path: Path) -> None:
        if not self.rows:
            return
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)


class Pretrainer:
    """Owns one pretraining run: model, optimizer, schedule, randomness, history and checkpoints.

    Example:
        >>> trainer = Pretrainer(PretrainConfig.for_profile("smoke"), pool, out_dir="runs/smoke")
        >>> history = trainer.fit()
    """

    def __init__(self, config: PretrainConfig, pool: ImageSet, out_dir: str | os.PathLike | None = None) -> None:
        if len(pool) == 0:
            raise TrainingError("the pretraining pool is empty; build it with medssl_lab.data.pool.build_pool")
        self.config = config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.out_dir is not None and self.out_dir.exists() and not self.out_dir.is_dir():
            raise TrainingError(f"{self.out_dir} is a file, not a folder for checkpoint.pt; pass another --out.")
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        self.device = resolve_device(config.device)
        if dist.is_initialized() and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        if config.batch_size % self.world:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by the {self.world} processes")
        torch.manual_seed(config.seed)
        if config.pool_limit is not None and config.pool_limit < len(pool):
            keep = np.sort(np.random.default_rng(config.seed).choice(len(pool), config.pool_limit, replace=False))
            pool = pool.subset(keep)
        if len(pool) < config.batch_size:
            raise TrainingError(f"the pool has {len(pool)} images, fewer than one batch of {config.batch_size}")
        self.pool = pool
        self.provenance = pool_provenance(pool)
        self.images = torch.from_numpy(np.ascontiguousarray(pool.images)).to(self.device)
        self.weights = balanced_weights(getattr(pool, config.balance)) if config.balance else None
        self.augment = MultiCropAugment(config.augment_config())
        self.model = build_model(config).to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net: nn.Module = self.model
        if self.world > 1:
            if self.device.type == "cuda":
                self.net = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.net = nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.ssl_loss: nn.Module = (
            SwAVLoss(config.temperature, config.epsilon, config.sinkhorn_iterations)
            if config.method == "swav" else NTXentLoss(temperature=0.2, gather_distributed=self.world > 1)
        )
        self.queue = (
            FeatureQueue(config.queue_length // self.world, config.proj_dim, config.n_global, config.queue_start_epoch).to(self.device)
            if config.queue_length and config.method == "swav" else None
        )
        self.steps_per_epoch = len(pool) // config.batch_size
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if config.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        elif config.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
        else:
            raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {config.optimizer!r}")
        self.amp_dtype = autocast_dtype(config.amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.aug_generator = make_generator(config.seed * 1000 + self.rank, self.device)
        self.step = 0
        self.train_seconds = 0.0  # wall time spent in fit(), summed over resumes: the run's compute cost
        self.history = History()

    # ------------------------------------------------------------------ schedule
    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to ``min_lr_ratio * lr``."""
        c = self.config
        warmup = max(1, int(c.warmup_fraction * self.total_steps))
        if step < warmup:
            return c.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, self.total_steps - warmup)
        return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    def _batch_order(self, epoch: int) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(self.config.seed * 7919 + epoch)
        return list(epoch_batches(len(self.pool), self.config.batch_size, gen, self.weights))

    # ------------------------------------------------------------------ one step
    def train_step(self, index: torch.Tensor, epoch: int) -> dict[str, float]:
        """One optimisation step on the pool images at ``index`` (this process's share)."""
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        batch = self.images[index.to(self.images.device)]
        views = self.augment(batch, generator=self.aug_generator)
        if c.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            embeddings, scores = self.net(views)
        if c.method == "swav":
            use_queue = self.queue is not None and self.queue.enabled(epoch)
            queue_scores = self.queue.scores(self.model.prototypes) if use_queue else None
            loss = self.ssl_loss(scores[: c.n_global], scores[c.n_global :], queue_scores)
            if use_queue:
                self.queue.push([e.detach() for e in embeddings[: c.n_global]])
        else:
            loss = self.ssl_loss(embeddings[0].float(), embeddings[1].float())
        if not torch.isfinite(loss):
            raise TrainingError(
                f"the loss became {loss.item()} at step {self.step} (epoch {epoch}). Try a lower lr "
                f"(now {c.lr}), a longer warm-up, grad_clip, or amp='bf16'/'off' instead of fp16. "
                f"The last good checkpoint is kept in {self.out_dir}."
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.step < c.freeze_prototypes_steps:
            freeze_prototypes_grad(self.model)
        if c.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.model.normalize_prototypes()
        metrics = {"loss": float(loss.detach())}
        if self.step % c.log_every == 0 or self.step == self.total_steps - 1:
            with torch.no_grad():
                high = [s.detach().float() for s in scores[: c.n_global]]
                metrics["prototype_usage"] = prototype_usage(high)
                probs = [torch.softmax(s / c.temperature, dim=1) for s in high]
                metrics["entropy_sample"], metrics["entropy_mean"] = assignment_entropy(probs)
        return metrics

    # ------------------------------------------------------------------ the loop
    def fit(
        self,
        progress: bool = True,
        callback: Callable[["Pretrainer", dict], None] | None = None,
        stop_after: int | None = None,
    ) -> History:
        """Train until ``epochs`` (or ``max_steps``) are done, continuing from ``self.step``.

        Args:
            progress: show a tqdm bar (notebook-aware) on the first process.
            callback: called as ``callback(trainer, row)`` after each logged step (live plots).
            stop_after: pause after this many more steps (the run can be continued later).
        """
        c = self.config
        per_rank = c.batch_size // self.world
        bar = progress_bar(total=self.total_steps, initial=self.step, desc=f"{c.method} {c.profile}",
                           disable=not progress or self.rank != 0, dynamic_ncols=True)
        self.model.train()
        start_time, start_step, window_loss = time.perf_counter(), self.step, []
        tick = start_time
        end = self.total_steps if stop_after is None else min(self.total_steps, self.step + stop_after)
        try:
            while self.step < end:
                epoch, within = divmod(self.step, self.steps_per_epoch)
                index = self._batch_order(epoch)[within][self.rank * per_rank : (self.rank + 1) * per_rank]
                metrics = self.train_step(index, epoch)
                window_loss.append(metrics["loss"])
                self.step += 1
                self.train_seconds += time.perf_counter() - tick
                tick = time.perf_counter()
                bar.update(1)
                if "prototype_usage" in metrics:
                    elapsed = time.perf_counter() - start_time
                    row = {"step": self.step, "epoch": self.step / self.steps_per_epoch, "lr": self.lr_at(self.step - 1),
                           **metrics, "loss_avg": float(np.mean(window_loss)),
                           "img_per_s": (self.step - start_step) * c.batch_size / max(elapsed, 1e-9)}
                    window_loss = []
                    self.history.rows.append(row)
                    bar.set_postfix(loss=f"{row['loss_avg']:.3f}", usage=f"{row['prototype_usage']:.2f}")
                    if callback is not None:
                        callback(self, row)
                    self._check_collapse(row)
                if self.out_dir is not None and (self.step % c.checkpoint_every == 0 or self.step == self.total_steps):
                    self.save()
        finally:
            bar.close()
        self.history.stopped = "finished" if self.step >= self.total_steps else "paused"
        if self.out_dir is not None:
            self.save()
        return self.history

    def _check_collapse(self, row: dict) -> None:
        c = self.config
        if not c.collapse_check or c.method != "swav" or self.step < max(c.collapse_min_steps, self.total_steps // 2):
            return
        hint = collapse_hint(row["loss_avg"], c.n_prototypes, row["prototype_usage"])
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
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "train_seconds": self.train_seconds,
            "aug_rng": self.aug_generator.get_state(),
            "queue": self.queue.state_dict() if self.queue is not None else {},
            "history": self.history.rows,
            "stopped": self.history.stopped,
        }

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the checkpoint (first process only) atomically; history also as CSV beside it."""
        target = Path(path) if path is not None else self.out_dir / CHECKPOINT_NAME
        if self.rank == 0:
            save_atomic(self.state_dict(), target)
            self.history.write_csv(target.with_name("history.csv"))
        return target

    def load_state(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; every setting that changes the computation, and the data, must match."""
        # through JSON, as reproduce.py's settings.json: tuples and lists compare equal
        saved = json.loads(json.dumps(asdict(PretrainConfig(**state["config"]))))
        current = json.loads(json.dumps(asdict(self.config)))
        changed = [f"{name} {saved[name]!r} -> {current[name]!r}" for name in current
                   if name not in FREE_ON_RESUME and saved[name] != current[name]]
        if changed:
            where = self.out_dir if self.out_dir is not None else "the checkpoint"
            raise TrainingError(f"cannot resume the run in {where}: it was made with other settings ({'; '.join(changed)}). "
                                f"Use another output folder, or start over with resume=False (notebook 01's "
                                f"parameter; `medssl-lab pretrain --restart`).")
        saved_data = state.get("data", {}).get("pixels_hash")
        if saved_data and saved_data != self.provenance["pixels_hash"]:
            raise TrainingError(f"cannot resume the run in {self.out_dir}: it was trained on other data "
                                f"({describe_provenance(state['data'])}; now {describe_provenance(self.provenance)}). "
                                f"Check --data-dir, or start over with `medssl-lab pretrain --restart`.")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.aug_generator.set_state(state["aug_rng"].to(self.aug_generator.get_state().device))
        if self.queue is not None and state["queue"]:
            self.queue.load_state_dict(state["queue"])
        self.history = History(rows=list(state["history"]), stopped="")


#: Settings that may differ when a run is resumed: they do not change what it computes.
FREE_ON_RESUME = frozenset({"profile", "max_steps", "device", "amp", "channels_last", "collapse_check",
                            "collapse_min_steps", "log_every", "checkpoint_every"})


def setup_distributed(device: str = "auto") -> int:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1); returns this process's rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.get_rank() if dist.is_initialized() else 0
    backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return dist.get_rank()


def pretrain(
    config: PretrainConfig,
    pool: ImageSet,
    out_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    callback: Callable[[Pretrainer, dict], None] | None = None,
) -> Pretrainer:
    """Run (or continue, when ``out_dir`` holds a checkpoint and ``resume``) a pretraining run."""
    trainer = Pretrainer(config, pool, out_dir)
    checkpoint = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None else None
    if resume and checkpoint is not None and checkpoint.exists():
        trainer.load_state(load_checkpoint(checkpoint))
    trainer.fit(progress=progress, callback=callback)
    return trainer


def ensure_pretrained(
    output_dir: str | os.PathLike,
    profile: str = "cpu",
    data_dir: str | os.PathLike | None = None,
    device: str = "auto",
    seed: int = 0,
    **overrides: Any,
) -> tuple[SwAVModel, PretrainConfig, str]:
    """Load-or-train: the checkpoint that notebook 01 writes to ``output_dir/pretrain``, or a quick one.

    When no finished checkpoint is there, a short run of the same profile (a quarter of
    its epochs, at least one) is trained into that folder, so that every later notebook
    runs on its own. Returns (model in eval mode, its config, a sentence saying which happened).
    """
    from medssl_lab.data.pool import build_pool

    folder = Path(output_dir) / "pretrain"
    checkpoint = folder / CHECKPOINT_NAME
    state = load_checkpoint(checkpoint) if checkpoint.exists() else {}
    if state.get("stopped") == "finished":
        model, config = load_pretrained(checkpoint, device)
        return model, config, (f"loaded the pretrained checkpoint {checkpoint} ({config.profile} profile; trained on "
                               f"{describe_provenance(state.get('data'))})")
    config = PretrainConfig.for_profile(profile, device=device, seed=seed, **overrides)
    config.epochs = max(1, config.epochs // 4)
    pool = build_pool(size=config.image_size, data_dir=data_dir)
    trainer = pretrain(config, pool, folder, resume=False)
    return trainer.model.eval(), config, f"no checkpoint found: trained a quick one ({config.epochs} epoch(s)) into {checkpoint}"
