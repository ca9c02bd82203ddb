"""Plots that the README and notebooks show: drawn headless, with the data they were given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from medssl_lab.viz import plot_compute_curve, plot_pretrain_history  # noqa: E402


def test_compute_curve_draws_every_budget_baseline_and_gain() -> None:
    points = [
        {"label": f"{e} ep", "cpu_minutes": 5.0 * e, "pneumonia_10shot_auc": 0.9 + 0.01 * e, "score": 0.8 + e / 100}
        for e in (1, 2, 4)
    ]
    baselines = {
        "random init": {"pneumonia_10shot_auc": 0.75, "score": 0.7},
        "raw pixels": {"pneumonia_10shot_auc": 0.86, "score": 0.8},
    }
    gains = [
        {"cpu_minutes": 5.0 * e, "fraction": f, "gain_test_auc": 0.01 * e, "gain_test_auc_std": 0.005}
        for e in (1, 2, 4)
        for f in (0.01, 0.1)
    ]
    fig = plot_compute_curve(points, baselines, figures=("pneumonia_10shot_auc", "score"), gains=gains)
    first, second, gain_panel = fig.axes
    line = first.get_lines()[0]
    assert list(line.get_xdata()) == [5.0, 10.0, 20.0] and first.get_xscale() == "log"
    assert [round(v, 3) for v in line.get_ydata()] == [0.91, 0.92, 0.94]
    assert {t.get_text() for t in first.get_legend().get_texts()} == {"pretrained", "random init", "raw pixels"}
    assert len(gain_panel.containers) == 2  # one error-bar series per label fraction
    assert max(gain_panel.containers[1].lines[0].get_ydata()) == 4.0  # gains are drawn in AUC points


def test_compute_curve_draws_one_line_per_series() -> None:
    points = [
        {"label": "1 ep", "series": "epochs", "cpu_minutes": 5.0, "score": 0.88},
        {"label": "4 ep", "series": "epochs", "cpu_minutes": 20.0, "score": 0.91},
        {"label": "25% pool", "series": "images", "cpu_minutes": 5.0, "score": 0.87},
        {"label": "100% pool", "series": "images", "cpu_minutes": 20.0, "score": 0.91},
    ]
    gains = [
        {
            "cpu_minutes": p["cpu_minutes"],
            "fraction": 0.01,
            "gain_test_auc": 0.01,
            "gain_test_auc_std": 0.0,
            "series": p["series"],
        }
        for p in points
    ]
    fig = plot_compute_curve(points, {"raw pixels": {"score": 0.85}}, figures=("score",), gains=gains)
    panel, gain_panel = fig.axes
    epochs, images = panel.get_lines()[:2]
    assert list(images.get_ydata()) == [0.87, 0.91] and list(epochs.get_xdata()) == [5.0, 20.0]
    assert {t.get_text() for t in panel.get_legend().get_texts()} == {"epochs", "images", "raw pixels"}
    assert len(gain_panel.containers) == 2  # one error-bar series per (fraction, series)


def test_the_pretraining_history_shows_the_knn_curve_when_the_run_has_one() -> None:
    rows = [
        {"step": s, "loss_avg": 2.0 - s / 10, "prototype_usage": 0.5, "img_per_s": 100.0}
        | ({"knn_accuracy": 0.5 + s / 100} if s % 4 == 1 else {})
        for s in range(1, 10)
    ]
    fig = plot_pretrain_history(rows, n_prototypes=16)
    assert len(fig.axes) == 3
    (line,) = fig.axes[2].get_lines()
    assert list(line.get_xdata()) == [1, 5, 9] and list(line.get_ydata()) == [0.51, 0.55, 0.59]
    without = [{k: v for k, v in row.items() if k != "knn_accuracy"} for row in rows]
    assert len(plot_pretrain_history(without, n_prototypes=16).axes) == 2  # e.g. the shipped encoder's run
