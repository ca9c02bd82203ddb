"""Shared helpers of the evaluation tests: phantom splits and a stand-in pretrained encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.data.types import ImageSet
from medssl_lab.pretrain import PretrainConfig, Pretrained, build_model

SMOKE = dict(steps=6, eval_every=2, batch_size=16, device="cpu", seed=0)


def phantom_split(n: int, seed: int, binary: bool = True, size: int = 32) -> ImageSet:
    """Phantoms as a labelled split: lesion vs none (binary) or the 4 phantom classes."""
    ph = make_phantoms(n, size, seed=seed)
    if binary:
        return ImageSet(ph.images, (ph.labels > 0).astype(np.int64), ("no_lesion", "lesion"), "binary-class")
    return ImageSet(ph.images, ph.labels, ph.class_names, "multi-class")


@pytest.fixture(scope="module")
def splits() -> tuple[ImageSet, ImageSet, ImageSet]:
    return phantom_split(64, 1), phantom_split(40, 2), phantom_split(48, 3)  # distinct sizes: calls can be told apart


@pytest.fixture(scope="module")
def pretrained() -> Pretrained:
    torch.manual_seed(0)
    config = PretrainConfig.for_profile("smoke")
    return Pretrained(build_model(config).eval(), config)  # random weights stand in for a pretrained model
