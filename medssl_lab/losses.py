"""Losses for self-supervised pretraining: SwAV and NT-Xent (SimCLR), and the diagnostics of their outputs.

- :func:`sinkhorn` and :class:`SwAVLoss`: swapped prediction with online clustering,
  Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
  Assignments" (SwAV, NeurIPS 2020), the method Ghesu et al. scale to 100 million
  medical images ("Self-supervised Learning from 100 Million Medical Images", 2022).
- :class:`NTXentLoss`: the plain contrastive baseline of SimCLR, Chen et al., "A
  Simple Framework for Contrastive Learning of Visual Representations" (ICML 2020).
- :func:`prototype_usage`, :func:`assignment_entropy`: diagnostics to notice collapse
  (few prototypes used, flat assignments).

Pure functions and stateless modules only: the stabilisers around SwAV (the feature queue,
frozen prototypes) and the advice on collapse live with the method in :mod:`medssl_lab.pretrain`.

Numerics: Sinkhorn always runs in float32 whatever the
autocast, in the log domain, so that scores of any size give finite codes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = ["NTXentLoss", "SwAVLoss", "assignment_entropy", "prototype_usage", "sinkhorn"]


def _use_distributed(distributed: bool | None, group: dist.ProcessGroup | None = None) -> bool:
    """Whether to all-reduce across processes: auto (None) when a group of >1 exists."""
    initialised = dist.is_available() and dist.is_initialized()
    if distributed is None:
        return initialised and dist.get_world_size(group) > 1
    if distributed and not initialised:
        raise ValueError(
            "distributed=True but torch.distributed is not initialised; call "
            "torch.distributed.init_process_group first (torchrun does), or pass distributed=None."
        )
    return bool(distributed)


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """A context that switches autocast off on ``device`` (a no-op where unsupported)."""
    if device.type in ("cpu", "cuda", "mps", "xpu"):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


@torch.no_grad()
def sinkhorn(
    scores: torch.Tensor,
    epsilon: float = 0.05,
    iterations: int = 3,
    *,
    distributed: bool | None = None,
    group: dist.ProcessGroup | None = None,
) -> torch.Tensor:
    """Codes from prototype scores by the Sinkhorn-Knopp algorithm (equipartition).

    Solves the entropic transport problem of SwAV (Caron et al. 2020, eq. 3): the codes
    ``Q`` are close to ``softmax(scores / epsilon)`` while every prototype receives the
    same share (``1/K``) of the batch. The iterations run in the log domain in float32
    (scores are cast, autocast is off), which is the reference algorithm up to rounding
    and stays finite for any score size.

    Distributed: when ``torch.distributed`` is initialised with more than one process
    (or ``distributed=True``), the per-prototype sums are all-reduced as in the
    reference implementation (facebookresearch/swav ``distributed_sinkhorn``), so ``P``
    processes holding ``B/P`` samples each get the same codes as one process holding
    all ``B``. Every process must then call this function the same number of times.

    Args:
        scores: ``(B, K)`` prototype scores (cosine similarities) of this process's samples.
        epsilon: entropic regularisation; smaller gives harder codes (0.05 in SwAV).
        iterations: Sinkhorn iterations (3 in SwAV).
        distributed: all-reduce across processes; None decides automatically.
        group: the process group (default: the world).

    Returns:
        ``(B, K)`` float32 codes, each row summing to 1; no gradient flows through them.
    """
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"sinkhorn needs (batch, prototypes) scores, got shape {tuple(scores.shape)}.")
    if not epsilon > 0:
        raise ValueError(f"sinkhorn epsilon must be > 0, got {epsilon}; SwAV uses 0.05.")
    if iterations < 0:
        raise ValueError(f"sinkhorn iterations must be >= 0, got {iterations}; SwAV uses 3.")
    use_dist = _use_distributed(distributed, group)
    with _no_autocast(scores.device):
        log_q = scores.detach().float() / epsilon  # (B, K)
        for _ in range(iterations):
            # Each prototype gets the same total mass: log-sum-exp over all samples
            # (all processes), with the global max subtracted for stability.
            col_max = log_q.amax(dim=0, keepdim=True)
            if use_dist:
                dist.all_reduce(col_max, op=dist.ReduceOp.MAX, group=group)
            col_sum = torch.exp(log_q - col_max).sum(dim=0, keepdim=True)
            if use_dist:
                dist.all_reduce(col_sum, op=dist.ReduceOp.SUM, group=group)
            log_q = log_q - (col_sum.log() + col_max)
            # Each sample gets the same total mass (rows are local to the process).
            log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True)
        # The last step of the reference algorithm normalises each sample's codes.
        return torch.softmax(log_q, dim=1)


class SwAVLoss(nn.Module):
    """SwAV swapped-prediction loss over multi-crop views (Caron et al. 2020).

    For each view chosen for assignment (the global, high-resolution crops), codes are
    computed with :func:`sinkhorn` from its scores (optionally enlarged by queue
    scores); every *other* view then predicts these codes with
    ``softmax(scores / temperature)``; the cross-entropies are averaged over the
    predicting views and the assigned views. Collapse shows as a loss near ``ln K``.

    Args:
        temperature: softmax temperature of the predictions (0.1 in SwAV).
        epsilon: Sinkhorn regularisation (0.05).
        sinkhorn_iterations: Sinkhorn iterations (3).
        crops_for_assign: indices, among the high-resolution views, of those that get
            codes (default: all of them, i.e. both global crops).
        distributed: all-reduce inside Sinkhorn; None decides automatically.

    The module keeps no state between calls: :meth:`loss_and_codes` also returns the codes.
    """

    def __init__(
        self,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        crops_for_assign: Sequence[int] | None = None,
        distributed: bool | None = None,
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"SwAVLoss temperature must be > 0, got {temperature}; SwAV uses 0.1.")
        self.temperature = float(temperature)
        self.epsilon = float(epsilon)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.crops_for_assign = None if crops_for_assign is None else [int(i) for i in crops_for_assign]
        self.distributed = distributed

    def assigned(self, n_high_resolution: int) -> list[int]:
        """Indices of the views that get codes, given the number of high-res views."""
        idx = list(range(n_high_resolution)) if self.crops_for_assign is None else self.crops_for_assign
        for i in idx:
            if not 0 <= i < n_high_resolution:
                raise ValueError(
                    f"crops_for_assign contains {i}, but there are {n_high_resolution} "
                    "high-resolution views; codes are computed for global crops only."
                )
        return idx

    def forward(
        self,
        high_resolution_scores: Sequence[torch.Tensor],
        low_resolution_scores: Sequence[torch.Tensor] | None = None,
        queue_scores: Sequence[torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """The scalar loss (float32); see :meth:`loss_and_codes` for the arguments."""
        return self.loss_and_codes(high_resolution_scores, low_resolution_scores, queue_scores)[0]

    def loss_and_codes(
        self,
        high_resolution_scores: Sequence[torch.Tensor],
        low_resolution_scores: Sequence[torch.Tensor] | None = None,
        queue_scores: Sequence[torch.Tensor | None] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The loss and the codes it predicted.

        Args:
            high_resolution_scores: ``(B, K)`` prototype scores of each global crop.
            low_resolution_scores: ``(B, K)`` scores of each local crop (may be empty).
            queue_scores: one ``(N, K)`` tensor (or None) per assigned view: scores of
                queued embeddings of that view against the *current* prototypes (see
                :meth:`FeatureQueue.scores`); they enlarge the Sinkhorn batch only.

        Returns:
            The scalar loss (float32), and the codes: one detached ``(B, K)`` tensor per assigned view.
        """
        high = list(high_resolution_scores)
        views = high + list(low_resolution_scores or [])
        if len(views) < 2:
            raise ValueError(
                f"SwAVLoss needs at least 2 views (got {len(views)}); pass the scores of 2 "
                "global crops, plus any local crops."
            )
        batch, k = views[0].shape
        for i, v in enumerate(views):
            if v.shape != (batch, k):
                raise ValueError(f"view {i} scores have shape {tuple(v.shape)}, expected ({batch}, {k}).")
        assign = self.assigned(len(high))
        if queue_scores is not None and len(queue_scores) != len(assign):
            raise ValueError(
                f"got {len(queue_scores)} queue score tensors for {len(assign)} assigned views; "
                "pass one per assigned view (or None)."
            )
        log_p = [F.log_softmax(v.float() / self.temperature, dim=1) for v in views]
        total = views[0].new_zeros((), dtype=torch.float32)
        codes_all: list[torch.Tensor] = []
        for j, i in enumerate(assign):
            s = views[i].detach().float()
            queued = None if queue_scores is None else queue_scores[j]
            if queued is not None:
                s = torch.cat([queued.detach().float().to(s.device), s], dim=0)
            q = sinkhorn(s, self.epsilon, self.sinkhorn_iterations, distributed=self.distributed)[-batch:]
            codes_all.append(q)
            sub = sum(-(q * log_p[v]).sum(dim=1).mean() for v in range(len(views)) if v != i)
            total = total + sub / (len(views) - 1)
        return total / len(assign), codes_all


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward sums every process's gradient of the local part."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: dist.ProcessGroup | None) -> torch.Tensor:
        ctx.group = group
        ctx.rank = dist.get_rank(group)
        ctx.n = x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, x.contiguous(), group=group)
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n], None


def _gather_with_grad(x: torch.Tensor, group: dist.ProcessGroup | None) -> torch.Tensor:
    """All-gather along dim 0, keeping the gradient path to the local part."""
    return _GatherWithGrad.apply(x, group)


class NTXentLoss(nn.Module):
    """NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020).

    For ``N`` pairs of views, each of the ``2N`` embeddings must pick its partner among
    the other ``2N - 1`` (cosine similarity / temperature). With
    ``gather_distributed=True`` the negatives are gathered from all processes (with
    gradients), so that the mean of the per-process losses equals the loss of one
    process on the whole batch.

    Args:
        temperature: softmax temperature (0.1-0.5; SimCLR uses 0.5 for small batches).
        gather_distributed: use the other processes' embeddings as negatives.
    """

    def __init__(self, temperature: float = 0.2, gather_distributed: bool = False) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"NTXentLoss temperature must be > 0, got {temperature}.")
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed

    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """Loss of two ``(N, D)`` batches of embeddings of the same images (row i pairs row i)."""
        if z0.ndim != 2 or z0.shape != z1.shape:
            raise ValueError(
                f"NTXentLoss needs two (N, D) tensors of equal shape, got {tuple(z0.shape)} and {tuple(z1.shape)}."
            )
        n = z0.shape[0]
        z0 = F.normalize(z0.float(), dim=1)
        z1 = F.normalize(z1.float(), dim=1)
        rank, total = 0, n
        if self.gather_distributed and _use_distributed(None):
            rank = dist.get_rank()
            a0, a1 = _gather_with_grad(z0, None), _gather_with_grad(z1, None)
            total = a0.shape[0]
            if total != n * dist.get_world_size():
                raise ValueError("NTXentLoss with gathering needs the same batch size on every process.")
        else:
            a0, a1 = z0, z1
        local = torch.cat([z0, z1], dim=0)  # (2n, D)
        everyone = torch.cat([a0, a1], dim=0)  # (2N, D)
        with _no_autocast(local.device):
            logits = local @ everyone.t() / self.temperature  # (2n, 2N)
        idx = torch.arange(n, device=local.device) + rank * n
        self_idx = torch.cat([idx, idx + total])
        pos_idx = torch.cat([idx + total, idx])
        rows = torch.arange(2 * n, device=local.device)
        mask = torch.zeros_like(logits, dtype=torch.bool)
        mask[rows, self_idx] = True
        logits = logits.masked_fill(mask, float("-inf"))
        return F.cross_entropy(logits, pos_idx)


def _stack(x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    t = torch.cat(list(x), dim=0) if not isinstance(x, torch.Tensor) else x
    if t.ndim != 2:
        raise ValueError(f"expected (B, K) scores or codes, got shape {tuple(t.shape)}.")
    return t.detach()


@torch.no_grad()
def prototype_usage(scores_or_codes: torch.Tensor | Sequence[torch.Tensor]) -> float:
    """Fraction of the ``K`` prototypes that are the argmax of at least one sample.

    Pass raw prototype scores to see what the network itself prefers (Sinkhorn codes
    are spread by construction). Near ``1/K`` means collapse; at most ``B/K`` for a
    batch of ``B`` samples.
    """
    t = _stack(scores_or_codes)
    k = t.shape[1]
    return float((torch.bincount(t.argmax(dim=1), minlength=k) > 0).sum().item()) / k


@torch.no_grad()
def assignment_entropy(codes: torch.Tensor | Sequence[torch.Tensor]) -> tuple[float, float]:
    """Entropies (in nats) of soft assignments to prototypes.

    Args:
        codes: ``(B, K)`` non-negative assignments, e.g. Sinkhorn codes or
            ``softmax(scores / temperature)``; rows are renormalised to sum to 1.

    Returns:
        ``(mean_sample_entropy, entropy_of_mean)``: the mean over samples of each row's
        entropy (low = confident) and the entropy of the batch-mean assignment (``ln K``
        = all prototypes used evenly; near 0 = everything on one prototype).
    """
    p = _stack(codes).float()
    if bool((p < 0).any()):
        raise ValueError("assignment_entropy needs probabilities (codes or a softmax), got negative values.")
    p = p / p.sum(dim=1, keepdim=True).clamp(min=1e-12)
    per_sample = -torch.xlogy(p, p).sum(dim=1).mean()
    mean = p.mean(dim=0)
    of_mean = -torch.xlogy(mean, mean).sum()
    return float(per_sample.item()), float(of_mean.item())
