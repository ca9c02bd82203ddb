"""Downstream training: the arms of the paper's experiment, all through one loop.

The arms differ *only* in how the backbone starts and what is trained:

* ``scratch``: random initialisation (the pretrained architecture when one is given), everything trained;
* ``linear``: pretrained backbone frozen, a linear head trained;
* ``finetune``: pretrained backbone, everything trained;
* ``hybrid``: pretrained backbone, everything trained on the supervised loss of the labelled batch **plus**
  ``ssl_weight`` times the pretraining objective on a batch of unlabelled pool images (Ghesu et al. 2022).

Same data order, augmentation, optimiser and evaluation for every arm: the labelled batch order, the labelled
augmentation and the hybrid arm's unlabelled side each draw from their own seeded random stream, so every arm sees
the same labelled batches, augmented the same way, step by step. Validation AUC every ``eval_every`` steps; the best
step is chosen on validation and the test split is scored once, with the weights of that step.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medssl_lab.augment import MultiCropAugment, MultiCropConfig, make_generator
from medssl_lab.checks import check_choices, check_numbers, check_whole
from medssl_lab.config import progress_bar, resolve_device
from medssl_lab.data.resize import resize_uint8
from medssl_lab.data.stack import ImageStack
from medssl_lab.data.types import ImageSet
from medssl_lab.evaluation.convergence import steps_to_reach
from medssl_lab.evaluation.inference import ImagesLike, image_array, predict_proba
from medssl_lab.evaluation.metrics import check_labelled, check_task, compute_metrics, n_outputs, targets
from medssl_lab.evaluation.perturbations import prepare
from medssl_lab.models import BACKBONES, Classifier, SwAVModel, make_backbone
from medssl_lab.pretrain import Pretrained, load_pretrained, make_objective
from medssl_lab.profiles import DOWNSTREAM, profile_settings
from medssl_lab.tblog import RunLog, run_log
from medssl_lab.threads import adapt_threads
from medssl_lab.training import BatchReader, OptimizerStep, autocast, autocast_dtype, check_finite, endless_batches


@dataclass(frozen=True)
class Arm:
    """How one arm starts and what it trains; everything else is the same for every arm."""

    name: str
    pretrained: bool  # the backbone starts from the pretrained weights (else a fresh initialisation)
    frozen: bool  # the backbone is frozen: only the new head learns
    ssl: bool  # the pretraining objective on unlabelled pool batches is added to the supervised loss

    def head_lr(self, cfg: TrainConfig) -> float:
        """A lone linear head on frozen features needs larger steps (``linear_lr``)."""
        return cfg.linear_lr if self.frozen and cfg.linear_lr is not None else cfg.lr

    def backbone_lr(self, cfg: TrainConfig) -> float:
        """Pretrained weights move at ``lr * pretrained_lr_scale``; fresh ones at ``lr``."""
        return cfg.lr * cfg.pretrained_lr_scale if self.pretrained else cfg.lr


#: The arms of the experiment, by name.
ARM_TYPES: dict[str, Arm] = {
    arm.name: arm
    for arm in (
        Arm("scratch", pretrained=False, frozen=False, ssl=False),
        Arm("linear", pretrained=True, frozen=True, ssl=False),
        Arm("finetune", pretrained=True, frozen=False, ssl=False),
        Arm("hybrid", pretrained=True, frozen=False, ssl=True),
    )
}
#: Their names, in the order of every table.
ARMS: tuple[str, ...] = tuple(ARM_TYPES)
#: The random streams of one run, each seeded from the run's seed and its place here (see :func:`random_streams`).
STREAMS: tuple[str, ...] = ("order", "augment", "ssl_order", "ssl_views")


def random_streams(seed: int) -> dict[str, torch.Generator]:
    """One generator per purpose: what one arm draws for its own needs never shifts what another arm sees."""
    return {name: make_generator(seed * len(STREAMS) + i) for i, name in enumerate(STREAMS)}


@dataclass
class TrainConfig:
    """Knobs of :func:`train_classifier`; every arm of one comparison gets the same values.

    The learning rate is constant (no schedule) so that a curve does not depend on the budget and steps-to-target
    compare fairly between arms and budgets. The defaults were chosen on PneumoniaMNIST's validation split
    (``benchmarks/downstream_ablation.py``). What comes from the pretraining (architecture, image size, the hybrid
    arm's views and SSL loss) is read from the :class:`~medssl_lab.pretrain.Pretrained` handle, not set here.
    """

    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    linear_lr: float | None = 3e-2  # the linear arm's lr (None: lr): a lone linear head needs larger steps
    pretrained_lr_scale: float = 1.0  # finetune / hybrid: lr of the pretrained weights = lr * this (< 1 did worse)
    weight_decay: float = 1e-4
    eval_every: int = 25
    dense_eval: tuple[int, int] | None = None  # (every, until): evaluate more often early, where convergence is decided
    image_size: int | None = None  # None: the pretrained encoder's size, else the images' own size
    backbone: str = "resnet_small"  # the scratch arm's architecture when no pretrained encoder is given
    augment: bool = True  # mild crop / rotation / intensity jitter of the labelled batches
    ssl_weight: float = 1.0  # hybrid: total = supervised + ssl_weight * SSL objective
    ssl_batch_size: int | None = None  # hybrid: unlabelled images per step (None: batch_size)
    head_warmup_steps: int = 0  # finetune / hybrid: train only the new head (at linear_lr) this many steps first
    layer_decay: float = 1.0  # finetune / hybrid: each backbone stage below the head learns at this times the next
    patience: int | None = None  # stop after this many validations without a better AUC (None: run every step)
    target: float | None = None  # val AUC for TrainResult.steps_to_target
    eval_batch_size: int = 512
    amp: str = "auto"  # "auto" (on CUDA bf16 when supported, else fp16; off elsewhere), "bf16", "fp16", "off"
    device: str = "auto"
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        check_whole(
            "TrainConfig",
            values,
            dict(
                steps=1,
                batch_size=2,
                eval_every=1,
                eval_batch_size=1,
                image_size=8,
                ssl_batch_size=2,
                head_warmup_steps=0,
                patience=1,
            ),
            optional=("image_size", "ssl_batch_size", "patience"),
        )
        values["linear_lr"] = self.linear_lr or 1.0  # None: the shared lr
        check_numbers(
            "TrainConfig",
            values,
            dict(
                lr=(0.0, math.inf),
                linear_lr=(0.0, math.inf),
                pretrained_lr_scale=(0.0, math.inf),
                weight_decay=(0.0, math.inf),
                ssl_weight=(0.0, math.inf),
                layer_decay=(0.0, 1.0),
            ),
            open_low=("lr", "linear_lr", "layer_decay"),
        )
        check_choices("TrainConfig", values, dict(backbone=BACKBONES, amp=("auto", "bf16", "fp16", "off")))
        if self.dense_eval is not None and (len(self.dense_eval) != 2 or int(self.dense_eval[0]) < 1):
            raise ValueError(f"TrainConfig.dense_eval must be (every >= 1, until), got {self.dense_eval}")

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> TrainConfig:
        """The downstream sizes of a profile (:data:`medssl_lab.profiles.DOWNSTREAM`), with ``overrides`` on top."""
        return cls(**{**profile_settings(DOWNSTREAM, profile), **overrides})

    def is_eval_step(self, step: int) -> bool:
        """Validate every ``eval_every`` steps, at the last step, and every ``dense_eval[0]`` steps
        up to ``dense_eval[1]``.

        Steps-to-target is only as fine as this grid; pretrained arms often reach the target
        within a few steps, so the early grid must be fine for the reduction to show.
        """
        if step % self.eval_every == 0 or step == self.steps:
            return True
        return self.dense_eval is not None and step <= self.dense_eval[1] and step % self.dense_eval[0] == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain values for result tables."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class TrainResult:
    """What one downstream run produced.

    Attributes:
        arm: the arm trained.
        curve: ``(step, val_auc)`` at every validation step.
        best_step: the step of the best validation AUC (the weights kept).
        best_val_auc: that AUC.
        test_auc, test_acc: the test split, scored once, at ``best_step``.
        steps_to_target: first evaluated step with val AUC >= ``config.target`` (None: never / no target).
        losses: per step ``{"step", "loss", "supervised", "ssl"}`` (ssl 0 except for hybrid).
        seconds: wall time of training and evaluation.
        model: the classifier with the best weights, in eval mode.
        config: the knobs used (``image_size`` filled in).
    """

    arm: str
    curve: list[tuple[int, float]]
    best_step: int
    best_val_auc: float
    test_auc: float
    test_acc: float
    steps_to_target: int | None
    losses: list[dict[str, float]]
    seconds: float
    n_train: int
    model: Classifier = field(repr=False)
    config: TrainConfig = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """One flat row for CSV / Markdown tables (no model, no curve)."""
        return {
            "arm": self.arm,
            "n_train": self.n_train,
            "steps": self.config.steps,
            "seed": self.config.seed,
            "best_step": self.best_step,
            "best_val_auc": self.best_val_auc,
            "test_auc": self.test_auc,
            "test_acc": self.test_acc,
            "steps_to_target": self.steps_to_target,
            "seconds": self.seconds,
        }

    def record(self, **keys: Any) -> dict[str, Any]:
        """:meth:`summary` with the validation curve and ``keys`` (task, fraction...): one run of a results table."""
        return {**keys, **self.summary(), "curve": [list(point) for point in self.curve]}


# --------------------------------------------------------------------------- pieces of the loop


def supervised_augment(size: int) -> MultiCropAugment:
    """Mild, label-preserving jitter: one view at full size, small crop, rotation and contrast change."""
    return MultiCropAugment(
        MultiCropConfig(
            n_global=1,
            global_size=size,
            global_scale=(0.7, 1.0),
            n_local=0,
            aspect_ratio=(0.9, 1.1),
            max_rotation_deg=10.0,
            scale_jitter=(0.95, 1.05),
            intensity_p=0.5,
            intensity_scale=(0.9, 1.1),
            intensity_shift=(-0.05, 0.05),
            gamma=(0.85, 1.2),
            window_p=0.0,
            noise_p=0.0,
            blur_p=0.0,
        )
    )


def supervised_loss(logits: Tensor, target: Tensor, multilabel: bool) -> Tensor:
    """Cross-entropy (binary tasks as 2-class softmax, as MedMNIST scores them), or BCE for multi-label tasks."""
    if multilabel:
        per = F.binary_cross_entropy_with_logits(
            logits.float().reshape(len(target), -1), target.float(), reduction="none"
        )
    else:
        per = F.cross_entropy(logits.float(), target.long(), reduction="none")
    return per.sum() / per.numel()


@contextlib.contextmanager
def keep_bn_statistics(module: nn.Module) -> Iterator[None]:
    """Batch norm normalises with batch statistics but leaves its running statistics alone.

    The hybrid arm's SSL batches come from the pool, not from the task; if they moved the
    running statistics, the classifier would be evaluated with the pool's statistics and
    its probabilities (so its ACC at the 0.5 threshold) would shift from seed to seed.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum


def uint8_images(images: ImagesLike, size: int, device: torch.device) -> Tensor:
    """Training images as a uint8 ``(N, size, size)`` tensor on ``device`` (augmented and normalised per batch)."""
    arr = image_array(images)
    arr = arr.numpy() if isinstance(arr, Tensor) else np.asarray(arr)  # a store's images are read here, all of them
    if arr.ndim == 4:
        arr = arr[:, 0]
    if arr.dtype != np.uint8:
        raise TypeError(f"training images must be uint8, got {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(resize_uint8(np.asarray(arr), size))).to(device)


def as_pretrained(pretrained: Pretrained | str | os.PathLike | None) -> Pretrained | None:
    """A private copy of the pretrained handle (a checkpoint path is loaded): training never changes the caller's."""
    if pretrained is None:
        return None
    if isinstance(pretrained, Pretrained):
        return pretrained.copy()
    if isinstance(pretrained, (str, os.PathLike)):
        return load_pretrained(pretrained, "cpu")
    raise TypeError(
        f"pretrained must be a Pretrained (e.g. from load_pretrained or ensure_pretrained), a checkpoint "
        f"path or None, got {type(pretrained).__name__}"
    )


def build_classifier(arm: Arm, pre: Pretrained | None, backbone: str, size: int, n_out: int) -> Classifier:
    """The arm's classifier: the pretrained backbone (frozen if the arm says so) or a fresh one (the pretrained
    architecture when known), and a new linear head."""
    if arm.pretrained:
        assert pre is not None
        net, feat_dim = pre.model.backbone, pre.model.feat_dim
    else:
        net, feat_dim = pre.fresh_backbone() if pre is not None else make_backbone(backbone, image_size=size)
    model = Classifier(net, feat_dim, n_out)
    if arm.frozen:
        for p in model.backbone.parameters():
            p.requires_grad_(False)
    return model


def backbone_stages(backbone: nn.Module) -> list[list[nn.Parameter]]:
    """The backbone's trainable parameters by stage, input first: one list per top-level child that has any (a
    ResNet: stem convolution, its norm, then each residual layer), for learning rates that decay towards the input."""
    stages = [[p for p in child.parameters() if p.requires_grad] for child in backbone.children()]
    loose = [p for name, p in backbone.named_parameters(recurse=False) if p.requires_grad]
    return [stage for stage in [loose, *stages] if stage]


def make_optimizer(arm: Arm, model: Classifier, ssl_model: SwAVModel | None, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW: the new head at the arm's head lr, the backbone (and for hybrid the projection head and prototypes)
    at its backbone lr; with ``layer_decay < 1`` a pretrained backbone's stage ``i`` of ``n`` (input first) learns at
    ``backbone lr * layer_decay ** (n - i)``, so the early, generic filters move least (layer-wise lr decay)."""
    head = list(model.head.parameters())
    stages = backbone_stages(model.backbone)
    decay = cfg.layer_decay if arm.pretrained else 1.0
    groups: list[dict[str, Any]] = [{"params": head, "lr": arm.head_lr(cfg)}]
    groups += [
        {"params": stage, "lr": arm.backbone_lr(cfg) * decay ** (len(stages) - i)} for i, stage in enumerate(stages)
    ]
    if ssl_model is not None:
        shared = {id(p) for p in head} | {id(p) for stage in stages for p in stage}
        extra = [p for p in ssl_model.parameters() if p.requires_grad and id(p) not in shared]
        groups += [{"params": extra, "lr": arm.backbone_lr(cfg)}] if extra else []
    return torch.optim.AdamW(groups, lr=arm.head_lr(cfg), weight_decay=cfg.weight_decay)


class _HybridPart:
    """The hybrid arm's unlabelled side: pool batches, their views, and the pretraining objective on them.

    Its batch order and views draw from their own streams, so adding it leaves the labelled side untouched.
    """

    def __init__(
        self,
        pre: Pretrained,
        pool: ImageSet | np.ndarray,
        size: int,
        cfg: TrainConfig,
        device: torch.device,
        streams: dict[str, torch.Generator],
    ) -> None:
        self.model = pre.model.to(device)
        self.objective = make_objective(self.model, pre.config, continued=True)
        self.augment = MultiCropAugment(pre.views())
        images = pool.images if isinstance(pool, ImageSet) else pool
        # a pool store is read batch by batch at the pretrained size; an array goes to the device at that size
        source = images.resized(size) if isinstance(images, ImageStack) else uint8_images(pool, size, device)
        self.reader: BatchReader = BatchReader(source, device)
        batch = min(cfg.ssl_batch_size or cfg.batch_size, len(images))
        if batch < 2:
            raise ValueError(f"the hybrid pool needs at least 2 images, got {len(images)}")
        self.batches = endless_batches(len(images), batch, streams["ssl_order"])
        self.generator = streams["ssl_views"]

    def loss(self, amp: torch.dtype | None) -> Tensor:
        views = self.augment(self.reader.get(next(self.batches)), generator=self.generator)
        self.model.train()
        with keep_bn_statistics(self.model):
            loss, _ = self.objective(views, amp=amp)
        return loss


# --------------------------------------------------------------------------- the loop


def _check_inputs(arm: str, train: ImageSet, val: ImageSet, test: ImageSet, pretrained: object, pool: object) -> Arm:
    """The arm named ``arm``, after checking that the splits and inputs make a meaningful run of it."""
    if arm not in ARM_TYPES:
        raise ValueError(f"unknown arm {arm!r}; choose one of {ARMS}")
    check_task(train.task)
    if val.task != train.task or test.task != train.task:
        raise ValueError(f"train/val/test tasks differ: {train.task!r}, {val.task!r}, {test.task!r}")
    if len(train) < 2:
        raise ValueError(f"need at least 2 labelled training images, got {len(train)}")
    for name, split in (("train", train), ("val", val), ("test", test)):
        check_labelled(name, split)
    if ARM_TYPES[arm].pretrained and pretrained is None:
        raise ValueError(f"arm {arm!r} needs pretrained= (a Pretrained or a checkpoint path)")
    if ARM_TYPES[arm].ssl and pool is None:
        raise ValueError(f"arm {arm!r} needs pool= (unlabelled images for the SSL part)")
    return ARM_TYPES[arm]


class _ArmRun:
    """One arm's training state: classifier, optimizer, labelled batches and, for hybrid, the unlabelled side."""

    def __init__(
        self,
        arm: Arm,
        train: ImageSet,
        pre: Pretrained | None,
        pool: ImageSet | np.ndarray | None,
        cfg: TrainConfig,
        n_out: int,
        device: torch.device,
    ) -> None:
        self.arm, self.cfg, self.device = arm, cfg, device
        self.step = 0  # the step in progress (where a non-finite loss stopped the run)
        self.multilabel = check_task(train.task)
        size = int(cfg.image_size or 0)
        self.model = build_classifier(arm, pre, cfg.backbone, size, n_out).to(device)
        self.streams = random_streams(cfg.seed)
        self.hybrid = (
            _HybridPart(pre, pool, size, cfg, device, self.streams) if arm.ssl and pre and pool is not None else None
        )
        self.optimizer = make_optimizer(arm, self.model, self.hybrid.model if self.hybrid else None, cfg)
        self.optimizer_step = OptimizerStep(self.optimizer, autocast_dtype(cfg.amp, device), device)
        self.images = uint8_images(train, size, device)
        self.labels = torch.as_tensor(targets(train.labels, self.multilabel), device=device)
        self.augment = supervised_augment(size) if cfg.augment else None
        self.batches = endless_batches(len(self.images), min(cfg.batch_size, len(self.images)), self.streams["order"])
        self.warmup = cfg.head_warmup_steps if arm.pretrained and not arm.frozen else 0
        self._freeze_backbone(self.warmup > 0)

    def _freeze_backbone(self, frozen: bool) -> None:
        """Head warm-up: the backbone is frozen and the head learns at a lone head's lr (``linear_lr``), as in the
        linear arm; after it, everything trains and the head at the arm's own lr (linear probe, then fine-tune)."""
        for p in self.model.backbone.parameters():
            p.requires_grad_(not frozen and not self.arm.frozen)
        warm_head = Arm("warm-up", pretrained=True, frozen=True, ssl=False)
        self.optimizer.param_groups[0]["lr"] = (warm_head if frozen else self.arm).head_lr(self.cfg)

    def labelled_batch(self) -> tuple[Tensor, Tensor]:
        """The next labelled batch: its indices and its (augmented, normalised) images."""
        index = next(self.batches).to(self.device)
        batch = self.images[index]
        if self.augment is None:
            return index, prepare(batch)
        return index, self.augment(batch, generator=self.streams["augment"])[0]

    def train_step(self, step: int) -> dict[str, float]:
        """One optimisation step; returns the loss and its supervised and SSL parts."""
        self.step = step
        if self.warmup and step == self.warmup + 1:
            self._freeze_backbone(False)
        self.model.train()
        if self.arm.frozen or step <= self.warmup:
            self.model.backbone.eval()  # frozen: batch-norm statistics stay the pretrained ones
        index, x = self.labelled_batch()
        with autocast(self.optimizer_step.amp, self.device):
            logits = self.model(x)
        sup = supervised_loss(logits, self.labels[index], self.multilabel)
        ssl = self.hybrid.loss(self.optimizer_step.amp) if self.hybrid else torch.zeros((), device=self.device)
        loss = sup + self.cfg.ssl_weight * ssl
        check_finite(
            loss, f"in the {self.arm.name} arm at step {step}", f"Lower lr (now {self.cfg.lr}) or set amp='off'."
        )
        self.optimizer_step(loss, after=self.hybrid.objective.after_optimizer_step if self.hybrid else None)
        return {
            "step": step,
            "loss": float(loss.detach()),
            "supervised": float(sup.detach()),
            "ssl": float(ssl.detach()),
        }

    def score(self, split: ImageSet) -> dict[str, float]:
        """AUC and ACC of the classifier as it is now on ``split``."""
        cfg = self.cfg
        probs = predict_proba(self.model, split, split.task, cfg.image_size, cfg.eval_batch_size, self.device)
        return compute_metrics(split.task, split.labels, probs)


def _fit(
    run: _ArmRun, val: ImageSet, events: RunLog
) -> tuple[list[tuple[int, float]], list[dict[str, float]], int, float]:
    """Train every step, validating on the grid; keep the best validation weights in ``run.model``.

    ``events`` get the loss terms of every step (``train/``; ``ssl`` for the hybrid arm only) and the validation AUC
    (``val/auc``).

    Returns the validation curve, the per-step losses, the best step and its AUC (nan when never defined).
    """
    cfg = run.cfg
    curve: list[tuple[int, float]] = []
    losses: list[dict[str, float]] = []
    best_auc, best_step, best_state = -math.inf, cfg.steps, None
    steps: Any = range(1, cfg.steps + 1)
    if cfg.progress:
        steps = progress_bar(steps, desc=f"train {run.arm.name}", dynamic_ncols=True)
    terms = ("loss", "supervised", "ssl") if run.hybrid else ("loss", "supervised")
    since_best = 0
    for step in steps:
        losses.append(run.train_step(step))
        adapt_threads()  # other work started or stopped beside the run: the thread count follows
        events.scalars({name: losses[-1][name] for name in terms}, step, prefix="train/")
        if cfg.is_eval_step(step):
            auc = run.score(val)["auc"]
            curve.append((step, auc))
            events.scalars({"auc": auc}, step, prefix="val/")
            since_best += 1
            if math.isfinite(auc) and auc > best_auc:
                best_auc, best_step, since_best = auc, step, 0
                best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
            if cfg.patience is not None and since_best >= cfg.patience:
                break  # early stopping: no better validation AUC for `patience` validations
    if best_state is None:
        warnings.warn(
            f"{run.arm.name}: validation AUC was never defined; the final weights are kept",
            RuntimeWarning,
            stacklevel=2,
        )
        return curve, losses, best_step, float("nan")
    run.model.load_state_dict(best_state)
    return curve, losses, best_step, best_auc


def train_classifier(
    arm: str,
    train: ImageSet,
    val: ImageSet,
    test: ImageSet,
    pretrained: Pretrained | str | os.PathLike | None = None,
    pool: ImageSet | np.ndarray | None = None,
    config: TrainConfig | None = None,
    log_dir: str | os.PathLike | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train one arm of the downstream experiment with the loop every arm shares.

    Each step draws a labelled batch (a fresh permutation per epoch), jitters it mildly and minimises
    :func:`supervised_loss`; ``hybrid`` adds ``ssl_weight`` times the pretraining objective on views of an
    unlabelled ``pool`` batch. AdamW with a constant learning rate. The best validation weights are kept and the
    test split is scored once with them. A :class:`Pretrained` and its checkpoint path give identical results.

    Args:
        arm: ``"scratch"``, ``"linear"``, ``"finetune"`` or ``"hybrid"``.
        train, val, test: labelled splits (``train`` may be a label fraction of the split).
        pretrained: the encoder (a :class:`Pretrained`, copied and never modified, or a checkpoint file / run
            folder); required by every arm but ``scratch``, which takes only its architecture.
        pool: unlabelled images for ``hybrid`` (ImageSet or uint8 array); resized to the training size.
        config: the knobs (:class:`TrainConfig`); ``overrides`` replace its fields.
        log_dir: a folder for TensorBoard event files (:mod:`medssl_lab.tblog`): the loss terms per step, the
            validation AUC, the test AUC and ACC at the best step, a non-finite loss as text. None: none written.
    """
    arm_type = _check_inputs(arm, train, val, test, pretrained, pool)
    cfg = replace(config or TrainConfig(), **overrides)
    start_time = time.perf_counter()
    pre = as_pretrained(pretrained)  # loaded before seeding: a path and an object draw the same random numbers
    torch.manual_seed(cfg.seed)
    cfg = replace(cfg, image_size=cfg.image_size or (pre.image_size if pre else int(train.images.shape[-1])))
    n_out = n_outputs(train.task, train.labels, val.labels, test.labels)
    if not check_task(train.task):
        n_out = max(n_out, len(train.class_names))
    run = _ArmRun(arm_type, train, pre, pool, cfg, n_out, resolve_device(cfg.device))
    with run_log(log_dir, purge_step=0, stop_step=lambda: run.step) as events:  # a run starts over: hide older ones
        curve, losses, best_step, best_auc = _fit(run, val, events)
        test_metrics = run.score(test)
        events.scalars({"auc": test_metrics["auc"], "acc": test_metrics["acc"]}, best_step, prefix="test/")
    run.model.eval()
    return TrainResult(
        arm=arm,
        curve=curve,
        best_step=best_step,
        best_val_auc=best_auc,
        test_auc=test_metrics["auc"],
        test_acc=test_metrics["acc"],
        steps_to_target=steps_to_reach(curve, cfg.target) if cfg.target is not None else None,
        losses=losses,
        seconds=time.perf_counter() - start_time,
        n_train=len(train),
        model=run.model,
        config=cfg,
    )
