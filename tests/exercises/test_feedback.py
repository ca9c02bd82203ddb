"""The check runner: passes, "not solved yet", errors and known mistakes, each said in one printed line."""

from __future__ import annotations

import numpy as np
import pytest

from medssl_lab.exercises.feedback import Case, Mistake, array_problem, run_check


def double(x: np.ndarray) -> np.ndarray:
    return 2 * x


CASES = [Case("three ones", (np.ones(3),)), Case("a 2 x 2 ramp", (np.arange(4.0).reshape(2, 2),))]


def check(student, mistakes=()):
    return run_check("double", student, double, CASES, array_problem, mistakes=mistakes, library_name="double")


def test_a_correct_function_passes_and_is_used(capsys: pytest.CaptureFixture[str]) -> None:
    mine = lambda x: x + x
    result = check(mine)
    assert result and result.solved and result.function is mine and result.points(2) == 2
    assert capsys.readouterr().out.startswith("✓ double is correct on all 2 cases")


def test_an_unsolved_exercise_says_so_and_falls_back(capsys: pytest.CaptureFixture[str]) -> None:
    def stub(x):
        raise NotImplementedError

    result = check(stub)
    assert not result and not result.solved and result.function is double and result.points(2) == 0
    out = capsys.readouterr().out
    assert "double is not solved yet" in out and "goes on with the library's double" in out
    assert out.count("\n") == 1


def test_an_exception_is_reported_with_its_case(capsys: pytest.CaptureFixture[str]) -> None:
    result = check(lambda x: x[5])
    assert not result and result.solved
    assert "raised IndexError" in capsys.readouterr().out and "case 'three ones'" in result.message


def test_a_known_mistake_names_its_cause() -> None:
    result = check(lambda x: x + 1, mistakes=[Mistake("added one instead of doubling", lambda x: x + 1)])
    assert "case 'a 2 x 2 ramp'" in result.message and "Likely cause: added one instead of doubling" in result.message


def test_the_first_difference_is_described_with_its_place() -> None:
    result = check(lambda x: np.where(x > 2, 0, 2 * x))
    assert "case 'a 2 x 2 ramp'" in result.message and "index (1, 1) is 0, expected 6" in result.message


def test_a_function_that_changes_its_input_spoils_no_expected_value() -> None:
    def in_place(x):
        x *= 2
        return x

    assert check(in_place)


@pytest.mark.parametrize(
    ("got", "words"),
    [
        ("text", "should be a number or an array"),
        (np.ones((1, 3)), "shape (1, 3), expected (3,) (same values, wrong shape"),
        (np.ones(4), "shape (4,), expected (3,)"),
        (np.array([1.0, np.nan, 1.0]), "not finite at index (1,)"),
    ],
)
def test_array_problems_are_put_in_words(got: object, words: str) -> None:
    problem = array_problem(got, np.ones(3))
    assert problem is not None and words in problem


def test_a_dtype_is_checked_when_asked() -> None:
    assert array_problem(np.ones(2), np.ones(2, np.uint8)) is None
    assert "dtype float64, expected uint8" in str(array_problem(np.ones(2), np.ones(2, np.uint8), dtype=np.uint8))


def test_something_not_callable_is_refused_politely() -> None:
    result = check(42)  # type: ignore[arg-type]
    assert not result and "should be a function" in result.message
