"""Does pretraining learn? Frozen-feature probes of a checkpoint against the same network at random init.

Usage: python benchmarks/pretrain_quality.py --checkpoint DIR_OR_FILE [--data-dir DIR] [--n-train 10000]

kNN (k=20, cosine) and a linear probe (L2 chosen on validation) on MedNIST's 6 classes
and on PneumoniaMNIST, with backbone features of the pretrained encoder and of a
randomly initialised copy of the same architecture. Also prints the pretraining
history's end (loss against ln K, prototype usage). Ends with one comparable line.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from medssl_lab.data.medmnist import load_medmnist
from medssl_lab.data.mednist import load_mednist
from medssl_lab.evaluate import extract_features, knn_probe, label_fraction_indices, linear_probe
from medssl_lab.pretrain import build_model, load_checkpoint, load_pretrained


def probes(encoder: torch.nn.Module, splits: tuple, size: int, task: str, shots: int = 5) -> dict[str, float]:
    """kNN and linear probes with all training labels, and a few-shot kNN (``shots`` per class, 5 draws)."""
    train, val, test = (extract_features(encoder, s, image_size=size) for s in splits)
    labels = splits[0].labels
    knn = knn_probe(train, labels, test, splits[2].labels, task)
    lin = linear_probe(train, labels, val, splits[1].labels, test, splits[2].labels, task)
    few = []
    for draw in range(5):
        rng = np.random.default_rng(draw)
        index = np.concatenate([rng.choice(np.flatnonzero(labels[:, 0] == c), shots, replace=False)
                                for c in np.unique(labels[:, 0])])
        few.append(knn_probe(train[index], labels[index], test, splits[2].labels, task, k=shots)["acc"])
    return {"knn_auc": knn["auc"], "knn_acc": knn["acc"], "linear_auc": lin["auc"], "linear_acc": lin["acc"],
            f"knn{shots}shot_acc": float(np.mean(few))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n-train", type=int, default=10000, help="MedNIST training images for the probes")
    args = parser.parse_args()

    model, config = load_pretrained(args.checkpoint)
    history = load_checkpoint(args.checkpoint if args.checkpoint.endswith(".pt") else f"{args.checkpoint}/checkpoint.pt")["history"]
    if history:
        last = history[-1]
        print(f"pretraining: {last['step']} steps, loss {last['loss_avg']:.3f} (ln K = {math.log(config.n_prototypes):.3f}), "
              f"prototype usage {last['prototype_usage']:.2f}, {last['img_per_s']:.0f} img/s")
    torch.manual_seed(1234)
    random_init = build_model(config).eval()
    mednist = load_mednist(args.data_dir, seed=0)
    train = mednist.train
    train = train.subset(label_fraction_indices(train.labels, min(1.0, args.n_train / len(train)), seed=0))
    val = mednist.val.subset(label_fraction_indices(mednist.val.labels, 0.25, seed=0))
    pneumonia = load_medmnist("pneumoniamnist", data_dir=args.data_dir)
    results = {}
    for name, encoder in (("pretrained", model), ("random_init", random_init)):
        results[name] = {
            "mednist": probes(encoder, (train, val, mednist.test), config.image_size, "multi-class"),
            "pneumoniamnist": probes(encoder, (pneumonia.train, pneumonia.val, pneumonia.test), config.image_size, "binary-class"),
        }
    for task in ("mednist", "pneumoniamnist"):
        for metric in ("knn5shot_acc", "knn_acc", "knn_auc", "linear_acc", "linear_auc"):
            p, r = results["pretrained"][task][metric], results["random_init"][task][metric]
            print(f"{task:<15} {metric:<11} pretrained {p:.4f}   random init {r:.4f}   diff {p - r:+.4f}")
    m = results
    print(f"mednist_5shot_acc={m['pretrained']['mednist']['knn5shot_acc']:.4f} "
          f"random_5shot_acc={m['random_init']['mednist']['knn5shot_acc']:.4f} "
          f"mednist_knn_acc={m['pretrained']['mednist']['knn_acc']:.4f} random_knn_acc={m['random_init']['mednist']['knn_acc']:.4f} "
          f"mednist_linear_acc={m['pretrained']['mednist']['linear_acc']:.4f} random_linear_acc={m['random_init']['mednist']['linear_acc']:.4f} "
          f"pneumonia_linear_auc={m['pretrained']['pneumoniamnist']['linear_auc']:.4f} random_pneumonia_linear_auc={m['random_init']['pneumoniamnist']['linear_auc']:.4f}")


if __name__ == "__main__":
    main()
