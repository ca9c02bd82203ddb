"""UMAP maps of an embedding, and the figures drawn from them."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from medssl_lab import viz as V  # noqa: E402
from medssl_lab.evaluation import embedding as E  # noqa: E402


def _blobs(n: int = 600, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian blobs."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = rng.normal(size=(3, dim)) * 6.0
    return (centres[y] + rng.normal(size=(n, dim))).astype(np.float32), y


def test_umap_separates_blobs_and_subsamples_deterministically() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    x, y = _blobs(600)
    coords, index = E.compute_umap(x, seed=0)
    assert coords.shape == (600, 2) and index.tolist() == list(range(600))
    knn = KNeighborsClassifier(5).fit(coords[::2], y[::2])
    assert knn.score(coords[1::2], y[1::2]) > 0.95

    c1, i1 = E.compute_umap(x, seed=3, max_points=200)
    c2, i2 = E.compute_umap(x, seed=3, max_points=200)
    assert len(i1) == 200 and np.all(np.diff(i1) > 0)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(c1, c2)
    assert not np.array_equal(i1, E.compute_umap(x, seed=4, max_points=200)[1])
    with pytest.raises(ValueError, match="NaN"):
        E.compute_umap(np.full((10, 3), np.nan))


def test_embedding_plots() -> None:
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(300, 2))
    labels = rng.choice(["CT", "MR", "X-ray"], 300)
    fig = V.plot_embedding(xy, labels, title="modality")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert len(fig.axes[0].get_legend().get_texts()) == 3
    many = V.plot_embedding(xy, rng.integers(0, 64, 300), title="cluster")
    assert many.axes[0].get_legend() is None and "categories" in many.axes[0].get_title()
    fig, ax = plt.subplots()
    assert V.plot_embedding(xy, labels, ax=ax) is fig
    grid = V.plot_embedding_grid(
        xy, {"modality": labels, "class": rng.integers(0, 6, 300), "cluster": rng.integers(0, 30, 300)}
    )
    assert len(grid.axes) == 3
    side = V.plot_side_by_side(xy, xy[::-1], labels)
    assert len(side.axes) == 2 and [a.get_title() for a in side.axes] == ["pretrained", "random init"]
    with pytest.raises(ValueError, match="colour_by"):
        V.plot_embedding(xy, labels[:10])
