"""Features and prototype assignments in batches."""

from __future__ import annotations

import numpy as np
import torch

from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.data.types import ImageSet
from medssl_lab.evaluation.inference import extract_assignments, extract_features
from medssl_lab.models import make_backbone


def test_extract_features_batches_restores_the_model_and_resizes() -> None:
    torch.manual_seed(0)
    backbone, dim = make_backbone("resnet_small")
    backbone.train()
    images = make_phantoms(10, 32, seed=0).images
    full = extract_features(backbone, images, batch_size=512, device="cpu")
    chunked = extract_features(
        backbone, ImageSet(images, np.zeros(10, int), ("a",), "multi-class"), batch_size=3, device="cpu"
    )
    assert full.shape == (10, dim) and full.dtype == np.float32
    assert np.allclose(full, chunked, atol=1e-5)  # eval mode: batch-norm does not depend on the batch
    assert backbone.training  # mode put back
    small = extract_features(backbone, images, image_size=16, device="cpu")
    assert small.shape == (10, dim) and not np.allclose(small, full)


def test_extract_assignments_scores_are_prototype_similarities(pretrained) -> None:
    pretrained = pretrained.model
    images = make_phantoms(12, 32, seed=0).images
    emb, scores = extract_assignments(pretrained, images, image_size=16, device="cpu")
    assert emb.shape == (12, 32) and scores.shape == (12, 16)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    w = pretrained.prototypes.weight.detach().numpy()
    assert np.allclose(scores, emb @ w.T, atol=1e-5)
    assert np.allclose(extract_features(pretrained, images, 16, device="cpu").shape, (12, pretrained.feat_dim))
