"""Joining and leaving the process group: only a group the package joined is left by it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch.distributed as dist

from medssl_lab.pretrain import process_group


def test_outside_torchrun_there_is_no_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with process_group("cpu") as rank:
        assert rank == 0 and not dist.is_initialized()


def test_a_group_the_caller_made_is_left_to_the_caller(tmp_path: Path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        with process_group("cpu") as rank:
            assert rank == 0
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()
