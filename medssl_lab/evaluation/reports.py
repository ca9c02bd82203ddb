"""Tables of downstream results: test AUC and ACC per arm (mean ± std over seeds), convergence, robustness."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from medssl_lab.evaluation.downstream import ARMS
from medssl_lab.evaluation.label_efficiency import gains, sorted_records

#: Differences no larger than this, of test AUC or of mean AUC drops, are called a tie: about the run-to-run noise of
#: one seed. Over seeds 0-2 of the cpu reproduction (benchmarks/results/), an arm's PneumoniaMNIST test AUC varies by
#: up to 0.012 (std), and its mean drop under one perturbation kind by up to about 0.01 for every kind but noise.
TIE = 0.01


def mean_std(values: list[float]) -> str:
    """``mean ± std`` of the finite values (one value alone, "n/a" for none)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "n/a"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def _convergence_cell(runs: list[dict[str, Any]]) -> str:
    """Median steps to the target and the mean reduction, and how many runs reached it."""
    steps = [r["steps_to_target"] for r in runs if r["steps_to_target"] is not None]
    reductions = [r["step_reduction_pct"] for r in runs if r["step_reduction_pct"] is not None]
    reached = f"{len(steps)}/{len(runs)} reached"
    return f"{np.median(steps):.0f} ({np.mean(reductions):+.0f} %), {reached}" if steps and reductions else reached


def _arm_table(title: str, records: list[dict], arms: list[str], cell: Callable[[list[dict]], str]) -> list[str]:
    """A Markdown table: one row per (task, label fraction), one column per arm, ``cell`` of that arm's runs."""
    lines = ["", f"### {title}", "", "| task | labels | " + " | ".join(arms) + " |", "|---|---:|" + "---:|" * len(arms)]
    for task, fraction in sorted({(r["task"], r["fraction"]) for r in records}):
        runs = {a: [r for r in records if (r["task"], r["fraction"], r["arm"]) == (task, fraction, a)] for a in arms}
        lines.append(f"| {task} | {fraction:g} | " + " | ".join(cell(runs[a]) for a in arms) + " |")
    return lines


def _robustness_table(robust: list[dict], arms: list[str]) -> list[str]:
    """Mean AUC drop per arm and perturbation kind, beside the clean AUC."""
    kinds = list(dict.fromkeys(r["kind"] for r in robust if r["kind"] != "clean"))
    lines = [
        "",
        f"### Robustness: mean AUC drop from clean over severities ({robust[0]['task']}, "
        f"{robust[0]['fraction']:g} labels)",
        "",
        "| arm | clean AUC | " + " | ".join(kinds) + " |",
        "|---|---:|" + "---:|" * len(kinds),
    ]
    for a in arms:
        rows = [r for r in robust if r["arm"] == a]
        if rows:
            clean = mean_std([r["auc"] for r in rows if r["kind"] == "clean"])
            drops = [f"{np.mean([r['drop'] for r in rows if r['kind'] == k]):.3f}" for k in kinds]
            lines.append(f"| {a} | {clean} | " + " | ".join(drops) + " |")
    return lines


def summary_markdown(records: list[dict], robust: list[dict], meta: dict) -> str:
    """Markdown tables: test AUC / ACC (mean ± std over seeds), convergence, robustness drops."""
    arms = [a for a in ARMS if any(r["arm"] == a for r in records)]
    seeds = sorted({r["seed"] for r in records})
    lines = [
        f"Profile `{meta.get('profile', '?')}`; seeds {seeds}; mean ± std over seeds."
        + (f" Pretrained on {meta['data']}; medssl-lab {meta['package']}." if "data" in meta else "")
    ]
    if records:  # a folder of labels-per-class runs alone has no fraction tables to show
        lines += _arm_table("Test AUC", records, arms, lambda runs: mean_std([r["test_auc"] for r in runs]))
        lines += _arm_table("Test ACC", records, arms, lambda runs: mean_std([r["test_acc"] for r in runs]))
        lines += _arm_table(
            "Convergence: steps to 95 % of scratch's best validation AUC (reduction vs scratch, %)",
            records,
            arms,
            _convergence_cell,
        )
    if robust:
        lines += _robustness_table(robust, arms)
    if "pretrain_seconds" in meta:
        lines += [
            "",
            f"Pretraining took {meta['pretrain_seconds'] / 60:.1f} min in this invocation "
            f"(0 when resumed from a finished checkpoint).",
        ]
    return "\n".join(lines) + "\n"


def gains_over_scratch(records: list[dict[str, Any]], tie: float = TIE) -> list[dict[str, Any]]:
    """Each pretrained arm's test AUC minus scratch's (same task, label fraction and seed), with a verdict.

    ``tie``: differences no larger than this are called a tie (:data:`TIE`, about the run-to-run noise of one seed).
    """
    scratch = {(r["task"], r["fraction"], r["seed"]): r["test_auc"] for r in records if r["arm"] == "scratch"}
    rows = []
    for r in records:
        base = scratch.get((r["task"], r["fraction"], r["seed"]))
        if r["arm"] == "scratch" or base is None:
            continue
        delta = r["test_auc"] - base
        verdict = "better" if delta > tie else "worse" if delta < -tie else "tie"
        rows.append(
            {
                "task": r["task"],
                "fraction": r["fraction"],
                "seed": r["seed"],
                "arm": r["arm"],
                "scratch_auc": base,
                "delta": delta,
                "verdict": verdict,
            }
        )
    return rows


def lost_least(table: dict[str, dict[str, float]], tie: float = TIE) -> dict[str, str]:
    """Per perturbation kind of a ``{kind: {arm: mean AUC drop}}`` table
    (:func:`~medssl_lab.evaluation.robustness.mean_drops`), the arm that lost least, or ``"tie"`` when the arms'
    drops lie within ``tie`` of each other: one seed cannot tell them apart, so no arm is named.
    """
    return {
        kind: "tie" if max(drops.values()) - min(drops.values()) <= tie else min(drops, key=lambda a: drops[a])
        for kind, drops in table.items()
    }


def drops_against(
    table: dict[str, dict[str, float]],
    arm: str,
    baseline: str = "scratch",
    kinds: Sequence[str] | None = None,
    tie: float = TIE,
) -> dict[str, list[str]]:
    """The kinds (of ``kinds``, default all) under which ``arm`` lost less AUC than ``baseline`` by more than ``tie``
    (``"less"``), more (``"more"``), or about as much (``"tie"``), from a ``{kind: {arm: mean AUC drop}}`` table.

    How a pretrained arm fared against scratch under the kinds of a robustness claim, with one rule for ties.
    """
    verdicts: dict[str, list[str]] = {"less": [], "more": [], "tie": []}
    for kind in table if kinds is None else kinds:
        difference = table[kind][arm] - table[kind][baseline]
        verdicts["less" if difference < -tie else "more" if difference > tie else "tie"].append(kind)
    return verdicts


def label_efficiency_markdown(records: list[dict[str, Any]], metric: str = "test_auc") -> str:
    """The labels-per-class table of ``metric`` ("test_auc" or "test_acc") per arm (mean ± std over seeds), and
    fine-tuning's and the hybrid arm's paired gain over scratch (mean ± std over seeds, worst seed). Empty without
    records."""
    if not records:
        return ""
    arms = [a for a in ARMS if any(r["arm"] == a for r in records)]
    compared = [a for a in ("finetune", "hybrid") if a in arms and "scratch" in arms]
    paired = {a: {(g["task"], g["labels_per_class"]): g for g in gains(records, a, metric=metric)} for a in compared}
    lines = [
        "",
        f"### Label efficiency in labels per class: test {metric.removeprefix('test_').upper()}, mean ± std over seeds",
        "",
        "| task | labels per class | seeds | "
        + " | ".join(arms)
        + "".join(f" | {a} − scratch" for a in compared)
        + " |",
        "|---|---:|---:|" + "---:|" * (len(arms) + len(compared)),
    ]
    for task, size in dict.fromkeys((r["task"], r["labels_per_class"]) for r in sorted_records(records)):
        runs = {
            a: [r for r in records if (r["task"], r["labels_per_class"], r["arm"]) == (task, size, a)] for a in arms
        }
        seeds = len({r["seed"] for a in arms for r in runs[a]})
        cells = [mean_std([r[metric] for r in runs[a]]) for a in arms]
        for a in compared:
            g = paired[a].get((task, size))
            cells.append(f"{g['gain']:+.3f} ± {g['std']:.3f} (worst {g['worst']:+.3f})" if g else "n/a")
        lines.append(f"| {task} | {size} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
