"""Tests of medssl_lab.models: backbones, head, prototypes and the multi-crop SwAV model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medssl_lab.models import (
    BACKBONES,
    ProjectionHead,
    Prototypes,
    SwAVModel,
    infer_feat_dim,
    make_backbone,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize(
    ("name", "size", "dim"),
    [("resnet_small", 32, 128), ("resnet_small", 28, 128), ("resnet18", 64, 512), ("resnet50", 32, 2048)],
)
def test_backbone_output_shape(name: str, size: int, dim: int) -> None:
    net, feat_dim = make_backbone(name)
    assert feat_dim == dim
    assert net.conv1.in_channels == 1
    out = net(torch.randn(3, 1, size, size))
    assert out.shape == (3, feat_dim)


def test_backbone_names_and_overrides() -> None:
    assert {"resnet_small", "resnet18", "resnet50"} <= set(BACKBONES)
    net, dim = make_backbone("resnet_small", layers=[2, 2, 2, 2], widen_factor=0.5)
    assert dim == 64
    assert net(torch.randn(2, 1, 32, 32)).shape == (2, 64)
    with pytest.raises(ValueError, match="unknown backbone"):
        make_backbone("vgg")


def test_user_module_backbone() -> None:
    custom = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    custom.train()
    assert infer_feat_dim(custom) == 8
    assert custom.training  # mode restored
    net, dim = make_backbone(custom)
    assert net is custom and dim == 8
    model = SwAVModel(custom, hidden_dim=16, proj_dim=8, n_prototypes=5)
    assert model.feat_dim == 8
    with pytest.raises(ValueError, match="global pooling"):
        infer_feat_dim(nn.Conv2d(1, 4, 3))


def test_projection_head_unit_norm() -> None:
    head = ProjectionHead(32, 64, 16)
    z = head(torch.randn(10, 32))
    assert z.shape == (10, 16)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(10))


def test_prototypes_normalize() -> None:
    protos = Prototypes(16, 7)
    assert protos.bias is None and protos.n_prototypes == 7
    torch.testing.assert_close(protos.weight.norm(dim=1), torch.ones(7))
    with torch.no_grad():
        protos.weight.mul_(3.0).add_(0.5)
    protos.normalize_()
    torch.testing.assert_close(protos.weight.norm(dim=1), torch.ones(7))
    assert protos.weight.requires_grad and protos.weight.grad is None


def _views(batch: int = 4) -> list[torch.Tensor]:
    return [torch.randn(batch, 1, 32, 32) for _ in range(2)] + [torch.randn(batch, 1, 16, 16) for _ in range(4)]


def test_swav_model_multicrop_shapes() -> None:
    model = SwAVModel("resnet_small", hidden_dim=64, proj_dim=32, n_prototypes=10)
    embeddings, scores = model(_views())
    assert len(embeddings) == len(scores) == 6
    for z, s in zip(embeddings, scores):
        assert z.shape == (4, 32) and s.shape == (4, 10)
        torch.testing.assert_close(z.norm(dim=1), torch.ones(4))
        assert s.abs().max() <= 1.0 + 1e-5  # cosine similarities
    assert model.encode(torch.randn(2, 1, 32, 32)).shape == (2, 128)
    assert model.n_prototypes == 10


def test_swav_model_keeps_view_order() -> None:
    model = SwAVModel("resnet_small", hidden_dim=64, proj_dim=32, n_prototypes=10).eval()
    v = _views(3)
    interleaved = [v[2], v[0], v[3], v[1]]  # local, global, local, global
    with torch.no_grad():
        embeddings, _ = model(interleaved)
        for z, x in zip(embeddings, interleaved):
            torch.testing.assert_close(z, model.embed(x), atol=1e-5, rtol=1e-4)


def test_swav_model_bad_views() -> None:
    model = SwAVModel("resnet_small", hidden_dim=16, proj_dim=8, n_prototypes=4)
    with pytest.raises(ValueError, match="same B"):
        model([torch.randn(2, 1, 32, 32), torch.randn(3, 1, 32, 32)])


def test_swav_model_channels_last_autocast_backward() -> None:
    from medssl_lab.losses import SwAVLoss

    model = SwAVModel("resnet_small", hidden_dim=64, proj_dim=32, n_prototypes=10)
    model = model.to(memory_format=torch.channels_last)
    views = [v.contiguous(memory_format=torch.channels_last) for v in _views()]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, scores = model(views)
        loss = SwAVLoss()(scores[:2], scores[2:])
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert model.prototypes.weight.grad is not None
    assert model.backbone.conv1.weight.grad is not None
    assert torch.isfinite(model.backbone.conv1.weight.grad).all()


def test_prototypes_drop_their_gradient_so_a_step_leaves_them() -> None:
    model = nn.ModuleDict({"enc": nn.Linear(4, 4), "prototypes": Prototypes(4, 3)})
    before = model["prototypes"].weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=1.0, weight_decay=0.1)
    model["prototypes"](model["enc"](torch.randn(5, 4))).sum().backward()
    model["prototypes"].drop_grad_()
    opt.step()
    torch.testing.assert_close(model["prototypes"].weight, before)
    assert model["enc"].weight.grad is not None


# --- NT-Xent ----------------------------------------------------------------------------
