"""The experiment's results per arm (label efficiency, convergence, robustness) and what more pretraining buys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from medssl_lab.evaluation.convergence import labels_of, labels_order, labels_text


def _arm_colors(arms: Sequence[str]) -> dict[str, str]:
    palette = {"scratch": "tab:gray", "linear": "tab:orange", "finetune": "tab:blue", "hybrid": "tab:green"}
    return {a: palette.get(a, f"C{i}") for i, a in enumerate(arms)}


def plot_label_efficiency(records: Sequence[Mapping]) -> Figure:
    """Test AUC against the labelled fraction (log axis), one panel per task, mean ± std over seeds per arm."""
    tasks = sorted({r["task"] for r in records})
    arms = list(dict.fromkeys(r["arm"] for r in records))
    colors = _arm_colors(arms)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.6), squeeze=False, constrained_layout=True)
    for ax, task in zip(axes[0], tasks):
        for arm in arms:
            fractions = sorted({r["fraction"] for r in records if r["task"] == task and r["arm"] == arm})
            aucs = [
                [r["test_auc"] for r in records if (r["task"], r["arm"], r["fraction"]) == (task, arm, f)]
                for f in fractions
            ]
            ax.errorbar(
                fractions,
                [np.mean(a) for a in aucs],
                yerr=[np.std(a) for a in aucs],
                marker="o",
                capsize=3,
                label=arm,
                color=colors[arm],
            )
        ax.set_xscale("log")
        ax.set_xlabel("fraction of training labels")
        ax.set_ylabel("test AUC")
        ax.set_title(task)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return fig


def plot_labels_per_class(records: Sequence[Mapping]) -> Figure:
    """Test AUC against labels per class (``all`` last), one panel per task: each seed a dot, the mean a line."""
    tasks = sorted({r["task"] for r in records})
    arms = list(dict.fromkeys(r["arm"] for r in records))
    colors = _arm_colors(arms)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.6), squeeze=False, constrained_layout=True)
    for ax, task in zip(axes[0], tasks):
        sizes = sorted({str(r["labels_per_class"]) for r in records if r["task"] == task}, key=labels_order)
        for offset, arm in zip(np.linspace(-0.15, 0.15, len(arms)), arms):
            aucs = [
                [r["test_auc"] for r in records if (r["task"], r["arm"], str(r["labels_per_class"])) == (task, arm, s)]
                for s in sizes
            ]
            x = np.arange(len(sizes)) + offset
            ax.plot(x, [np.mean(a) if a else np.nan for a in aucs], marker="o", label=arm, color=colors[arm])
            for xi, a in zip(x, aucs):
                ax.scatter([xi] * len(a), a, s=9, alpha=0.45, color=colors[arm])
        ax.set_xticks(range(len(sizes)), sizes)
        ax.set_xlabel("labelled images per class")
        ax.set_ylabel("test AUC")
        ax.set_title(task)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return fig


def plot_convergence(records: Sequence[Mapping]) -> Figure:
    """Validation AUC against training steps for each arm (mean over seeds), one panel per task and label fraction
    (or labels per class)."""
    keys = sorted({(r["task"], labels_of(r)) for r in records}, key=lambda key: (key[0], labels_order(key[1])))
    arms = list(dict.fromkeys(r["arm"] for r in records))
    colors = _arm_colors(arms)
    cols = min(3, len(keys))
    rows = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.2 * rows), squeeze=False, constrained_layout=True)
    for ax, (task, labels) in zip(axes.flat, keys):
        for arm in arms:
            curves = [r["curve"] for r in records if (r["task"], labels_of(r), r["arm"]) == (task, labels, arm)]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            steps = [c[0] for c in curves[0][:n]]
            mean = np.nanmean([[c[1] for c in curve[:n]] for curve in curves], axis=0)
            ax.plot(steps, mean, label=arm, color=colors[arm])
        scratch = [
            max(a for _, a in r["curve"])
            for r in records
            if (r["task"], labels_of(r), r["arm"]) == (task, labels, "scratch")
        ]
        if scratch:
            ax.axhline(0.95 * float(np.mean(scratch)), ls="--", lw=0.8, color="k", label="95 % of scratch best")
        ax.set_title(f"{task}, {labels_text(labels)}", fontsize=9)
        ax.set_xlabel("training step")
        ax.set_ylabel("validation AUC")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    return fig


def plot_robustness(rows: Sequence[Mapping]) -> Figure:
    """Test AUC against perturbation severity, one panel per kind, mean over seeds per arm (clean AUC dotted)."""
    kinds = list(dict.fromkeys(r["kind"] for r in rows if r["kind"] != "clean"))
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    colors = _arm_colors(arms)
    cols = min(4, max(1, len(kinds)))
    n_rows = max(1, int(np.ceil(len(kinds) / cols)))
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.6 * cols, 3.0 * n_rows), squeeze=False, constrained_layout=True)
    for ax, kind in zip(axes.flat, kinds):
        for arm in arms:
            severities = sorted({r["severity"] for r in rows if r["kind"] == kind and r["arm"] == arm})
            aucs = [
                np.mean([r["auc"] for r in rows if (r["kind"], r["arm"], r["severity"]) == (kind, arm, s)])
                for s in severities
            ]
            ax.plot(severities, aucs, marker="o", color=colors[arm], label=arm)
            clean = [r["auc"] for r in rows if r["kind"] == "clean" and r["arm"] == arm]
            if clean:
                ax.axhline(float(np.mean(clean)), ls=":", lw=0.8, color=colors[arm])
        ax.set_title(kind, fontsize=9)
        ax.set_xlabel("severity")
        ax.set_ylabel("test AUC")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(kinds) :]:
        ax.axis("off")
    if kinds:
        axes.flat[0].legend(fontsize=7)
    return fig


Styles = dict[str, tuple[str, str, str]]  # series -> (colour, marker, line style)


def plot_compute_curve(
    points: Sequence[Mapping],
    baselines: Mapping[str, Mapping[str, float]],
    figures: Sequence[str] = ("pneumonia_10shot_auc", "mednist_fewshot_acc", "cluster_class_nmi"),
    gains: Sequence[Mapping] = (),
) -> Figure:
    """What more pretraining buys: benchmark figures and downstream gain against CPU-minutes (log axis).

    Args:
        points: one mapping per pretraining budget, with ``cpu_minutes``, ``label``, the ``figures`` and
            optionally ``series`` (budgets of one kind, e.g. more epochs or more images, share a line).
        baselines: ``{"random init": {...}, "raw pixels": {...}}``, drawn as horizontal lines.
        figures: the benchmark figures to draw, one panel each.
        gains: rows with ``cpu_minutes``, ``fraction``, ``gain_test_auc``, ``gain_test_auc_std`` and optionally
            ``series`` (fine-tuning minus scratch), drawn in a last panel in AUC points.
    """
    panels = len(figures) + bool(gains)
    fig, axes = plt.subplots(1, panels, figsize=(3.6 * panels, 3.4), squeeze=False, constrained_layout=True)
    series = list(dict.fromkeys(p.get("series", "pretrained") for p in points))
    if len(series) > 3:
        raise ValueError(f"at most 3 series can be drawn apart, got {series}")
    styles = dict(zip(series, (("tab:blue", "o", "-"), ("tab:purple", "s", "--"), ("tab:olive", "^", ":"))))
    for ax, name in zip(axes[0], figures):
        _draw_figure_panel(ax, points, name, styles, baselines)
    if gains:
        _draw_gain_panel(axes[0][-1], gains, styles)
    minutes = [p["cpu_minutes"] for p in points]
    for ax in axes[0]:
        _minutes_axis(ax, min(minutes), max(minutes))
    fig.suptitle(
        "More pretraining, better features?  The paper used 100 M images and GPU-weeks: "
        "far to the right of these axes.",
        fontsize=9,
        color="tab:red",
    )
    return fig


def _draw_figure_panel(
    ax: Axes, points: Sequence[Mapping], name: str, styles: Styles, baselines: Mapping[str, Mapping[str, float]]
) -> None:
    """One benchmark figure against CPU-minutes: a line per series, each point labelled, the baselines flat."""
    for label, (color, marker, line) in styles.items():
        order = sorted((p for p in points if p.get("series", "pretrained") == label), key=lambda p: p["cpu_minutes"])
        ax.plot(
            [p["cpu_minutes"] for p in order],
            [p[name] for p in order],
            marker=marker,
            ls=line,
            color=color,
            label=label,
        )
        for point in order:
            ax.annotate(
                str(point["label"]),
                (point["cpu_minutes"], point[name]),
                fontsize=6,
                textcoords="offset points",
                xytext=(3, -8),
                color=color,
            )
    for (base, values), style in zip(baselines.items(), ("--", ":")):
        ax.axhline(values[name], ls=style, color="tab:gray", lw=1, label=base)
    ax.set_title(name.replace("_", " "), fontsize=9)


def _draw_gain_panel(ax: Axes, gains: Sequence[Mapping], styles: Styles) -> None:
    """Fine-tuning minus scratch in test AUC points, a line per label fraction (and series), against the paper's."""
    for i, fraction in enumerate(sorted({g["fraction"] for g in gains})):
        for label, (_, marker, line) in styles.items():
            rows = sorted(
                (g for g in gains if g["fraction"] == fraction and g.get("series", "pretrained") == label),
                key=lambda g: g["cpu_minutes"],
            )
            if rows:
                ax.errorbar(
                    [g["cpu_minutes"] for g in rows],
                    [100 * g["gain_test_auc"] for g in rows],
                    yerr=[100 * g["gain_test_auc_std"] for g in rows],
                    marker=marker,
                    capsize=3,
                    ls=line,
                    color=f"C{i + 1}",
                    label=f"{fraction:g} of labels" + (f" ({label})" if len(styles) > 1 else ""),
                )
    ax.axhline(0.0, color="k", lw=0.8)
    ax.axhline(3.0, ls="--", color="tab:red", lw=1, label="paper: +3 to +7")
    ax.set_ylim(top=max(ax.get_ylim()[1], 3.5))
    ax.set_title("fine-tuning minus scratch (test AUC points)", fontsize=9)


def _minutes_axis(ax: Axes, low: float, high: float) -> None:
    """A log axis of pretraining CPU-minutes with round ticks around ``[low, high]``, a grid and the legend."""
    ax.set_xscale("log")
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if low / 1.5 <= t <= high * 1.5]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("pretraining CPU-minutes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right")
