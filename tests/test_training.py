"""What every training loop shares: the mixed-precision rule, the stop on a non-finite loss, endless batches, the
batch reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medssl_lab.data.stack import ImageStack
from medssl_lab.errors import TrainingError
from medssl_lab.training import BatchReader, autocast_dtype, check_finite, endless_batches


def test_mixed_precision_rule_and_non_finite_stop() -> None:
    cpu = torch.device("cpu")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("off", cpu) is None
    assert autocast_dtype("bf16", cpu) == torch.bfloat16 and autocast_dtype("fp16", cpu) == torch.float16
    with pytest.raises(ValueError, match="amp must be"):
        autocast_dtype("fp8", cpu)
    check_finite(torch.tensor(1.0), "here", "advice")
    with pytest.raises(TrainingError, match="the loss became nan at step 3. Lower the lr."):
        check_finite(torch.tensor(float("nan")), "at step 3", "Lower the lr.")


def test_endless_batches_cover_each_epoch_once() -> None:
    batches = endless_batches(10, 5, torch.Generator().manual_seed(0))
    first = torch.cat([next(batches), next(batches)])
    assert sorted(first.tolist()) == list(range(10))
    assert len(next(batches)) == 5  # a new epoch starts


def test_several_reading_threads_give_exactly_the_batches_of_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    parts = []
    for k, n in enumerate((50, 70, 30)):  # three shard files of random images
        parts.append(tmp_path / f"{k}.npy")
        np.save(parts[-1], rng.integers(0, 256, (n, 12, 12), dtype=np.uint8))
    positions = rng.permutation(150)[:120]  # a selection, in its own order
    stack = ImageStack(parts, 12, positions)
    everything = np.concatenate([np.load(p) for p in parts])[positions]
    batches = [torch.as_tensor(rng.integers(0, 120, 33)) for _ in range(6)]  # repeats within a batch too
    read = {}
    for workers in (1, 4, 7):
        reader = BatchReader(stack, torch.device("cpu"), workers=workers)
        read[workers] = []
        for i, batch in enumerate(batches):
            if i % 2 == 0:
                reader.prefetch(batch)  # read ahead, as the loop does; odd steps read on demand
            if i == 5:
                reader.get(batches[0])  # not the batch prefetched (none was): read now
            read[workers].append(reader.get(batch))
    for workers in (4, 7):
        assert all(torch.equal(a, b) for a, b in zip(read[1], read[workers]))
    assert all(np.array_equal(r.numpy(), everything[b.numpy()]) for r, b in zip(read[4], batches))
    with pytest.raises(ValueError, match="at least one reading thread"):
        BatchReader(stack, torch.device("cpu"), workers=0)
