"""Running a frozen model over many images in batches: features, prototype assignments, class probabilities.

Every function puts the model in eval mode on the requested device for the call and puts its mode and device back
afterwards, so callers keep their model as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from medssl_lab.config import progress_bar, resolve_device
from medssl_lab.data.stack import ImageStack
from medssl_lab.data.types import ImageSet
from medssl_lab.evaluation.metrics import check_task
from medssl_lab.evaluation.perturbations import perturb, prepare
from medssl_lab.models import SwAVModel

ImagesLike = ImageSet | np.ndarray | Tensor | ImageStack


def image_array(images: ImagesLike) -> np.ndarray | Tensor | ImageStack:
    """The images to batch: an array, a tensor, or a store's ImageStack (read one batch slice at a time)."""
    arr = images.images if isinstance(images, ImageSet) else images
    if not isinstance(arr, (np.ndarray, Tensor, ImageStack)):
        raise TypeError(f"expected an ImageSet, numpy array or tensor of images, got {type(images).__name__}")
    if arr.ndim not in (3, 4):
        raise ValueError(f"expected images of shape (N, H, W) or (N, 1, H, W), got {tuple(arr.shape)}")
    return arr


def _module_device(module: nn.Module) -> torch.device | None:
    param = next(iter(module.parameters()), None)
    return param.device if param is not None else None


class _EvalOn:
    """Run a module in eval mode on ``device``, then put its mode and device back (callers keep their model)."""

    def __init__(self, module: nn.Module, device: torch.device) -> None:
        self.module, self.device = module, device

    def __enter__(self) -> nn.Module:
        self.was_training = self.module.training
        self.home = _module_device(self.module)
        return self.module.to(self.device).eval()

    def __exit__(self, *exc: object) -> None:
        self.module.train(self.was_training)
        if self.home is not None and self.home != self.device:
            self.module.to(self.home)


def _batched(
    fn: Callable[[Tensor], Tensor | tuple[Tensor, ...]],
    images: ImagesLike,
    image_size: int | None,
    batch_size: int,
    device: torch.device,
    progress: bool = False,
    perturbation: tuple[str, float] | None = None,
    seed: int = 0,
) -> list[np.ndarray]:
    """Apply ``fn`` to prepared batches (optionally perturbed first); concatenate each output on the CPU."""
    arr = image_array(images)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    starts = range(0, len(arr), batch_size)
    if progress:
        starts = progress_bar(starts, desc="batches", leave=False)
    outputs: list[list[Tensor]] = []
    with torch.no_grad():
        for start in starts:
            chunk = arr[start : start + batch_size]
            batch = chunk if isinstance(chunk, Tensor) else torch.from_numpy(np.ascontiguousarray(chunk))
            batch = batch.to(device, non_blocking=True)
            if perturbation is not None:
                batch = perturb(batch, perturbation[0], perturbation[1], seed=seed + start)
            out = fn(prepare(batch, image_size))
            out = out if isinstance(out, tuple) else (out,)
            if not outputs:
                outputs = [[] for _ in out]
            for store, o in zip(outputs, out):
                store.append(o.detach().float().reshape(len(o), -1).cpu())
    if not outputs:
        raise ValueError("no images to process")
    return [torch.cat(o).numpy() for o in outputs]


def _encode_fn(encoder: nn.Module) -> Callable[[Tensor], Tensor]:
    if hasattr(encoder, "encode"):  # SwAVModel, Classifier
        return cast(Callable[[Tensor], Tensor], encoder.encode)
    return encoder  # a bare backbone


def extract_features(
    encoder: nn.Module,
    images: ImagesLike,
    image_size: int | None = None,
    batch_size: int = 512,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> np.ndarray:
    """Backbone features of every image, with the model frozen (eval mode, no gradients).

    Images go through :func:`medssl_lab.evaluation.perturbations.prepare`, the normalisation used in
    training, and are resized to ``image_size`` (pass the pretraining size) so that the
    encoder sees what it was trained on.

    Args:
        encoder: a :class:`~medssl_lab.models.SwAVModel` (its ``encode``), a
            :class:`Classifier`, or any module mapping ``(B, 1, H, W)`` to ``(B, D)``.
        images: an ImageSet, or uint8 ``(N, H, W)`` images (array or tensor).
        image_size: resize to this size first; None keeps the stored size.
        batch_size: images per forward pass.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...; the encoder is moved back afterwards.
        progress: show a progress bar.

    Returns:
        ``(N, D)`` float32 features.
    """
    dev = resolve_device(device)
    with _EvalOn(encoder, dev) as model:
        return _batched(_encode_fn(model), images, image_size, batch_size, dev, progress)[0]


def extract_assignments(
    model: SwAVModel,
    images: ImagesLike,
    image_size: int | None = None,
    batch_size: int = 512,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm projection embeddings and prototype scores, for cluster analysis.

    Returns:
        ``(embeddings (N, proj_dim), scores (N, K))``; ``scores.argmax(1)`` is each
        image's prototype (cluster).
    """
    dev = resolve_device(device)
    prototypes = model.prototypes
    if prototypes is None:
        raise ValueError("this model has no prototypes (a SimCLR encoder): cluster its embeddings with k-means instead")

    def fn(x: Tensor) -> tuple[Tensor, Tensor]:
        z = model.embed(x)
        return z, prototypes(z)

    with _EvalOn(model, dev):
        emb, scores = _batched(fn, images, image_size, batch_size, dev, progress)
    return emb, scores


def to_proba(logits: Tensor, multilabel: bool) -> Tensor:
    return torch.sigmoid(logits.float()) if multilabel else torch.softmax(logits.float(), dim=1)


def predict_proba(
    model: nn.Module,
    images: ImagesLike,
    task: str,
    image_size: int | None = None,
    batch_size: int = 512,
    device: str | torch.device = "auto",
    perturbation: tuple[str, float] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Class probabilities of a classifier (softmax, or sigmoid for multi-label), in eval mode.

    Args:
        model: maps normalised ``(B, 1, H, W)`` images to logits (e.g. ``TrainResult.model``).
        images: ImageSet or uint8 images.
        task: decides softmax vs sigmoid.
        image_size: resize first (None: as stored).
        batch_size: images per forward pass.
        device: where to run.
        perturbation: optional ``(kind, severity)`` of :func:`medssl_lab.evaluation.perturbations.perturb`,
            applied to the stored images before resizing and normalising.
        seed: noise seed of the perturbation.
    """
    multilabel = check_task(task)
    dev = resolve_device(device)
    with _EvalOn(model, dev) as m:
        return _batched(
            lambda x: to_proba(m(x), multilabel),
            images,
            image_size,
            batch_size,
            dev,
            perturbation=perturbation,
            seed=seed,
        )[0]
