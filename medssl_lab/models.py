"""Backbones, projection head, prototypes and the SwAV model.

The model follows SwAV (Caron et al., "Unsupervised Learning of Visual Features by
Contrasting Cluster Assignments", NeurIPS 2020) as used for medical images by Ghesu et
al., "Self-supervised Learning from 100 Million Medical Images" (arXiv 2201.01283, 2022):

    image view -> backbone -> projection head (MLP, L2-normalised) -> prototypes (K)

Backbones are MONAI ResNets with a single input channel (grey-level medical images are
never forced to RGB). Any other ``nn.Module`` that maps ``(B, 1, H, W)`` images to
``(B, D)`` vectors can be used instead; :func:`infer_feat_dim` finds ``D``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BACKBONES",
    "Classifier",
    "ProjectionHead",
    "Prototypes",
    "SwAVModel",
    "infer_feat_dim",
    "make_backbone",
    "resnet_arguments",
]

# name -> (block, layers, block_inplanes, stem settings). The stems are chosen for the
# small images of the package's profiles (smoke, cpu, gpu):
# - resnet_small: CPU profile, 28-32 px; 3x3 stride-1 stem and no max-pool, so the
#   feature maps are 32-16-8-4 px for a 32 px input (CIFAR-style stem).
# - resnet18/34/50: GPU profile, 64 px or more; 7x7 stride-2 stem without max-pool
#   (total stride 16 instead of torchvision's 32), so a 64 px input still ends at 4x4.
_SPECS: dict[str, dict[str, Any]] = {
    "resnet_small": {
        "block": "basic",
        "layers": [1, 1, 1, 1],
        "block_inplanes": [16, 32, 64, 128],
        "conv1_t_size": 3,
        "conv1_t_stride": 1,
        "no_max_pool": True,
    },
    "resnet18": {
        "block": "basic",
        "layers": [2, 2, 2, 2],
        "block_inplanes": [64, 128, 256, 512],
        "conv1_t_size": 7,
        "conv1_t_stride": 2,
        "no_max_pool": True,
    },
    "resnet34": {
        "block": "basic",
        "layers": [3, 4, 6, 3],
        "block_inplanes": [64, 128, 256, 512],
        "conv1_t_size": 7,
        "conv1_t_stride": 2,
        "no_max_pool": True,
    },
    "resnet50": {
        "block": "bottleneck",
        "layers": [3, 4, 6, 3],
        "block_inplanes": [64, 128, 256, 512],
        "conv1_t_size": 7,
        "conv1_t_stride": 2,
        "no_max_pool": True,
    },
}

# resnet_small at twice the width (about 4x the compute): the recipe search's capacity test.
_SPECS["resnet_small_wide"] = {**_SPECS["resnet_small"], "block_inplanes": [32, 64, 128, 256]}

#: Names accepted by :func:`make_backbone`.
BACKBONES: tuple[str, ...] = tuple(_SPECS)


@torch.no_grad()
def infer_feat_dim(backbone: nn.Module, image_size: int | Sequence[int] = 32, in_channels: int = 1) -> int:
    """Find a backbone's feature dimension with one dummy forward pass.

    The module is run in eval mode on two blank images on its own device and put back
    in its previous mode afterwards.

    Args:
        backbone: any module mapping ``(B, in_channels, H, W)`` images to ``(B, D)``.
        image_size: ``H`` (square) or ``(H, W)`` of the dummy input.
        in_channels: channels of the dummy input (1 for the package's images).

    Returns:
        ``D``, the size of the feature vector.

    Raises:
        ValueError: if the output is not a ``(B, D)`` matrix.
    """
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    param = next(iter(backbone.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    was_training = backbone.training
    backbone.eval()
    try:
        out = backbone(torch.zeros(2, in_channels, *size, device=device, dtype=dtype))
    finally:
        backbone.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"backbone {type(backbone).__name__} maps a (2, {in_channels}, {size[0]}, {size[1]}) "
            f"batch to {shape}, but a (batch, features) matrix is needed; end the backbone "
            "with global pooling and flattening, e.g. nn.Sequential(net, "
            "nn.AdaptiveAvgPool2d(1), nn.Flatten())."
        )
    return int(out.shape[1])


def resnet_arguments(name: str, in_channels: int = 1, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of ``monai.networks.nets.ResNet`` for a backbone of :data:`BACKBONES`.

    Exported with the weights (``config.json``), so that the encoder is rebuilt elsewhere from MONAI alone.
    """
    key = str(name).lower().replace("-", "_")
    if key not in _SPECS:
        raise ValueError(
            f"unknown backbone {name!r}; use one of {', '.join(BACKBONES)}, or pass your own "
            "nn.Module mapping (B, 1, H, W) images to (B, D) features."
        )
    kwargs: dict[str, Any] = {**_SPECS[key], "spatial_dims": 2, "n_input_channels": in_channels, **overrides}
    kwargs["feed_forward"] = False  # the backbone returns pooled features, never logits
    return kwargs


def make_backbone(
    name: str | nn.Module, *, in_channels: int = 1, image_size: int = 32, **overrides: Any
) -> tuple[nn.Module, int]:
    """Build a 2D MONAI ResNet backbone, or take a user module, and give its feature size.

    Args:
        name: one of :data:`BACKBONES` (``"resnet_small"`` for CPUs at 28-32 px,
            ``"resnet18"``, ``"resnet34"``, ``"resnet50"`` for GPUs at 64 px or more), or
            an ``nn.Module`` mapping images to vectors (its size is then inferred).
        in_channels: image channels (1: medical images are grey-level).
        image_size: dummy input size used only to infer a user module's feature size.
        **overrides: keyword arguments for ``monai.networks.nets.ResNet`` that replace
            the defaults (e.g. ``layers=[2, 2, 2, 2]``, ``widen_factor=2.0``).

    Returns:
        ``(backbone, feat_dim)``; the backbone maps ``(B, in_channels, H, W)`` float
        images to ``(B, feat_dim)`` pooled features.

    Raises:
        ValueError: for an unknown name or a module that does not return vectors.
    """
    if isinstance(name, nn.Module):
        return name, infer_feat_dim(name, image_size, in_channels)
    kwargs = resnet_arguments(name, in_channels, **overrides)
    from monai.networks.nets import ResNet  # imported here: MONAI is slow to import

    net = ResNet(**kwargs)
    block = kwargs["block"]
    expansion = (4 if block == "bottleneck" else 1) if isinstance(block, str) else int(block.expansion)
    feat_dim = int(int(kwargs["block_inplanes"][3]) * float(kwargs.get("widen_factor", 1.0))) * expansion
    return net, feat_dim


class ProjectionHead(nn.Module):
    """The SwAV projection head: Linear-BN-ReLU-Linear, output L2-normalised.

    Caron et al. 2020 (SwAV) use a 2-layer MLP to 128 dimensions; the embeddings are
    L2-normalised so that the prototype scores are cosine similarities.

    Args:
        in_dim: backbone feature size.
        hidden_dim: hidden layer size.
        out_dim: embedding size.
        normalize: L2-normalise the output (keep True for SwAV).
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128, normalize: bool = True) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(B, in_dim)`` features to ``(B, out_dim)`` (unit-norm) embeddings."""
        z = self.net(x)
        return F.normalize(z, dim=1) if self.normalize else z


class Prototypes(nn.Linear):
    """K learnable prototypes: a bias-free linear layer whose rows are unit vectors.

    With unit-norm embeddings and prototypes, the scores are cosine similarities in
    ``[-1, 1]`` (Caron et al. 2020). Call :meth:`normalize_` after every optimizer step, and
    :meth:`drop_grad_` between ``backward()`` and the step while they should stay frozen.

    Args:
        dim: embedding size.
        n_prototypes: number of prototypes ``K``.
    """

    def __init__(self, dim: int, n_prototypes: int) -> None:
        super().__init__(dim, n_prototypes, bias=False)
        self.normalize_()

    @property
    def n_prototypes(self) -> int:
        """The number of prototypes ``K``."""
        return self.out_features

    @torch.no_grad()
    def normalize_(self) -> None:
        """L2-normalise each prototype (weight row) in place, outside autograd."""
        self.weight.copy_(F.normalize(self.weight, dim=1))

    def drop_grad_(self) -> None:
        """Forget the gradient, so that the next optimizer step (weight decay and momentum too) leaves the prototypes
        as they are: SwAV's reference code freezes them for the first iterations, which helps avoid early collapse."""
        self.weight.grad = None


class SwAVModel(nn.Module):
    """Backbone + projection head + prototypes for SwAV with multi-crop.

    Views of the same resolution (the global crops, then the local crops) go through
    the backbone together, one forward per resolution; the head and the prototypes
    then see all views at once (Caron et al. 2020, multi-crop; Ghesu et al. 2022).

    Args:
        backbone: module mapping ``(B, 1, H, W)`` to ``(B, feat_dim)``, or a name for
            :func:`make_backbone`.
        feat_dim: backbone feature size (inferred when None).
        hidden_dim: projection head hidden size.
        proj_dim: embedding size.
        n_prototypes: number of prototypes ``K``; 0 for a method without prototypes (SimCLR), whose
            scores are then empty.
    """

    def __init__(
        self,
        backbone: nn.Module | str,
        feat_dim: int | None = None,
        hidden_dim: int = 512,
        proj_dim: int = 128,
        n_prototypes: int = 128,
    ) -> None:
        super().__init__()
        if isinstance(backbone, str) or feat_dim is None:
            backbone, found = make_backbone(backbone)
            feat_dim = found if feat_dim is None else feat_dim
        self.backbone = backbone
        self.feat_dim = int(feat_dim)
        self.head = ProjectionHead(self.feat_dim, hidden_dim, proj_dim)
        self.prototypes = Prototypes(proj_dim, n_prototypes) if n_prototypes else None

    @property
    def n_prototypes(self) -> int:
        """The number of prototypes ``K`` (0 without prototypes)."""
        return self.prototypes.n_prototypes if self.prototypes is not None else 0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(B, feat_dim)`` of images ``(B, 1, H, W)`` (for probes)."""
        return self.backbone(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm embeddings ``(B, proj_dim)`` of images ``(B, 1, H, W)``."""
        return self.head(self.backbone(x))

    @torch.no_grad()
    def normalize_prototypes(self) -> None:
        """L2-normalise the prototypes; call after each optimizer step."""
        if self.prototypes is not None:
            self.prototypes.normalize_()

    def forward(self, views: torch.Tensor | Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Embed a list of views and score them against the prototypes.

        Args:
            views: one ``(B, 1, H, W)`` tensor or a list of them, all with the same
                ``B``; views of equal ``(H, W)`` are batched through the backbone
                together (e.g. 2 global crops at 32 px, then 4 local crops at 16 px).

        Returns:
            ``(embeddings, scores)``: two lists in the order of ``views``, with
            ``(B, proj_dim)`` unit-norm embeddings and ``(B, K)`` prototype scores (empty without prototypes).
        """
        if isinstance(views, torch.Tensor):
            views = [views]
        views = list(views)
        if not views:
            raise ValueError("SwAVModel.forward got no views; pass a list of (B, 1, H, W) tensors.")
        batch = views[0].shape[0]
        for i, v in enumerate(views):
            if v.ndim != 4 or v.shape[0] != batch:
                raise ValueError(
                    f"view {i} has shape {tuple(v.shape)}; every view must be (B, C, H, W) with "
                    f"the same B ({batch}) as view 0."
                )
        # Group views by resolution (order kept within a group), one backbone pass each.
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, v in enumerate(views):
            groups.setdefault(tuple(v.shape[1:]), []).append(i)
        feats: list[torch.Tensor] = []
        order: list[int] = []
        for idx in groups.values():
            x = views[idx[0]] if len(idx) == 1 else torch.cat([views[i] for i in idx], dim=0)
            feats.append(self.backbone(x))
            order.extend(idx)
        z = self.head(torch.cat(feats, dim=0) if len(feats) > 1 else feats[0])
        z_parts = z.split(batch, dim=0)
        embeddings: list[torch.Tensor] = [z] * len(views)
        for pos, i in enumerate(order):
            embeddings[i] = z_parts[pos]
        if self.prototypes is None:
            return embeddings, []
        s_parts = self.prototypes(z).split(batch, dim=0)
        scores: list[torch.Tensor] = list(s_parts)
        for pos, i in enumerate(order):
            scores[i] = s_parts[pos]
        return embeddings, scores


class Classifier(nn.Module):
    """A backbone and a linear head: images ``(B, 1, H, W)`` -> logits ``(B, n_outputs)``."""

    def __init__(self, backbone: nn.Module, feat_dim: int, n_outputs: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feat_dim, n_outputs)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features (for probes and embeddings of a fine-tuned model)."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        return self.head(self.backbone(x))
