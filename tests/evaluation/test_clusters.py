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


# --------------------------------------------------------------------------- the comparison protocol


def _three_brightness_classes(n_per: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images of 3 classes told apart by brightness alone (all above mid-grey), class names, modalities (2)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per)
    images = np.clip(rng.normal(150 + 40 * y, 4)[:, None, None] + rng.normal(0, 6, (len(y), 8, 8)), 0, 255)
    names = np.array(["dark", "mid", "bright"], dtype=object)[y]
    return images.astype(np.uint8), names, np.where(y == 2, "MR", "CT")


def test_pixel_vectors_raw_keep_brightness_unit_keep_direction() -> None:
    images = np.stack([np.full((4, 4), 51, np.uint8), np.full((4, 4), 204, np.uint8)])
    raw = C.pixel_vectors(images, 2)
    assert raw.shape == (2, 4) and raw.dtype == np.float32
    np.testing.assert_allclose(raw, [[0.2] * 4, [0.8] * 4], atol=1e-6)
    unit = C.pixel_vectors(images, 2, "unit")
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(unit, [[-0.5] * 4, [0.5] * 4], atol=1e-6)  # centred, then length 1: sign survives
    with pytest.raises(ValueError, match="scaling"):
        C.pixel_vectors(images, 2, "zscore")
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        C.pixel_vectors(images[0], 2)


def test_raw_pixels_find_brightness_classes_unit_pixels_cannot() -> None:
    """Why the scaling is a setting of the protocol: brightness is a class cue only raw pixels keep."""
    images, names, _ = _three_brightness_classes()
    assert C.cluster_metrics(C.pixel_kmeans(images, 3, size=4), names)["nmi"] > 0.95
    assert C.cluster_metrics(C.pixel_kmeans(images, 3, size=4, scaling="unit"), names)["nmi"] < 0.4  # measured 0.22


def test_stratified_subset_keeps_shares_and_depends_on_seed() -> None:
    labels = np.array(["a"] * 60 + ["b"] * 30 + ["c"] * 10, dtype=object)
    idx = C.stratified_subset(labels, 50, seed=0)
    assert len(idx) == 50 and len(set(idx.tolist())) == 50 and np.all(np.diff(idx) > 0)
    assert [int(np.sum(labels[idx] == c)) for c in "abc"] == [30, 15, 5]
    assert C.stratified_subset(labels, 50, seed=0).tolist() == idx.tolist()
    assert C.stratified_subset(labels, 50, seed=1).tolist() != idx.tolist()
    assert sorted(np.bincount(np.searchsorted(["a", "b", "c"], labels[C.stratified_subset(labels, 7, 0)]))) == [
        1,
        2,
        4,
    ]  # 4.2, 2.1, 0.7: the largest remainder (c) gets the seventh
    with pytest.raises(ValueError, match="cannot draw"):
        C.stratified_subset(labels, 101, 0)


def _protocol(n_images: int | None = None, seeds: tuple[int, ...] = (0, 1)) -> list[dict]:
    images, names, modality = _three_brightness_classes()
    rng = np.random.default_rng(1)
    y = np.unique(names, return_inverse=True)[1]
    good = np.eye(3)[y] * 3 + rng.normal(0, 0.3, (len(y), 3))  # features that know the class
    noise = rng.normal(0, 1, (len(y), 3))
    prototypes = y * 2 + (rng.random(len(y)) < 0.5)  # 6 prototypes, two per class
    return C.cluster_protocol(
        images,
        {"class": names, "modality": modality},
        {"pretrained": good, "random init": noise},
        prototypes,
        counts=(3, 4),
        sizes=(4, 8),
        seeds=seeds,
        n_images=n_images,
    )


def test_protocol_runs_every_method_count_pixel_setting_and_seed() -> None:
    rows = _protocol()
    kinds = {(r["method"], r["n_clusters"], r["size"], r["scaling"]) for r in rows}
    counts = (3, 4, 6)  # 6: the prototypes' own count, added so that each baseline meets them at it
    want = {("prototypes", 6, None, None)}
    want |= {(f"{name} k-means", k, None, None) for name in ("pretrained", "random init") for k in counts}
    want |= {("pixel k-means", k, s, sc) for k in counts for s in (4, 8) for sc in C.PIXEL_SCALINGS}
    assert kinds == want and len(rows) == 2 * len(want)
    assert {r["seed"] for r in rows} == {0, 1} and all(r["n_images"] == 90 for r in rows)
    row = next(r for r in rows if r["method"] == "pretrained k-means" and r["n_clusters"] == 3)
    assert row["class_nmi"] > 0.95 and row["class_purity"] > 0.95 and row["n_used"] == 3
    assert row["modality_purity"] > 0.95
    noise = next(r for r in rows if r["method"] == "random init k-means" and r["n_clusters"] == 3)
    assert noise["class_nmi"] < 0.3
    protos = next(r for r in rows if r["method"] == "prototypes")
    assert protos["class_purity"] == 1.0 and protos["n_used"] == 6
    assert set(rows[0]) >= {"method", "n_clusters", "size", "scaling", "seed", "n_images", "n_used", "class_ari"}


def test_protocol_draws_stratified_images_per_seed() -> None:
    rows = _protocol(n_images=45)
    assert all(r["n_images"] == 45 for r in rows)
    protos = [r for r in rows if r["method"] == "prototypes"]
    assert [r["n_clusters"] for r in protos] == [6, 6]  # the model's count, fixed on all images
    with pytest.raises(ValueError, match="rows for"):
        C.cluster_protocol(np.zeros((5, 4, 4), np.uint8), {"c": np.arange(5)}, {"f": np.ones((4, 2))}, counts=(2,))


def _row(method: str, k: int, seed: int, nmi: float, size: int | None = None, scaling: str | None = None) -> dict:
    return dict(method=method, n_clusters=k, size=size, scaling=scaling, seed=seed, n_images=10, n_used=k,
                class_nmi=nmi)  # fmt: skip


def test_summary_means_and_spreads_sorted_by_count() -> None:
    rows = [_row("ours", 8, 0, 0.5), _row("ours", 8, 1, 0.7), _row("pix", 4, 0, 0.2, 16, "raw")]
    rows.append(_row("pix", 4, 1, 0.4, 16, "raw"))
    summary = C.summarise_protocol(rows)
    assert [(r["method"], r["n_clusters"]) for r in summary] == [("pix", 4), ("ours", 8)]
    assert summary[1]["class_nmi"] == pytest.approx(0.6) and summary[1]["class_nmi_std"] == pytest.approx(0.1)
    assert summary[0]["n_seeds"] == 2 and summary[0]["size"] == 16
    text = C.format_protocol_table(summary)
    assert "0.600 ± 0.100" in text and "16 px raw" in text and "class NMI" in text.splitlines()[0]
    markdown = C.format_protocol_table(summary, markdown=True).splitlines()
    assert markdown[0] == "| method | clusters | pixels | class NMI |" and markdown[1] == "|---|---:|---|---:|"
    with pytest.raises(ValueError, match="no protocol rows"):
        C.summarise_protocol([])


def test_verdicts_pair_seeds_at_equal_counts_and_say_where_a_claim_flips() -> None:
    rows = []
    for seed in (0, 1):
        rows += [_row("ours", k, seed, 0.6) for k in (16, 64)]
        rows += [_row("pix", 16, seed, 0.5, 16, "raw"), _row("pix", 64, seed, 0.7, 16, "raw")]
        rows += [_row("pix", k, seed, 0.4, 16, "unit") for k in (16, 64)]
        rows += [_row("pix", 32, seed, 0.0, 16, "raw")]  # no equal count among ours: not compared
    (v,) = C.protocol_verdicts(rows, "ours", "pix")
    assert v["verdict"] == "depends" and len(v["settings"]) == 4
    outcome = {(s["n_clusters"], s["scaling"]): s["outcome"] for s in v["settings"]}
    assert outcome == {(16, "raw"): "wins", (64, "raw"): "loses", (16, "unit"): "wins", (64, "unit"): "wins"}
    (line,) = C.describe_verdicts([v])
    assert line.startswith("class NMI: it depends.") and "below at raw pixels k = 64 (16 px)" in line
    assert "unit pixels every count (16 px)" in line and "-0.100 to +0.200" in line
    unit_only = [r for r in rows if r["scaling"] != "raw"]
    (holds,) = C.protocol_verdicts(unit_only, "ours", "pix")
    assert holds["verdict"] == "holds"
    assert C.describe_verdicts([holds])[0].startswith("class NMI: ours above pix at all 2 settings")
    (fails,) = C.protocol_verdicts(unit_only, "pix", "ours")
    assert fails["verdict"] == "fails"


def test_a_tie_on_one_seed_is_mixed_not_a_win() -> None:
    rows = [_row("ours", 8, 0, 0.6), _row("ours", 8, 1, 0.5), _row("pix", 8, 0, 0.5, 16, "raw")]
    rows.append(_row("pix", 8, 1, 0.5, 16, "raw"))
    (v,) = C.protocol_verdicts(rows, "ours", "pix")
    assert v["verdict"] == "depends" and v["settings"][0]["outcome"] == "mixed"
    assert v["settings"][0]["diff"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="equal cluster count"):
        C.protocol_verdicts([_row("ours", 8, 0, 0.6), _row("pix", 4, 0, 0.5, 16, "raw")], "ours", "pix")


def test_protocol_figure_has_a_panel_per_metric() -> None:
    summary = C.summarise_protocol(_protocol(seeds=(0,)))
    fig = V.plot_cluster_protocol(summary, ("class_nmi", "class_ari", "modality_nmi"))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "prototypes" in labels and "pixel k-means, 8 px unit" in labels and len(labels) == 7


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
