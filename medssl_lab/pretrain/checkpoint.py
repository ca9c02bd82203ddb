"""Checkpoint files: written atomically, read safely, and checked before a run continues from one."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from medssl_lab.data.pool import describe_provenance
from medssl_lab.errors import TrainingError
from medssl_lab.files import atomic_file
from medssl_lab.pretrain.config import PretrainConfig

CHECKPOINT_NAME = "checkpoint.pt"

#: Settings that may differ when a run is resumed: they do not change what it computes.
FREE_ON_RESUME = frozenset(
    {
        "profile",
        "max_steps",
        "device",
        "amp",
        "channels_last",
        "collapse_check",
        "collapse_min_steps",
        "log_every",
        "checkpoint_every",
    }
)


def checkpoint_file(path: str | os.PathLike) -> Path:
    """The checkpoint a path names: the file itself, or ``checkpoint.pt`` inside a run folder."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` without ever leaving a truncated checkpoint (see :func:`medssl_lab.files.atomic_file`)."""
    with atomic_file(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint safely (tensors and plain containers only), with a clear error when it is not one."""
    path = checkpoint_file(path)
    if not path.is_file():
        raise TrainingError(f"{path}: no checkpoint there. Run `medssl-lab pretrain --out {path.parent}` first.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise TrainingError(
            f"{path}: not a readable medssl-lab checkpoint ({exc}). Delete it and pretrain again."
        ) from exc
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise TrainingError(f"{path}: not a medssl-lab checkpoint (no model/config). Delete it and pretrain again.")
    return state


def check_resumable(state: dict[str, Any], config: PretrainConfig, provenance: dict[str, Any], where: object) -> None:
    """Refuse to continue a run with settings that change what it computes, or on other data."""
    # through JSON, as reproduce.py's settings.json: tuples and lists compare equal
    saved = json.loads(json.dumps(asdict(PretrainConfig(**state["config"]))))
    current = json.loads(json.dumps(asdict(config)))
    changed = [
        f"{name} {saved[name]!r} -> {current[name]!r}"
        for name in current
        if name not in FREE_ON_RESUME and saved[name] != current[name]
    ]
    if changed:
        raise TrainingError(
            f"cannot resume the run in {where}: it was made with other settings ({'; '.join(changed)}). "
            f"Use another output folder, or start over with resume=False (notebook 01's "
            f"parameter; `medssl-lab pretrain --restart`)."
        )
    saved_data = state.get("data", {}).get("pixels_hash")
    if saved_data and saved_data != provenance["pixels_hash"]:
        raise TrainingError(
            f"cannot resume the run in {where}: it was trained on other data "
            f"({describe_provenance(state['data'])}; now {describe_provenance(provenance)}). "
            f"Check --data-dir, or start over with `medssl-lab pretrain --restart`."
        )
