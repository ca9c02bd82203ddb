"""What every training loop of the package shares: batches on the device, mixed precision, the stop on a non-finite
loss, the optimiser step, endless batches."""

from __future__ import annotations

import contextlib
import math
import mmap
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor, nn

from medssl_lab.data.sampling import epoch_batches
from medssl_lab.data.stack import ImageStack
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


class OptimizerStep:
    """The one optimiser step of every loop: gradients zeroed, the loss backpropagated (scaled under fp16, the one
    precision that needs a gradient scaler), the caller's hooks around the step, optional gradient clipping.

    Args:
        optimizer: what steps.
        amp: the loop's autocast type (:func:`autocast_dtype`); fp16 turns the scaler on.
        device: where the loop runs (the scaler's device type).
        grad_clip: clip the gradients' global norm to this (None or 0: no clipping).
        parameters: what clipping measures (default: the optimizer's parameters).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        amp: torch.dtype | None,
        device: torch.device,
        grad_clip: float | None = None,
        parameters: Iterable[nn.Parameter] | None = None,
    ) -> None:
        self.optimizer, self.amp, self.grad_clip = optimizer, amp, grad_clip
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
        groups = optimizer.param_groups
        self.parameters = list(parameters) if parameters is not None else [p for g in groups for p in g["params"]]

    def __call__(
        self, loss: Tensor, before: Callable[[], None] | None = None, after: Callable[[], None] | None = None
    ) -> None:
        """Backpropagate ``loss`` and step; ``before`` runs on the fresh gradients, ``after`` on the new weights."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if before is not None:
            before()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if after is not None:
            after()


def endless_batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Index batches forever: a fresh permutation each epoch, full batches only."""
    while True:
        yield from epoch_batches(n, batch_size, generator)


#: reading threads of a batch from disk: enough to keep several reads in flight on a disk or a network file system
READERS = 4


def _batch_buffer(shape: tuple[int, ...]) -> Tensor:
    """A uint8 tensor for one batch. From 1 MB on, its own memory mapping, given back to the system when the batch
    is freed: the heap would keep the high-water mark of every batch a reading thread saw (hundreds of MB at 224 px)."""
    size = math.prod(shape)
    if size < 1 << 20:
        return torch.empty(shape, dtype=torch.uint8)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)  # its pages at once (Linux)
    return torch.from_numpy(np.frombuffer(mmap.mmap(-1, size, flags=flags), np.uint8).reshape(shape))


class BatchReader:
    """The images of a batch, on the device.

    An in-memory pool goes to the device once and is indexed there. A pool on disk (an
    :class:`~medssl_lab.data.stack.ImageStack`) is read batch by batch: :meth:`prefetch` starts reading the next batch
    while the current step computes, split into ``workers`` parts (neighbouring images together) that as many
    threads read at once, each into its rows of one buffer (pinned memory when the device is a GPU, so the copy to
    the device does not hold the model up). The batch is the same whatever the number of threads.
    """

    def __init__(self, images: np.ndarray | Tensor | ImageStack, device: torch.device, workers: int = READERS) -> None:
        if workers < 1:
            raise ValueError(f"workers={workers}: a batch needs at least one reading thread")
        self.device, self.workers = device, workers
        self._stack = images if isinstance(images, ImageStack) else None
        self._on_device: Tensor | None = None
        if isinstance(images, Tensor):
            self._on_device = images.to(device)
        elif not isinstance(images, ImageStack):
            self._on_device = torch.from_numpy(np.ascontiguousarray(images)).to(device)
        self._reader = (
            ThreadPoolExecutor(workers, thread_name_prefix="batch-reader") if self._stack is not None else None
        )
        self._pending: tuple[Tensor, Tensor, list[Future]] | None = None

    def prefetch(self, index: Tensor) -> None:
        """Start reading the batch at ``index`` (a no-op for a pool held on the device)."""
        if self._reader is not None:
            self._pending = (index, *self._start(index))

    def get(self, index: Tensor) -> Tensor:
        """(B, H, W) uint8 on the device: the prefetched batch when it is this one, else read now."""
        if self._on_device is not None:
            return self._on_device[index.to(self.device)]
        pending, self._pending = self._pending, None
        batch, parts = pending[1:] if pending is not None and torch.equal(pending[0], index) else self._start(index)
        for part in parts:
            part.result()  # raises what a reading thread raised
        return batch.to(self.device, non_blocking=True)

    def _start(self, index: Tensor) -> tuple[Tensor, list[Future]]:
        """A buffer for the batch at ``index`` and the reads that fill it, one per part."""
        assert self._stack is not None and self._reader is not None
        wanted = index.numpy()
        batch = _batch_buffer((len(wanted), *self._stack.shape[1:]))
        if self.device.type == "cuda":
            batch = batch.pin_memory()
        order = np.argsort(self._stack.positions[wanted], kind="stable")  # neighbours on disk in the same part
        parts = [p for p in np.array_split(order, max(1, min(self.workers, len(order)))) if len(p)]
        out = batch.numpy()
        return batch, [self._reader.submit(self._read, out, wanted, part) for part in parts]

    def _read(self, out: np.ndarray, wanted: np.ndarray, part: np.ndarray) -> None:
        assert self._stack is not None
        self._stack.read_into(out, part, wanted[part])
