"""What a self-supervised method is to the loops that train it: one class per method (:mod:`.swav`, :mod:`.simclr`).

A method maps the views of one batch to its loss and, when asked, the diagnostics that reveal collapse; it owns
what it adds around the loss (SwAV: the feature queue, prototypes frozen for the first steps and put back on the
unit sphere after each step). The pretraining loop and the hybrid arm call it the same way::

    loss, metrics = objective(views, epoch, amp_dtype, diagnose=...)
    optimizer_step(loss, before=lambda: objective.before_optimizer_step(step), after=objective.after_optimizer_step)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from medssl_lab.models import SwAVModel
from medssl_lab.pretrain.config import PretrainConfig
from medssl_lab.training import autocast


class SSLObjective:
    """The base of every method: the forward pass under autocast, no-op hooks, no state.

    Args:
        model: the model trained (backbone, head and, for SwAV, prototypes).
        config: the pretraining settings.
        net: what runs the forward pass (``model`` wrapped for DDP; default ``model``).
        world: number of processes.
        continued: True when training goes on from a finished pretraining (the hybrid arm): what only protects
            the start of a run is left out.
    """

    #: how many views (global first) the loss uses; None for all. A method that uses fewer never runs the others,
    #: so they cannot reach its loss through the head's BatchNorm statistics.
    views_used: int | None = None

    def __init__(
        self,
        model: SwAVModel,
        config: PretrainConfig,
        net: nn.Module | None = None,
        world: int = 1,
        continued: bool = False,
    ) -> None:
        self.model, self.net, self.config = model, net if net is not None else model, config

    def __call__(
        self, views: list[Tensor], epoch: int = 0, amp: torch.dtype | None = None, diagnose: bool = False
    ) -> tuple[Tensor, dict[str, float]]:
        """The loss of one batch's views (global views first), and its diagnostics when ``diagnose``."""
        views = views[: self.views_used]
        with autocast(amp, views[0].device):
            embeddings, scores = self.net(views)
        loss = self.loss(embeddings, scores, epoch)
        return loss, self.diagnostics(embeddings, scores) if diagnose else {}

    def loss(self, embeddings: list[Tensor], scores: list[Tensor], epoch: int) -> Tensor:
        """The method's loss from the model's outputs for every view."""
        raise NotImplementedError

    def diagnostics(self, embeddings: list[Tensor], scores: list[Tensor]) -> dict[str, float]:
        """Figures that show how training goes beyond the loss (none by default)."""
        return {}

    def collapse_hint(self, loss_avg: float, row: dict[str, float]) -> str | None:
        """What looks collapsed in a logged ``row`` and what to try; None when nothing does (or the method cannot
        tell)."""
        return None

    def before_optimizer_step(self, step: int) -> None:
        """Called on the fresh gradients of ``step``, before the optimizer uses them."""

    def after_optimizer_step(self) -> None:
        """Called on the new weights."""

    def state_dict(self) -> dict[str, Any]:
        """What an exact resumption needs beyond the model and optimizer."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
