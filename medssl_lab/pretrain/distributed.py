"""Several processes under ``torchrun``: joining the group, each process's device, and the DDP wrapper."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn

from medssl_lab.config import resolve_device


def setup_distributed(device: str = "auto") -> int:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1); returns this process's rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.get_rank() if dist.is_initialized() else 0
    backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return dist.get_rank()


@contextmanager
def process_group(device: str = "auto") -> Iterator[int]:
    """:func:`setup_distributed` for the ``with`` block, whose value is the rank; a group it joined is left at its end.

    Keep the trainer in a function the block calls, not in the block's own variables: its DDP wrapper holds the
    group. A trainer can also sit in a reference cycle (a failed lazy import keeps a traceback whose frames reach
    it) and be freed only by the collector, possibly while Python shuts down, when freeing gloo's work can abort
    the process after a good run (pytorch/pytorch#179291). So leaving collects garbage first, while the group and
    the interpreter are whole, then destroys the group.
    """
    joins = not dist.is_initialized()  # a group the caller made is the caller's to leave
    rank = setup_distributed(device)
    try:
        yield rank
    finally:
        if joins and dist.is_initialized():
            gc.collect()
            dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0 and 1 outside ``torchrun``)."""
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def process_device(device: str) -> torch.device:
    """The device of this process: under DDP on CUDA, the GPU of its LOCAL_RANK."""
    resolved = resolve_device(device)
    if dist.is_initialized() and resolved.type == "cuda":
        resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(resolved)
    return resolved


def wrap_for_processes(model: nn.Module, device: torch.device, world: int) -> nn.Module:
    """``model`` itself for one process; else DDP (with synchronised batch norm on CUDA)."""
    if world <= 1:
        return model
    net = nn.SyncBatchNorm.convert_sync_batchnorm(model) if device.type == "cuda" else model
    return nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
