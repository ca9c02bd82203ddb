"""Running a student's function on named cases and saying what is wrong, without giving the answer away.

Every ``check_<name>`` of :mod:`medssl_lab.exercises` is built from the same parts: a list of
:class:`Case` (small inputs with a name a student can find in the notebook), the library's own
implementation as the reference, a comparison that describes the first difference (type, shape,
dtype, a value), and known mistakes whose outputs, when the student's output matches one, name
the likely cause. A check never raises for a wrong or missing answer: it prints its feedback and
returns a :class:`CheckResult` whose ``function`` is the student's when correct and the library's
otherwise, so the rest of a notebook always runs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

Problem = str | None  # None: no problem found


@dataclass(frozen=True)
class Case:
    """One input for the student's function: a name, positional and keyword arguments."""

    name: str
    args: tuple
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: when the student's output matches ``function``'s, ``cause`` is the hint."""

    cause: str
    function: Callable[..., Any]


@dataclass
class CheckResult:
    """What a check found. ``bool(result)`` is True when every case passed."""

    name: str
    passed: bool
    solved: bool  # False while the function still raises NotImplementedError
    message: str
    student: Callable[..., Any]
    library: Callable[..., Any]

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"CheckResult({self.name!r}, passed={self.passed})"

    @property
    def function(self) -> Callable[..., Any]:
        """The function the rest of the notebook uses: the student's when correct, else the library's."""
        return self.student if self.passed else self.library

    def points(self, maximum: int) -> int:
        """``maximum`` when passed, else 0: the last line of a graded cell, read by nbgrader as the score."""
        return maximum if self.passed else 0


def _as_array(value: Any) -> np.ndarray | None:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray | list | tuple | float | int | np.number):
        return np.asarray(value)
    return None


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a torch tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def array_problem(
    got: Any,
    expected: Any,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    dtype: type | str | None = None,
    what: str = "the result",
    where: Callable[[tuple[int, ...]], str] | None = None,
) -> Problem:
    """The first difference between ``got`` and ``expected`` in words (type, shape, dtype, value); None if alike.

    ``where`` turns an index into words a student can find (e.g. "the pixel of -1000 HU").
    """
    want = _as_array(expected)
    have = _as_array(got)
    if want is None:
        raise TypeError(f"the reference gave {type(expected).__name__}, not an array or number")
    if have is None:
        return f"{what} should be a number or an array, but it is {_kind(got)}"
    if have.shape != want.shape:
        if have.size == want.size:
            return (
                f"{what} has shape {have.shape}, expected {want.shape} (same values, wrong shape? reshape or squeeze)"
            )
        return f"{what} has shape {have.shape}, expected {want.shape}"
    if dtype is not None and have.dtype != np.dtype(dtype):
        return f"{what} has dtype {have.dtype}, expected {np.dtype(dtype)}"
    if have.dtype.kind not in "biuf":
        return f"{what} holds {have.dtype} values, expected numbers"
    have_f, want_f = have.astype(np.float64), want.astype(np.float64)
    if not np.isfinite(have_f).all() and np.isfinite(want_f).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(have_f))[0])
        place = where(index) if where else f"index {index}" if index else "it"
        return f"{what} is not finite at {place} (NaN or inf): a division by zero or an overflow?"
    close = np.isclose(have_f, want_f, atol=atol, rtol=rtol, equal_nan=True)
    if close.all():
        return None
    index = tuple(int(i) for i in np.argwhere(~close)[0])
    place = where(index) if where else (f"index {index}" if index else "")
    wrong = int((~close).sum())
    share = f"; {wrong} of {close.size} values differ" if close.size > 1 else ""
    at = f" at {place}" if place else ""
    return f"{what}{at} is {have_f[index]:.6g}, expected {want_f[index]:.6g}{share}"


def _copy(case: Case) -> tuple[tuple, dict]:
    """Fresh copies of a case's inputs: a function that changes its input in place spoils no other case."""
    return copy.deepcopy(case.args), copy.deepcopy(case.kwargs)


def run_check(
    name: str,
    student: Callable[..., Any],
    library: Callable[..., Any],
    cases: Sequence[Case],
    compare: Callable[[Any, Any], Problem],
    *,
    reference: Callable[..., Any] | None = None,
    mistakes: Sequence[Mistake] = (),
    resembles: Callable[[Any, Any], Problem] | None = None,
    library_name: str = "",
) -> CheckResult:
    """Run ``student`` on every case against ``reference`` (default: ``library``), print feedback, return it.

    ``compare(got, expected)`` describes the first difference or returns None. When a case
    fails, each known mistake is run on the same case; the first whose output the student's
    matches (``resembles``, default ``compare``) names the likely cause.
    """
    reference = reference or library
    fallback = f"The notebook goes on with the library's {library_name or library.__name__}."
    if not callable(student):
        return _finish(
            name, False, True, f"✗ {name} should be a function, got {_kind(student)}. {fallback}", student, library
        )
    for case in cases:
        expected = reference(*_copy(case)[0], **_copy(case)[1])
        args, kwargs = _copy(case)
        try:
            got = student(*args, **kwargs)
        except NotImplementedError:
            message = f"… {name} is not solved yet: write its body where it raises NotImplementedError. {fallback}"
            return _finish(name, False, False, message, student, library)
        except Exception as exc:  # the student's code failed: say where, never crash the notebook
            message = f"✗ {name} raised {type(exc).__name__}: {exc} (case '{case.name}'). {fallback}"
            return _finish(name, False, True, message, student, library)
        problem = compare(got, expected)
        if problem is not None:
            cause = _likely_cause(got, case, mistakes, resembles or compare)
            hint = f" Likely cause: {cause}." if cause else ""
            message = f"✗ {name}, case '{case.name}': {problem}.{hint} {fallback}"
            return _finish(name, False, True, message, student, library)
    message = f"✓ {name} is correct on all {len(cases)} cases."
    return _finish(name, True, True, message, student, library)


def _likely_cause(got: Any, case: Case, mistakes: Sequence[Mistake], compare: Callable[[Any, Any], Problem]) -> str:
    for mistake in mistakes:
        args, kwargs = _copy(case)
        try:
            wrong = mistake.function(*args, **kwargs)
        except Exception:  # a mistake that cannot run on this case tells nothing
            continue
        if compare(got, wrong) is None:
            return mistake.cause
    return ""


def _finish(
    name: str, passed: bool, solved: bool, message: str, student: Callable[..., Any], library: Callable[..., Any]
) -> CheckResult:
    print(message)
    return CheckResult(name, passed, solved, message, student, library)
