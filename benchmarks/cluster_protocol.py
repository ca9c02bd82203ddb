"""The cluster comparison under one protocol: the shipped encoder's prototypes against k-means, across counts,
pixel resolutions, pixel scalings and seeds.

Usage:
    python benchmarks/cluster_protocol.py --data-dir DIR [--seeds 0 1 2 3 4] [--counts 16 32 64] [--sizes 16 32]
        [--scalings raw unit] [--images N] [--checkpoint PATH] [--out benchmarks/results/cluster_protocol]

Runs :func:`medssl_lab.evaluation.clusters.cluster_protocol`, the function notebook 03 calls, on the MedNIST test
split (the seeded split of notebook 00; all of it, or with ``--images N`` a stratified draw of N per seed). The
clusterings: the encoder's own prototype assignments (their count is the model's: the prototypes it uses on these
images), k-means on its backbone features and on those of the same network at random initialisation (weights of
seed 0), and k-means on the raw pixels at each resolution, in [0, 1] ("raw") and centred at unit length ("unit",
as the representation benchmark's pixel baseline); every k-means at each count and at the prototypes' count, once
per seed (the seed sets the k-means start and, with ``--images``, the draw). Each is scored against the class and
the modality (purity, NMI, ARI).

Writes ``OUT.csv`` (one row per method, count, resolution, scaling and seed), ``OUT.md`` (the command, date,
machine, the mean ± std table and what holds across the settings and what does not, seed by seed) and ``OUT.png``
(NMI and ARI against the count).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medssl_lab.data.mednist import load_mednist
from medssl_lab.evaluation.clusters import (
    PIXEL_SCALINGS,
    cluster_protocol,
    describe_verdicts,
    format_protocol_table,
    protocol_verdicts,
    summarise_protocol,
)
from medssl_lab.evaluation.inference import extract_assignments, extract_features
from medssl_lab.pretrain import load_pretrained, shipped_encoder

OUT = Path(__file__).parent / "results" / "cluster_protocol"

#: The claims the report judges: (method, baseline, only the pixels of this scaling or None for all).
CLAIMS = (
    ("prototypes", "pixel k-means", "raw"),
    ("prototypes", "pixel k-means", "unit"),
    ("pretrained k-means", "pixel k-means", "raw"),
    ("pretrained k-means", "pixel k-means", "unit"),
    ("pretrained k-means", "random init k-means", None),
)
COLUMNS = ("class_purity", "class_nmi", "class_ari", "modality_purity", "modality_nmi", "modality_ari")


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    """The protocol's rows on the MedNIST test split, and one line on the encoder and the images."""
    checkpoint = args.checkpoint or shipped_encoder("cpu")
    if checkpoint is None:
        raise SystemExit("no --checkpoint given and the package ships no cpu encoder")
    pre = load_pretrained(checkpoint, "cpu")
    test = load_mednist(args.data_dir, seed=0).test
    size = pre.config.image_size
    features = {
        "pretrained": extract_features(pre.model, test, image_size=size, device="cpu"),
        "random init": extract_features(pre.random_init(0), test, image_size=size, device="cpu"),
    }
    prototypes = extract_assignments(pre.model, test, image_size=size, device="cpu")[1].argmax(1)
    labelings = {"class": np.asarray(test.class_names, dtype=object)[test.targets], "modality": test.modality}
    rows = cluster_protocol(
        test.images, labelings, features, prototypes, args.counts, args.sizes, args.seeds, args.scalings, args.images
    )
    drawn = "all of them" if args.images is None else f"a stratified draw of {args.images} per seed"
    about = (
        f"Encoder: {pre.describe()} ({Path(checkpoint).name}, {pre.config.n_prototypes} prototypes). "
        f"Images: the MedNIST test split ({len(test)} images), {drawn}."
    )
    return rows, about


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: "" if v is None else round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
            )


def verdict_matrix(verdicts: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """Markdown: one row per metric, one column per claim, each cell holds / fails / depends with the margins."""
    names = list(verdicts)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for i, column in enumerate(COLUMNS):
        cells = []
        for name in names:
            v = verdicts[name][i]
            diffs = [s["diff"] for s in v["settings"]]
            wins = sum(s["outcome"] == "wins" for s in v["settings"])
            cells.append(f"**{v['verdict']}** ({wins}/{len(diffs)} won; {min(diffs):+.3f} to {max(diffs):+.3f})")
        lines.append(f"| {column.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def judge(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The verdicts of every claim of :data:`CLAIMS`, by name."""
    out = {}
    for method, baseline, scaling in CLAIMS:
        kept = [r for r in rows if r["method"] != baseline or scaling is None or r["scaling"] == scaling]
        if any(r["method"] == baseline for r in kept):
            name = f"{method} vs {baseline}" + (f" ({scaling} pixels)" if scaling else "")
            out[name] = protocol_verdicts(kept, method, baseline, COLUMNS)
    return out


def in_short(verdicts: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """One bullet per claim: the metrics on which it holds, fails or depends."""
    lines = []
    for name, per_metric in verdicts.items():
        parts = []
        for verdict in ("holds", "fails", "depends"):
            metrics = [v["column"].replace("_", " ") for v in per_metric if v["verdict"] == verdict]
            if metrics:
                parts.append(f"{verdict} for {', '.join(metrics)}")
        lines.append(f"- {name}: " + "; ".join(parts) + ".")
    return "\n".join(lines)


def report(rows: Sequence[Mapping[str, Any]], about: str, seconds: float, threads: int, load: float) -> str:
    verdicts = judge(rows)
    overall = [protocol_verdicts(rows, m, b, COLUMNS) for m, b in (CLAIMS[0][:2], CLAIMS[2][:2], CLAIMS[4][:2])]
    argv = [a if not os.path.isabs(a) else Path(a).name.upper() for a in sys.argv]  # no folder of this machine
    command = "OMP_NUM_THREADS=1 python " + " ".join(shlex.quote(a) for a in argv)
    machine = (
        f"{platform.platform()}, {os.cpu_count()} CPUs seen, {threads} torch thread(s), Python "
        f"{platform.python_version()}, torch {torch.__version__}; {seconds / 60:.1f} wall minutes, "
        f"{seconds / 60 * threads:.1f} CPU-minutes (wall x threads), load average {load:.1f} at the start"
    )
    sentences = "\n".join(f"- {line}" for v in overall for line in describe_verdicts(v))
    return f"""# Cluster comparison protocol

`{command}` on {date.today().isoformat()}.

{about} Machine: {machine}.

Mean ± std over seeds {sorted({r["seed"] for r in rows})} (std with ddof 0). Every k-means runs at each count and at
the prototypes' own count, on backbone features (L2-normalised) or on the pixels at a resolution, "raw" in [0, 1]
or "unit" (centred, each image scaled to length 1: cosine k-means, the representation benchmark's pixel baseline).

{format_protocol_table(summarise_protocol(rows), COLUMNS, markdown=True)}

## What holds and what does not

A claim "A beats B" is judged at every setting of B (cluster count, resolution, scaling), at an equal cluster count
(the prototypes only at theirs) and seed by seed: **holds** when A is higher on every seed at every setting,
**fails** when lower everywhere, **depends** otherwise (won: settings where A is higher on every seed; then the
range of the mean difference A - B).

{verdict_matrix(verdicts)}

In short:

{in_short(verdicts)}

Where each claim holds and where it does not (generated by `describe_verdicts`):

{sentences}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("MEDSSL_DATA_DIR"))
    parser.add_argument("--checkpoint", default=None, help="a pretraining checkpoint (default: the shipped encoder)")
    parser.add_argument("--out", type=Path, default=OUT, help="writes OUT.csv, OUT.md and OUT.png")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--counts", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--scalings", nargs="+", default=list(PIXEL_SCALINGS), choices=PIXEL_SCALINGS)
    parser.add_argument("--images", type=int, default=None, help="a stratified draw of this many per seed")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start, load = time.perf_counter(), os.getloadavg()[0]
    rows, about = run(args)
    seconds = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out.with_suffix(".csv"))
    args.out.with_suffix(".md").write_text(report(rows, about, seconds, args.threads, load))

    import matplotlib

    matplotlib.use("Agg")
    from medssl_lab.viz import plot_cluster_protocol

    figure = plot_cluster_protocol(summarise_protocol(rows), ("class_nmi", "class_ari", "modality_nmi"))
    figure.savefig(args.out.with_suffix(".png"), dpi=90)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
