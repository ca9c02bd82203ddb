"""What every training loop of the package shares: mixed precision, the stop on a non-finite loss, endless batches."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

from medssl_lab.data.pool import epoch_batches
from medssl_lab.errors import TrainingError


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The mixed-precision type of ``amp`` on ``device`` (None: full precision); the one rule for every loop.

    ``"auto"`` uses bf16 on CUDA when supported, else fp16, and full precision off CUDA (CPU autocast is slower
    than float32 for these small networks).
    """
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    if amp in ("fp16", "auto"):
        return torch.float16
    raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {amp!r}")


def autocast(dtype: torch.dtype | None, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``, or nothing when ``dtype`` is None."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def check_finite(loss: Tensor, where: str, advice: str) -> None:
    """Stop a run whose loss became nan or inf, saying where and what to try, before it writes a broken model."""
    if not torch.isfinite(loss):
        raise TrainingError(f"the loss became {loss.item()} {where}. {advice}")


def endless_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Index batches forever: a fresh permutation each epoch, full batches only."""
    while True:
        yield from epoch_batches(n, batch_size, generator)
