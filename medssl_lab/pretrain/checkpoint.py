"""Checkpoint files: written atomically, read safely, and checked before a run continues from one."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from medssl_lab.data.provenance import describe_provenance
from medssl_lab.errors import TrainingError
from medssl_lab.files import atomic_file, remove_leftovers
from medssl_lab.pretrain.config import PretrainConfig

CHECKPOINT_NAME = "checkpoint.pt"
#: Encoders shipped with the package, one per profile that has one: trained by the package's own ``pretrain``
#: command (see :func:`export_encoder`), so that notebooks 02-05 can start without pretraining first.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "weights"
SHIPPED_PROFILES = ("cpu",)

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
        "knn_every",
        "knn_images",
        "checkpoint_every",
    }
)


def checkpoint_file(path: str | os.PathLike) -> Path:
    """The checkpoint a path names: the file itself, or ``checkpoint.pt`` inside a run folder."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` without ever leaving a truncated checkpoint (see :func:`medssl_lab.files.atomic_file`)."""
    remove_leftovers(path)  # of an earlier run of this folder that was killed while writing
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


def shipped_encoder(profile: str) -> Path | None:
    """The encoder shipped for ``profile``, or None when the package has none for it."""
    path = SHIPPED_DIR / f"encoder_{profile}.pt"
    return path if profile in SHIPPED_PROFILES and path.is_file() else None


def export_encoder(run: str | os.PathLike, dest: str | os.PathLike, command: str) -> Path:
    """Write the weights of a finished run, with its config, data provenance, history and the ``command`` that made
    it, and nothing needed only to continue training (optimizer, random state, queue): the file to ship."""
    state = load_checkpoint(run)
    if state.get("stopped") != "finished":
        raise TrainingError(
            f"{checkpoint_file(run)} is not a finished run (stopped: {state.get('stopped')!r}); "
            "let it finish before exporting its encoder."
        )
    keep = ("config", "data", "model", "step", "train_seconds", "history", "stopped")
    shipped = {**{k: state[k] for k in keep if k in state}, "made_by": command}
    save_checkpoint(shipped, Path(dest))
    return Path(dest)
