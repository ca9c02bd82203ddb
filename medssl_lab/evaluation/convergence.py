"""Convergence: how many steps each arm needs to reach a target the scratch arm sets.

The paper reports pretrained models reaching their accuracy in up to 85 % fewer steps. The target here is
``fraction`` (95 %) of the best validation AUC of the scratch run with the same task, labels and seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def steps_to_reach(curve: Sequence[tuple[int, float]], target: float) -> int | None:
    """First evaluated step whose validation AUC is at least ``target``; None when never reached."""
    for step, auc in curve:
        if math.isfinite(auc) and auc >= target:
            return int(step)
    return None


def convergence_target(scratch_curve: Sequence[tuple[int, float]], fraction: float = 0.95) -> float:
    """The convergence target: ``fraction`` of scratch's best validation AUC."""
    aucs = [a for _, a in scratch_curve if math.isfinite(a)]
    if not aucs:
        raise ValueError("the scratch curve holds no finite validation AUC")
    return fraction * max(aucs)


def step_reduction(steps_arm: int | None, steps_scratch: int | None) -> float | None:
    """Percent fewer steps than scratch to reach the target (the paper's "up to 85 %").

    ``100 * (1 - steps_arm / steps_scratch)``: positive is faster, negative slower; None
    when either arm never reached the target.
    """
    if steps_arm is None or steps_scratch is None:
        return None
    if steps_scratch <= 0:
        raise ValueError(f"steps_scratch must be > 0, got {steps_scratch}")
    return 100.0 * (1.0 - steps_arm / steps_scratch)


def labels_of(record: Mapping[str, Any]) -> float | str:
    """The labels a run had: its label fraction, or its labels per class (``"10"``; ``"all"`` for every label)."""
    return record["fraction"] if "fraction" in record else record["labels_per_class"]


def labels_order(labels: float | str) -> float:
    """A sort key of :func:`labels_of` values: fewest labels first, ``"all"`` last."""
    return math.inf if labels == "all" else float(labels)


def labels_text(labels: float | str) -> str:
    """:func:`labels_of` in words: ``"0.01 of labels"``, ``"10 per class"``, ``"all labels"``."""
    if isinstance(labels, str):
        return "all labels" if labels == "all" else f"{labels} per class"
    return f"{labels:g} of labels"


def add_convergence(records: list[dict[str, Any]], fraction: float = 0.95) -> list[dict[str, Any]]:
    """Fill ``target``, ``steps_to_target`` and ``step_reduction_pct`` of each run record from its curve.

    The target is ``fraction`` of the best validation AUC of the scratch run with the same task, labels (a label
    fraction or labels per class) and seed; records need ``task, fraction`` (or ``labels_per_class``) ``, arm,
    seed, curve`` (runs without a scratch partner get None).
    """
    by_key = {(r["task"], labels_of(r), r["seed"]): r for r in records if r["arm"] == "scratch"}
    for r in records:
        scratch = by_key.get((r["task"], labels_of(r), r["seed"]))
        if scratch is None:
            r["target"], r["steps_to_target"], r["step_reduction_pct"] = math.nan, None, None
            continue
        scratch_curve = [tuple(c) for c in scratch["curve"]]
        r["target"] = convergence_target(scratch_curve, fraction)
        r["steps_to_target"] = steps_to_reach([tuple(c) for c in r["curve"]], r["target"])
        r["step_reduction_pct"] = step_reduction(r["steps_to_target"], steps_to_reach(scratch_curve, r["target"]))
    return records
