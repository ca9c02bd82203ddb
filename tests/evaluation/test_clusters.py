"""Cluster metrics and prototype neighbours (the gallery figure of them too)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from medssl_lab import viz as V
from medssl_lab.evaluation import clusters as C


def _model_outputs(model: torch.nn.Module, images: np.ndarray, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, prototype scores) of a SwAVModel in eval mode (a tiny stand-in for an extractor)."""
    from medssl_lab.evaluation.perturbations import prepare

    model.eval()
    with torch.no_grad():
        z = model.embed(prepare(torch.from_numpy(images), size))
        scores = model.prototypes(z)
    return z.numpy(), scores.numpy()


# --------------------------------------------------------------------------- assignments and metrics


def test_assignments_and_usage() -> None:
    scores = np.array([[0.9, 0.1, 0.0, 0.0], [0.2, 0.7, 0.1, 0.0], [0.8, 0.0, 0.1, 0.1], [0.3, 0.2, 0.1, 0.0]])
    a = C.assign_prototypes(torch.from_numpy(scores))
    assert a.tolist() == [0, 1, 0, 0]
    assert C.prototype_usage_counts(a, 4).tolist() == [3, 1, 0, 0]
    s = C.usage_summary(a, 4)
    assert s["n_used"] == 2 and s["used_fraction"] == 0.5
    assert s["largest_share"] == pytest.approx(0.75)
    p = np.array([0.75, 0.25])
    assert s["entropy"] == pytest.approx(float(-(p * np.log(p)).sum()))
    assert s["max_entropy"] == pytest.approx(np.log(4))
    assert C.usage_summary(np.arange(8), 8)["perplexity"] == pytest.approx(8.0)
    collapsed = C.usage_summary(np.zeros(100, dtype=int), 16)
    assert collapsed["perplexity"] == pytest.approx(1.0) and collapsed["largest_share"] == 1.0
    with pytest.raises(ValueError, match="0..3"):
        C.prototype_usage_counts([0, 4], 4)
    with pytest.raises(ValueError, match="assign_prototypes"):
        C.cluster_metrics(scores, [0, 1, 0, 0])


def test_metrics_perfect_permuted_and_random() -> None:
    labels = np.repeat(["CT", "MR", "X-ray"], 200)
    perfect = np.repeat([7, 2, 5], 200)  # cluster ids need not match label codes
    m = C.cluster_metrics(perfect, labels)
    assert m["purity"] == 1.0 and m["nmi"] == pytest.approx(1.0) and m["ari"] == pytest.approx(1.0)
    assert m["n_clusters_used"] == 3
    rng = np.random.default_rng(0)
    rand = C.cluster_metrics(rng.integers(0, 3, len(labels)), labels)
    assert rand["purity"] < 0.45 and rand["nmi"] < 0.05 and abs(rand["ari"]) < 0.05
    # Purity rewards many clusters, NMI/ARI do not: one sample per cluster.
    singletons = C.cluster_metrics(np.arange(len(labels)), labels)
    assert singletons["purity"] == 1.0 and singletons["ari"] == pytest.approx(0.0, abs=1e-9)
    # Object arrays and (N, 1) labels are accepted.
    assert C.cluster_metrics(perfect, labels.astype(object)[:, None])["purity"] == 1.0


def test_purity_by_hand_and_table() -> None:
    a = np.array([0, 0, 0, 1, 1, 2])
    y = np.array(["a", "a", "b", "b", "b", "c"])
    assert C.purity(a, y) == pytest.approx((2 + 2 + 1) / 6)
    rows = C.cluster_table(a, y)
    assert rows[0] == C.ClusterRow(cluster=0, size=3, majority="a", purity=pytest.approx(2 / 3))
    assert [r.cluster for r in rows] == [0, 1, 2] and rows[1].majority == "b" and rows[1].purity == 1.0
    text = C.format_cluster_table(rows, max_rows=2)
    assert "1 more clusters" in text and len(text.splitlines()) == 4
    both = C.compare_cluster_metrics(a, {"class": y, "modality": np.array(["CT"] * 6)})
    assert set(both) == {"class", "modality"} and both["modality"]["purity"] == 1.0
    with pytest.raises(ValueError, match="entries"):
        C.cluster_metrics(a, y[:5])


# --------------------------------------------------------------------------- prototypes


def test_nearest_to_prototypes_constructed() -> None:
    protos = np.eye(4, dtype=np.float32)  # prototype 3 gets no sample
    emb = np.array(
        [
            [1.0, 0.1, 0, 0],
            [1.0, 0.5, 0, 0],
            [2.0, 0.0, 0, 0],
            [0.2, 1.0, 0, 0],
            [0.0, 3.0, 0.1, 0],
            [0.0, 0.1, 1.0, 0],
        ],
        dtype=np.float32,
    )
    near = C.nearest_to_prototypes(emb, protos, k=2)
    assert list(near) == [0, 1, 2]  # used prototypes only, most used first (3, 2, 1 samples)
    assert near[0].tolist() == [2, 0]  # cosine, not dot product: sample 2 is exactly on prototype 0
    assert near[1].tolist() == [4, 3]
    assert near[2].tolist() == [5, 4]
    assert list(C.nearest_to_prototypes(emb, protos, k=2, top_m=1)) == [0]
    assert list(C.nearest_to_prototypes(emb, protos, k=2, min_count=2)) == [0, 1]
    assert len(C.nearest_to_prototypes(emb, protos, k=50)[0]) == len(emb)
    with pytest.raises(ValueError, match="dim"):
        C.nearest_to_prototypes(emb, np.eye(3), k=2)


def test_model_scores_agree_with_nearest_and_gallery() -> None:
    from medssl_lab.data.synthetic import make_phantoms
    from medssl_lab.models import SwAVModel

    torch.manual_seed(0)
    model = SwAVModel("resnet_small", hidden_dim=32, proj_dim=16, n_prototypes=10)
    phantoms = make_phantoms(48, size=16, seed=0)
    emb, scores = _model_outputs(model, phantoms.images)
    a = C.assign_prototypes(scores)
    near = C.nearest_to_prototypes(emb, model.prototypes.weight, k=4)
    counts = C.prototype_usage_counts(a, model.n_prototypes)
    assert set(near) == set(np.flatnonzero(counts).tolist())
    for j, idx in near.items():  # nearest by cosine = highest prototype score
        assert scores[idx[0], j] == pytest.approx(scores[:, j].max(), abs=1e-5)
    fig = V.plot_prototype_gallery(
        phantoms.images, near, labels=phantoms.labels, max_prototypes=3, per_row=4, counts=counts
    )
    assert isinstance(fig, Figure) and len(fig.axes) == min(3, len(near)) * 4


# --------------------------------------------------------------------------- real data


def test_mednist_pixel_kmeans_follows_modality(data_dir) -> None:
    """Raw-pixel k-means on MedNIST already groups by modality: the baseline SSL clusters must beat.

    Measured on 3000 images at 16 px, k=6, seeds 0-2: purity against modality 0.955-0.97,
    NMI against class about 0.80. Floors are set a little below.
    """
    import torch.nn.functional as F
    from sklearn.cluster import KMeans

    from medssl_lab.data.mednist import load_mednist

    mednist = load_mednist(data_dir).all
    idx = np.sort(np.random.default_rng(0).choice(len(mednist), 3000, replace=False))
    part = mednist.subset(idx)
    x = F.avg_pool2d(torch.from_numpy(np.asarray(part.images)).float()[:, None] / 255.0, 4).flatten(1).numpy()
    a = KMeans(6, n_init=3, random_state=0).fit_predict(x)
    by_modality = C.cluster_metrics(a, part.modality)
    by_class = C.cluster_metrics(a, np.asarray(part.class_names)[part.targets])
    chance = C.cluster_metrics(np.random.default_rng(1).permutation(a), part.modality)
    assert by_modality["purity"] > 0.9 and by_modality["nmi"] > 0.5
    assert by_class["purity"] > 0.7 and by_class["nmi"] > 0.7 and by_class["ari"] > 0.55
    assert chance["nmi"] < 0.02 and by_modality["purity"] > chance["purity"] + 0.3
    rows = C.cluster_table(a, part.modality)
    assert sum(r.size for r in rows) == 3000 and rows[0].size >= rows[-1].size
