"""Plots for the notebooks, drawn with matplotlib's object-oriented API so they work headless (Agg).

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``:
the notebook displays it, a script saves it. Import them from here: ``from medssl_lab.viz import plot_views``.
"""

from medssl_lab.viz.images import (
    LiveHistoryPlot,
    plot_cluster_metrics,
    plot_compute_curve,
    plot_convergence,
    plot_embedding,
    plot_embedding_grid,
    plot_image_grid,
    plot_label_efficiency,
    plot_loss_terms,
    plot_perturbations,
    plot_pool_overview,
    plot_pretrain_history,
    plot_prototype_gallery,
    plot_prototype_usage,
    plot_robustness,
    plot_side_by_side,
    plot_views,
    plot_windows,
)

__all__ = [
    "LiveHistoryPlot",
    "plot_cluster_metrics",
    "plot_compute_curve",
    "plot_convergence",
    "plot_embedding",
    "plot_embedding_grid",
    "plot_image_grid",
    "plot_label_efficiency",
    "plot_loss_terms",
    "plot_perturbations",
    "plot_pool_overview",
    "plot_pretrain_history",
    "plot_prototype_gallery",
    "plot_prototype_usage",
    "plot_robustness",
    "plot_side_by_side",
    "plot_views",
    "plot_windows",
]
