"""SwAV's feature queue: past embeddings that enlarge a small batch's Sinkhorn problem."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn


class FeatureQueue(nn.Module):
    """A first-in first-out store of the last ``length`` embeddings of each assigned view.

    With small batches (fewer samples than prototypes), equipartition within a batch is
    too strong a constraint; SwAV then appends the scores of stored embeddings to the
    Sinkhorn batch (Caron et al. 2020, section 4 and main_swav.py), starting the queue
    only after some epochs (when the embeddings have stopped changing fast). The queue
    is used only once full. Per step, in this order::

        qs = queue.scores(model.prototypes) if queue.enabled(epoch) else None
        loss = swav_loss(scores[:2], scores[2:], qs)
        if queue.enabled(epoch):
            queue.push([emb.detach() for emb in embeddings[:2]])

    Under DDP each process keeps its own queue (``length`` is per process); Sinkhorn
    all-reduces over all of them. Its buffers are in ``state_dict`` for checkpoints.

    Args:
        length: embeddings kept per view (a multiple of the batch size is best).
        dim: embedding size.
        n_views: number of assigned views (2 global crops).
        start_epoch: first epoch (0-based) at which the queue is filled and used.
    """

    embeddings: torch.Tensor  # (n_views, length, dim) buffer

    def __init__(self, length: int, dim: int, n_views: int = 2, start_epoch: int = 0) -> None:
        super().__init__()
        if length <= 0 or dim <= 0 or n_views <= 0:
            raise ValueError(f"FeatureQueue needs positive length, dim and n_views, got {length}, {dim}, {n_views}.")
        self.length = int(length)
        self.start_epoch = int(start_epoch)
        self.register_buffer("embeddings", torch.zeros(n_views, length, dim))
        self.filled = 0

    def get_extra_state(self) -> dict[str, int]:
        """Saved with the buffers so that a resumed run knows how full the queue is."""
        return {"filled": self.filled, "start_epoch": self.start_epoch}

    def set_extra_state(self, state: dict[str, int]) -> None:
        """Restore :meth:`get_extra_state`."""
        self.filled = int(state["filled"])
        self.start_epoch = int(state["start_epoch"])

    def enabled(self, epoch: int) -> bool:
        """Whether the queue is in use at ``epoch`` (0-based)."""
        return epoch >= self.start_epoch

    @property
    def full(self) -> bool:
        """True once ``length`` embeddings have been pushed."""
        return self.filled >= self.length

    @torch.no_grad()
    def push(self, embeddings: Sequence[torch.Tensor]) -> None:
        """Add one ``(B, dim)`` batch per view (newest first; the oldest drop out)."""
        if len(embeddings) != self.embeddings.shape[0]:
            raise ValueError(
                f"FeatureQueue holds {self.embeddings.shape[0]} views but got {len(embeddings)} "
                "embedding tensors; push one per assigned view."
            )
        b = 0
        for v, e in enumerate(embeddings):
            e = e.detach().to(self.embeddings.dtype)[: self.length]
            b = e.shape[0]
            if b < self.length:
                self.embeddings[v, b:] = self.embeddings[v, :-b].clone()
            self.embeddings[v, :b] = e
        self.filled = min(self.length, self.filled + b)

    @torch.no_grad()
    def scores(self, prototypes: nn.Module | torch.Tensor) -> list[torch.Tensor] | None:
        """Scores ``(length, K)`` of the stored embeddings against the current prototypes.

        Args:
            prototypes: the :class:`~medssl_lab.models.Prototypes` layer (or its
                ``(K, dim)`` weight).

        Returns:
            One tensor per view, or None while the queue is not yet full.
        """
        if not self.full:
            return None
        weight = cast(torch.Tensor, prototypes.weight) if isinstance(prototypes, nn.Module) else prototypes
        w = weight.detach().float()
        return [self.embeddings[v].to(w.device) @ w.t() for v in range(self.embeddings.shape[0])]
