"""Every knob of a pretraining run, and the model it describes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from medssl_lab.augment import MultiCropConfig
from medssl_lab.checks import check_choices, check_numbers, check_whole
from medssl_lab.models import BACKBONES, SwAVModel, make_backbone
from medssl_lab.profiles import PRETRAIN, SMALL_POOL, profile_settings


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
    augment: dict[str, Any] = field(
        default_factory=dict
    )  # other MultiCropConfig fields, e.g. {"global_scale": (0.2, 1.0)}
    amp: str = "auto"  # "auto" (bf16 on CUDA if supported, else fp16; off on CPU), "bf16", "fp16", "off"
    channels_last: bool = True
    collapse_check: bool = True  # stop with hints when the loss stays at ln K or few prototypes are used
    collapse_min_steps: int = 200  # ... checked only after this many steps and half the run
    log_every: int = 10
    # the online kNN monitor (pretrain/monitor.py): every knn_every steps (0: off), on the first logging step at or
    # after each multiple, and at the last step; knn_images labelled pool images, half bank, half queries
    knn_every: int = 50
    knn_images: int = 512
    checkpoint_every: int = 200  # steps
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        """Refuse impossible settings before any work starts, naming the field, the value and what is allowed."""
        values = asdict(self)
        check_choices(
            "PretrainConfig",
            values,
            dict(
                method=("swav", "simclr"),
                optimizer=("adamw", "sgd"),
                balance=(None, "source", "modality"),
                amp=("auto", "bf16", "fp16", "off"),
                backbone=BACKBONES,
            ),
        )
        check_whole(
            "PretrainConfig",
            values,
            dict(
                image_size=8,
                epochs=1,
                batch_size=2,
                n_prototypes=2,
                hidden_dim=1,
                proj_dim=1,
                sinkhorn_iterations=1,
                queue_length=0,
                queue_start_epoch=0,
                freeze_prototypes_steps=0,
                n_global=2,
                n_local=0,
                global_size=4,
                local_size=4,
                collapse_min_steps=0,
                log_every=1,
                knn_every=0,
                knn_images=4,
                checkpoint_every=1,
                pool_limit=1,
                max_steps=1,
            ),
            optional=("pool_limit", "max_steps"),
        )
        values["grad_clip"] = 1.0 if self.grad_clip is None else self.grad_clip  # None: no clipping
        check_numbers(
            "PretrainConfig",
            values,
            dict(
                lr=(0.0, math.inf),
                temperature=(0.0, math.inf),
                epsilon=(0.0, math.inf),
                grad_clip=(0.0, math.inf),
                weight_decay=(0.0, math.inf),
                warmup_fraction=(0.0, 0.99),
                min_lr_ratio=(0.0, 1.0),
            ),
            open_low=("lr", "temperature", "epsilon", "grad_clip"),
        )

    @classmethod
    def for_profile(cls, profile: str = "cpu", **overrides: Any) -> PretrainConfig:
        """The settings of a profile (:data:`medssl_lab.profiles.PRETRAIN`), with ``overrides`` on top."""
        preset = profile_settings(PRETRAIN, profile)
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown PretrainConfig fields {sorted(unknown)}")
        return cls(profile=profile, **{**preset, **overrides})

    @classmethod
    def for_small_pool(cls, profile: str, n_images: int, **overrides: Any) -> PretrainConfig:
        """The settings of a profile for a pool of only ``n_images`` (a store of one's own): the batch size and epochs
        of :data:`medssl_lab.profiles.SMALL_POOL`, the batch no larger than the pool, ``overrides`` on top.

        The profile's batch of 256 is more than such a pool holds, and its 4 epochs would be a handful of steps.
        """
        if n_images < 1:
            raise ValueError(f"a pool of {n_images} images cannot be pretrained on")
        small = profile_settings(SMALL_POOL, profile)
        small["batch_size"] = min(small["batch_size"], n_images)
        return cls.for_profile(profile, **{**small, **overrides})

    def augment_config(self) -> MultiCropConfig:
        """The multi-crop views of this run: its view counts and sizes, and any other fields from ``augment``."""
        unknown = set(self.augment) - {f.name for f in fields(MultiCropConfig)}
        if unknown:
            raise ValueError(f"PretrainConfig.augment has unknown MultiCropConfig fields {sorted(unknown)}")
        return MultiCropConfig(
            n_global=self.n_global,
            n_local=self.n_local,
            global_size=self.global_size,
            local_size=self.local_size,
            **self.augment,
        )


def build_model(config: PretrainConfig) -> SwAVModel:
    """The backbone + head (+ prototypes for SwAV) that ``config`` describes (fresh random weights)."""
    backbone, feat_dim = make_backbone(config.backbone, image_size=config.global_size)
    n_prototypes = config.n_prototypes if config.method == "swav" else 0
    return SwAVModel(backbone, feat_dim, config.hidden_dim, config.proj_dim, n_prototypes)
