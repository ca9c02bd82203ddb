"""What the prototypes learned without labels: assignments, usage, agreement with class and modality.

SwAV learns ``K`` prototypes and softly assigns every image to them. After pretraining, the hard assignment (the
argmax of the prototype scores) is a clustering of the data learned without labels. This module answers:

* how many prototypes are used, and how evenly (:func:`usage_summary`)? A few prototypes taking everything is
  collapse;
* do the clusters follow labels nobody showed the network, the MedNIST class or the modality
  (:func:`cluster_metrics`, :func:`cluster_table`), better than k-means on the raw pixels (:func:`pixel_kmeans`)?
* what does each prototype stand for (:func:`nearest_to_prototypes`)?

Every function takes plain arrays (scores, embeddings, labels), so it works with any feature extractor; the
figures are in :mod:`medssl_lab.viz`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

# --------------------------------------------------------------------------- helpers


def as_numpy(x: Any) -> np.ndarray:
    """Arrays, lists and (CPU or device) torch tensors as numpy, without importing torch here."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def label_vector(labels: Any, n: int, name: str = "labels") -> np.ndarray:
    """Labels as a flat (N,) vector: accepts (N,) or (N, 1), numbers or strings."""
    arr = as_numpy(labels)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a flat (N,) vector or (N, 1), got shape {arr.shape}; "
            "for multi-label data pick one label column"
        )
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries for {n} assignments/points; pass one per sample")
    return arr


def encode_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique values, integer codes) of any labels, strings or objects included."""
    if labels.dtype == object:
        labels = labels.astype(str)
    uniques, codes = np.unique(labels, return_inverse=True)
    return uniques, codes.reshape(-1)


def _as_assignments(assignments: Any) -> np.ndarray:
    arr = as_numpy(assignments)
    if arr.ndim != 1:
        raise ValueError(
            f"assignments must be a (N,) vector of cluster ids, got shape {arr.shape}; "
            "turn (N, K) prototype scores into ids with assign_prototypes(scores)"
        )
    return arr


# --------------------------------------------------------------------------- assignments and usage


def assign_prototypes(scores: Any) -> np.ndarray:
    """Hard cluster ids ``(N,)``: the best-scoring prototype of each sample.

    Pass the raw prototype scores (or the softmax of them), not Sinkhorn codes: the codes
    are spread over prototypes by construction and would hide collapse.
    """
    arr = as_numpy(scores)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"scores must be an (N, K) matrix of prototype scores, got shape {arr.shape}")
    return arr.argmax(axis=1).astype(np.int64)


def prototype_usage_counts(assignments: Any, n_prototypes: int) -> np.ndarray:
    """Samples assigned to each of the ``n_prototypes`` prototypes, zeros included."""
    a = _as_assignments(assignments).astype(np.int64)
    if len(a) and (a.min() < 0 or a.max() >= n_prototypes):
        raise ValueError(f"assignments must lie in 0..{n_prototypes - 1}, got {a.min()}..{a.max()}")
    return np.bincount(a, minlength=n_prototypes)


def usage_summary(assignments: Any, n_prototypes: int) -> dict[str, float]:
    """How many prototypes are used and how evenly: the numbers that reveal collapse.

    Returns a dict with ``n_prototypes``, ``n_used`` (prototypes with at least one
    sample), ``used_fraction``, ``entropy`` (of the usage distribution, nats),
    ``max_entropy`` (``ln K``), ``perplexity`` (``exp(entropy)``: the number of equally
    used prototypes that would give the same entropy) and ``largest_share`` (fraction of
    samples in the biggest cluster). Collapse shows as ``perplexity`` near 1 and
    ``largest_share`` near 1.
    """
    counts = prototype_usage_counts(assignments, n_prototypes)
    total = counts.sum()
    if total == 0:
        raise ValueError("usage_summary got no assignments")
    p = counts[counts > 0] / total
    entropy = float(-(p * np.log(p)).sum())
    return {
        "n_prototypes": int(n_prototypes),
        "n_used": int((counts > 0).sum()),
        "used_fraction": float((counts > 0).mean()),
        "entropy": entropy,
        "max_entropy": float(math.log(n_prototypes)),
        "perplexity": float(math.exp(entropy)),
        "largest_share": float(counts.max() / total),
    }


# --------------------------------------------------------------------------- metrics


def purity(assignments: Any, labels: Any) -> float:
    """Sum over clusters of the majority label count, divided by ``N``.

    Easy to read (the accuracy of labelling each cluster by its majority) but it rises
    with the number of clusters (one sample per cluster gives 1), so read it with NMI/ARI.
    """
    a = _as_assignments(assignments)
    y = label_vector(labels, len(a))
    if len(a) == 0:
        raise ValueError("purity of an empty clustering is undefined")
    _, ac = encode_labels(a)
    _, yc = encode_labels(y)
    table = np.zeros((ac.max() + 1, yc.max() + 1), dtype=np.int64)
    np.add.at(table, (ac, yc), 1)
    return float(table.max(axis=1).sum() / len(a))


def cluster_metrics(assignments: Any, labels: Any) -> dict[str, float]:
    """Agreement of a clustering with labels it never saw: purity, NMI, ARI and clusters used.

    ``labels`` may be integers or strings (e.g. the MedNIST class or the modality).
    NMI (normalised mutual information, 0..1) and ARI (adjusted Rand index, about 0 for
    chance, 1 for identical partitions) come from scikit-learn and, unlike purity, do not
    reward using many clusters.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    a = _as_assignments(assignments)
    y = label_vector(labels, len(a))
    _, yc = encode_labels(y)
    _, ac = encode_labels(a)
    return {
        "purity": purity(ac, yc),
        "nmi": float(normalized_mutual_info_score(yc, ac)),
        "ari": float(adjusted_rand_score(yc, ac)),
        "n_clusters_used": int(len(np.unique(ac))),
    }


def compare_cluster_metrics(assignments: Any, labelings: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """:func:`cluster_metrics` against several labelings at once, e.g. ``{"class": y, "modality": m}``."""
    return {name: cluster_metrics(assignments, labels) for name, labels in labelings.items()}


class ClusterRow(NamedTuple):
    """One line of :func:`cluster_table`."""

    cluster: int | str
    size: int
    majority: str
    purity: float


def cluster_table(assignments: Any, labels: Any, max_rows: int | None = None) -> list[ClusterRow]:
    """One row per non-empty cluster, largest first: id, size, majority label, its share.

    The share (purity of that cluster) shows which prototypes are "about" one class or
    modality and which mix them.
    """
    a = _as_assignments(assignments)
    y = label_vector(labels, len(a))
    names, yc = encode_labels(y)
    clusters, ac, sizes = np.unique(a, return_inverse=True, return_counts=True)
    table = np.zeros((len(clusters), len(names)), dtype=np.int64)
    np.add.at(table, (ac.reshape(-1), yc), 1)
    order = np.lexsort((clusters, -sizes))  # largest first, ties by cluster id
    rows = [
        ClusterRow(
            cluster=int(clusters[i]) if np.issubdtype(clusters.dtype, np.integer) else clusters[i],
            size=int(sizes[i]),
            majority=str(names[table[i].argmax()]),
            purity=float(table[i].max() / sizes[i]),
        )
        for i in order
    ]
    return rows[:max_rows] if max_rows is not None else rows


def format_cluster_table(rows: Sequence[ClusterRow], max_rows: int = 20) -> str:
    """The rows as aligned text, capped at ``max_rows`` lines (notebook output stays short)."""
    lines = [f"{'cluster':>7}  {'size':>6}  {'purity':>6}  majority"]
    for r in rows[:max_rows]:
        lines.append(f"{r.cluster!s:>7}  {r.size:>6d}  {r.purity:>6.2f}  {r.majority}")
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows} more clusters")
    return "\n".join(lines)


# --------------------------------------------------------------------------- prototypes


def _unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (rows, dim) matrix, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def nearest_to_prototypes(
    embeddings: Any,
    prototypes: Any,
    k: int = 8,
    top_m: int | None = None,
    min_count: int = 1,
) -> dict[int, np.ndarray]:
    """The ``k`` samples closest (cosine) to each used prototype: what that prototype stands for.

    A prototype is kept if at least ``min_count`` samples have it as their best match
    (an unused prototype has no images of its own and its neighbours mislead). With
    ``top_m``, only the ``top_m`` most used prototypes are kept.

    Args:
        embeddings: ``(N, d)`` embeddings (normalised here, so raw ones are fine).
        prototypes: ``(K, d)`` prototype vectors, e.g. ``model.prototypes.weight``.
        k: neighbours per prototype (fewer if ``N < k``).
        top_m: keep only the most used prototypes.
        min_count: minimum number of assigned samples for a prototype to be kept.

    Returns:
        ``{prototype id: (k,) sample indices, most similar first}``, ordered by usage,
        most used first.
    """
    z = _unit_rows(as_numpy(embeddings), "embeddings")
    c = _unit_rows(as_numpy(prototypes), "prototypes")
    if z.shape[1] != c.shape[1]:
        raise ValueError(
            f"embeddings have dim {z.shape[1]} but prototypes have dim {c.shape[1]}; use the head's output"
        )
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    sims = z @ c.T  # (N, K); 60k x 300 floats is 72 MB, fine for this package's sizes
    counts = np.bincount(sims.argmax(axis=1), minlength=len(c))
    order = np.lexsort((np.arange(len(c)), -counts))
    keep = [int(j) for j in order if counts[j] >= min_count]
    if top_m is not None:
        keep = keep[:top_m]
    k = min(k, len(z))
    out: dict[int, np.ndarray] = {}
    for j in keep:
        col = sims[:, j]
        part = np.argpartition(-col, k - 1)[:k] if k < len(z) else np.arange(len(z))
        out[j] = part[np.argsort(-col[part], kind="stable")].astype(np.int64)
    return out


# --------------------------------------------------------------------------- k-means baselines


#: How raw pixels are scaled for k-means. ``"raw"``: the pixels in [0, 1], so Euclidean k-means sees the
#: brightness of an image, which alone tells many MedNIST classes apart. ``"unit"``: centred (minus 0.5) and
#: each image scaled to length 1, so k-means compares directions (cosine), as it does for every feature here
#: and as the representation benchmark (:mod:`medssl_lab.evaluation.representation`) scores its pixel baseline.
PIXEL_SCALINGS: tuple[str, ...] = ("raw", "unit")


def _kmeans(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The one k-means of this module (3 restarts, ``seed`` for the initial centres), so every baseline agrees."""
    from sklearn.cluster import KMeans

    if not 1 <= k <= len(x):
        raise ValueError(f"k-means needs 1 <= k <= the number of points ({len(x)}), got k={k}")
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(x).astype(np.int64)


def kmeans_assignments(features: Any, k: int, seed: int = 0) -> np.ndarray:
    """k-means clusters of L2-normalised features (the clustering of encoders without trained prototypes)."""
    return _kmeans(_unit_rows(as_numpy(features), "features"), k, seed)


def pixel_vectors(images: Any, size: int, scaling: str = "raw") -> np.ndarray:
    """Each image as one float32 row of its pixels at ``size`` px, scaled as :data:`PIXEL_SCALINGS` says."""
    from medssl_lab.data.resize import resize_uint8

    if scaling not in PIXEL_SCALINGS:
        raise ValueError(f"scaling must be one of {PIXEL_SCALINGS}, got {scaling!r}")
    imgs = np.asarray(images)
    if imgs.ndim != 3:
        raise ValueError(f"images must be (N, H, W) uint8, got shape {imgs.shape}")
    pixels = resize_uint8(imgs, size).reshape(len(imgs), -1).astype(np.float32) / 255.0
    return pixels if scaling == "raw" else _unit_rows(pixels - 0.5, "pixels")


def pixel_kmeans(images: Any, k: int, size: int = 16, seed: int = 0, scaling: str = "raw") -> np.ndarray:
    """k-means on the raw pixels at ``size`` px (``scaling``: :data:`PIXEL_SCALINGS`): what the prototypes must beat."""
    return _kmeans(pixel_vectors(images, size, scaling), k, seed)


# --------------------------------------------------------------------------- the comparison protocol

#: The numbers each clustering gets against each labelling, as ``{labelling}_{metric}`` columns.
PROTOCOL_METRICS: tuple[str, ...] = ("purity", "nmi", "ari")


def stratified_subset(labels: Any, n: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n`` samples drawn without replacement, each label keeping its share (largest remainders).

    Used for a per-seed draw of the images, so that the spread over seeds includes which images were clustered.
    """
    arr = as_numpy(labels)
    _, codes = encode_labels(label_vector(arr, len(arr)))
    if not 1 <= n <= len(codes):
        raise ValueError(f"cannot draw {n} of {len(codes)} samples")
    counts = np.bincount(codes)
    exact = counts * n / len(codes)
    take = np.floor(exact).astype(np.int64)
    take[np.argsort(-(exact - take), kind="stable")[: n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(codes == c), size=t, replace=False) for c, t in enumerate(take)]
    return np.sort(np.concatenate(picked)).astype(np.int64)


_NO_PIXELS: dict[str, Any] = {"size": None, "scaling": None}  # the settings of a clustering that is not of pixels


def _protocol_row(
    method: str, assignments: np.ndarray, labelings: Mapping[str, np.ndarray], **settings: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {"method": method, **settings, "n_used": int(len(np.unique(assignments)))}
    for name, labels in labelings.items():
        metrics = cluster_metrics(assignments, labels)
        row.update({f"{name}_{key}": metrics[key] for key in PROTOCOL_METRICS})
    return row


def cluster_protocol(
    images: Any,
    labelings: Mapping[str, Any],
    features: Mapping[str, Any],
    prototypes: Any = None,
    counts: Sequence[int] = (16, 32, 64),
    sizes: Sequence[int] = (16, 32),
    seeds: Sequence[int] = (0, 1, 2),
    scalings: Sequence[str] = PIXEL_SCALINGS,
    n_images: int | None = None,
) -> list[dict[str, Any]]:
    """One table of every clustering the course compares, one row per method, cluster count, pixel setting and seed.

    A claim such as "the prototypes beat raw-pixel k-means" can flip with the baseline's cluster count, its
    resolution or how its pixels are scaled; this runs them all, with seeds, so that a claim is read off every
    setting at once (:func:`protocol_verdicts`). The benchmark ``benchmarks/cluster_protocol.py`` and notebook 03
    both call it.

    Args:
        images: ``(N, H, W)`` uint8 images, for raw-pixel k-means at each of ``sizes`` and ``scalings``.
        labelings: labels the clusterings never saw, e.g. ``{"class": ..., "modality": ...}``; the first one
            stratifies the per-seed draw of ``n_images``.
        features: ``{name: (N, D) features}``, e.g. a pretrained and a random-init backbone's; each is clustered
            by :func:`kmeans_assignments` at every count (method ``"{name} k-means"``).
        prototypes: the model's own ``(N,)`` prototype assignments (method ``"prototypes"``), or None. Their count
            is the model's: the prototypes used on all ``N`` images, and every k-means also runs at that count
            (added to ``counts``), so that the prototypes meet each baseline at an equal count too.
        counts: k-means cluster counts.
        sizes: pixel resolutions of raw-pixel k-means.
        seeds: each seed sets the k-means initialisation and, with ``n_images``, which images are clustered.
        scalings: pixel scalings (:data:`PIXEL_SCALINGS`).
        n_images: with a number, each seed clusters its own stratified draw of that many images; None: all.

    Returns:
        Rows with ``method``, ``n_clusters`` (asked for; the prototypes': their count), ``size`` and ``scaling``
        (None but for pixels), ``seed``, ``n_images``, ``n_used`` (clusters not empty) and
        ``{labelling}_{purity, nmi, ari}``. :func:`summarise_protocol` gives mean and spread over seeds.
    """
    n = len(images)
    labels = {name: label_vector(y, n, name) for name, y in labelings.items()}
    if not labels:
        raise ValueError("cluster_protocol needs at least one labelling, e.g. {'class': labels}")
    unit = {name: _unit_rows(as_numpy(x), f"features[{name!r}]") for name, x in features.items()}
    for name, x in unit.items():
        if len(x) != n:
            raise ValueError(f"features[{name!r}] has {len(x)} rows for {n} images")
    own = None if prototypes is None else _as_assignments(label_vector(prototypes, n, "prototypes"))
    n_own = 0 if own is None else int(len(np.unique(own)))
    ks = sorted({int(k) for k in counts} | ({n_own} if n_own else set()))
    pixels = {(s, sc): pixel_vectors(images, s, sc) for s in sizes for sc in scalings}
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        idx = np.arange(n) if n_images is None else stratified_subset(next(iter(labels.values())), n_images, seed)
        truth = {name: y[idx] for name, y in labels.items()}
        common = dict(seed=int(seed), n_images=len(idx))
        if own is not None:
            rows.append(_protocol_row("prototypes", own[idx], truth, n_clusters=n_own, **_NO_PIXELS, **common))
        for k in ks:
            for name, x in unit.items():
                found = _kmeans(x[idx], k, seed)
                rows.append(_protocol_row(f"{name} k-means", found, truth, n_clusters=k, **_NO_PIXELS, **common))
            for (s, sc), x in pixels.items():
                found = _kmeans(x[idx], k, seed)
                rows.append(_protocol_row("pixel k-means", found, truth, n_clusters=k, size=s, scaling=sc, **common))
    return rows


def _metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [key for key in rows[0] if key.rsplit("_", 1)[-1] in PROTOCOL_METRICS]


def _setting(row: Mapping[str, Any]) -> tuple[str, int, int | None, str | None]:
    return row["method"], row["n_clusters"], row["size"], row["scaling"]


def summarise_protocol(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread (``{column}_std``, over seeds, ddof 0) of every metric, one row per method, count and pixels.

    Sorted by cluster count, so that clusterings of an equal count, the only ones whose purity compares, stand
    together; methods keep the order of ``rows``.
    """
    if not rows:
        raise ValueError("no protocol rows to summarise")
    columns = _metric_columns(rows)
    groups: dict[tuple[str, int, int | None, str | None], list[Mapping[str, Any]]] = {}
    for member in rows:
        groups.setdefault(_setting(member), []).append(member)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    scalings: dict[str | None, int] = {None: -1, **{s: i for i, s in enumerate(PIXEL_SCALINGS)}}
    order = sorted(groups, key=lambda g: (g[1], methods.index(g[0]), g[2] or 0, scalings.get(g[3], 99)))
    out = []
    for key in order:
        members = groups[key]
        row: dict[str, Any] = dict(zip(("method", "n_clusters", "size", "scaling"), key))
        row.update(n_seeds=len(members), n_images=int(np.mean([r["n_images"] for r in members])))
        row["n_used"] = float(np.mean([r["n_used"] for r in members]))
        for column in columns:
            values = np.array([r[column] for r in members], dtype=np.float64)
            row[column], row[f"{column}_std"] = float(values.mean()), float(values.std())
        out.append(row)
    return out


def _paired_outcome(pairs: np.ndarray) -> dict[str, Any]:
    """``(seeds, 2)`` values of a method and its baseline: who is ahead on every seed, and by how much."""
    diffs = pairs[:, 0] - pairs[:, 1]
    outcome = "wins" if diffs.min() > 0 else "loses" if diffs.max() < 0 else "mixed"
    return dict(
        outcome=outcome,
        diff=float(diffs.mean()),
        diff_std=float(diffs.std()),
        method_mean=float(pairs[:, 0].mean()),
        baseline_mean=float(pairs[:, 1].mean()),
    )


def protocol_verdicts(
    rows: Sequence[Mapping[str, Any]],
    method: str = "pretrained k-means",
    baseline: str = "pixel k-means",
    columns: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Per metric, does ``method`` beat ``baseline`` at every setting of the baseline, seed by seed?

    Each baseline setting (cluster count, pixel size, scaling) is met at an equal cluster count (the prototypes
    only at theirs) and paired by seed: ``"wins"`` when ``method`` is higher on every seed, ``"loses"`` when lower
    on every seed, else ``"mixed"``. The verdict is ``"holds"`` (wins everywhere), ``"fails"`` (loses everywhere)
    or ``"depends"``: a claim that is true only at some settings is not yet a result, and this says where it is.

    Returns:
        One dict per metric column: ``column``, ``method``, ``baseline``, ``verdict`` and ``settings`` (one dict
        per compared setting: ``n_clusters``, ``size``, ``scaling``, ``outcome``, ``method_mean``,
        ``baseline_mean``, ``diff``: the mean over seeds of method minus baseline, ``diff_std``).
    """
    ours = {(r["n_clusters"], r["seed"]): r for r in rows if r["method"] == method}
    theirs: dict[tuple[int, int | None, str | None], dict[int, Mapping[str, Any]]] = {}
    for r in rows:
        if r["method"] == baseline and any(k == r["n_clusters"] for k, _ in ours):
            theirs.setdefault(_setting(r)[1:], {})[r["seed"]] = r
    if not theirs:
        raise ValueError(f"no rows of {method!r} and {baseline!r} at an equal cluster count")
    out = []
    for column in columns or _metric_columns(rows):
        settings = []
        for (k, size, scaling), by_seed in theirs.items():
            pairs = np.array([(ours[k, s][column], b[column]) for s, b in by_seed.items() if (k, s) in ours])
            settings.append(dict(n_clusters=k, size=size, scaling=scaling, **_paired_outcome(pairs)))
        outcomes = {s["outcome"] for s in settings}
        verdict = "holds" if outcomes == {"wins"} else "fails" if outcomes == {"loses"} else "depends"
        out.append(dict(column=column, method=method, baseline=baseline, verdict=verdict, settings=settings))
    return out


def _metric_name(column: str) -> str:
    label, metric = column.rsplit("_", 1)
    return f"{label} {metric.upper() if metric in ('nmi', 'ari') else metric}"


def _where(chosen: Sequence[Mapping[str, Any]], compared: Sequence[Mapping[str, Any]]) -> str:
    """Some of the compared settings in few words, per pixel scaling, e.g. "raw pixels: k = 32, 64 (16, 32 px)"."""
    parts = []
    for scaling in dict.fromkeys(s["scaling"] for s in chosen):
        mine = [s for s in chosen if s["scaling"] == scaling]
        by_k: dict[int, list[str]] = {}
        for s in mine:
            by_k.setdefault(s["n_clusters"], []).append(str(s["size"]) if s["size"] is not None else "")
        sizes = sorted({s["size"] for s in mine if s["size"] is not None})
        if len(mine) == sum(s["scaling"] == scaling for s in compared) and len(mine) > 1:  # all of this scaling
            text = "every count" if len(by_k) > 1 else f"k = {next(iter(by_k))}"
            text += (", every size" if len(sizes) > 1 else f" ({sizes[0]} px)") if sizes else ""
        elif len({tuple(v) for v in by_k.values()}) == 1:  # the same sizes at every count
            text = "k = " + ", ".join(str(k) for k in by_k) + (f" ({', '.join(map(str, sizes))} px)" if sizes else "")
        else:
            text = ", ".join(f"k = {k} ({', '.join(v)} px)" for k, v in by_k.items())
        parts.append(f"{scaling} pixels {text}" if scaling else text)
    return " and ".join(parts)


def describe_verdicts(verdicts: Sequence[Mapping[str, Any]]) -> list[str]:
    """One sentence per metric saying what holds across the settings and what does not, with the margins.

    Generated from :func:`protocol_verdicts`, so that a notebook or a report states exactly what its table shows.
    """
    lines = []
    for v in verdicts:
        settings, name = v["settings"], _metric_name(v["column"])
        lo, hi = min(s["diff"] for s in settings), max(s["diff"] for s in settings)
        margin = f"(mean difference {lo:+.3f} to {hi:+.3f})"
        if v["verdict"] != "depends":
            word = "above" if v["verdict"] == "holds" else "below"
            lines.append(
                f"{name}: {v['method']} {word} {v['baseline']} at all {len(settings)} settings, seed by seed {margin}."
            )
            continue
        parts = [
            f"{word} at {_where([s for s in settings if s['outcome'] == outcome], settings)}"
            for outcome, word in (("wins", "above"), ("loses", "below"), ("mixed", "mixed over seeds"))
            if any(s["outcome"] == outcome for s in settings)
        ]
        lines.append(f"{name}: it depends. {v['method']} vs {v['baseline']}: {'; '.join(parts)} {margin}.")
    return lines


def format_protocol_table(
    summary: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, markdown: bool = False
) -> str:
    """:func:`summarise_protocol` as text (aligned, for a notebook) or Markdown: mean ± spread over seeds."""
    columns = list(columns or _metric_columns(summary))
    head = ["method", "clusters", "pixels", *(_metric_name(c) for c in columns)]
    body = []
    for r in summary:
        pixels = f"{r['size']} px {r['scaling']}" if r["size"] is not None else ""
        cells = [f"{r[c]:.3f} ± {r[f'{c}_std']:.3f}" for c in columns]
        body.append([r["method"], str(r["n_clusters"]), pixels, *cells])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|---|---:|---|" + "---:|" * len(columns)]
        return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i in (0, 2) else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
        for line in [head, *body]
    )
