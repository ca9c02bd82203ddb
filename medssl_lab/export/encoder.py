"""``medssl-lab export``: a pretraining run's encoder as files other tools read, each checked before it is kept."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medssl_lab import __version__
from medssl_lab.augment import MEAN, STD
from medssl_lab.errors import DataError, MissingExtra
from medssl_lab.evaluation.inference import extract_features
from medssl_lab.evaluation.perturbations import prepare
from medssl_lab.export.card import INTENDED_USE, model_card
from medssl_lab.export.formats import (
    FORMATS,
    LOADERS,
    max_difference,
    write_config,
    write_onnx,
    write_safetensors,
    write_torchscript,
)
from medssl_lab.models import resnet_arguments
from medssl_lab.pretrain.checkpoint import checkpoint_file, load_checkpoint
from medssl_lab.pretrain.pretrained import Pretrained, load_pretrained

#: real files the exports are checked on (pydicom and pydicom-data): CT, MR, ultrasound, radiograph, nuclear medicine
CHECK_FILES = ("CT_small.dcm", "MR_small.dcm", "emri_small.dcm", "US1_UNCR.dcm", "RG1_UNCR.dcm", "JPEG2000.dcm")

#: the largest feature difference (fp32) an export may show against the package
TOLERANCE = 1e-5


class ExportMismatch(RuntimeError):
    """An exported file gives other features than the package: it is not kept."""


@dataclass
class ExportReport:
    """What an export wrote and how close each file came to the package's features."""

    out_dir: Path
    files: dict[str, int]  #: file name -> bytes
    differences: dict[str, float]  #: format -> max abs feature difference on the check images
    n_check_images: int
    seconds: float


def check_images(size: int) -> np.ndarray:
    """Real images to compare features on: pydicom's test files through the store's decoding rules, uint8."""
    from pydicom.data import get_testdata_file

    from medssl_lab.data.store.decode import decode_file
    from medssl_lab.data.store.rules import Rules

    images = []
    for name in CHECK_FILES:
        path = get_testdata_file(name)
        if path is not None:
            images.append(decode_file(Path(str(path)), Rules(size=size), b"").images)
    return np.concatenate(images)


def encoder_config(pretrained: Pretrained, recorded: dict[str, Any]) -> dict[str, Any]:
    """``config.json``: the MONAI ResNet arguments, the input convention and what the encoder was trained with
    (``recorded``: the settings as the checkpoint holds them, not today's defaults for what it predates)."""
    config = pretrained.config
    return {
        "format_version": 1,
        "monai_resnet": resnet_arguments(config.backbone),
        "feature_size": pretrained.model.feat_dim,
        "input": {
            "channels": 1,
            "size": config.image_size,
            "dtype": "float32",
            "scale": "grey levels in [0, 1] (uint8 / 255); bright = dense (CT through an HU window)",
            "mean": MEAN,
            "std": STD,
        },
        "pretraining": recorded,
        "data": pretrained.data,
        "medssl_lab_version": __version__,
        "intended_use": INTENDED_USE.replace("**", ""),
    }


def _write(fmt: str, pretrained: Pretrained, example: torch.Tensor, folder: Path) -> None:
    backbone = pretrained.model.backbone
    if fmt == "safetensors":
        write_safetensors(backbone, folder)
    elif fmt == "torchscript":
        write_torchscript(backbone, example, folder)
    else:
        write_onnx(backbone, example, folder)


def require_tools(formats: tuple[str, ...]) -> None:
    """Fail before any work when a format's tool is missing, saying which extra installs it."""
    needed = {"safetensors": ["safetensors"], "onnx": ["onnx", "onnxscript", "onnxruntime"]}
    missing = [m for fmt in formats for m in needed.get(fmt, []) if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(
            f"export: {', '.join(missing)} not installed; pip install 'medssl-lab[export]' (or leave out "
            f"--formats {' '.join(f for f in formats if f != 'torchscript')})"
        )


def _staging_folder(out_dir: Path) -> Path:
    """A hidden folder inside ``out_dir`` (same file system, so the final moves are atomic), or a clear error."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    except (FileExistsError, NotADirectoryError) as exc:
        raise DataError(f"export: {out_dir} is a file, not a folder; name a folder with --out") from exc
    except PermissionError as exc:
        raise DataError(f"export: cannot write into {out_dir} (permission denied); choose another --out") from exc


def export_encoder(
    run: str | os.PathLike,
    out_dir: str | os.PathLike,
    formats: tuple[str, ...] = FORMATS,
    benchmark: dict[str, dict[str, float]] | None = None,
) -> ExportReport:
    """Write the encoder of ``run`` (checkpoint or run folder) into ``out_dir``: config.json, the chosen formats and
    the model card, each format loaded back with its own tool and compared with the package's features.

    Everything is written into a staging folder first; the files move into ``out_dir`` only when every check has
    passed, so a failed export leaves nothing behind. ``benchmark`` (the representation benchmark's rows) goes
    into the card.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export formats {unknown}; choose from {', '.join(FORMATS)}")
    require_tools(formats)
    start = time.perf_counter()
    pretrained = load_pretrained(run, "cpu")
    state = load_checkpoint(checkpoint_file(run))
    images = check_images(pretrained.image_size)
    reference = extract_features(pretrained.model, images, pretrained.image_size, device="cpu")
    inputs = prepare(torch.from_numpy(images), pretrained.image_size)
    out_dir = Path(out_dir)
    staging = _staging_folder(out_dir)
    try:
        config = encoder_config(pretrained, state["config"])
        write_config(config, staging)
        differences = {}
        for fmt in formats:
            _write(fmt, pretrained, inputs[:2], staging)
            differences[fmt] = max_difference(reference, LOADERS[fmt](staging), inputs)
            if not differences[fmt] <= TOLERANCE:
                raise ExportMismatch(
                    f"export: the {fmt} file gives features up to {differences[fmt]:.2e} away from the package's "
                    f"(allowed {TOLERANCE:.0e}); nothing was written to {out_dir}"
                )
        files = {p.name: p.stat().st_size for p in staging.iterdir()}
        card = model_card(config, state, files, differences, len(images), benchmark)
        (staging / "README.md").write_text(card)
        for path in staging.iterdir():
            os.chmod(path, 0o644)
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = {name: (out_dir / name).stat().st_size for name in ["config.json", "README.md", *files]}
    return ExportReport(out_dir, files, differences, len(images), time.perf_counter() - start)
