"""SwAV (Caron et al. 2020), the method Ghesu et al. 2022 scale to 100 million medical images: swapped prediction of
Sinkhorn codes over multi-crop views, with the reference code's stabilisers."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from medssl_lab.losses import SwAVLoss, assignment_entropy, prototype_usage
from medssl_lab.models import Prototypes, SwAVModel
from medssl_lab.pretrain.collapse import collapse_hint
from medssl_lab.pretrain.config import PretrainConfig
from medssl_lab.pretrain.objective import SSLObjective
from medssl_lab.pretrain.queue import FeatureQueue


class SwAVObjective(SSLObjective):
    """SwAV's loss with its feature queue (from ``queue_start_epoch``, when ``queue_length`` > 0), prototypes
    frozen for the first ``freeze_prototypes_steps`` steps and renormalised after every step."""

    def __init__(
        self,
        model: SwAVModel,
        config: PretrainConfig,
        net: nn.Module | None = None,
        world: int = 1,
        continued: bool = False,
    ) -> None:
        super().__init__(model, config, net, world, continued)
        if model.prototypes is None:
            raise ValueError("SwAV needs a model with prototypes (build_model with method='swav')")
        self.prototypes: Prototypes = model.prototypes
        self.loss_fn = SwAVLoss(config.temperature, config.epsilon, config.sinkhorn_iterations)
        device = next(model.parameters()).device
        length = config.queue_length // world
        self.queue = (
            FeatureQueue(length, config.proj_dim, config.n_global, config.queue_start_epoch).to(device)
            if config.queue_length > 0 and not continued
            else None
        )
        self.freeze_steps = 0 if continued else config.freeze_prototypes_steps

    def loss(self, embeddings: list[Tensor], scores: list[Tensor], epoch: int) -> Tensor:
        n_global = self.config.n_global
        queue = self.queue if self.queue is not None and self.queue.enabled(epoch) else None
        queue_scores = queue.scores(self.prototypes) if queue is not None else None
        loss = self.loss_fn(scores[:n_global], scores[n_global:], queue_scores)
        if queue is not None:
            queue.push([e.detach() for e in embeddings[:n_global]])
        return loss

    @torch.no_grad()
    def diagnostics(self, embeddings: list[Tensor], scores: list[Tensor]) -> dict[str, float]:
        """How many prototypes are anyone's favourite, and how sharp and how spread the assignments are."""
        high = [s.detach().float() for s in scores[: self.config.n_global]]
        probs = [torch.softmax(s / self.config.temperature, dim=1) for s in high]
        sample, mean = assignment_entropy(probs)
        return {"prototype_usage": prototype_usage(high), "entropy_sample": sample, "entropy_mean": mean}

    def collapse_hint(self, loss_avg: float, row: dict[str, float]) -> str | None:
        return collapse_hint(loss_avg, self.prototypes.n_prototypes, row.get("prototype_usage"))

    def before_optimizer_step(self, step: int) -> None:
        """Drop the prototypes' gradients during the first ``freeze_prototypes_steps`` steps."""
        if step < self.freeze_steps:
            self.prototypes.drop_grad_()

    def after_optimizer_step(self) -> None:
        """Put the prototypes back on the unit sphere, so that scores stay cosine similarities."""
        self.prototypes.normalize_()

    def state_dict(self) -> dict[str, Any]:
        """The queue's contents (empty without a queue)."""
        return self.queue.state_dict() if self.queue is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.queue is not None and state:
            self.queue.load_state_dict(state)
