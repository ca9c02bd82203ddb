"""Training curves: the pretraining history (redrawn live in a notebook) and loss terms per step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def plot_pretrain_history(
    rows: Sequence[Mapping], n_prototypes: int, method: str = "swav", total_steps: int | None = None
) -> Figure:
    """Pretraining loss (against ln K for SwAV) and, per logged step, the fraction of prototypes in use (SwAV) or the
    spread of the embeddings (SimCLR); the online kNN accuracy in a third panel when the run has it."""
    steps = [r["step"] for r in rows]
    knn = [(r["step"], r["knn_accuracy"]) for r in rows if "knn_accuracy" in r]
    fig, axes = plt.subplots(1, 3 if knn else 2, figsize=(13 if knn else 9, 3))
    ax_loss, ax_use = axes[0], axes[1]
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
    if knn:
        _plot_knn(axes[2], knn)
    if rows:
        of = f" / {total_steps}" if total_steps else ""
        fig.suptitle(f"step {steps[-1]}{of}, {rows[-1]['img_per_s']:.0f} images/s", fontsize=10)
    fig.tight_layout()
    return fig


def _plot_knn(ax: plt.Axes, points: Sequence[tuple[int, float]]) -> None:
    """The monitor's kNN accuracy on the pool's tags (pretrain/monitor.py): do the features sort the images?"""
    ax.plot(*zip(*points), marker="o", color="tab:purple")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("step")
    ax.set_ylabel("kNN accuracy (pool tags)")


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
