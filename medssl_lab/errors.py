"""The package's exception types: every bad input raises one of these with what, where and what to do."""

from __future__ import annotations

import importlib
from types import ModuleType


class MedsslError(Exception):
    """Base class of every error medssl-lab raises on purpose."""


class DataError(MedsslError, ValueError):
    """A data file or folder is missing, unreadable or not what it claims to be.

    The message always names the file or folder, what was wrong, and what to do.
    """


class MissingExtra(MedsslError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def import_extra(module: str, extra: str, needed_for: str, package: str | None = None) -> ModuleType:
    """``import module`` where it is used, or a :class:`MissingExtra` naming the extra of pyproject.toml that
    installs it (``package`` when its name on the index differs, e.g. umap-learn)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{needed_for} needs {package or module}, which is not installed (the core package leaves it out); "
            f'pip install "medssl-lab[{extra}]"'
        ) from exc


class TrainingError(MedsslError, RuntimeError):
    """Training went wrong in a way the user can act on (NaN loss, collapse, bad checkpoint)."""


class ConfigError(MedsslError, ValueError):
    """A run's settings file (``config.yaml``) or a ``--set`` override that cannot be used: missing, not YAML, an
    unknown key or a value of the wrong type. The message names the file (or the ``--set``), the key and what fits.
    """


# The DICOM reader's failures, by kind, so that callers decide by type and never by the words of a message
# (a store's rejected table, a folder scan that skips files that are not DICOM).


class NotDicom(DataError):
    """The file is not DICOM at all (text, PNG, ...): a folder scan skips it, a store rejects it as not an image."""


class CorruptDicom(DataError):
    """A DICOM file that cannot be parsed, or whose pixels cannot be read: truncated, damaged or mis-described."""


class NoPixelData(DataError):
    """A DICOM object without pixels: a plan or report, or a file cut off before its pixel data."""


class UnsupportedTransferSyntax(DataError):
    """Compressed pixels that no installed decoder reads: the fix is a plugin or a conversion, not a re-copy."""


# The volume reader's failures (NIfTI, MHA, NRRD: medssl_lab.data.volume), by kind, as for DICOM.


class NotAVolume(DataError):
    """A file named as a volume (``.nii``, ``.mha``, ``.nrrd``, ...) whose content is no such format."""


class CorruptVolume(DataError):
    """A volume whose header or voxels cannot be read in full: truncated, a damaged gzip stream, a bad header."""


class UnsupportedVolume(DataError):
    """A readable volume that is not one grey-value image grid: more than 4 dimensions, vector or colour voxels."""
