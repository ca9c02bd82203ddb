"""Plots for the notebooks, drawn with matplotlib's object-oriented API so they work headless (Agg).

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``:
the notebook displays it, a script saves it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from medssl_lab.augment import (
    PERTURBATION_LEVELS,
    MultiCropAugment,
    denormalize,
    make_generator,
    perturb,
    to_float,
)

__all__ = [
    "LiveHistoryPlot", "plot_compute_curve", "plot_convergence", "plot_label_efficiency", "plot_perturbations", "plot_pool_overview",
    "plot_pretrain_history", "plot_robustness", "plot_views",
]


def _as_image_tensor(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One ``(H, W)`` image (uint8 or float in [0, 1]) as a ``(1, H, W)`` tensor, or a clear error."""
    t = torch.as_tensor(np.asarray(image)) if not isinstance(image, torch.Tensor) else image.detach().cpu()
    if t.ndim == 3 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 2:
        raise ValueError(f"expected one grayscale image of shape (H, W), got {tuple(t.shape)}")
    return t.unsqueeze(0)


def _show(ax, img: torch.Tensor, title: str) -> None:
    ax.imshow(img.squeeze().float().cpu().numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def plot_views(
    image: np.ndarray | torch.Tensor,
    augment: MultiCropAugment,
    n_samples: int = 3,
    seed: int = 0,
    panel_size: float = 1.6,
) -> Figure:
    """Show an image next to its multi-crop views, one row per random draw.

    Lets a reader see what the network is asked to match: global views covering most of
    the image and small local crops, with the intensity changes applied. Views are shown
    de-normalised to ``[0, 1]`` at their own resolution.

    Args:
        image: one ``(H, W)`` image, uint8 or float in ``[0, 1]``.
        augment: the augmentation whose views are shown.
        n_samples: number of independent draws (rows).
        seed: seed of the draws (same seed, same figure).
        panel_size: size of each panel in inches.

    Returns:
        A figure with ``n_samples * (1 + augment.n_views)`` axes.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    img = _as_image_tensor(image)
    batch = img.expand(n_samples, *img.shape[1:]).contiguous()
    views = augment(batch, generator=make_generator(seed))
    n_global = augment.config.n_global
    ncols = 1 + len(views)
    fig, axes = plt.subplots(n_samples, ncols, figsize=(panel_size * ncols, panel_size * n_samples), squeeze=False)
    original = to_float(img)[0]
    for row in range(n_samples):
        _show(axes[row, 0], original, f"input {original.shape[-1]} px" if row == 0 else "input")
        for j, v in enumerate(views):
            kind = f"global {j + 1}" if j < n_global else f"local {j - n_global + 1}"
            title = f"{kind} ({v.shape[-1]} px)" if row == 0 else kind
            _show(axes[row, j + 1], denormalize(v[row]).clamp(0, 1), title)
    fig.suptitle(f"{n_global} global + {len(views) - n_global} local views (seed {seed})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_perturbations(
    image: np.ndarray | torch.Tensor,
    levels: Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
    panel_size: float = 1.6,
) -> Figure:
    """Show an image under each robustness perturbation, one row per kind, severities left to right.

    Args:
        image: one ``(H, W)`` image, uint8 or float in ``[0, 1]``.
        levels: kind -> severities (default :data:`~medssl_lab.augment.PERTURBATION_LEVELS`).
        seed: seed of the noise perturbation.
        panel_size: size of each panel in inches.

    Returns:
        A figure with ``len(levels) * (1 + max number of severities)`` axes; the first
        column is the clean image, unused panels are blank.
    """
    levels = dict(levels or PERTURBATION_LEVELS)
    if not levels:
        raise ValueError("levels is empty; pass at least one perturbation kind with severities")
    img = _as_image_tensor(image)
    clean = to_float(img)[0]
    ncols = 1 + max(len(v) for v in levels.values())
    nrows = len(levels)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False)
    for r, (kind, sevs) in enumerate(levels.items()):
        _show(axes[r, 0], clean, f"{kind}\nclean")
        for c in range(1, ncols):
            ax = axes[r, c]
            if c - 1 < len(sevs):
                s = float(sevs[c - 1])
                _show(ax, perturb(img, kind, s, seed=seed)[0], f"{kind} {s:g}")
            else:
                ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_pool_overview(pool, title: str = "pretraining pool", per_group: int = 6, seed: int = 0) -> Figure:
    """What the pool holds: images per (source, modality) as bars, and a few random examples of each group.

    Args:
        pool: an :class:`~medssl_lab.data.types.ImageSet` (e.g. from ``build_pool``).
        title: figure title.
        per_group: example images per (source, modality) group.
        seed: which examples are drawn.
    """
    groups = sorted({(str(s), str(m)) for s, m in zip(pool.source, pool.modality)})
    rng = np.random.default_rng(seed)
    fig = plt.figure(figsize=(1.3 * per_group + 4, 1.4 * len(groups) + 0.6), constrained_layout=True)
    grid = fig.add_gridspec(len(groups), per_group + 3)
    bars = fig.add_subplot(grid[:, :3])
    counts = [int(((pool.source == s) & (pool.modality == m)).sum()) for s, m in groups]
    names = [f"{s}\n{m}" for s, m in groups]
    bars.barh(names, counts, color="tab:blue")
    for y, n in enumerate(counts):
        bars.text(n, y, f" {n:,}", va="center", fontsize=8)
    bars.invert_yaxis()
    bars.set_xlabel("images")
    bars.set_xlim(0, max(counts) * 1.3)
    for row, (s, m) in enumerate(groups):
        members = np.flatnonzero((pool.source == s) & (pool.modality == m))
        for col, i in enumerate(rng.choice(members, min(per_group, len(members)), replace=False)):
            ax = fig.add_subplot(grid[row, 3 + col])
            ax.imshow(pool.images[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(pool.class_names[pool.labels[i, 0]].split("/")[-1], fontsize=7)
            ax.axis("off")
    fig.suptitle(f"{title}: {len(pool):,} images at {pool.images.shape[1]} px")
    return fig


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
            aucs = [[r["test_auc"] for r in records if (r["task"], r["arm"], r["fraction"]) == (task, arm, f)] for f in fractions]
            ax.errorbar(fractions, [np.mean(a) for a in aucs], yerr=[np.std(a) for a in aucs], marker="o", capsize=3,
                        label=arm, color=colors[arm])
        ax.set_xscale("log")
        ax.set_xlabel("fraction of training labels")
        ax.set_ylabel("test AUC")
        ax.set_title(task)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return fig


def plot_convergence(records: Sequence[Mapping]) -> Figure:
    """Validation AUC against training steps for each arm (mean over seeds), one panel per task and fraction."""
    keys = sorted({(r["task"], r["fraction"]) for r in records})
    arms = list(dict.fromkeys(r["arm"] for r in records))
    colors = _arm_colors(arms)
    cols = min(3, len(keys))
    rows = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.2 * rows), squeeze=False, constrained_layout=True)
    for ax, (task, fraction) in zip(axes.flat, keys):
        for arm in arms:
            curves = [r["curve"] for r in records if (r["task"], r["fraction"], r["arm"]) == (task, fraction, arm)]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            steps = [c[0] for c in curves[0][:n]]
            mean = np.nanmean([[c[1] for c in curve[:n]] for curve in curves], axis=0)
            ax.plot(steps, mean, label=arm, color=colors[arm])
        scratch = [max(a for _, a in r["curve"]) for r in records
                   if (r["task"], r["fraction"], r["arm"]) == (task, fraction, "scratch")]
        if scratch:
            ax.axhline(0.95 * float(np.mean(scratch)), ls="--", lw=0.8, color="k", label="95 % of scratch best")
        ax.set_title(f"{task}, {fraction:g} of labels", fontsize=9)
        ax.set_xlabel("training step")
        ax.set_ylabel("validation AUC")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
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
            aucs = [np.mean([r["auc"] for r in rows if (r["kind"], r["arm"], r["severity"]) == (kind, arm, s)])
                    for s in severities]
            ax.plot(severities, aucs, marker="o", color=colors[arm], label=arm)
            clean = [r["auc"] for r in rows if r["kind"] == "clean" and r["arm"] == arm]
            if clean:
                ax.axhline(float(np.mean(clean)), ls=":", lw=0.8, color=colors[arm])
        ax.set_title(kind, fontsize=9)
        ax.set_xlabel("severity")
        ax.set_ylabel("test AUC")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(kinds):]:
        ax.axis("off")
    if kinds:
        axes.flat[0].legend(fontsize=7)
    return fig


def plot_pretrain_history(rows: Sequence[Mapping], n_prototypes: int, method: str = "swav", total_steps: int | None = None) -> Figure:
    """Pretraining loss (against ln K for SwAV) and the fraction of prototypes in use, per logged step."""
    steps = [r["step"] for r in rows]
    fig, (ax_loss, ax_use) = plt.subplots(1, 2, figsize=(9, 3))
    ax_loss.plot(steps, [r["loss_avg"] for r in rows], marker=".", label=f"{method} loss")
    if method == "swav":
        ln_k = float(np.log(n_prototypes))
        ax_loss.axhline(ln_k, color="gray", ls="--", label=f"ln K = {ln_k:.2f} (no information)")
    ax_loss.set_xlabel("step")
    ax_loss.legend(fontsize=8)
    ax_use.plot(steps, [r["prototype_usage"] for r in rows], marker=".", color="tab:green")
    ax_use.axhline(1 / n_prototypes, color="tab:red", ls=":", label="1/K (collapse)")
    ax_use.set_ylim(0, 1.05)
    ax_use.set_xlabel("step")
    ax_use.set_ylabel("prototypes in use")
    ax_use.legend(fontsize=8)
    if rows:
        of = f" / {total_steps}" if total_steps else ""
        fig.suptitle(f"step {steps[-1]}{of}, {rows[-1]['img_per_s']:.0f} images/s", fontsize=10)
    fig.tight_layout()
    return fig


class LiveHistoryPlot:
    """A ``Pretrainer.fit`` callback that redraws :func:`plot_pretrain_history` in place in a notebook.

    Redraws every ``every`` logged steps, at most ``max_redraws`` times (headless runs stay
    small), and always at the last step.
    """

    def __init__(self, every: int = 5, max_redraws: int = 30) -> None:
        self.every, self.max_redraws, self.redraws, self._handle = every, max_redraws, 0, None

    def show(self, trainer) -> None:
        """Draw the trainer's history now (also for a run that was only loaded)."""
        from IPython.display import display

        fig = plot_pretrain_history(trainer.history.rows, trainer.config.n_prototypes, trainer.config.method,
                                    trainer.total_steps)
        plt.close(fig)  # shown through the display handle only
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        self.redraws += 1

    def __call__(self, trainer, row: Mapping) -> None:
        due = len(trainer.history.rows) % self.every == 0 and self.redraws < self.max_redraws
        if due or trainer.step >= trainer.total_steps:
            self.show(trainer)


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
    styles = dict(zip(series, (("tab:blue", "o", "-"), ("tab:purple", "s", "--"), ("tab:olive", "^", ":"))))
    x = sorted({p["cpu_minutes"] for p in points})
    for ax, name in zip(axes[0], figures):
        for label in series:
            color, marker, line = styles[label]
            order = sorted((p for p in points if p.get("series", "pretrained") == label), key=lambda p: p["cpu_minutes"])
            ax.plot([p["cpu_minutes"] for p in order], [p[name] for p in order], marker=marker, ls=line, color=color,
                    label=label)
            for point in order:
                ax.annotate(str(point["label"]), (point["cpu_minutes"], point[name]), fontsize=6,
                            textcoords="offset points", xytext=(3, -8), color=color)
        for (base, values), style in zip(baselines.items(), ("--", ":")):
            ax.axhline(values[name], ls=style, color="tab:gray", lw=1, label=base)
        ax.set_title(name.replace("_", " "), fontsize=9)
    if gains:
        ax = axes[0][-1]
        for i, fraction in enumerate(sorted({g["fraction"] for g in gains})):
            for label in series:
                rows = sorted((g for g in gains if g["fraction"] == fraction and g.get("series", "pretrained") == label),
                              key=lambda g: g["cpu_minutes"])
                if rows:
                    ax.errorbar([g["cpu_minutes"] for g in rows], [100 * g["gain_test_auc"] for g in rows],
                                yerr=[100 * g["gain_test_auc_std"] for g in rows], marker=styles[label][1], capsize=3,
                                ls=styles[label][2], color=f"C{i + 1}",
                                label=f"{fraction:g} of labels" + (f" ({label})" if len(series) > 1 else ""))
        ax.axhline(0.0, color="k", lw=0.8)
        ax.axhline(3.0, ls="--", color="tab:red", lw=1, label="paper: +3 to +7")
        ax.set_ylim(top=max(ax.get_ylim()[1], 3.5))
        ax.set_title("fine-tuning minus scratch (test AUC points)", fontsize=9)
    for ax in axes[0]:
        ax.set_xscale("log")
        ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if min(x) / 1.5 <= t <= max(x) * 1.5]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("pretraining CPU-minutes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    fig.suptitle("More pretraining, better features?  The paper used 100 M images and GPU-weeks: "
                 "far to the right of these axes.", fontsize=9, color="tab:red")
    return fig
