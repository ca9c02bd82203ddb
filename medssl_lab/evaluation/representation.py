"""Are the features learned without labels worth having? A frozen-feature benchmark that does not saturate.

Fine-tuned validation AUC on PneumoniaMNIST sits at 0.98-0.99 for every encoder, so it
cannot tell a good pretraining recipe from a poor one. This benchmark scores the frozen
backbone instead, in the low-label regimes where pretraining should matter, and always
beside two baselines of the same size: the same network at random initialisation and
the raw pixels.

* PneumoniaMNIST: kNN (k=20) and linear-probe AUC with every train label, and the AUC of
  a nearest-class-mean classifier built from 10 labelled images per class (many seeded
  draws; about the 1 % label fraction of the downstream protocol);
* MedNIST: few-shot accuracy with 1, 2, 5 and 10 labelled images per class, nearest
  class mean on cosine similarity (many seeded draws);
* MedNIST clusters: NMI and ARI of the SwAV prototype assignments against class and
  modality (k-means with as many clusters for encoders without trained prototypes).

Everything is scored on the **validation** splits by default, so recipes can be chosen on
it; ``split="test"`` scores the test splits once, at the end. :data:`SCORE_KEYS` lists the
figures whose mean is the single selection criterion, ``score``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from medssl_lab.data.medmnist import load_medmnist
from medssl_lab.data.mednist import load_mednist
from medssl_lab.data.types import ImageSet
from medssl_lab.evaluation.clusters import cluster_metrics, kmeans_assignments
from medssl_lab.evaluation.inference import extract_assignments, extract_features
from medssl_lab.evaluation.perturbations import prepare
from medssl_lab.evaluation.probes import few_shot_metric, knn_probe, linear_probe
from medssl_lab.evaluation.sampling import per_class_indices
from medssl_lab.models import SwAVModel
from medssl_lab.pretrain import PretrainConfig, build_model, load_pretrained

#: The compute curve of ``benchmarks/compute_curve.py``, shipped as package data so that an installed package
#: (Colab) has it too.
COMPUTE_CURVE = resources.files("medssl_lab") / "results" / "compute_curve.csv"
SHOTS: tuple[int, ...] = (1, 2, 5, 10)
PNEUMONIA_SHOTS = 10
#: The figures averaged into ``score``: the low-label probes, the full-label probes and the clusters.
SCORE_KEYS: tuple[str, ...] = (
    "pneumonia_knn_auc",
    "pneumonia_linear_auc",
    "pneumonia_10shot_auc",
    "mednist_fewshot_acc",
    "cluster_class_nmi",
)


@dataclass
class BenchmarkData:
    """The images the benchmark reads: labelled pools to draw from and the split to score on."""

    pneumonia_train: ImageSet
    pneumonia_query: ImageSet
    mednist_support: ImageSet  # a stratified part of MedNIST's train split, from which few-shot sets are drawn
    mednist_query: ImageSet
    split: str


def load_benchmark_data(
    data_dir: str | os.PathLike | None = None, split: str = "val", support_per_class: int = 300, seed: int = 0
) -> BenchmarkData:
    """PneumoniaMNIST (official splits) and MedNIST (seeded split); queries from ``split`` ("val" or "test")."""
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' (for choosing) or 'test' (for the final report), got {split!r}")
    pneumonia = load_medmnist("pneumoniamnist", data_dir=data_dir)
    mednist = load_mednist(data_dir, seed=seed)
    support = np.sort(per_class_indices(mednist.train.labels[:, 0], support_per_class, np.random.default_rng(seed)))
    return BenchmarkData(
        pneumonia.train, getattr(pneumonia, split), mednist.train.subset(support), getattr(mednist, split), split
    )


Featurizer = Callable[[ImageSet], np.ndarray]


def pixel_featurizer(size: int) -> Featurizer:
    """Raw pixels at ``size`` px, normalised as the networks see them: the baseline any feature must beat."""
    return lambda images: prepare(torch.from_numpy(np.ascontiguousarray(images.images)), size).flatten(1).numpy()


def encoder_featurizer(encoder: torch.nn.Module, size: int, device: str = "auto") -> Featurizer:
    """Frozen backbone features at ``size`` px."""
    return lambda images: extract_features(encoder, images, image_size=size, device=device)


def score_features(
    featurize: Featurizer,
    data: BenchmarkData,
    n_clusters: int,
    assign: Callable[[ImageSet], np.ndarray] | None = None,
    draws: int = 100,
) -> dict[str, float]:
    """Every figure of the benchmark for one encoder (``assign``: its own cluster assignment, else k-means)."""
    p_train, p_query = featurize(data.pneumonia_train), featurize(data.pneumonia_query)
    m_support, m_query = featurize(data.mednist_support), featurize(data.mednist_query)
    py_train, py_query = data.pneumonia_train.labels[:, 0], data.pneumonia_query.labels[:, 0]
    # The probe's L2 strength is chosen on a held-out fifth of the train split, so the query split stays unseen.
    held_out = np.random.default_rng(0).random(len(py_train)) < 0.2
    out: dict[str, float] = {
        "pneumonia_knn_auc": knn_probe(p_train, py_train, p_query, py_query, "binary-class")["auc"],
        "pneumonia_linear_auc": linear_probe(
            p_train[~held_out],
            py_train[~held_out],
            p_train[held_out],
            py_train[held_out],
            p_query,
            py_query,
            "binary-class",
        )["auc"],
    }
    out["pneumonia_10shot_auc"], out["pneumonia_10shot_auc_std"] = few_shot_metric(
        p_train, py_train, p_query, py_query, "binary-class", "auc", PNEUMONIA_SHOTS, draws
    )
    my_support, my_query = data.mednist_support.labels[:, 0], data.mednist_query.labels[:, 0]
    for shots in SHOTS:
        out[f"mednist_{shots}shot_acc"], out[f"mednist_{shots}shot_acc_std"] = few_shot_metric(
            m_support, my_support, m_query, my_query, "multi-class", "acc", shots, draws
        )
    out["mednist_fewshot_acc"] = float(np.mean([out[f"mednist_{s}shot_acc"] for s in SHOTS]))
    clusters = assign(data.mednist_query) if assign is not None else kmeans_assignments(m_query, n_clusters)
    for name, truth in (("class", my_query), ("modality", data.mednist_query.modality)):
        metrics = cluster_metrics(clusters, truth)
        out[f"cluster_{name}_nmi"], out[f"cluster_{name}_ari"] = metrics["nmi"], metrics["ari"]
    out["score"] = float(np.mean([out[k] for k in SCORE_KEYS]))
    return out


def prototype_assigner(model: SwAVModel, size: int, device: str = "auto") -> Callable[[ImageSet], np.ndarray]:
    """Each image's SwAV prototype (the argmax of its prototype scores)."""
    return lambda images: extract_assignments(model, images, image_size=size, device=device)[1].argmax(1)


def score_checkpoint(
    checkpoint: str | os.PathLike, data: BenchmarkData, device: str = "auto", draws: int = 100
) -> dict[str, float]:
    """Every figure of the benchmark for a pretraining checkpoint (file or run folder)."""
    pre = load_pretrained(Path(checkpoint), device)
    model, config = pre.model, pre.config
    own_clusters = prototype_assigner(model, config.image_size, device) if config.method == "swav" else None
    return score_features(
        encoder_featurizer(model, config.image_size, device), data, config.n_prototypes, own_clusters, draws
    )


def score_baselines(
    config: PretrainConfig, data: BenchmarkData, device: str = "auto", draws: int = 100
) -> dict[str, dict[str, float]]:
    """The figures of what any checkpoint of ``config`` must beat: its network at random init, and the raw pixels."""
    torch.manual_seed(1234)
    random_init = build_model(config).eval()
    size, k = config.image_size, config.n_prototypes
    return {
        "random_init": score_features(encoder_featurizer(random_init, size, device), data, k, None, draws),
        "raw_pixels": score_features(pixel_featurizer(size), data, k, None, draws),
    }


def representation_benchmark(
    checkpoint: str | os.PathLike, data: BenchmarkData, device: str = "auto", draws: int = 100
) -> dict[str, dict[str, float]]:
    """``{"pretrained": ..., "random_init": ..., "raw_pixels": ...}`` for a checkpoint.

    Ready for :func:`format_table`.
    """
    config = load_pretrained(Path(checkpoint), "cpu").config
    return {
        "pretrained": score_checkpoint(checkpoint, data, device, draws),
        **score_baselines(config, data, device, draws),
    }


def format_table(rows: dict[str, dict[str, float]], split: str) -> str:
    """A Markdown table: one column per encoder, one row per figure (few-shot spreads over draws in brackets)."""
    names = list(rows)
    keys = [k for k in next(iter(rows.values())) if not k.endswith("_std")]
    lines = [f"| figure ({split} split) | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key in keys:
        cells = []
        for name in names:
            value, spread = rows[name][key], rows[name].get(f"{key}_std")
            cells.append(f"{value:.3f}" + (f" ± {spread:.3f}" if spread is not None and math.isfinite(spread) else ""))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_compute_curve(
    path: str | os.PathLike | None = None,
) -> tuple[list[dict], dict[str, dict[str, float]], list[dict]] | None:
    """The budgets, baselines and downstream gains of a compute-curve CSV (default: the shipped one).

    In the form :func:`~medssl_lab.viz.plot_compute_curve` takes them. Returns None when the file is not there.
    """
    import csv

    source = COMPUTE_CURVE if path is None else Path(path)
    if not source.is_file():
        return None
    with source.open() as handle:
        rows = list(csv.DictReader(handle))
    points, baselines, gains = [], {}, []
    for row in rows:
        values = {
            k: float(v) for k, v in row.items() if k not in ("label", "variant", "series") and v not in ("", None)
        }
        if "cpu_minutes" not in values:
            baselines[row["label"]] = values
            continue
        series = {"series": row["series"]} if row.get("series") else {}
        points.append({"label": row["label"], **series, **values})
        for key in values:
            if key.startswith("gain_") and not key.endswith("_std"):
                gains.append(
                    {
                        "cpu_minutes": values["cpu_minutes"],
                        "fraction": float(key[len("gain_") :]),
                        "gain_test_auc": values[key],
                        "gain_test_auc_std": values.get(f"{key}_std", 0.0),
                        **series,
                    }
                )
    return points, baselines, gains
