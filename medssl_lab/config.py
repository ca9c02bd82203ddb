"""Where data lives and which device to run on: the two settings every entry point shares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from medssl_lab.errors import DataError

DATA_DIR_ENV = "MEDSSL_DATA_DIR"
INTERACTIVE_ENV = "MEDSSL_INTERACTIVE"  # "0": headless (papermill, CI): no widgets, plain-text progress bars


def default_cache_dir() -> Path:
    """Folder for downloads and decoded caches when no data folder is named (``~/.cache/medssl-lab``)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "medssl-lab"


def data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for data files, in order: the argument, ``$MEDSSL_DATA_DIR``, the cache folder.

    A named folder that does not exist is an error (a typo would otherwise be searched, found
    empty, and the data fetched or faked elsewhere); it is never created.
    """
    dirs: list[Path] = []
    for candidate, how in ((data_dir, "the data folder"), (os.environ.get(DATA_DIR_ENV), f"${DATA_DIR_ENV}")):
        if candidate:
            folder = Path(candidate).expanduser()
            if not folder.is_dir():
                raise DataError(
                    f"{how} {folder} does not exist (or is not a folder). Check the path; to download the "
                    f"data into a new folder, create it first."
                )
            dirs.append(folder)
    dirs.append(default_cache_dir())
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def find_data_file(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """First existing ``name`` among :func:`data_dirs`, or None."""
    for folder in data_dirs(data_dir):
        path = folder / name
        if path.exists():
            return path
    return None


def writable_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Folder to write downloads and caches into: the first searched folder that is writable (only the cache folder
    is ever created)."""
    for folder in data_dirs(data_dir):
        if folder == default_cache_dir():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
        if os.access(folder, os.W_OK):
            return folder
    raise PermissionError(f"none of {data_dirs(data_dir)} is writable; name a writable folder with {DATA_DIR_ENV}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is passed to :class:`torch.device`."""
    if isinstance(device, torch.device):
        return device
    if device != "auto":
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(
                f"device {device!r} is not a device name ({exc}); use 'auto', 'cpu', 'cuda' or 'mps'"
            ) from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available; use device='auto' or 'cpu'")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device {device!r} requested but MPS is not available; use device='auto' or 'cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def interactive_setting() -> bool | None:
    """``MEDSSL_INTERACTIVE`` read as True (1/true/yes/on), False (0/false/no/off) or None (unset or other)."""
    value = os.environ.get(INTERACTIVE_ENV, "").strip().lower()
    return True if value in ("1", "true", "yes", "on") else False if value in ("0", "false", "no", "off") else None


def headless() -> bool:
    """True when ``MEDSSL_INTERACTIVE`` says no frontend is watching (set by ``medssl-lab notebooks run``)."""
    return interactive_setting() is False


def progress_bar(*args: Any, **kwargs: Any) -> Any:
    """A tqdm bar: the notebook widget interactively, plain text when :func:`headless`.

    Plain text keeps widget JSON out of saved notebooks.
    """
    if headless():
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(*args, **kwargs)
