"""Notebook 06's checks: the percentile rule to uint8 and the salted keys; solutions pass, mistakes are named."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from medssl_lab.exercises import check_percentile_to_uint8, check_pseudonym


def percentile_to_uint8(pixels, low=0.5, high=99.5):
    lo, hi = np.percentile(pixels, (low, high))
    if hi <= lo:
        return np.zeros(np.shape(pixels), dtype=np.uint8)
    return np.rint(np.clip((pixels - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def pseudonym(salt, value):
    if value is None or value == "":
        return ""
    return hashlib.blake2b(str(value).encode(), key=salt, digest_size=8).hexdigest()


def unsolved(*args, **kwargs):
    raise NotImplementedError("not solved yet")


def test_solutions_pass(capsys) -> None:
    assert check_percentile_to_uint8(percentile_to_uint8).points(2) == 2
    assert check_pseudonym(pseudonym).points(2) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["✓ percentile_to_uint8 is correct on all 5 cases.", "✓ pseudonym is correct on all 6 cases."]


def test_another_order_of_the_same_arithmetic_passes() -> None:
    def scaled_first(pixels, low=0.5, high=99.5):
        lo, hi = np.percentile(pixels, [low, high])
        if hi == lo:
            return np.zeros(np.shape(pixels), np.uint8)
        return np.round(np.clip((pixels - lo) * 255.0 / (hi - lo), 0, 255)).astype(np.uint8)

    assert check_percentile_to_uint8(scaled_first)


@pytest.mark.parametrize(("check", "name"), [(check_percentile_to_uint8, "percentile"), (check_pseudonym, "key")])
def test_a_stub_is_not_solved_yet_and_the_library_takes_over(check, name: str, capsys) -> None:
    result = check(unsolved)
    assert not result.solved and not result and result.points(2) == 0
    assert "is not solved yet" in capsys.readouterr().out
    assert result.function is result.library


def _scaled(pixels, low, high):
    lo, hi = np.percentile(pixels, (low, high))
    return (pixels - lo) / max(hi - lo, 1e-12)


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (
            lambda p, low=0.5, high=99.5: np.rint((p - p.min()) / max(p.max() - p.min(), 1) * 255).astype(np.uint8),
            "minimum and maximum were used",
        ),
        (lambda p, low=0.5, high=99.5: np.rint(_scaled(p, low, high) * 255).astype(np.int64), "must be clipped"),
        (lambda p, low=0.5, high=99.5: np.clip(_scaled(p, low, high), 0, 1), "in 0..1"),
        (
            lambda p, low=0.5, high=99.5: (np.clip(_scaled(p, low, high), 0, 1) * 255).astype(np.uint8),
            "rounded down",
        ),
    ],
)
def test_percentile_mistakes_are_named(student, cause: str) -> None:
    result = check_percentile_to_uint8(student)
    assert result.solved and not result and cause in result.message


def test_a_constant_image_is_a_named_case() -> None:
    def white_when_constant(pixels, low=0.5, high=99.5):
        if np.ptp(pixels) == 0:
            return np.full(np.shape(pixels), 255, np.uint8)
        return percentile_to_uint8(pixels, low, high)

    message = check_percentile_to_uint8(white_when_constant).message
    assert "a constant 4 x 4 image" in message and "is 255, expected 0" in message


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (lambda s, v: "" if not v else hashlib.blake2b(str(v).encode(), digest_size=8).hexdigest(), "salt is ignored"),
        (lambda s, v: "" if not v else hashlib.sha256(s + str(v).encode()).hexdigest(), "not SHA-256"),
        (lambda s, v: "" if not v else hashlib.md5(s + str(v).encode()).hexdigest(), "not MD5"),
        (
            lambda s, v: "" if not v else hashlib.blake2b(str(v).encode(), key=s, digest_size=16).hexdigest(),
            "8 bytes, which is 16 hex digits",
        ),
        (
            lambda s, v: "" if not v else hashlib.blake2b(str(v).encode() + s, digest_size=8).hexdigest(),
            "glued to the value",
        ),
    ],
)
def test_key_mistakes_are_named(student, cause: str) -> None:
    result = check_pseudonym(student)
    assert result.solved and not result and cause in result.message


def test_no_value_gives_no_key() -> None:
    keyed = lambda s, v: hashlib.blake2b(str(v).encode(), key=s, digest_size=8).hexdigest()
    assert "no value (None)" in check_pseudonym(keyed).message


def test_a_failing_function_is_reported_without_a_crash(capsys) -> None:
    result = check_pseudonym(lambda s, v: hashlib.blake2b(v.encode(), key=s, digest_size=8).hexdigest())
    assert result.solved and not result and "raised AttributeError" in capsys.readouterr().out


def test_feedback_gives_no_solution_away() -> None:
    messages = [
        check_pseudonym(lambda s, v: "0" * 16 if v else "").message,
        check_percentile_to_uint8(lambda p, low=0.5, high=99.5: np.zeros(np.shape(p), np.uint8)).message,
    ]
    for message in messages:
        assert "key=salt" not in message and "digest_size" not in message and "np.percentile" not in message
    assert pseudonym(bytes(range(32)), "1CT1") not in messages[0]
