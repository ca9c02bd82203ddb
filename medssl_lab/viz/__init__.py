"""Plots for the notebooks, drawn with matplotlib's object-oriented API so they work headless (Agg).

Every function returns a :class:`matplotlib.figure.Figure` and never calls ``plt.show()``:
the notebook displays it, a script saves it. Import them from here (``from medssl_lab.viz import plot_views``);
the modules hold them by subject:

* :mod:`~medssl_lab.viz.images`: augmented views, perturbations, display windows, image grids, the pool;
* :mod:`~medssl_lab.viz.history`: the pretraining history (live in a notebook) and loss terms per step;
* :mod:`~medssl_lab.viz.results`: label efficiency, convergence and robustness per arm, the compute curve;
* :mod:`~medssl_lab.viz.clusters`: prototype use, cluster agreement with labels, the images of each prototype;
* :mod:`~medssl_lab.viz.embedding`: 2-D maps of an embedding coloured by a label.
"""

from medssl_lab.viz.clusters import (
    plot_cluster_metrics,
    plot_cluster_protocol,
    plot_prototype_gallery,
    plot_prototype_usage,
)
from medssl_lab.viz.embedding import plot_embedding, plot_embedding_grid, plot_side_by_side
from medssl_lab.viz.history import LiveHistoryPlot, plot_loss_terms, plot_pretrain_history
from medssl_lab.viz.images import plot_image_grid, plot_perturbations, plot_pool_overview, plot_views, plot_windows
from medssl_lab.viz.results import (
    plot_compute_curve,
    plot_convergence,
    plot_label_efficiency,
    plot_labels_per_class,
    plot_robustness,
)

__all__ = [  # by subject: the order of the API reference
    "plot_views",
    "plot_perturbations",
    "plot_windows",
    "plot_image_grid",
    "plot_pool_overview",
    "plot_pretrain_history",
    "LiveHistoryPlot",
    "plot_loss_terms",
    "plot_label_efficiency",
    "plot_labels_per_class",
    "plot_convergence",
    "plot_robustness",
    "plot_compute_curve",
    "plot_prototype_usage",
    "plot_cluster_metrics",
    "plot_cluster_protocol",
    "plot_prototype_gallery",
    "plot_embedding",
    "plot_embedding_grid",
    "plot_side_by_side",
]
