"""Scores as MedMNIST's evaluator reports them (AUC and ACC), and the checks that make them mean something."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import roc_auc_score

from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError

#: Tasks as MedMNIST names them (ordinal regression is scored like multi-class, as MedMNIST does).
TASKS: tuple[str, ...] = ("binary-class", "multi-class", "multi-label, binary-class", "ordinal-regression")


def check_task(task: str) -> bool:
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
        raise DataError(
            f"the {name} split has {int(bad.sum())} label(s) outside {allowed}, e.g. {examples}; "
            f"-1 marks an unlabelled image: leave those out of labelled splits."
        )
    if not multilabel and len(np.unique(labels[:, 0])) < 2:
        raise DataError(
            f"the {name} split holds only class {data.class_names[int(labels[0, 0])]!r}; "
            f"training and AUC need at least two classes."
        )


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
    multilabel = check_task(task)
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


def targets(y: np.ndarray, multilabel: bool) -> np.ndarray:
    """Labels as training and probes take them: ``(N,)`` class indices, or the ``(N, L)`` 0/1 matrix."""
    y = np.asarray(y)
    if multilabel:
        return y.reshape(len(y), -1)
    y = y.reshape(len(y), -1)
    if y.shape[1] != 1:
        raise ValueError(f"single-label tasks need (N,) or (N, 1) labels, got {np.shape(y)}")
    return y[:, 0].astype(np.int64)


def n_outputs(task: str, *label_sets: np.ndarray) -> int:
    """Outputs a classifier of ``task`` needs: labels for multi-label, 2 for binary, else the largest class + 1."""
    if task.startswith("multi-label"):
        return int(np.asarray(label_sets[0]).reshape(len(label_sets[0]), -1).shape[1])
    if task == "binary-class":
        return 2
    return int(max(int(np.max(y)) for y in label_sets if len(y)) + 1)
