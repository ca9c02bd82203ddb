"""2-D maps of an embedding (UMAP), kept fast enough for notebooks on small CPUs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from medssl_lab.data.types import random_subset_index
from medssl_lab.errors import import_extra
from medssl_lab.evaluation.clusters import as_numpy


def compute_umap(
    features: Any,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
    max_points: int | None = 5000,
    metric: str = "euclidean",
    n_epochs: int = 200,
    exact_knn_max: int = 20000,
    verbose: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """2-D UMAP coordinates of (a seeded subset of) ``features``.

    Kept fast for notebooks on small CPUs:

    * more than ``max_points`` rows are subsampled (seeded: the same points every run);
    * up to ``exact_knn_max`` points, the neighbour graph is computed exactly with
      scikit-learn and handed to UMAP, which skips pynndescent; that avoids most of
      the numba compilation of a first call (measured on a loaded 2-core machine,
      5000 points: about 15 s instead of about 75 s, then about 4 s per call);
    * ``n_epochs`` defaults to 200 instead of UMAP's 500 for small data sets, which
      barely changes the picture.

    The first call in a Python process still compiles some numba code (the layout
    optimiser): expect 10-20 s more than later calls. With a seed, UMAP runs
    single-threaded and is reproducible.

    Args:
        features: ``(N, d)`` embeddings or backbone features.
        n_neighbors, min_dist: UMAP's parameters (``n_neighbors`` is capped at ``n - 1``).
        seed: seed of the subsample and of UMAP.
        max_points: cap on the number of points (None: all).
        metric: ``"euclidean"`` (same neighbours as cosine for unit-norm embeddings) or
            ``"cosine"``; other UMAP metrics use UMAP's own neighbour search.
        n_epochs: optimisation epochs.
        exact_knn_max: largest number of points for the exact neighbour graph.

    Returns:
        ``(coords, index)``: ``(n, 2)`` float32 coordinates and the ``(n,)`` indices
        (sorted) of the rows they belong to; colour them with ``labels[index]``.
    """
    x = as_numpy(features)
    if x.ndim != 2:
        raise ValueError(f"features must be an (N, d) matrix, got shape {x.shape}")
    if len(x) < 4:
        raise ValueError(f"UMAP needs at least 4 points, got {len(x)}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf; check the model (a diverged run?) before plotting")
    index = random_subset_index(len(x), max_points, seed)
    x = np.ascontiguousarray(x[index], dtype=np.float32)
    k = int(min(n_neighbors, len(x) - 1))
    import warnings

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs value.*")  # random_state forces n_jobs=1: expected
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")  # no .transform(): not needed here
        warnings.filterwarnings("ignore", message=".*Tensorflow not installed.*")  # only ParametricUMAP needs it
        warnings.filterwarnings("ignore", category=FutureWarning)
        umap = import_extra("umap", "course", "a UMAP map of the embedding", package="umap-learn")

        exact = metric in ("euclidean", "cosine") and len(x) <= exact_knn_max
        reducer = umap.UMAP(
            n_neighbors=k,
            min_dist=min_dist,
            metric=metric,
            n_epochs=n_epochs,
            random_state=seed,
            precomputed_knn=_exact_knn(x, k, metric) if exact else (None, None, None),
            verbose=verbose,
        )
        coords = reducer.fit_transform(x).astype(np.float32)
    if verbose:
        print(f"UMAP of {len(x)} points took {time.perf_counter() - start:.1f} s")
    return coords, index


def _exact_knn(x: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray, None]:
    """The exact ``k``-neighbour graph of ``x`` (scikit-learn) in the form UMAP's ``precomputed_knn`` takes."""
    from sklearn.neighbors import NearestNeighbors

    algorithm = "brute" if metric == "cosine" else "auto"
    dist, ind = NearestNeighbors(n_neighbors=k, metric=metric, algorithm=algorithm).fit(x).kneighbors(x)
    return ind.astype(np.int32), dist.astype(np.float32), None
