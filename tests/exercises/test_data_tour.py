"""Notebook 00's checks on real DICOM files: the solution passes, the usual mistakes are named."""

from __future__ import annotations

import numpy as np
import pytest

from medssl_lab.data.intensity import apply_window
from medssl_lab.exercises import check_hounsfield, check_window_level


def hounsfield(ds):
    return ds.pixel_array.astype(np.float32) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))


def window_level(hu, center, width):
    return np.rint(np.clip((np.asarray(hu, np.float32) - (center - width / 2)) / width, 0, 1) * 255).astype(np.uint8)


def test_solutions_pass() -> None:
    assert check_hounsfield(hounsfield).points(2) == 2
    assert check_window_level(window_level).points(2) == 2


def test_rounding_down_is_accepted_as_one_gray_level() -> None:
    floor = lambda hu, c, w: np.floor(np.clip((hu - (c - w / 2)) / w, 0, 1) * 255).astype(np.uint8)
    assert check_window_level(floor)


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (lambda ds: ds.pixel_array, "apply RescaleSlope and RescaleIntercept"),
        (lambda ds: ds.pixel_array.astype(float) + float(ds.get("RescaleIntercept", 0)), "slope is left out"),
        (
            lambda ds: ds.pixel_array * int(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0)),
            "rounded to a whole number",
        ),
    ],
)
def test_hounsfield_mistakes_are_named(student, cause: str) -> None:
    result = check_hounsfield(student)
    assert not result and cause in result.message


def test_a_file_without_rescale_tags_is_a_named_case() -> None:
    result = check_hounsfield(lambda ds: ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert "AttributeError" in result.message and "MR_small.dcm" in result.message


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (lambda hu, c, w: np.clip((hu - (c - w / 2)) / w, 0, 1), "in 0..1"),
        (lambda hu, c, w: ((hu - (c - w / 2)) / w * 255).astype(np.int64), "must be clipped"),
        (lambda hu, c, w: apply_window(hu, c + w / 2, w), "center - width / 2"),
        (lambda hu, c, w: apply_window(hu, c, 2 * w), "not center ± width"),
    ],
)
def test_window_mistakes_are_named(student, cause: str) -> None:
    result = check_window_level(student)
    assert not result and cause in result.message


def test_feedback_gives_no_formula_away() -> None:
    message = check_window_level(lambda hu, c, w: np.zeros(np.shape(hu), np.uint8)).message
    assert "clip(" not in message and "/ width" not in message and "expected" in message


def test_a_float_result_is_told_its_dtype() -> None:
    result = check_window_level(lambda hu, c, w: apply_window(hu, c, w).astype(np.float32))
    assert "dtype float32, expected uint8" in result.message
