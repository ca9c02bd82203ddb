"""The self-supervised objective (SwAV or the SimCLR baseline), in one place for pretraining and the hybrid arm.

One call maps a list of views to the loss and, when asked, the diagnostics that reveal collapse. The objective
owns what SwAV's reference code adds around the loss: the feature queue, prototypes frozen for the first steps,
and prototypes put back on the unit sphere after every optimizer step. A training loop calls::

    loss, metrics = objective(views, epoch, amp_dtype, diagnose=...)
    loss.backward()
    objective.before_optimizer_step(step)
    optimizer.step()
    objective.after_optimizer_step()
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from medssl_lab.losses import (
    FeatureQueue,
    NTXentLoss,
    SwAVLoss,
    assignment_entropy,
    freeze_prototypes_grad,
    prototype_usage,
)
from medssl_lab.models import SwAVModel
from medssl_lab.pretrain.config import PretrainConfig
from medssl_lab.training import autocast

#: SimCLR's temperature for the baseline (0.1-0.5 in Chen et al. 2020; 0.2 suits batches of a few hundred).
SIMCLR_TEMPERATURE = 0.2


class SSLObjective:
    """The loss of ``config.method`` on the views of one batch, with the queue and prototype handling around it.

    Args:
        model: the SwAV model (backbone, head, prototypes) whose prototypes are frozen and normalised.
        config: the pretraining settings (method, temperature, epsilon, queue, freezing, number of global views).
        net: what runs the forward pass (``model`` wrapped for DDP; default ``model``).
        world: number of processes (SimCLR gathers negatives from all of them).
        continued: True when training goes on from a finished pretraining (the hybrid arm): no queue to warm up
            and no prototype freezing, which only protect the start of a run.
    """

    def __init__(
        self,
        model: SwAVModel,
        config: PretrainConfig,
        net: nn.Module | None = None,
        world: int = 1,
        continued: bool = False,
    ) -> None:
        self.model, self.net, self.config = model, net if net is not None else model, config
        self.loss_fn: nn.Module = (
            SwAVLoss(config.temperature, config.epsilon, config.sinkhorn_iterations)
            if config.method == "swav"
            else NTXentLoss(temperature=SIMCLR_TEMPERATURE, gather_distributed=world > 1)
        )
        device = next(model.parameters()).device
        use_queue = config.queue_length > 0 and config.method == "swav" and not continued
        self.queue = (
            FeatureQueue(config.queue_length // world, config.proj_dim, config.n_global, config.queue_start_epoch).to(
                device
            )
            if use_queue
            else None
        )
        self.freeze_steps = 0 if continued else config.freeze_prototypes_steps

    def __call__(
        self, views: list[Tensor], epoch: int = 0, amp: torch.dtype | None = None, diagnose: bool = False
    ) -> tuple[Tensor, dict[str, float]]:
        """The loss of one batch's views (global views first), and its diagnostics when ``diagnose``."""
        n_global = self.config.n_global
        with autocast(amp, views[0].device):
            embeddings, scores = self.net(views)
        if self.config.method == "swav":
            queue = self.queue if self.queue is not None and self.queue.enabled(epoch) else None
            queue_scores = queue.scores(self.model.prototypes) if queue is not None else None
            loss = self.loss_fn(scores[:n_global], scores[n_global:], queue_scores)
            if queue is not None:
                queue.push([e.detach() for e in embeddings[:n_global]])
        else:
            loss = self.loss_fn(embeddings[0].float(), embeddings[1].float())
        return loss, self.diagnostics(scores[:n_global]) if diagnose else {}

    @torch.no_grad()
    def diagnostics(self, global_scores: list[Tensor]) -> dict[str, float]:
        """How many prototypes are anyone's favourite, and how sharp and how spread the assignments are."""
        high = [s.detach().float() for s in global_scores]
        probs = [torch.softmax(s / self.config.temperature, dim=1) for s in high]
        sample, mean = assignment_entropy(probs)
        return {"prototype_usage": prototype_usage(high), "entropy_sample": sample, "entropy_mean": mean}

    def before_optimizer_step(self, step: int) -> None:
        """Drop the prototypes' gradients during the first ``freeze_prototypes_steps`` steps (SwAV's stabiliser)."""
        if step < self.freeze_steps:
            freeze_prototypes_grad(self.model)

    def after_optimizer_step(self) -> None:
        """Put the prototypes back on the unit sphere, so that scores stay cosine similarities."""
        self.model.normalize_prototypes()

    def state_dict(self) -> dict[str, Any]:
        """The queue's contents (empty without a queue), for exact resumption."""
        return self.queue.state_dict() if self.queue is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if self.queue is not None and state:
            self.queue.load_state_dict(state)
