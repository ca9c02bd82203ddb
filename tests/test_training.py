"""What every training loop shares: the mixed-precision rule, the stop on a non-finite loss, endless batches."""

from __future__ import annotations

import pytest
import torch

from medssl_lab.errors import TrainingError
from medssl_lab.training import autocast_dtype, check_finite, endless_batches


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
