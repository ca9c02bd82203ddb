"""SimCLR (Chen et al. 2020), the plain contrastive baseline: NT-Xent between the first two views, no prototypes."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from medssl_lab.losses import NTXentLoss
from medssl_lab.models import SwAVModel
from medssl_lab.pretrain.config import PretrainConfig
from medssl_lab.pretrain.objective import SSLObjective

#: SimCLR's temperature for the baseline (0.1-0.5 in Chen et al. 2020; 0.2 suits batches of a few hundred).
SIMCLR_TEMPERATURE = 0.2


class SimCLRObjective(SSLObjective):
    """NT-Xent on the embeddings of the two global views; negatives gathered from every process under DDP."""

    views_used = 2  # local crops, when a config makes them, are not run (use n_local=0 to not make them)

    def __init__(
        self,
        model: SwAVModel,
        config: PretrainConfig,
        net: nn.Module | None = None,
        world: int = 1,
        continued: bool = False,
    ) -> None:
        super().__init__(model, config, net, world, continued)
        self.loss_fn = NTXentLoss(temperature=SIMCLR_TEMPERATURE, gather_distributed=world > 1)

    def loss(self, embeddings: list[Tensor], scores: list[Tensor], epoch: int) -> Tensor:
        return self.loss_fn(embeddings[0].float(), embeddings[1].float())

    @torch.no_grad()
    def diagnostics(self, embeddings: list[Tensor], scores: list[Tensor]) -> dict[str, float]:
        """How spread the embeddings are: the mean per-dimension std of unit vectors (1/sqrt(d) when uniform,
        0 when collapsed to a point)."""
        z = embeddings[0].detach().float()
        return {"embedding_std": float(z.std(dim=0).mean())}
