"""Frozen-feature probes: kNN and the linear probe."""

from __future__ import annotations

import numpy as np
import pytest

import medssl_lab.evaluation.probes as probes
from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.evaluation.probes import knn_probe, linear_probe


def blobs(n: int, seed: int, n_classes: int = 3, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(n_classes, dim)) * 2
    y = np.arange(n) % n_classes
    return (centres[y] + rng.normal(size=(n, dim))).astype(np.float32), y


@pytest.mark.parametrize("task", ["binary-class", "multi-class", "multi-label, binary-class"])
def test_probes_separate_clusters_and_constant_features_do_not(task: str) -> None:
    n_classes = 2 if task == "binary-class" else 3
    (xtr, ytr), (xva, yva), (xte, yte) = (blobs(n, s, n_classes) for n, s in ((150, 0), (60, 1), (60, 2)))
    if task.startswith("multi-label"):  # labels: "is class 0", "is class 0 or 1"
        ytr, yva, yte = (np.stack([y == 0, y <= 1], 1).astype(int) for y in (ytr, yva, yte))
    knn = knn_probe(xtr, ytr, xte, yte, task, k=10)
    lin = linear_probe(xtr, ytr, xva, yva, xte, yte, task, max_iter=50)
    assert knn["auc"] > 0.95 and lin["auc"] > 0.95 and lin["val_auc"] > 0.95
    const = np.ones_like
    assert knn_probe(const(xtr), ytr, const(xte), yte, task)["auc"] == pytest.approx(0.5)
    assert linear_probe(const(xtr), ytr, const(xva), yva, const(xte), yte, task, max_iter=20)["auc"] == pytest.approx(
        0.5
    )


def test_probes_detect_phantom_lesions_from_intensity_features() -> None:
    ph = make_phantoms(240, 32, seed=1)
    y = (ph.labels > 0).astype(int)
    hist = np.stack([np.histogram(im, bins=24, range=(160, 208))[0] for im in ph.images]).astype(np.float32)
    hist = (hist - hist[:120].mean(0)) / (hist[:120].std(0) + 1e-6)
    tr, va, te = slice(0, 120), slice(120, 180), slice(180, 240)
    assert knn_probe(hist[tr], y[tr], hist[te], y[te], "binary-class")["auc"] > 0.9
    assert linear_probe(hist[tr], y[tr], hist[va], y[va], hist[te], y[te], "binary-class")["auc"] > 0.9


def test_linear_probe_picks_weight_decay_on_validation_and_tests_once(monkeypatch: pytest.MonkeyPatch) -> None:
    (xtr, ytr), (xva, yva), (xte, yte) = (blobs(n, s, 3) for n, s in ((90, 0), (45, 1), (30, 2)))
    seen: list[int] = []
    real = probes.compute_metrics
    monkeypatch.setattr(probes, "compute_metrics", lambda task, y, s: (seen.append(len(y)), real(task, y, s))[1])
    wds = (1e-4, 10.0, 1e-2)
    out = linear_probe(xtr, ytr, xva, yva, xte, yte, "multi-class", weight_decays=wds, max_iter=30)
    assert seen == [45, 45, 45, 30]  # every candidate on validation, test once at the end
    monkeypatch.setattr(probes, "compute_metrics", real)
    vals = {
        wd: linear_probe(xtr, ytr, xva, yva, xte, yte, "multi-class", weight_decays=(wd,), max_iter=30)["val_auc"]
        for wd in wds
    }
    assert out["weight_decay"] in wds and out["val_auc"] == pytest.approx(max(vals.values()))
