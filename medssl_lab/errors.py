"""The package's exception types: every bad input raises one of these with what, where and what to do."""

from __future__ import annotations


class MedsslError(Exception):
    """Base class of every error medssl-lab raises on purpose."""


class DataError(MedsslError, ValueError):
    """A data file or folder is missing, unreadable or not what it claims to be.

    The message always names the file or folder, what was wrong, and what to do.
    """


class TrainingError(MedsslError, RuntimeError):
    """Training went wrong in a way the user can act on (NaN loss, collapse, bad checkpoint)."""
