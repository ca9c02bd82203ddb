"""AUC under graded perturbations."""

from __future__ import annotations

import pytest
import torch

from medssl_lab.evaluation.perturbations import PERTURBATION_LEVELS
from medssl_lab.evaluation.robustness import INTENSITY_KINDS, PAPER_KINDS, mean_drops, robustness_curve
from medssl_lab.models import Classifier, make_backbone


def test_robustness_rows_cover_every_kind_and_severity(splits) -> None:
    _, _, test = splits
    torch.manual_seed(0)
    backbone, dim = make_backbone("resnet_small")
    model = Classifier(backbone, dim, 2)
    rows = robustness_curve(model, test, image_size=32, device="cpu")
    assert rows[0]["kind"] == "clean" and rows[0]["drop"] == 0.0
    expected = [(k, float(s)) for k, sevs in PERTURBATION_LEVELS.items() for s in sevs]
    assert [(r["kind"], r["severity"]) for r in rows[1:]] == expected
    for r in rows[1:]:
        assert r["drop"] == pytest.approx(rows[0]["auc"] - r["auc"]) and 0 <= r["auc"] <= 1
    same = robustness_curve(model, test, levels={"rotation": [0.0], "gamma": [1.0]}, image_size=32, device="cpu")
    assert [r["drop"] for r in same] == [0.0, 0.0, 0.0]  # identity severities change nothing
    assert any(r["drop"] != 0 for r in rows[1:])


def test_mean_drops_average_over_severities_per_arm_and_kind() -> None:
    rows = [
        {"arm": "a", "kind": "clean", "drop": 0.0},
        {"arm": "a", "kind": "noise", "drop": 0.1},
        {"arm": "a", "kind": "noise", "drop": 0.3},
        {"arm": "b", "kind": "noise", "drop": 0.0},
    ]
    assert mean_drops(rows) == {"noise": {"a": pytest.approx(0.2), "b": 0.0}}


def test_the_claims_kinds_are_perturbation_kinds() -> None:
    assert set(INTENSITY_KINDS) < set(PAPER_KINDS) <= set(PERTURBATION_LEVELS)
    assert "gaussian_noise" not in PAPER_KINDS and "blur" not in PAPER_KINDS  # the paper claims no gain there
