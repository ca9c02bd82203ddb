"""Checks of notebook 05's exercises: the gamma perturbation, and the mean AUC drop per perturbation kind.

The gamma check runs on a real CT slice (pydicom's ``CT_small.dcm`` through two display windows), seeded images
and two named 2 x 2 images, one with values slightly outside [0, 1], and compares with the package's own
:func:`medssl_lab.evaluation.perturbations.perturb`. The drop check runs on robustness rows shaped like
:func:`medssl_lab.evaluation.robustness.robustness_curve`'s and compares with the library's ``mean_drops``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import torch
from pydicom.data import get_testdata_file

from medssl_lab.augment import make_generator, to_float
from medssl_lab.data.dicom import load_dicom
from medssl_lab.data.resize import resize_uint8
from medssl_lab.data.windowing import window_image
from medssl_lab.evaluation.perturbations import PERTURBATION_LEVELS, perturb
from medssl_lab.evaluation.robustness import mean_drops
from medssl_lab.exercises.feedback import Case, CheckResult, Mistake, Problem, array_problem, run_check

# ---------------------------------------------------------------------------- gamma


@cache
def _ct_slices(size: int = 32) -> torch.Tensor:
    """CT_small.dcm through the lung and the mediastinum window at ``size`` px: (2, 1, size, size) in [0, 1]."""
    image = load_dicom(str(get_testdata_file("CT_small.dcm")))
    gray = np.concatenate([window_image(image, "lung"), window_image(image, "mediastinum")])
    return to_float(torch.from_numpy(resize_uint8(gray, size)))


def _gamma_cases() -> list[Case]:
    in_range = torch.tensor([[[[0.0, 0.25], [0.81, 1.0]]]])
    outside = torch.tensor([[[[-0.05, 0.25], [0.81, 1.1]]]])
    seeded = torch.rand((3, 1, 8, 8), generator=make_generator(0))
    ct = _ct_slices()
    return [
        Case("a 2 x 2 image (0, 0.25, 0.81, 1), gamma 0.5", (in_range, 0.5)),
        Case("CT_small.dcm through the lung and mediastinum windows (2 images, 32 px), gamma 0.5", (ct, 0.5)),
        Case("CT_small.dcm through the lung and mediastinum windows (2 images, 32 px), gamma 2.0", (ct, 2.0)),
        Case("CT_small.dcm through the lung and mediastinum windows (2 images, 32 px), gamma 1.0", (ct, 1.0)),
        Case("3 seeded random images (8 px), gamma 0.75", (seeded, 0.75)),
        Case("a 2 x 2 image slightly outside [0, 1] (-0.05, 0.25, 0.81, 1.1), gamma 0.5", (outside, 0.5)),
        Case("a 2 x 2 image slightly outside [0, 1] (-0.05, 0.25, 0.81, 1.1), gamma 2.0", (outside, 2.0)),
    ]


def library_gamma(images: torch.Tensor, gamma: float) -> torch.Tensor:
    """The robustness suite's gamma perturbation at severity ``gamma``."""
    return perturb(images, "gamma", gamma)


def _no_clip(images: torch.Tensor, gamma: float) -> torch.Tensor:
    return images**gamma


def _clip_after(images: torch.Tensor, gamma: float) -> torch.Tensor:
    return (images**gamma).clamp(0.0, 1.0)


def _inverse(images: torch.Tensor, gamma: float) -> torch.Tensor:
    return images.clamp(0.0, 1.0) ** (1.0 / gamma)


def _times(images: torch.Tensor, gamma: float) -> torch.Tensor:
    return (images.clamp(0.0, 1.0) * gamma).clamp(0.0, 1.0)


def _squeezed(images: torch.Tensor, gamma: float) -> torch.Tensor:
    return library_gamma(images, gamma)[:, 0]


def _gamma_problem(got: Any, want: torch.Tensor) -> Problem:
    if not isinstance(got, torch.Tensor):
        return f"the result should be a torch tensor like the input, but it is {type(got).__name__}"
    return array_problem(got, want, atol=1e-5, rtol=1e-5, what="the perturbed image")


def check_gamma_perturbation(student: Callable[[torch.Tensor, float], Any]) -> CheckResult:
    """``gamma_perturbation(images, gamma)``: (B, 1, H, W) images in [0, 1] under a contrast curve x ** gamma."""
    return run_check(
        "gamma_perturbation",
        student,
        library_gamma,
        _gamma_cases(),
        _gamma_problem,
        resembles=lambda got, wrong: array_problem(got, wrong, atol=1e-5, rtol=1e-5),
        mistakes=[
            Mistake(
                "values outside [0, 1] must be clipped to [0, 1] before the power "
                "(a negative number to the power 0.5 is NaN)",
                _no_clip,
            ),
            Mistake(
                "the clip comes before the power, not after: (-0.05) ** 2 is a small positive number, "
                "but a pixel below 0 should count as 0",
                _clip_after,
            ),
            Mistake("the exponent is gamma itself, not 1 / gamma (gamma 0.5 brightens, 2 darkens)", _inverse),
            Mistake("gamma is an exponent (x to the power gamma), not a factor", _times),
            Mistake("keep the channel axis: return the same shape as the input, (B, 1, H, W)", _squeezed),
        ],
        library_name="medssl_lab.evaluation.perturbations.perturb(images, 'gamma', gamma)",
    )


# ---------------------------------------------------------------------------- mean AUC drop per kind


def _row(kind: str, severity: float | None, auc: float) -> dict[str, Any]:
    return {"kind": kind, "severity": severity, "auc": auc}


def _seeded_rows(seed: int, clean_auc: float) -> list[dict[str, Any]]:
    """One arm's rows like robustness_curve's, clean first: every kind and severity of the suite, seeded AUCs."""
    rng = np.random.default_rng(seed)
    rows = [_row("clean", None, clean_auc)]
    for kind, severities in PERTURBATION_LEVELS.items():
        rows += [_row(kind, float(s), float(clean_auc - rng.uniform(-0.01, 0.12))) for s in severities]
    return rows


def _drop_cases() -> list[Case]:
    tiny = [_row("clean", None, 0.90), _row("gamma", 0.5, 0.86), _row("gamma", 2.0, 0.80)]
    better = [
        _row("clean", None, 0.85),
        _row("blur", 0.5, 0.86),
        _row("blur", 1.0, 0.84),
        _row("rotation", 10.0, 0.83),
        _row("rotation", 30.0, 0.79),
    ]
    last = _seeded_rows(2, 0.95)
    return [
        Case("a tiny example: clean AUC 0.90, gamma 0.5 and 2.0 at 0.86 and 0.80", (tiny,)),
        Case(
            "one arm's 26 rows (clean, then 25 perturbations of 7 kinds), seeded AUCs, clean 0.87",
            (_seeded_rows(0, 0.87),),
        ),
        Case("clean AUC 0.85; blur 0.5 scores 0.86, above clean (a negative drop)", (better,)),
        Case("26 rows with the clean row last, seeded AUCs, clean 0.95", (last[1:] + last[:1],)),
    ]


def library_mean_auc_drops(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The library's summary of one arm: drops as robustness_curve computes them, averaged by ``mean_drops``."""
    clean = next(r["auc"] for r in rows if r["kind"] == "clean")
    tagged = [{**r, "arm": "arm", "drop": clean - r["auc"]} for r in rows]
    return {kind: by_arm["arm"] for kind, by_arm in mean_drops(tagged).items()}


def _drops(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    clean = next(r["auc"] for r in rows if r["kind"] == "clean")
    out: dict[str, list[float]] = {}
    for r in rows:
        if r["kind"] != "clean":
            out.setdefault(r["kind"], []).append(clean - r["auc"])
    return out


def _wrong_sign(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {kind: -float(np.mean(d)) for kind, d in _drops(rows).items()}


def _clean_as_kind(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {"clean": 0.0, **{kind: float(np.mean(d)) for kind, d in _drops(rows).items()}}


def _clean_in_mean(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {kind: float(np.mean([0.0, *d])) for kind, d in _drops(rows).items()}


def _largest(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {kind: float(np.max(d)) for kind, d in _drops(rows).items()}


def _drop_problem(got: Any, want: dict[str, float]) -> Problem:
    if not isinstance(got, dict):
        return f"the result should be a dict {{kind: mean drop}}, but it is {type(got).__name__}"
    extra, missing = sorted(set(got) - set(want), key=str), sorted(set(want) - set(got))
    if extra:
        return f"the result has the key(s) {extra}, which are not perturbation kinds of these rows"
    if missing:
        return f"the result has no entry for the kind(s) {missing}"
    for kind, value in want.items():
        problem = array_problem(got[kind], value, atol=1e-9, rtol=1e-9, what=f"the mean drop of '{kind}'")
        if problem is not None:
            return problem
    return None


def check_mean_auc_drops(student: Callable[[list[dict[str, Any]]], Any]) -> CheckResult:
    """``mean_auc_drops(rows)``: one arm's robustness rows to {kind: mean over severities of clean AUC - AUC}."""
    return run_check(
        "mean_auc_drops",
        student,
        library_mean_auc_drops,
        _drop_cases(),
        _drop_problem,
        mistakes=[
            Mistake("the drop is the clean AUC minus the perturbed AUC (positive when the AUC falls)", _wrong_sign),
            Mistake(
                "the clean row is the reference, not a perturbation kind: leave it out of the result", _clean_as_kind
            ),
            Mistake(
                "the clean row's zero drop is counted in every kind's mean: average only its severities", _clean_in_mean
            ),
            Mistake("the summary is the mean over a kind's severities, not the largest drop", _largest),
        ],
        library_name="medssl_lab.evaluation.robustness.mean_drops",
    )
