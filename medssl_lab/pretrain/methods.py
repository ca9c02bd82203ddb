"""The self-supervised methods by name (``PretrainConfig.method``), and the objective of a run."""

from __future__ import annotations

from torch import nn

from medssl_lab.models import SwAVModel
from medssl_lab.pretrain.config import PretrainConfig
from medssl_lab.pretrain.objective import SSLObjective
from medssl_lab.pretrain.simclr import SimCLRObjective
from medssl_lab.pretrain.swav import SwAVObjective

METHODS: dict[str, type[SSLObjective]] = {"swav": SwAVObjective, "simclr": SimCLRObjective}


def make_objective(
    model: SwAVModel, config: PretrainConfig, net: nn.Module | None = None, world: int = 1, continued: bool = False
) -> SSLObjective:
    """The objective of ``config.method`` for ``model`` (see :class:`SSLObjective` for the arguments)."""
    return METHODS[config.method](model, config, net, world, continued)
