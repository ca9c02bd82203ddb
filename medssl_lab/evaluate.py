"""Turning a pretrained encoder into evidence: metrics, probes, downstream training, convergence, robustness.

The downstream experiment of the paper in miniature (after Ghesu et al., "Self-supervised Learning from
100 Million Medical Images", 2022) compares arms that differ *only* in how the backbone
starts and what is trained:

* ``scratch``: random initialisation, everything trained;
* ``linear``: pretrained backbone frozen, a linear head trained;
* ``finetune``: pretrained backbone, everything trained;
* ``hybrid``: pretrained backbone, everything trained on the supervised loss of the
  labelled batch **plus** the SwAV loss of a batch of unlabelled pool images.

All arms go through the same :func:`train_classifier` loop (same data order,
augmentation, optimiser and evaluation), validation AUC is recorded every
``eval_every`` steps, the best step is chosen on validation, and the test split is
evaluated once, with the weights of that step. Metrics follow MedMNIST's evaluator
(AUC and ACC), so numbers can be compared with the MedMNIST papers.

Frozen features can also be judged without training a network: :func:`knn_probe`
(weighted cosine kNN as in SwAV/DINO) and :func:`linear_probe` (logistic regression,
weight decay chosen on validation AUC).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn

from medssl_lab.augment import (
    PERTURBATION_LEVELS,
    MultiCropAugment,
    MultiCropConfig,
    iter_perturbations,
    make_generator,
    perturb,
    prepare,
)
from medssl_lab.checks import check_choices, check_numbers, check_whole
from medssl_lab.config import progress_bar, resolve_device
from medssl_lab.data.pool import epoch_batches, resize_uint8
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError, TrainingError
from medssl_lab.losses import HybridLoss, SwAVLoss
from medssl_lab.models import BACKBONES, SwAVModel, make_backbone
from medssl_lab.pretrain import PretrainConfig, autocast_dtype, build_model, load_pretrained

__all__ = [
    "ARMS",
    "TASKS",
    "Classifier",
    "TrainConfig",
    "TrainResult",
    "compute_metrics",
    "convergence_target",
    "extract_assignments",
    "extract_features",
    "knn_probe",
    "label_fraction_indices",
    "linear_probe",
    "load_encoder",
    "predict_proba",
    "robustness_curve",
    "step_reduction",
    "steps_to_reach",
    "train_classifier",
]

#: Tasks as MedMNIST names them (ordinal regression is scored like multi-class, as MedMNIST does).
TASKS: tuple[str, ...] = ("binary-class", "multi-class", "multi-label, binary-class", "ordinal-regression")
#: Downstream training arms of the experiment.
ARMS: tuple[str, ...] = ("scratch", "linear", "finetune", "hybrid")

ImagesLike = ImageSet | np.ndarray | Tensor


# --------------------------------------------------------------------------- metrics


def _check_task(task: str) -> bool:
    """Validate ``task``; return True for multi-label tasks."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {TASKS} (ImageSet.task holds it)")
    return task.startswith("multi-label")


def check_labelled(name: str, data: ImageSet) -> None:
    """Refuse a labelled split that is empty, has labels outside its task's classes (-1 marks unlabelled images),
    or, for AUC, lacks a class: training on it would report a figure that means nothing."""
    if len(data) == 0:
        raise DataError(f"the {name} split is empty; pass a split with labelled images (check the label fraction).")
    labels, k = data.labels, len(data.class_names)
    multilabel = data.task.startswith("multi-label")
    bad = ~np.isin(labels, (0, 1)) if multilabel else (labels[:, 0] < 0) | (labels[:, 0] >= k)
    if bad.any():
        examples = sorted({int(v) for v in labels[bad].ravel()})[:5]
        allowed = "0 or 1 per label" if multilabel else f"0..{k - 1} ({', '.join(data.class_names)})"
        raise DataError(f"the {name} split has {int(bad.sum())} label(s) outside {allowed}, e.g. {examples}; "
                        f"-1 marks an unlabelled image: leave those out of labelled splits.")
    if not multilabel and len(np.unique(labels[:, 0])) < 2:
        raise DataError(f"the {name} split holds only class {data.class_names[int(labels[0, 0])]!r}; "
                        f"training and AUC need at least two classes.")


def _undefined_auc(what: str, n: int) -> float:
    warnings.warn(
        f"AUC is undefined: {what} among the {n} samples of y_true (ROC needs positives and negatives); "
        "returning nan. Evaluate on a split that holds every class (e.g. the full validation split).",
        RuntimeWarning,
        stacklevel=3,
    )
    return float("nan")


def compute_metrics(task: str, y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    """AUC and ACC exactly as MedMNIST's evaluator reports them, so results compare with its papers.

    Args:
        task: ``"binary-class"``, ``"multi-class"``, ``"multi-label, binary-class"`` or
            ``"ordinal-regression"`` (scored like multi-class).
        y_true: ``(N,)`` or ``(N, 1)`` class indices; ``(N, L)`` 0/1 for multi-label.
        y_score: probabilities: binary ``(N,)`` P(positive) or ``(N, 2)`` softmax;
            multi-class ``(N, C)`` softmax; multi-label ``(N, L)`` sigmoids.

    Returns:
        ``{"auc", "acc"}``. AUC: binary ROC AUC; multi-class the mean of the one-vs-rest
        AUCs of all classes; multi-label the mean AUC over labels. ACC: threshold 0.5
        (binary), argmax (multi-class), mean over labels of the 0.5-threshold accuracy
        (multi-label). When a class (or a label's positives or negatives) is absent from
        ``y_true`` the AUC is undefined: it is returned as nan with a RuntimeWarning
        naming what is missing; ACC is still computed.
    """
    multilabel = _check_task(task)
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if len(y) != len(s):
        raise ValueError(f"y_true has {len(y)} rows but y_score has {len(s)}")
    if len(y) == 0:
        raise ValueError("compute_metrics got no samples")
    if not np.isfinite(s).all():
        raise ValueError("y_score holds nan or inf; check the model's outputs (diverged training?)")
    if s.min() < -1e-6 or s.max() > 1 + 1e-6:
        raise ValueError(
            f"y_score must be probabilities in [0, 1] (softmax or sigmoid outputs), got range "
            f"[{s.min():.3g}, {s.max():.3g}]; logits are not accepted because ACC thresholds at 0.5"
        )
    if multilabel:
        y = y.reshape(len(y), -1)
        s = s.reshape(len(s), -1)
        if y.shape != s.shape:
            raise ValueError(f"multi-label y_true {y.shape} and y_score {s.shape} must have the same shape")
        acc = float(np.mean((s > 0.5) == (y > 0)))
        bad = [j for j in range(y.shape[1]) if len(np.unique(y[:, j])) < 2]
        if bad:
            return {"auc": _undefined_auc(f"label(s) {bad} have only one value", len(y)), "acc": acc}
        return {"auc": float(np.mean([roc_auc_score(y[:, j], s[:, j]) for j in range(y.shape[1])])), "acc": acc}

    y = y.reshape(len(y), -1)
    if y.shape[1] != 1:
        raise ValueError(f"{task} needs one label per sample, got y_true of shape {np.shape(y_true)}")
    y = y[:, 0].astype(np.int64)
    if task == "binary-class":
        if s.ndim == 2 and s.shape[1] in (1, 2):
            s = s[:, -1]
        if s.ndim != 1:
            raise ValueError(f"binary y_score must be (N,), (N, 1) or (N, 2), got {np.shape(y_score)}")
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"binary y_true must be 0/1, got values {np.unique(y)[:10]}")
        acc = float(np.mean((s > 0.5) == (y == 1)))
        if len(np.unique(y)) < 2:
            return {"auc": _undefined_auc(f"only class {int(y[0])} occurs", len(y)), "acc": acc}
        return {"auc": float(roc_auc_score(y, s)), "acc": acc}

    if s.ndim != 2 or s.shape[1] < 2:
        raise ValueError(f"{task} y_score must be (N, C) class probabilities, got {np.shape(y_score)}")
    n_classes = s.shape[1]
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"y_true holds class indices outside 0..{n_classes - 1}: {np.unique(y)[:10]}")
    acc = float(np.mean(s.argmax(axis=1) == y))
    absent = sorted(set(range(n_classes)) - set(np.unique(y).tolist()))
    if absent:
        return {"auc": _undefined_auc(f"class(es) {absent} never occur", len(y)), "acc": acc}
    auc = np.mean([roc_auc_score(y == c, s[:, c]) for c in range(n_classes)])
    return {"auc": float(auc), "acc": acc}


# --------------------------------------------------------------------------- label fractions


def label_fraction_indices(labels: np.ndarray, fraction: float, seed: int = 0, min_per_class: int = 2) -> np.ndarray:
    """Seeded, stratified subset of a train split, for label-efficiency experiments.

    Each class keeps ``round(fraction * count)`` examples but at least ``min_per_class``
    (so 0.1 % of MedNIST still shows every class, and AUC stays defined); for multi-label
    data a random subset is topped up until every label has ``min_per_class`` positives
    and negatives. For one seed the subsets are nested (1 % lies inside 10 %), because
    each class is drawn from one fixed permutation.

    Args:
        labels: ``(N,)`` / ``(N, 1)`` class indices, or ``(N, L)`` 0/1 multi-label matrix.
        fraction: in ``(0, 1]``; 1.0 returns every index.
        seed: fixes the subset.
        min_per_class: floor per class (capped at the class size).

    Returns:
        Sorted int64 indices into ``labels``.
    """
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction} (1 % is 0.01)")
    n = len(y)
    if fraction >= 1.0:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if y.ndim == 1:
        parts = []
        for cls in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == cls))
            k = min(len(idx), max(min_per_class, int(round(fraction * len(idx)))))
            parts.append(idx[:k])
        return np.sort(np.concatenate(parts)).astype(np.int64)
    order = rng.permutation(n)
    chosen = np.zeros(n, dtype=bool)
    chosen[order[: max(1, int(round(fraction * n)))]] = True
    for j in range(y.shape[1]):
        for value in (0, 1):
            have = int(np.sum(y[chosen, j] == value))
            if have < min_per_class:
                extra = [i for i in order if not chosen[i] and y[i, j] == value][: min_per_class - have]
                chosen[extra] = True
    return np.flatnonzero(chosen).astype(np.int64)


# --------------------------------------------------------------------------- batched inference


def _image_array(images: ImagesLike) -> np.ndarray | Tensor:
    arr = images.images if isinstance(images, ImageSet) else images
    if not isinstance(arr, (np.ndarray, Tensor)):
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
    arr = _image_array(images)
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
    return encoder.encode if hasattr(encoder, "encode") else encoder  # SwAVModel, Classifier, or a bare backbone


def extract_features(
    encoder: nn.Module,
    images: ImagesLike,
    image_size: int | None = None,
    batch_size: int = 512,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> np.ndarray:
    """Backbone features of every image, with the model frozen (eval mode, no gradients).

    Images go through :func:`medssl_lab.augment.prepare`, the normalisation used in
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

    def fn(x: Tensor) -> tuple[Tensor, Tensor]:
        z = model.embed(x)
        return z, model.prototypes(z)

    with _EvalOn(model, dev):
        emb, scores = _batched(fn, images, image_size, batch_size, dev, progress)
    return emb, scores


def _to_proba(logits: Tensor, multilabel: bool) -> Tensor:
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
        perturbation: optional ``(kind, severity)`` of :func:`medssl_lab.augment.perturb`,
            applied to the stored images before resizing and normalising.
        seed: noise seed of the perturbation.
    """
    multilabel = _check_task(task)
    dev = resolve_device(device)
    with _EvalOn(model, dev) as m:
        return _batched(lambda x: _to_proba(m(x), multilabel), images, image_size, batch_size, dev,
                        perturbation=perturbation, seed=seed)[0]


# --------------------------------------------------------------------------- probes on frozen features


def _targets(y: np.ndarray, multilabel: bool) -> np.ndarray:
    y = np.asarray(y)
    if multilabel:
        return y.reshape(len(y), -1)
    y = y.reshape(len(y), -1)
    if y.shape[1] != 1:
        raise ValueError(f"single-label tasks need (N,) or (N, 1) labels, got {np.shape(y)}")
    return y[:, 0].astype(np.int64)


def _n_outputs(task: str, *label_sets: np.ndarray) -> int:
    if task.startswith("multi-label"):
        return int(np.asarray(label_sets[0]).reshape(len(label_sets[0]), -1).shape[1])
    if task == "binary-class":
        return 2
    return int(max(int(np.max(y)) for y in label_sets if len(y)) + 1)


def knn_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    task: str,
    k: int = 20,
    temperature: float = 0.07,
    n_classes: int | None = None,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Weighted k-nearest-neighbour classification on cosine similarity (the SwAV/DINO kNN protocol).

    Each test sample's ``k`` most similar training samples vote with weight
    ``exp(similarity / temperature)``; the normalised votes are class probabilities (for
    multi-label tasks, the weighted mean of each label). No training, no hyperparameter
    search: a quick check that the embedding puts similar images together.

    Args:
        train_x, test_x: ``(N, D)`` features (L2-normalised here).
        train_y, test_y: labels as in :func:`compute_metrics`.
        task: the task string.
        k: neighbours (capped at the number of training samples).
        temperature: vote sharpness (0.07 as in Wu et al. 2018 / DINO).
        n_classes: number of classes (default: from the labels).
        batch_size: test samples per similarity block (bounds memory).

    Returns:
        :func:`compute_metrics` of the test set.
    """
    multilabel = _check_task(task)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    ytr = _targets(train_y, multilabel)
    c = n_classes or _n_outputs(task, train_y, test_y)
    tr = F.normalize(torch.as_tensor(np.asarray(train_x), dtype=torch.float32), dim=1)
    te = F.normalize(torch.as_tensor(np.asarray(test_x), dtype=torch.float32), dim=1)
    if tr.shape[1] != te.shape[1]:
        raise ValueError(f"train features have {tr.shape[1]} dimensions, test features {te.shape[1]}")
    votes = torch.as_tensor(ytr, dtype=torch.float32) if multilabel else F.one_hot(torch.as_tensor(ytr), c).float()
    kk = max(1, min(int(k), len(tr)))
    scores = []
    for start in range(0, len(te), batch_size):
        sim = te[start : start + batch_size] @ tr.T
        top, idx = sim.topk(kk, dim=1)
        w = torch.exp((top - top[:, :1]) / temperature)  # shift by the row max: same votes, no overflow
        scores.append((w.unsqueeze(2) * votes[idx]).sum(1) / w.sum(1, keepdim=True))
    return compute_metrics(task, test_y, torch.cat(scores).clamp_(0.0, 1.0).numpy())


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    task: str,
    weight_decays: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
    max_iter: int = 100,
    n_classes: int | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Logistic regression on frozen, standardised features; L2 strength chosen on validation AUC.

    Each candidate is fitted full-batch with L-BFGS (the problem is convex, so it is
    deterministic and fast); the test split is scored once, with the candidate of the
    best validation AUC: nothing is chosen on the test split.

    Args:
        train_x, val_x, test_x: ``(N, D)`` features; standardised with train statistics.
        train_y, val_y, test_y: labels as in :func:`compute_metrics`.
        task: the task string.
        weight_decays: candidate L2 penalties (on the weights, mean loss + wd/2 * ||W||^2).
        max_iter: L-BFGS iterations per candidate.
        n_classes: number of classes (default: from the labels).
        device: where to fit.

    Returns:
        Test ``{"auc", "acc"}`` plus ``"val_auc"`` and the chosen ``"weight_decay"``.
    """
    multilabel = _check_task(task)
    if not weight_decays:
        raise ValueError("weight_decays needs at least one candidate")
    dev = resolve_device(device)
    c = n_classes or _n_outputs(task, train_y, val_y, test_y)
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=dev)  # noqa: E731
    xtr, xva, xte = as_t(train_x), as_t(val_x), as_t(test_x)
    mean, std = xtr.mean(0, keepdim=True), xtr.std(0, keepdim=True).clamp_min(1e-6)
    xtr, xva, xte = ((x - mean) / std for x in (xtr, xva, xte))
    ytr = torch.as_tensor(_targets(train_y, multilabel), device=dev)
    ytr = ytr.float() if multilabel else ytr.long()

    def fit(wd: float) -> nn.Linear:
        head = nn.Linear(xtr.shape[1], c).to(dev)
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            opt.zero_grad()
            logits = head(xtr)
            loss = F.binary_cross_entropy_with_logits(logits, ytr) if multilabel else F.cross_entropy(logits, ytr)
            loss = loss + 0.5 * wd * head.weight.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return head

    def scores(head: nn.Linear, x: Tensor) -> np.ndarray:
        with torch.no_grad():
            return _to_proba(head(x), multilabel).cpu().numpy()

    best: tuple[float, float, nn.Linear] | None = None
    for wd in weight_decays:
        head = fit(float(wd))
        val_auc = compute_metrics(task, val_y, scores(head, xva))["auc"]
        key = val_auc if math.isfinite(val_auc) else -math.inf
        if best is None or key > best[0]:
            best = (key, float(wd), head)
    assert best is not None
    result = compute_metrics(task, test_y, scores(best[2], xte))
    return {**result, "val_auc": best[0] if math.isfinite(best[0]) else float("nan"), "weight_decay": best[1]}


# --------------------------------------------------------------------------- downstream training


class Classifier(nn.Module):
    """A backbone and a linear head: images ``(B, 1, H, W)`` -> logits ``(B, n_outputs)``."""

    def __init__(self, backbone: nn.Module, feat_dim: int, n_outputs: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feat_dim, n_outputs)

    def encode(self, x: Tensor) -> Tensor:
        """Backbone features (for probes and embeddings of a fine-tuned model)."""
        return self.backbone(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits."""
        return self.head(self.backbone(x))


@dataclass
class TrainConfig:
    """Knobs of :func:`train_classifier`; every arm of one comparison gets the same values.

    The learning rate is constant (no schedule) so that a curve does not depend on the
    budget and steps-to-target compare fairly between arms and budgets. The defaults were
    chosen on PneumoniaMNIST's validation split (``benchmarks/downstream_ablation.py``).
    """

    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    linear_lr: float | None = 3e-2  # the linear arm's lr (None: lr): a lone linear head needs larger steps
    pretrained_lr_scale: float = 1.0  # finetune / hybrid: lr of the pretrained weights = lr * this (< 1 did worse)
    weight_decay: float = 1e-4
    eval_every: int = 25
    dense_eval: tuple[int, int] | None = None  # (every, until): evaluate more often early, where convergence is decided
    image_size: int | None = None  # None: the checkpoint's image size, else the images' own size
    backbone: str = "resnet_small"  # scratch arm without a checkpoint to copy the architecture from
    augment: bool = True  # mild crop / rotation / intensity jitter of the labelled batches
    ssl_weight: float = 1.0  # hybrid: total = supervised + ssl_weight * SwAV
    ssl_batch_size: int | None = None  # hybrid: unlabelled images per step (None: batch_size)
    ssl_temperature: float = 0.1
    ssl_epsilon: float = 0.05
    multicrop: MultiCropConfig | None = None  # hybrid views (None: the checkpoint's, else the cpu profile's)
    target: float | None = None  # val AUC for TrainResult.steps_to_target
    eval_batch_size: int = 512
    amp: str = "auto"  # "auto" (bf16 on CUDA when supported, off elsewhere), "bf16", "off"
    device: str = "auto"
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        check_whole("TrainConfig", values, dict(steps=1, batch_size=2, eval_every=1, eval_batch_size=1, image_size=8,
                                                ssl_batch_size=2), optional=("image_size", "ssl_batch_size"))
        values["linear_lr"] = self.linear_lr or 1.0  # None: the shared lr
        check_numbers("TrainConfig", values, dict(
            lr=(0.0, math.inf), linear_lr=(0.0, math.inf), ssl_temperature=(0.0, math.inf), ssl_epsilon=(0.0, math.inf),
            pretrained_lr_scale=(0.0, math.inf), weight_decay=(0.0, math.inf), ssl_weight=(0.0, math.inf),
        ), open_low=("lr", "linear_lr", "ssl_temperature", "ssl_epsilon"))
        check_choices("TrainConfig", values, dict(backbone=BACKBONES, amp=("auto", "bf16", "off")))
        if self.dense_eval is not None and (len(self.dense_eval) != 2 or int(self.dense_eval[0]) < 1):
            raise ValueError(f"TrainConfig.dense_eval must be (every >= 1, until), got {self.dense_eval}")

    def is_eval_step(self, step: int) -> bool:
        """Validate every ``eval_every`` steps, at the last step, and every ``dense_eval[0]`` steps up to ``dense_eval[1]``.

        Steps-to-target is only as fine as this grid; pretrained arms often reach the target
        within a few steps, so the early grid must be fine for the reduction to show.
        """
        if step % self.eval_every == 0 or step == self.steps:
            return True
        return self.dense_eval is not None and step <= self.dense_eval[1] and step % self.dense_eval[0] == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain values for result tables."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["multicrop"] = None if self.multicrop is None else self.multicrop.to_dict()
        return out


@dataclass
class TrainResult:
    """What one downstream run produced.

    Attributes:
        arm: the arm trained.
        curve: ``(step, val_auc)`` every ``eval_every`` steps and at the last step.
        best_step: the step of the best validation AUC (the weights kept).
        best_val_auc: that AUC.
        test_auc, test_acc: the test split, scored once, at ``best_step``.
        steps_to_target: first evaluated step with val AUC >= ``config.target`` (None: never / no target).
        losses: per step ``{"step", "loss", "supervised", "ssl"}`` (ssl 0 except for hybrid).
        seconds: wall time of training and evaluation.
        model: the classifier with the best weights, in eval mode.
        config: the knobs used.
    """

    arm: str
    curve: list[tuple[int, float]]
    best_step: int
    best_val_auc: float
    test_auc: float
    test_acc: float
    steps_to_target: int | None
    losses: list[dict[str, float]]
    seconds: float
    n_train: int
    model: Classifier = field(repr=False)
    config: TrainConfig = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """One flat row for CSV / Markdown tables (no model, no curve)."""
        return {
            "arm": self.arm, "n_train": self.n_train, "steps": self.config.steps, "seed": self.config.seed,
            "best_step": self.best_step, "best_val_auc": self.best_val_auc, "test_auc": self.test_auc,
            "test_acc": self.test_acc, "steps_to_target": self.steps_to_target, "seconds": self.seconds,
        }


def load_encoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[SwAVModel, PretrainConfig]:
    """The pretrained model (eval mode) and its config, from a checkpoint file or run folder.

    A thin alias of :func:`medssl_lab.pretrain.load_pretrained`, so that evaluation code
    imports from one place.
    """
    return load_pretrained(path, device)


def _supervised_augment(size: int) -> MultiCropAugment:
    """Mild, label-preserving jitter: one view at full size, small crop, rotation and contrast change."""
    return MultiCropAugment(MultiCropConfig(
        n_global=1, global_size=size, global_scale=(0.7, 1.0), n_local=0, aspect_ratio=(0.9, 1.1),
        max_rotation_deg=10.0, scale_jitter=(0.95, 1.05), intensity_p=0.5, intensity_scale=(0.9, 1.1),
        intensity_shift=(-0.05, 0.05), gamma=(0.85, 1.2), window_p=0.0, noise_p=0.0, blur_p=0.0,
    ))


def _autocast(amp: str, device: torch.device) -> torch.autocast:
    # The downstream loop has no gradient scaler, so where pretraining would use fp16 it runs in float32.
    on = autocast_dtype(amp, device) == torch.bfloat16
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)


def _resolve_pretrained(
    pretrained: SwAVModel | str | os.PathLike | None,
) -> tuple[SwAVModel | None, PretrainConfig | None]:
    if pretrained is None or isinstance(pretrained, SwAVModel):
        return (copy.deepcopy(pretrained) if pretrained is not None else None), None
    if isinstance(pretrained, (str, os.PathLike)):
        return load_pretrained(pretrained, "cpu")
    raise TypeError(f"pretrained must be a SwAVModel, a checkpoint path or None, got {type(pretrained).__name__}")


@contextlib.contextmanager
def keep_bn_statistics(module: nn.Module) -> Iterator[None]:
    """Batch norm normalises with batch statistics but leaves its running statistics alone.

    The hybrid arm's SwAV batches come from the pool, not from the task; if they moved the
    running statistics, the classifier would be evaluated with the pool's statistics and
    its probabilities (so its ACC at the 0.5 threshold) would shift from seed to seed.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum


def _cycle(n: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Index batches forever (a fresh permutation each epoch, full batches only)."""
    while True:
        yield from epoch_batches(n, batch_size, generator)


def _uint8_tensor(images: ImagesLike, size: int, device: torch.device) -> Tensor:
    arr = _image_array(images)
    arr = arr.numpy() if isinstance(arr, Tensor) else arr
    if arr.ndim == 4:
        arr = arr[:, 0]
    if arr.dtype != np.uint8:
        raise TypeError(f"training images must be uint8, got {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(resize_uint8(np.asarray(arr), size))).to(device)


def train_classifier(
    arm: str,
    train: ImageSet,
    val: ImageSet,
    test: ImageSet,
    pretrained: SwAVModel | str | os.PathLike | None = None,
    pool: ImageSet | np.ndarray | None = None,
    config: TrainConfig | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train one arm of the downstream experiment with the loop every arm shares.

    Each step draws a labelled batch (a fresh permutation per epoch), jitters it mildly,
    and minimises cross-entropy (binary tasks use 2-class softmax cross-entropy, so
    binary and multi-class share one code path and the scores are MedMNIST's 2-column
    softmax) or, for multi-label tasks, BCE. ``hybrid`` adds ``ssl_weight`` times the
    SwAV loss of multi-crop views of an unlabelled ``pool`` batch, through the
    pretrained projection head and prototypes. AdamW with a constant learning rate.
    Validation AUC every ``eval_every`` steps; the best weights are kept and the test
    split is scored once with them.

    Args:
        arm: ``"scratch"``, ``"linear"``, ``"finetune"`` or ``"hybrid"``.
        train, val, test: labelled splits (``train`` may be a label fraction of the split).
        pretrained: a :class:`SwAVModel` (copied, never modified) or a checkpoint file /
            run folder; required by every arm but ``scratch`` (which, given one, copies
            only its architecture).
        pool: unlabelled images for ``hybrid`` (ImageSet or uint8 array); resized to the
            training size.
        config: the knobs (:class:`TrainConfig`); ``overrides`` replace its fields.

    Returns:
        A :class:`TrainResult`.
    """
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of {ARMS}")
    cfg = replace(config or TrainConfig(), **overrides) if overrides else (config or TrainConfig())
    task = train.task
    multilabel = _check_task(task)
    if val.task != task or test.task != task:
        raise ValueError(f"train/val/test tasks differ: {train.task!r}, {val.task!r}, {test.task!r}")
    if len(train) < 2:
        raise ValueError(f"need at least 2 labelled training images, got {len(train)}")
    for name, split in (("train", train), ("val", val), ("test", test)):
        check_labelled(name, split)
    if arm != "scratch" and pretrained is None:
        raise ValueError(f"arm {arm!r} needs pretrained= (a SwAVModel or a checkpoint path)")
    if arm == "hybrid" and pool is None:
        raise ValueError("arm 'hybrid' needs pool= (unlabelled images for the SwAV part)")
    start_time = time.perf_counter()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)

    ssl_model, pre_cfg = _resolve_pretrained(pretrained)
    size = cfg.image_size or (pre_cfg.image_size if pre_cfg else int(train.images.shape[-1]))
    cfg = replace(cfg, image_size=size)  # record the size used, e.g. for robustness_curve
    if arm == "scratch":
        if pre_cfg is not None:
            fresh = build_model(pre_cfg)  # same architecture, fresh random weights
            backbone, feat_dim = fresh.backbone, fresh.feat_dim
        else:
            backbone, feat_dim = make_backbone(cfg.backbone, image_size=size)
        ssl_model = None
    else:
        assert ssl_model is not None
        backbone, feat_dim = ssl_model.backbone, ssl_model.feat_dim
        if arm != "hybrid":
            ssl_model = None  # only the hybrid arm uses the projection head and prototypes
    n_out = _n_outputs(task, train.labels, val.labels, test.labels)
    if not multilabel:
        n_out = max(n_out, len(train.class_names))
    model = Classifier(backbone, feat_dim, n_out).to(device)
    if arm == "linear":
        for p in model.backbone.parameters():
            p.requires_grad_(False)
    if arm == "hybrid":
        assert ssl_model is not None
        ssl_model.to(device)
        # The SwAV part continues pretraining as it was done: the checkpoint's views when known.
        views_cfg = cfg.multicrop or (
            pre_cfg.augment_config() if pre_cfg is not None
            else MultiCropConfig.for_profile("cpu", size, global_size=size, local_size=max(8, size // 2))
        )
        ssl_augment = MultiCropAugment(views_cfg)
        pool_images = _uint8_tensor(pool, size, device)
        ssl_bs = min(cfg.ssl_batch_size or cfg.batch_size, len(pool_images))
        if ssl_bs < 2:
            raise ValueError(f"the hybrid pool needs at least 2 images, got {len(pool_images)}")
    # The new head learns at lr (linear arm: linear_lr); pretrained weights (backbone, and for
    # hybrid the SwAV head and prototypes) at lr * pretrained_lr_scale.
    head = list(model.head.parameters())
    body = [p for p in model.backbone.parameters() if p.requires_grad]
    if arm == "hybrid":
        shared = {id(p) for p in head + body}
        body += [p for p in ssl_model.parameters() if p.requires_grad and id(p) not in shared]
    head_lr = cfg.linear_lr if arm == "linear" and cfg.linear_lr is not None else cfg.lr
    body_lr = cfg.lr if arm == "scratch" else cfg.lr * cfg.pretrained_lr_scale
    groups = [{"params": head, "lr": head_lr}] + ([{"params": body, "lr": body_lr}] if body else [])
    optimizer = torch.optim.AdamW(groups, lr=head_lr, weight_decay=cfg.weight_decay)
    loss_fn = HybridLoss(
        SwAVLoss(cfg.ssl_temperature, cfg.ssl_epsilon), weight=1.0, task="multilabel" if multilabel else "multiclass"
    )

    images = _uint8_tensor(train, size, device)
    targets = torch.as_tensor(_targets(train.labels, multilabel), device=device)
    targets = targets.float() if multilabel else targets.long()
    augment = _supervised_augment(size) if cfg.augment else None
    gen = make_generator(cfg.seed)
    batches = _cycle(len(images), min(cfg.batch_size, len(images)), gen)
    pool_batches = _cycle(len(pool_images), ssl_bs, make_generator(cfg.seed + 1)) if arm == "hybrid" else None

    def set_train_mode() -> None:
        model.train()
        if arm == "linear":
            model.backbone.eval()  # frozen: batch-norm statistics stay the pretrained ones
        if ssl_model is not None:
            ssl_model.train()

    curve: list[tuple[int, float]] = []
    losses: list[dict[str, float]] = []
    best_auc, best_step, best_state = -math.inf, 0, None
    steps: range | Any = range(1, cfg.steps + 1)
    if cfg.progress:
        steps = progress_bar(steps, desc=f"train {arm}", dynamic_ncols=True)
    for step in steps:
        set_train_mode()
        index = next(batches).to(device)
        x = augment(images[index], generator=gen)[0] if augment is not None else prepare(images[index])
        with _autocast(cfg.amp, device):
            logits = model(x)
        sup, _ = loss_fn.supervised(logits, targets[index])
        ssl = torch.zeros((), device=device)
        if arm == "hybrid":
            views = ssl_augment(pool_images[next(pool_batches).to(device)], generator=gen)
            with _autocast(cfg.amp, device), keep_bn_statistics(ssl_model):
                _, scores = ssl_model(views)
            n_high = views_cfg.n_global
            ssl = loss_fn.ssl_loss(scores[:n_high], scores[n_high:])
        loss = sup + cfg.ssl_weight * ssl
        if not torch.isfinite(loss):
            raise TrainingError(
                f"{arm}: the loss became {loss.item()} at step {step}; lower lr (now {cfg.lr}) or set amp='off'"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ssl_model is not None:
            ssl_model.normalize_prototypes()
        losses.append({"step": step, "loss": float(loss.detach()), "supervised": float(sup.detach()),
                       "ssl": float(ssl.detach())})
        if cfg.is_eval_step(step):
            probs = predict_proba(model, val, task, size, cfg.eval_batch_size, device)
            auc = compute_metrics(task, val.labels, probs)["auc"]
            curve.append((step, auc))
            if math.isfinite(auc) and auc > best_auc:
                best_auc, best_step = auc, step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is None:  # every validation AUC undefined: keep the final weights
        warnings.warn(f"{arm}: validation AUC was never defined; the final weights are kept", RuntimeWarning)
        best_step = cfg.steps
    else:
        model.load_state_dict(best_state)
    test_metrics = compute_metrics(task, test.labels, predict_proba(model, test, task, size, cfg.eval_batch_size, device))
    model.eval()
    return TrainResult(
        arm=arm, curve=curve, best_step=best_step, best_val_auc=best_auc if best_state is not None else float("nan"),
        test_auc=test_metrics["auc"], test_acc=test_metrics["acc"],
        steps_to_target=steps_to_reach(curve, cfg.target) if cfg.target is not None else None,
        losses=losses, seconds=time.perf_counter() - start_time, n_train=len(train), model=model, config=cfg,
    )


# --------------------------------------------------------------------------- convergence



def steps_to_reach(curve: Sequence[tuple[int, float]], target: float) -> int | None:
    """First evaluated step whose validation AUC is at least ``target``; None when never reached."""
    for step, auc in curve:
        if math.isfinite(auc) and auc >= target:
            return int(step)
    return None


def convergence_target(scratch_curve: Sequence[tuple[int, float]], fraction: float = 0.95) -> float:
    """The convergence target: ``fraction`` of scratch's best validation AUC."""
    aucs = [a for _, a in scratch_curve if math.isfinite(a)]
    if not aucs:
        raise ValueError("the scratch curve holds no finite validation AUC")
    return fraction * max(aucs)


def step_reduction(steps_arm: int | None, steps_scratch: int | None) -> float | None:
    """Percent fewer steps than scratch to reach the target (the paper's "up to 85 %").

    ``100 * (1 - steps_arm / steps_scratch)``: positive is faster, negative slower; None
    when either arm never reached the target.
    """
    if steps_arm is None or steps_scratch is None:
        return None
    if steps_scratch <= 0:
        raise ValueError(f"steps_scratch must be > 0, got {steps_scratch}")
    return 100.0 * (1.0 - steps_arm / steps_scratch)


# --------------------------------------------------------------------------- robustness


def robustness_curve(
    model: nn.Module,
    test: ImageSet,
    task: str | None = None,
    levels: dict[str, list[float]] | None = None,
    image_size: int | None = None,
    batch_size: int = 512,
    device: str | torch.device = "auto",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Test AUC under graded perturbations, and the drop from the clean AUC.

    Perturbations (:func:`medssl_lab.augment.perturb`) act on the stored images, before
    resizing to ``image_size`` and normalising, like a change at acquisition time.

    Args:
        model: a classifier mapping normalised images to logits (``TrainResult.model``).
        test: the test split.
        task: default ``test.task``.
        levels: ``{kind: [severity, ...]}`` (default :data:`~medssl_lab.augment.PERTURBATION_LEVELS`).
        image_size: the classifier's input size (``TrainResult.config.image_size`` or the
            size it was trained at); None keeps the stored size.
        batch_size, device: inference settings.
        seed: noise seed.

    Returns:
        Rows ``{"kind", "severity", "auc", "acc", "drop"}``; the first is ``kind="clean"``
        (severity None, drop 0), then one per kind and severity; ``drop = clean_auc - auc``.
    """
    task = task or test.task
    levels = PERTURBATION_LEVELS if levels is None else levels

    def score(perturbation: tuple[str, float] | None) -> dict[str, float]:
        probs = predict_proba(model, test, task, image_size, batch_size, device, perturbation, seed)
        return compute_metrics(task, test.labels, probs)

    clean = score(None)
    rows: list[dict[str, Any]] = [{"kind": "clean", "severity": None, **clean, "drop": 0.0}]
    for kind, severity in iter_perturbations(levels):
        m = score((kind, severity))
        rows.append({"kind": kind, "severity": severity, **m, "drop": clean["auc"] - m["auc"]})
    return rows
