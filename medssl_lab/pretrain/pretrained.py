"""A pretrained model that knows what it is: its weights, the settings that made them and the data they saw.

Everything built from a pretrained encoder (the scratch arm's architecture, the hybrid arm's views and SSL loss,
the image size of every downstream run) is derived from this one value, so a model held in memory and its
checkpoint on disk behave the same.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from medssl_lab.augment import MultiCropConfig
from medssl_lab.config import resolve_device
from medssl_lab.data.provenance import describe_provenance
from medssl_lab.models import SwAVModel, make_backbone
from medssl_lab.pretrain.checkpoint import checkpoint_file, load_checkpoint
from medssl_lab.pretrain.config import PretrainConfig, build_model


@dataclass
class Pretrained:
    """The model (backbone, projection head, prototypes), its :class:`PretrainConfig` and its data provenance.

    Attributes:
        model: the SwAV model.
        config: the settings it was trained with.
        data: what it was trained on (:func:`medssl_lab.data.provenance.pool_provenance`); empty when unknown.
        origin: one sentence on where it came from (a checkpoint, a run of this session).
    """

    model: SwAVModel = field(repr=False)
    config: PretrainConfig
    data: dict[str, Any] = field(default_factory=dict)
    origin: str = "trained in this session"

    @property
    def image_size(self) -> int:
        """The image size the encoder was pretrained at; downstream runs use it too."""
        return self.config.image_size

    def views(self) -> MultiCropConfig:
        """The multi-crop views of the pretraining (the hybrid arm continues with them)."""
        return self.config.augment_config()

    def fresh_backbone(self) -> tuple[nn.Module, int]:
        """The same backbone architecture with fresh random weights, and its feature size (the scratch arm)."""
        return make_backbone(self.config.backbone, image_size=self.config.global_size)

    def random_init(self, seed: int = 0) -> SwAVModel:
        """The same model with the random weights ``seed`` draws, in eval mode on the CPU: the baseline that shows
        what the architecture alone does, so that pretraining is judged by what it adds to it.

        The weights are those of ``torch.manual_seed(seed); build_model(config)``, drawn in a forked random state:
        the caller's random numbers go on as if this had not been called.
        """
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)
            return build_model(self.config).eval()

    def copy(self) -> Pretrained:
        """An independent copy (downstream training changes its weights; the original stays as it was)."""
        return Pretrained(copy.deepcopy(self.model), self.config, dict(self.data), self.origin)

    def describe(self) -> str:
        """What the model is and what it saw, in one line."""
        c = self.config
        return (
            f"{c.method} {c.backbone} at {c.image_size} px, {c.profile} profile; "
            f"trained on {describe_provenance(self.data or None)}"
        )


def load_pretrained(path: str | os.PathLike, device: str | torch.device = "cpu") -> Pretrained:
    """The pretrained model (in eval mode on ``device``), its config and provenance, from a checkpoint or run folder."""
    file = checkpoint_file(path)
    state = load_checkpoint(file)
    config = PretrainConfig(**state["config"])
    model = build_model(config)
    model.load_state_dict(state["model"])
    return Pretrained(
        model.to(resolve_device(device)).eval(), config, dict(state.get("data", {})), f"loaded from {file}"
    )
