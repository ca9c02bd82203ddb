"""Plots for the notebooks, drawn with matplotlib's object-oriented API so they work headless (Agg).

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``:
the notebook displays it, a script saves it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from medssl_lab.augment import MultiCropAugment, denormalize, make_generator, to_float
from medssl_lab.data.intensity import apply_window
from medssl_lab.evaluation.clusters import as_numpy, encode_labels, label_vector
from medssl_lab.evaluation.perturbations import PERTURBATION_LEVELS, perturb


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


def _views_of(augment: Callable[..., Any], batch: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """The views of any augmentation callable: a :class:`MultiCropAugment`, or one taking ``(batch)`` only."""
    try:
        views = augment(batch, generator=make_generator(seed))
    except TypeError:
        views = augment(batch)
    return [views] if isinstance(views, torch.Tensor) else list(views)


def plot_views(
    image: np.ndarray | torch.Tensor,
    augment: Callable[..., Any],
    n_samples: int = 3,
    seed: int = 0,
    panel_size: float = 1.6,
) -> Figure:
    """Show an image next to its augmented views, one row per random draw.

    Lets a reader see what the network is asked to match: global views covering most of
    the image and small local crops, with the intensity changes applied. Views are shown
    de-normalised to ``[0, 1]`` at their own resolution.

    Args:
        image: one ``(H, W)`` image, uint8 or float in ``[0, 1]``.
        augment: a :class:`~medssl_lab.augment.MultiCropAugment` (views named global and local), or any callable
            mapping a ``(B, H, W)`` batch to a tensor or a list of normalised views.
        n_samples: number of independent draws (rows).
        seed: seed of the draws (same seed, same figure).
        panel_size: size of each panel in inches.

    Returns:
        A figure with ``n_samples * (1 + number of views)`` axes.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    img = _as_image_tensor(image)
    views = _views_of(augment, img.expand(n_samples, *img.shape[1:]).contiguous(), seed)
    n_global = augment.config.n_global if isinstance(augment, MultiCropAugment) else len(views)
    ncols = 1 + len(views)
    fig, axes = plt.subplots(n_samples, ncols, figsize=(panel_size * ncols, panel_size * n_samples), squeeze=False)
    original = to_float(img)[0]
    for row in range(n_samples):
        _show(axes[row, 0], original, f"draw {row + 1}: input" + (f" {original.shape[-1]} px" if row == 0 else ""))
        for j, v in enumerate(views):
            kind = f"global {j + 1}" if j < n_global else f"local {j - n_global + 1}"
            title = f"{kind} ({v.shape[-1]} px)" if row == 0 else kind
            _show(axes[row, j + 1], denormalize(v[row].detach().float().cpu()).clamp(0, 1), title)
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
        levels: kind -> severities (default :data:`~medssl_lab.evaluation.perturbations.PERTURBATION_LEVELS`).
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
        scratch = [
            max(a for _, a in r["curve"])
            for r in records
            if (r["task"], r["fraction"], r["arm"]) == (task, fraction, "scratch")
        ]
        if scratch:
            ax.axhline(0.95 * float(np.mean(scratch)), ls="--", lw=0.8, color="k", label="95 % of scratch best")
        ax.set_title(f"{task}, {fraction:g} of labels", fontsize=9)
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


def plot_pretrain_history(
    rows: Sequence[Mapping], n_prototypes: int, method: str = "swav", total_steps: int | None = None
) -> Figure:
    """Pretraining loss (against ln K for SwAV) and, per logged step, the fraction of prototypes in use (SwAV) or the
    spread of the embeddings (SimCLR)."""
    steps = [r["step"] for r in rows]
    fig, (ax_loss, ax_use) = plt.subplots(1, 2, figsize=(9, 3))
    ax_loss.plot(steps, [r["loss_avg"] for r in rows], marker=".", label=f"{method} loss")
    if method == "swav":
        ln_k = float(np.log(n_prototypes))
        ax_loss.axhline(ln_k, color="gray", ls="--", label=f"ln K = {ln_k:.2f} (no information)")
    ax_loss.set_xlabel("step")
    ax_loss.legend(fontsize=8)
    if method == "swav":
        ax_use.plot(steps, [r["prototype_usage"] for r in rows], marker=".", color="tab:green")
        ax_use.axhline(1 / n_prototypes, color="tab:red", ls=":", label="1/K (collapse)")
        ax_use.set_ylim(0, 1.05)
        ax_use.set_ylabel("prototypes in use")
        ax_use.legend(fontsize=8)
    else:  # no prototypes: the spread of the embeddings shows a collapse instead (0: every image the same)
        ax_use.plot(steps, [r["embedding_std"] for r in rows], marker=".", color="tab:green")
        ax_use.set_ylim(bottom=0)
        ax_use.set_ylabel("embedding std per dimension")
    ax_use.set_xlabel("step")
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

        fig = plot_pretrain_history(
            trainer.history.rows, trainer.config.n_prototypes, trainer.config.method, trainer.total_steps
        )
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
            order = sorted(
                (p for p in points if p.get("series", "pretrained") == label), key=lambda p: p["cpu_minutes"]
            )
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
    if gains:
        ax = axes[0][-1]
        for i, fraction in enumerate(sorted({g["fraction"] for g in gains})):
            for label in series:
                rows = sorted(
                    (g for g in gains if g["fraction"] == fraction and g.get("series", "pretrained") == label),
                    key=lambda g: g["cpu_minutes"],
                )
                if rows:
                    ax.errorbar(
                        [g["cpu_minutes"] for g in rows],
                        [100 * g["gain_test_auc"] for g in rows],
                        yerr=[100 * g["gain_test_auc_std"] for g in rows],
                        marker=styles[label][1],
                        capsize=3,
                        ls=styles[label][2],
                        color=f"C{i + 1}",
                        label=f"{fraction:g} of labels" + (f" ({label})" if len(series) > 1 else ""),
                    )
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
    fig.suptitle(
        "More pretraining, better features?  The paper used 100 M images and GPU-weeks: "
        "far to the right of these axes.",
        fontsize=9,
        color="tab:red",
    )
    return fig


# --------------------------------------------------------------------------- images, windows, clusters


def plot_windows(hu: np.ndarray, windows: Mapping[str, tuple[float, float]], panel_size: float = 2.4) -> Figure:
    """One panel per (centre, width) window of the same image in Hounsfield units (or any raw values)."""
    n = len(windows)
    fig, axes = plt.subplots(1, n, figsize=(panel_size * n, panel_size * 1.1), squeeze=False)
    for ax, (name, (c, w)) in zip(axes[0], windows.items()):
        ax.imshow(apply_window(hu, c, w), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{name}\nC {c:g} / W {w:g}", fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_image_grid(
    images: np.ndarray,
    index: Sequence[int] | np.ndarray,
    labels: np.ndarray | None = None,
    title: str = "",
    ncols: int = 8,
    panel_size: float = 1.1,
) -> Figure:
    """The images at ``index`` in rows of ``ncols``, each titled with its label when given."""
    nrows = max(1, int(np.ceil(len(index) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows * 1.15), squeeze=False)
    vmax = 255 if images.dtype == np.uint8 else 1.0
    for k, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if k < len(index):
            ax.imshow(images[index[k]], cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
            if labels is not None:
                ax.set_title(str(labels[index[k]]), fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_prototype_usage(counts: Mapping[str, np.ndarray], summaries: Mapping[str, Mapping[str, float]]) -> Figure:
    """Share of the images on each prototype, sorted, one panel per model: collapse shows as a few tall bars."""
    fig, axes = plt.subplots(1, len(counts), figsize=(5 * len(counts), 3), sharey=True, squeeze=False)
    for ax, (name, c) in zip(axes[0], counts.items()):
        k = len(c)
        ordered = np.sort(np.asarray(c))[::-1]
        ax.bar(
            np.arange(k), ordered / ordered.sum(), width=1.0, color="tab:blue" if name == "pretrained" else "tab:gray"
        )
        ax.axhline(1 / k, color="tab:red", ls=":", label="1/K (even use)")
        s = summaries[name]
        ax.set_title(f"{name}: {s['n_used']} used, perplexity {s['perplexity']:.1f}", fontsize=10)
        ax.set_xlabel("prototype (sorted by use)")
    axes[0, 0].set_ylabel("share of images")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_cluster_metrics(metrics: Mapping[str, Mapping[str, Mapping[str, float]]]) -> Figure:
    """Purity, NMI and ARI of each clustering (bars) against each labelling (panels), e.g. class and modality."""
    labelings = list(next(iter(metrics.values())))
    fig, axes = plt.subplots(1, len(labelings), figsize=(5 * len(labelings), 3.2), sharey=True, squeeze=False)
    width = 0.8 / len(metrics)
    for ax, label in zip(axes[0], labelings):
        for i, (name, m) in enumerate(metrics.items()):
            values = [m[label][key] for key in ("purity", "nmi", "ari")]
            ax.bar(np.arange(3) + (i - (len(metrics) - 1) / 2) * width, values, width, label=name)
        ax.set_xticks(range(3), ["purity", "NMI", "ARI"])
        ax.set_title(f"clusters vs {label}", fontsize=10)
        ax.set_ylim(0, 1)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_prototype_gallery(
    images: Any,
    nearest: Mapping[int, Sequence[int] | np.ndarray],
    labels: Any = None,
    max_prototypes: int = 12,
    per_row: int = 8,
    counts: Any = None,
    panel_size: float = 1.1,
    row_name: str = "prototype",
) -> Figure:
    """For each prototype (a row), its nearest images, annotated with their label.

    Args:
        images: ``(N, H, W)`` uint8 images (or floats in [0, 1]) indexed by ``nearest``.
        nearest: output of :func:`nearest_to_prototypes`.
        labels: optional ``(N,)`` labels shown under each image (e.g. class or modality;
            combine them beforehand, like ``"CT/HeadCT"``).
        max_prototypes: rows shown (the first ones of ``nearest``, i.e. the most used).
        per_row: images per row.
        counts: optional usage counts (``(K,)`` array or ``{id: count}``), shown in the row titles.
        row_name: what a row is called in its title ("prototype", "cluster").

    Returns:
        A figure with ``min(len(nearest), max_prototypes) * per_row`` axes.
    """
    imgs = as_numpy(images)
    if imgs.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {imgs.shape}")
    protos = list(nearest)[:max_prototypes]
    if not protos:
        raise ValueError("nearest is empty: no prototype to show (are any prototypes used?)")
    lab = None if labels is None else label_vector(labels, len(imgs))
    cnt = counts if counts is None or isinstance(counts, Mapping) else as_numpy(counts)
    vmax = 255 if imgs.dtype == np.uint8 else 1.0
    fig, axes = plt.subplots(
        len(protos), per_row, figsize=(panel_size * per_row, panel_size * len(protos) * 1.15), squeeze=False
    )
    for r, j in enumerate(protos):
        idx = list(nearest[j])[:per_row]
        for c in range(per_row):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(idx):
                ax.imshow(imgs[idx[c]], cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
                if lab is not None:
                    ax.set_xlabel(str(lab[idx[c]]), fontsize=6, labelpad=1)
        title = f"{row_name} {j}" + (f" (n={int(cnt[j])})" if cnt is not None else "")
        axes[r, 0].set_ylabel(title, fontsize=7, rotation=0, ha="right", va="center", labelpad=4)
    fig.suptitle(f"images of {len(protos)} {row_name}s", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- UMAP


def _colours(n: int) -> list:
    """Distinct colours: tab10 up to 10 categories, tab20 up to 20, then a cyclic map."""
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    cmap = plt.get_cmap("hsv")
    rng = np.random.default_rng(0)  # shuffled so that neighbouring ids do not get near colours
    return [cmap(v) for v in rng.permutation(np.linspace(0, 1, n, endpoint=False))]


def plot_embedding(
    coords: Any,
    colour_by: Any,
    title: str = "",
    ax: Axes | None = None,
    point_size: float | None = None,
    max_legend: int = 20,
) -> Figure | SubFigure:
    """Scatter 2-D coordinates coloured by a categorical label, with a legend.

    Points are drawn in a random (fixed) order so that no category hides the others by
    being drawn last. With more than ``max_legend`` categories (e.g. 100 prototypes) the
    legend is replaced by a count in the title.

    Args:
        coords: ``(n, 2)`` coordinates (from :func:`compute_umap`).
        colour_by: ``(n,)`` labels, numbers or strings (index them like the coordinates).
        title: axes title.
        ax: draw into this axes; a new figure is made when None.

    Returns:
        The figure holding the axes (a :class:`~matplotlib.figure.SubFigure` when ``ax`` is in one).
    """
    xy = as_numpy(coords)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must be (n, 2), got shape {xy.shape}")
    lab = label_vector(colour_by, len(xy), "colour_by")
    names, codes = encode_labels(lab)
    fig: Figure | SubFigure
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4.5))
    else:
        fig = ax.figure
    colours = _colours(len(names))
    order = np.random.default_rng(0).permutation(len(xy))
    s = point_size if point_size is not None else float(np.clip(3000 / max(len(xy), 1), 1, 20))
    ax.scatter(
        xy[order, 0], xy[order, 1], c=[colours[c] for c in codes[order]], s=s, linewidths=0, alpha=0.8, rasterized=True
    )
    ax.set_xticks([])
    ax.set_yticks([])
    if len(names) <= max_legend:
        handles = [
            plt.Line2D([], [], marker="o", linestyle="", color=colours[i], markersize=5, label=str(name))
            for i, name in enumerate(names)
        ]
        ax.legend(handles=handles, fontsize=7, loc="best", markerscale=1.0, framealpha=0.7)
        ax.set_title(title, fontsize=10)
    else:
        ax.set_title(f"{title} ({len(names)} categories)" if title else f"{len(names)} categories", fontsize=10)
    return fig


def plot_embedding_grid(
    coords: Any,
    colourings: Mapping[str, Any],
    suptitle: str | None = None,
    panel_size: float = 4.0,
) -> Figure:
    """The same embedding coloured several ways, side by side (e.g. modality, class, cluster).

    Seeing the modality panel and the cluster panel next to each other shows at a glance
    whether the prototypes split the data the way the modalities do.
    """
    if not colourings:
        raise ValueError("colourings is empty; pass e.g. {'modality': modality[index]}")
    n = len(colourings)
    fig, axes = plt.subplots(1, n, figsize=(panel_size * n, panel_size), squeeze=False)
    for ax, (name, labels) in zip(axes[0], colourings.items()):
        plot_embedding(coords, labels, title=name, ax=ax)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return fig


def plot_side_by_side(
    coords_a: Any,
    coords_b: Any,
    labels: Any,
    titles: tuple[str, str] = ("pretrained", "random init"),
    labels_b: Any = None,
    suptitle: str | None = None,
    panel_size: float = 4.5,
) -> Figure:
    """Two embeddings of the same images, e.g. pretrained against random init, same colours.

    The point of the comparison: a randomly initialised network already separates
    images that differ in raw intensity statistics, so pretraining is judged by what it
    adds to that, not against a blank.

    Args:
        coords_a, coords_b: ``(n, 2)`` coordinates of the two models.
        labels: ``(n,)`` labels for ``coords_a`` (and ``coords_b`` unless ``labels_b``).
        labels_b: labels for ``coords_b`` if its points differ.
    """
    fig, axes = plt.subplots(1, 2, figsize=(panel_size * 2, panel_size), squeeze=False)
    plot_embedding(coords_a, labels, title=titles[0], ax=axes[0, 0])
    plot_embedding(coords_b, labels if labels_b is None else labels_b, title=titles[1], ax=axes[0, 1])
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return fig


def plot_loss_terms(terms: Mapping[str, Sequence[float]], title: str = "", smooth: int = 1) -> Figure:
    """Loss curves per training step (e.g. the hybrid arm's supervised and SSL terms), smoothed by a moving mean."""
    fig, ax = plt.subplots(figsize=(7, 3))
    for name, values in terms.items():
        v = np.asarray(values, dtype=float)
        width = max(1, int(smooth))
        shown = np.convolve(v, np.ones(width) / width, mode="valid") if len(v) >= width else v
        ax.plot(shown, "--" if "SwAV" in name or "SSL" in name else "-", label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (smoothed)" if smooth > 1 else "loss")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
