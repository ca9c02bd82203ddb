"""Checks of notebook 00's exercises: Hounsfield units from a DICOM header, and a display window.

Both run on real DICOM files that ship with pydicom and pydicom-data (a CT slice, a 512 px CT,
an MR slice) and compare with the package's own reader and window function.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from medssl_lab.data.dicom_image import image_from_dataset
from medssl_lab.data.intensity import apply_window
from medssl_lab.data.windowing import WINDOW_PRESETS
from medssl_lab.exercises.feedback import Case, CheckResult, Mistake, array_problem, run_check

# ---------------------------------------------------------------------------- Hounsfield units


@cache
def _dataset(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(str(get_testdata_file(name)))


def _rescaled_copy(name: str, slope: float, intercept: float) -> pydicom.Dataset:
    ds = copy.deepcopy(_dataset(name))
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    return ds


def library_hounsfield(ds: pydicom.Dataset) -> np.ndarray:
    """The package's reading of one single-frame slice: stored values to modality units (HU for CT)."""
    return image_from_dataset(ds, Path(str(ds.filename or "dataset"))).pixels[0]


def _hounsfield_cases() -> list[Case]:
    return [
        Case("CT_small.dcm", (_dataset("CT_small.dcm"),)),
        Case("693_UNCR.dcm (a 512 px CT)", (_dataset("693_UNCR.dcm"),)),
        Case("MR_small.dcm (an MR slice: no rescale tags)", (_dataset("MR_small.dcm"),)),
        Case(
            "CT_small.dcm with RescaleSlope 2.5, RescaleIntercept -1000", (_rescaled_copy("CT_small.dcm", 2.5, -1000),)
        ),
    ]


def _stored(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array


def _intercept_only(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) + float(ds.get("RescaleIntercept", 0))


def _slope_rounded(ds: pydicom.Dataset) -> np.ndarray:
    slope, intercept = int(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    return ds.pixel_array.astype(np.float64) * slope + intercept


def check_hounsfield(student: Callable[[pydicom.Dataset], Any]) -> CheckResult:
    """``hounsfield(ds)``: a dataset's stored pixel values in modality units (HU for CT), as floats."""
    return run_check(
        "hounsfield",
        student,
        library_hounsfield,
        _hounsfield_cases(),
        lambda got, want: array_problem(got, want, atol=1e-3, what="the image in modality units"),
        mistakes=[
            Mistake("the stored values are returned as they are: apply RescaleSlope and RescaleIntercept", _stored),
            Mistake("the intercept is added but the slope is left out", _intercept_only),
            Mistake(
                "the slope was rounded to a whole number: RescaleSlope is a decimal, read it with float()",
                _slope_rounded,
            ),
        ],
        library_name="medssl_lab.data.load_dicom (DicomImage.pixels)",
    )


# ---------------------------------------------------------------------------- window / level


LANDMARKS_HU = np.array([-1000.0, -600.0, -100.0, 0.0, 40.0, 80.0, 700.0, 3000.0], dtype=np.float32)
LANDMARK_NAMES = ("air", "lung", "fat", "water", "soft tissue", "blood", "bone", "metal")


def _window_cases() -> list[Case]:
    ct = library_hounsfield(_dataset("CT_small.dcm"))
    cases = [
        Case(
            f"landmarks ({', '.join(LANDMARK_NAMES)}) through the {name} window", (LANDMARKS_HU, *WINDOW_PRESETS[name])
        )
        for name in ("lung", "brain")
    ]
    cases += [
        Case(f"CT_small.dcm through the {name} window", (ct, *WINDOW_PRESETS[name])) for name in ("mediastinum", "bone")
    ]
    cases.append(
        Case(
            "a 2 x 2 image, center 50, width 20", (np.array([[35.0, 40.0], [55.0, 65.0]], dtype=np.float32), 50.0, 20.0)
        )
    )
    return cases


def _unit_range(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    return np.clip((np.asarray(hu, np.float64) - (center - width / 2)) / width, 0, 1)


def _not_clipped(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    return ((np.asarray(hu, np.float64) - (center - width / 2)) / width * 255).astype(np.int64)


def _half_width_low_end(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    return apply_window(hu, center + width / 2, width)


def _width_as_half(hu: np.ndarray, center: float, width: float) -> np.ndarray:
    return apply_window(hu, center, 2 * width)


def _window_problem(got: Any, want: np.ndarray) -> str | None:
    # Rounding down instead of to nearest is one gray level off, invisible on screen: accepted.
    problem = array_problem(got, want, atol=1.0, rtol=0.0, what="the windowed image")
    if problem is None:
        return array_problem(got, want, atol=1.0, rtol=0.0, dtype=np.uint8, what="the windowed image")
    return problem


def check_window_level(student: Callable[[np.ndarray, float, float], Any]) -> CheckResult:
    """``window_level(hu, center, width)``: HU to display gray levels 0..255 (uint8) through one window."""
    return run_check(
        "window_level",
        student,
        apply_window,
        _window_cases(),
        _window_problem,
        resembles=lambda got, wrong: array_problem(got, wrong, atol=1.0, rtol=0.0),
        mistakes=[
            Mistake("the gray levels are in 0..1: scale them to 0..255", _unit_range),
            Mistake(
                "values below the window's low end or above its high end must be clipped to 0 and 255", _not_clipped
            ),
            Mistake("the window's low end is center - width / 2, not center + width / 2", _half_width_low_end),
            Mistake("the window spans center ± width / 2 (the whole width), not center ± width", _width_as_half),
        ],
        library_name="medssl_lab.data.intensity.apply_window",
    )
