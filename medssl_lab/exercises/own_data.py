"""Checks of notebook 06's exercises: the store's percentile rule to uint8, and its salted pseudonymous keys.

Both run on real DICOM files that ship with pydicom and pydicom-data (an MR slice, an ultrasound frame, a CT's
patient and study identifiers) and compare with the store's own code in :mod:`medssl_lab.data.store.decode`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from medssl_lab.data.dicom import load_dicom
from medssl_lab.data.store.decode import percentile_uint8, salted_key
from medssl_lab.exercises.feedback import Case, CheckResult, Mistake, Problem, array_problem, run_check

# ---------------------------------------------------------------------------- percentiles to uint8


@cache
def _pixels(name: str) -> np.ndarray:
    """The first frame of a pydicom test file in modality units, as the store reads it (float32)."""
    return load_dicom(str(get_testdata_file(name))).pixels[0]


def _percentile_cases() -> list[Case]:
    tiny = np.array([[0.0, 10.0, 25.0], [37.0, 50.0, 1000.0]], dtype=np.float32)
    return [
        Case("a 2 x 3 image (0, 10, 25, 37, 50, 1000) with low 20, high 80", (tiny,), {"low": 20.0, "high": 80.0}),
        Case("MR_small.dcm (64 px MR slice)", (_pixels("MR_small.dcm"),)),
        Case("US1_UNCR.dcm (an ultrasound frame, 640 x 480, colour read as grey)", (_pixels("US1_UNCR.dcm"),)),
        Case("MR_small.dcm with low 5, high 95", (_pixels("MR_small.dcm"),), {"low": 5.0, "high": 95.0}),
        Case("a constant 4 x 4 image (every pixel 700)", (np.full((4, 4), 700.0, dtype=np.float32),)),
    ]


def library_percentile(pixels: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """The store's rule for MR and ultrasound: the ``low`` and ``high`` percentiles map to 0 and 255."""
    return percentile_uint8(pixels, (low, high))


def _scaled(pixels: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(np.shape(pixels))
    return (np.asarray(pixels, np.float64) - lo) / (hi - lo)


def _bounds(pixels: np.ndarray, low: float, high: float) -> tuple[float, float]:
    lo, hi = np.percentile(pixels, (low, high))
    return float(lo), float(hi)


def _min_max(pixels: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    scaled = _scaled(pixels, float(np.min(pixels)), float(np.max(pixels)))
    return np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8)


def _not_clipped(pixels: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    # what an unclipped cast to uint8 gives: values wrap around modulo 256 (computed in integers, without a warning)
    return np.rint(_scaled(pixels, *_bounds(pixels, low, high)) * 255).astype(np.int64) % 256


def _not_clipped_float(pixels: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    return np.rint(_scaled(pixels, *_bounds(pixels, low, high)) * 255)


def _unit(pixels: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    return np.clip(_scaled(pixels, *_bounds(pixels, low, high)), 0, 1)


def _floor(pixels: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    return np.floor(np.clip(_scaled(pixels, *_bounds(pixels, low, high)), 0, 1) * 255).astype(np.uint8)


_CLIP = "pixels below the low or above the high percentile must be clipped to 0 and 255"


def _percentile_problem(got: Any, want: np.ndarray) -> Problem:
    # values first (the clearer message for 0..1 or unclipped output), then the dtype, then exact gray levels
    problem = array_problem(got, want, atol=1.0, rtol=0.0, what="the gray image")
    if problem is None:
        problem = array_problem(got, want, atol=1.0, rtol=0.0, dtype=np.uint8, what="the gray image")
    if problem is not None:
        return problem
    off = np.abs(np.asarray(got, np.int64) - np.asarray(want, np.int64)) == 1
    # A different order of the same float operations may move a value lying exactly on .5: tolerate 1 in 1000.
    if off.sum() > off.size // 1000:
        return f"{int(off.sum())} of {off.size} gray levels are one off the expected ones (a rounding difference)"
    return None


def check_percentile_to_uint8(student: Callable[..., Any]) -> CheckResult:
    """``percentile_to_uint8(pixels, low=0.5, high=99.5)``: the store's percentile rule, pixels to uint8 0..255."""
    return run_check(
        "percentile_to_uint8",
        student,
        library_percentile,
        _percentile_cases(),
        _percentile_problem,
        resembles=lambda got, wrong: array_problem(got, wrong, atol=1e-6, rtol=0.0),
        mistakes=[
            Mistake(
                "the minimum and maximum were used: map the low and high *percentiles* to 0 and 255, "
                "so a few extreme pixels do not squeeze the rest into a few gray levels",
                _min_max,
            ),
            Mistake(_CLIP, _not_clipped),
            Mistake(_CLIP, _not_clipped_float),
            Mistake("the gray levels are in 0..1: scale them to 0..255 and return np.uint8", _unit),
            Mistake("the values were rounded down (astype truncates): round to the nearest gray level first", _floor),
        ],
        library_name="medssl_lab.data.store.decode.percentile_uint8",
    )


# ---------------------------------------------------------------------------- salted keys


@cache
def _dataset(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(str(get_testdata_file(name)), stop_before_pixels=True)


#: two made-up salts of 32 bytes, like a store's private ``salt`` file
SALT_A = bytes(range(32))
SALT_B = bytes(range(100, 132))


def _pseudonym_cases() -> list[Case]:
    ct, mr = _dataset("CT_small.dcm"), _dataset("MR_small.dcm")
    return [
        Case(f"CT_small.dcm's PatientID ({ct.PatientID!r}), salt bytes 0..31", (SALT_A, ct.PatientID)),
        Case(f"MR_small.dcm's PatientID ({mr.PatientID!r}), salt bytes 0..31", (SALT_A, mr.PatientID)),
        Case("CT_small.dcm's PatientID, another salt (bytes 100..131)", (SALT_B, ct.PatientID)),
        Case("CT_small.dcm's StudyInstanceUID, salt bytes 0..31", (SALT_A, ct.StudyInstanceUID)),
        Case("no value (None)", (SALT_A, None)),
        Case("an empty PatientID ('')", (SALT_A, "")),
    ]


def _unkeyed(salt: bytes, value: object) -> str:
    return "" if value in (None, "") else hashlib.blake2b(str(value).encode(), digest_size=8).hexdigest()


def _sha256(salt: bytes, value: object) -> str:
    return "" if value in (None, "") else hashlib.sha256(salt + str(value).encode()).hexdigest()


def _md5(salt: bytes, value: object) -> str:
    return "" if value in (None, "") else hashlib.md5(salt + str(value).encode()).hexdigest()


def _long_digest(salt: bytes, value: object) -> str:
    return "" if value in (None, "") else hashlib.blake2b(str(value).encode(), key=salt, digest_size=16).hexdigest()


def _appended(salt: bytes, value: object) -> str:
    return "" if value in (None, "") else hashlib.blake2b(str(value).encode() + salt, digest_size=8).hexdigest()


def _prepended(salt: bytes, value: object) -> str:
    return "" if value in (None, "") else hashlib.blake2b(salt + str(value).encode(), digest_size=8).hexdigest()


def _key_problem(got: Any, want: str) -> Problem:
    if isinstance(got, bytes):
        return "the key is bytes: the store writes the digest as a str of hex digits"
    if not isinstance(got, str):
        return f"the key should be a str of hex digits, but it is {type(got).__name__} {got!r}"[:160]
    if want == "" and got != "":
        return f"the key is {got!r}, expected '' (no value, no key: an empty key groups nothing)"
    if got == "" and want != "":
        return "the key is '', expected a key: only a missing or empty value gives ''"
    if len(got) != len(want):
        return f"the key has {len(got)} characters, expected {len(want)}"
    if got != want:
        return f"the key is {got!r}, which is not the expected key"
    return None


def check_pseudonym(student: Callable[[bytes, object], Any]) -> CheckResult:
    """``pseudonym(salt, value)``: the store's salted key, 16 hex digits of keyed BLAKE2b; '' for no value."""
    return run_check(
        "pseudonym",
        student,
        salted_key,
        _pseudonym_cases(),
        _key_problem,
        resembles=lambda got, wrong: None if got == wrong else "different",
        mistakes=[
            Mistake(
                "the salt is ignored: anyone can hash a known patient ID and find that patient's images; "
                "pass the salt as the hash's key",
                _unkeyed,
            ),
            Mistake("the store's keys are BLAKE2b (hashlib.blake2b), not SHA-256", _sha256),
            Mistake("the store's keys are BLAKE2b (hashlib.blake2b), not MD5", _md5),
            Mistake("the digest is 8 bytes, which is 16 hex digits", _long_digest),
            Mistake("the salt is glued to the value: BLAKE2b takes it as its key argument instead", _appended),
            Mistake("the salt is glued to the value: BLAKE2b takes it as its key argument instead", _prepended),
        ],
        library_name="medssl_lab.data.store.decode.salted_key",
    )
