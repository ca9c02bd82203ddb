"""Robustness: test AUC under graded acquisition changes, and how much of it each arm loses."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from medssl_lab.data.types import ImageSet
from medssl_lab.evaluation.inference import predict_proba
from medssl_lab.evaluation.metrics import compute_metrics
from medssl_lab.evaluation.perturbations import PERTURBATION_LEVELS, iter_perturbations

#: The kinds that change intensities only: contrast, brightness and the contrast curve.
INTENSITY_KINDS: tuple[str, ...] = ("intensity_scale", "intensity_shift", "gamma")
#: The kinds under which the paper reports smaller AUC losses after pretraining: intensity changes, rotation, scaling.
PAPER_KINDS: tuple[str, ...] = (*INTENSITY_KINDS, "rotation", "scaling")


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

    Perturbations (:func:`~medssl_lab.evaluation.perturbations.perturb`) act on the stored images, before
    resizing to ``image_size`` and normalising, like a change at acquisition time.

    Args:
        model: a classifier mapping normalised images to logits (``TrainResult.model``).
        test: the test split.
        task: default ``test.task``.
        levels: ``{kind: [severity, ...]}`` (default :data:`~medssl_lab.evaluation.perturbations.PERTURBATION_LEVELS`).
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


def mean_drops(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{kind: {arm: mean AUC drop over severities (and seeds)}}`` of :func:`robustness_curve` rows tagged with
    their ``arm``; the clean rows are left out."""
    kinds = list(dict.fromkeys(r["kind"] for r in rows if r["kind"] != "clean"))
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    return {
        kind: {arm: float(np.mean([r["drop"] for r in rows if r["arm"] == arm and r["kind"] == kind])) for arm in arms}
        for kind in kinds
    }
