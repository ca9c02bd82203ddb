"""The frozen-feature benchmark: few-shot draws, nearest-mean classifier, k-means baseline, the table, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medssl_lab.cli import main
from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.data.types import ImageSet
from medssl_lab.evaluation.clusters import cluster_metrics, kmeans_assignments
from medssl_lab.evaluation.probes import few_shot_metric
from medssl_lab.evaluation.representation import (
    SCORE_KEYS,
    BenchmarkData,
    format_table,
    load_benchmark_data,
    pixel_featurizer,
    score_features,
)
from medssl_lab.evaluation.sampling import few_shot_draws
from medssl_lab.pretrain import shipped_encoder


def blobs(n_per_class: int, n_classes: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, 16)) * 3
    y = np.repeat(np.arange(n_classes), n_per_class)
    return centres[y] + spread * rng.normal(size=(len(y), 16)), y


def test_few_shot_draws_are_seeded_and_stratified() -> None:
    labels = np.repeat(np.arange(3), 20)
    draws = few_shot_draws(labels, shots=5, draws=4)
    assert len(draws) == 4 and all(np.bincount(labels[d], minlength=3).tolist() == [5, 5, 5] for d in draws)
    assert all(np.array_equal(a, b) for a, b in zip(draws, few_shot_draws(labels, shots=5, draws=4)))
    assert not np.array_equal(draws[0], draws[1])


def test_few_shot_metric_separates_structure_from_noise() -> None:
    x, y = blobs(50, 4, spread=0.3)
    acc, spread = few_shot_metric(x, y, x, y, "multi-class", "acc", shots=2, draws=10)
    assert acc > 0.98 and spread < 0.02
    noise = np.random.default_rng(1).normal(size=x.shape)
    acc_noise, _ = few_shot_metric(noise, y, noise, y, "multi-class", "acc", shots=2, draws=10)
    assert acc_noise < 0.5  # chance is 0.25


def test_kmeans_recovers_separated_clusters() -> None:
    x, y = blobs(40, 5, spread=0.1)
    assert cluster_metrics(kmeans_assignments(x, 5), y)["nmi"] > 0.99


def phantom_set(n: int, seed: int, binary: bool) -> ImageSet:
    ph = make_phantoms(n, 32, seed=seed)
    labels = (ph.labels > 0).astype(np.int64) if binary else ph.labels
    names = ("no_lesion", "lesion") if binary else ph.class_names
    modality = np.where(ph.labels % 2 == 0, "CT", "MR").astype(object)
    return ImageSet(ph.images, labels, names, "binary-class" if binary else "multi-class", modality)


def test_score_features_reports_every_figure_and_the_score() -> None:
    data = BenchmarkData(
        phantom_set(80, 0, True), phantom_set(40, 1, True), phantom_set(80, 2, False), phantom_set(40, 3, False), "val"
    )
    scores = score_features(pixel_featurizer(32), data, n_clusters=4, draws=5)
    for key in (*SCORE_KEYS, "mednist_1shot_acc", "mednist_10shot_acc_std", "cluster_modality_ari"):
        assert np.isfinite(scores[key]), key
    assert scores["score"] == pytest.approx(np.mean([scores[k] for k in SCORE_KEYS]))
    assert scores["pneumonia_linear_auc"] > 0.7  # lesions are visible in the pixels (chance: 0.5)
    table = format_table({"raw_pixels": scores, "again": scores}, "val")
    assert "| score | " in table and "±" in table and "_std" not in table


def test_benchmark_data_keeps_test_split_for_the_end(data_dir: Path) -> None:
    val = load_benchmark_data(data_dir)
    assert (len(val.pneumonia_query), len(val.mednist_query), len(val.mednist_support)) == (524, 5895, 1800)
    assert len(load_benchmark_data(data_dir, split="test").pneumonia_query) == 624
    with pytest.raises(ValueError, match="'val' \\(for choosing\\)"):
        load_benchmark_data(data_dir, split="train")


@pytest.mark.slow
def test_cli_benchmark_prints_one_table(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """On the shipped encoder's file (pretraining on real data is tested in tests/pretrain)."""
    checkpoint = str(shipped_encoder("cpu"))
    assert main(["benchmark", checkpoint, "--data-dir", str(data_dir), "--out", str(tmp_path / "table.md")]) == 0
    out = capsys.readouterr().out
    assert "| figure (val split) | pretrained | random_init | raw_pixels |" in out
    assert (tmp_path / "table.md").read_text().count("\n") == 15


def test_read_compute_curve_splits_budgets_baselines_and_gains(tmp_path: Path) -> None:
    from medssl_lab.evaluation.representation import read_compute_curve

    assert read_compute_curve(tmp_path / "missing.csv") is None
    path = tmp_path / "curve.csv"
    path.write_text(
        "label,variant,cpu_minutes,score,gain_0.01,gain_0.01_std\n"
        "e1,bal_e1,4.7,0.88,0.01,0.004\ne4,balanced,21.5,0.91,0.018,0.004\nraw pixels,,,0.85,,\n"
    )
    points, baselines, gains = read_compute_curve(path)
    assert [p["cpu_minutes"] for p in points] == [4.7, 21.5] and baselines == {"raw pixels": {"score": 0.85}}
    assert gains[1] == {"cpu_minutes": 21.5, "fraction": 0.01, "gain_test_auc": 0.018, "gain_test_auc_std": 0.004}
    path.write_text("label,series,cpu_minutes,score,gain_0.01,gain_0.01_std\n25% pool,images,5.0,0.88,0.01,0.004\n")
    points, _, gains = read_compute_curve(path)
    assert points[0]["series"] == "images" and gains[0]["series"] == "images"
