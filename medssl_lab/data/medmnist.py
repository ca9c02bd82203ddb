"""MedMNIST 2D subsets from the official ``{flag}.npz`` / ``{flag}_{size}.npz`` files.

Files are looked up in the data folders (argument, ``$MEDSSL_DATA_DIR``, cache), checked
against the md5 published by MedMNIST, and downloaded from the official Zenodo record
when missing. Colour subsets are converted to grayscale, since every model of the
package takes one channel. Labels are kept as in the file: (N, L).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from medssl_lab.config import DATA_DIR_ENV, data_dirs, find_data_file, writable_dir
from medssl_lab.data.download import check_md5, download_file
from medssl_lab.data.intensity import LUMA_WEIGHTS
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError

SPLITS = ("train", "val", "test")
SIZES = (28, 64, 128, 224)


@lru_cache(maxsize=1)
def _metadata() -> dict:
    """The bundled MedMNIST metadata (subsets, md5s, download URL), read once: it never changes at run time."""
    return json.loads(resources.files("medssl_lab.data").joinpath("medmnist_info.json").read_text())


def medmnist_subsets() -> list[str]:
    """Names (flags) of the MedMNIST 2D subsets, e.g. ``pneumoniamnist``."""
    return list(_metadata()["subsets"])


def medmnist_info(flag: str) -> dict:
    """Published metadata of one subset: task, label names, modality, sample counts, md5 per size."""
    subsets = _metadata()["subsets"]
    if flag not in subsets:
        raise DataError(f"unknown MedMNIST subset {flag!r}; choose one of: {', '.join(subsets)}")
    return subsets[flag]


def medmnist_filename(flag: str, size: int = 28) -> str:
    """The official file name: ``{flag}.npz`` at 28 px, ``{flag}_{size}.npz`` otherwise."""
    if size not in SIZES:
        raise DataError(f"MedMNIST size {size} does not exist; choose one of {SIZES}")
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


@dataclass
class MedMNIST:
    """One MedMNIST subset at one size, with its official splits."""

    flag: str
    size: int
    train: ImageSet
    val: ImageSet
    test: ImageSet
    path: Path

    def split(self, name: str) -> ImageSet:
        """The split called ``name`` (train, val or test)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {SPLITS}")
        return getattr(self, name)


def _locate(flag: str, size: int, data_dir: str | os.PathLike | None, download: bool) -> Path:
    """The subset's npz in the data folders, else downloaded (when allowed); a DataError says where it looked."""
    name = medmnist_filename(flag, size)
    path = find_data_file(name, data_dir)
    if path is not None:
        return path
    searched = ", ".join(str(d) for d in data_dirs(data_dir))
    how = (
        f"Put the official {name} (https://zenodo.org/records/10519652) into a folder and pass it as data_dir "
        f"or set {DATA_DIR_ENV}."
    )
    if not download:
        raise DataError(f"{name} not found in: {searched}. {how}")
    md5 = medmnist_info(flag)["md5"].get(str(size))
    url = _metadata()["url_template"].format(name=name)
    try:
        return download_file(url, writable_dir(data_dir) / name, md5)
    except (DataError, PermissionError) as exc:
        raise DataError(f"{name} not found in: {searched}, and the download failed ({exc}). {how}") from exc


def _read_split(
    npz: np.lib.npyio.NpzFile, path: Path, split: str, flag: str, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """One split's (images, labels), checked against the published shapes so a wrong or damaged file fails early."""
    info = medmnist_info(flag)
    keys = (f"{split}_images", f"{split}_labels")
    missing = [k for k in keys if k not in npz.files]
    if missing:
        raise DataError(
            f"{path}: keys {missing} missing (found {npz.files}); this is not a MedMNIST file. "
            f"Replace it with the official {medmnist_filename(flag, size)}."
        )
    images, labels = npz[keys[0]], npz[keys[1]]
    n = info["n_samples"][split]
    channels = info["n_channels"]
    expected = (n, size, size) if channels == 1 else (n, size, size, channels)
    if images.shape != expected or images.dtype != np.uint8:
        raise DataError(
            f"{path}: {keys[0]} has shape {images.shape} {images.dtype}, expected {expected} uint8 for "
            f"{flag} at {size} px. Check the subset name and size, or replace the file with the official one."
        )
    n_labels = len(info["label"]) if info["task"].startswith("multi-label") else 1
    if labels.shape != (n, n_labels):
        raise DataError(f"{path}: {keys[1]} has shape {labels.shape}, expected {(n, n_labels)}. Replace the file.")
    if channels == 3:  # ITU-R 601 luma, as PIL's "L" conversion
        images = np.round(images @ np.array(LUMA_WEIGHTS)).clip(0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def load_medmnist(
    flag: str = "pneumoniamnist",
    size: int = 28,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    verify_md5: bool = True,
) -> MedMNIST:
    """Load a MedMNIST 2D subset with its official train/val/test splits.

    Args:
        flag: subset name, e.g. ``"pneumoniamnist"`` (see :func:`medmnist_subsets`).
        size: image size, 28 (default), 64, 128 or 224.
        data_dir: folder holding the npz files; else ``$MEDSSL_DATA_DIR``, then the cache folder.
        download: fetch the official file when it is in none of the folders.
        verify_md5: check the file against the md5 MedMNIST publishes.
    """
    info = medmnist_info(flag)
    path = _locate(flag, size, data_dir, download)
    if verify_md5:
        check_md5(path, info["md5"].get(str(size)), "Delete it and download the official file again.")
    class_names = tuple(info["label"][str(i)] for i in range(len(info["label"])))
    splits = {}
    try:
        with np.load(path, allow_pickle=False) as npz:  # never unpickle: a disguised pickle is refused here
            for split in SPLITS:
                images, labels = _read_split(npz, path, split, flag, size)
                n = len(images)
                splits[split] = ImageSet(
                    images,
                    labels,
                    class_names,
                    info["task"],
                    np.full(n, info["modality"], dtype=object),
                    np.full(n, flag, dtype=object),
                )
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # truncated, empty, bad CRC, object arrays
        raise DataError(
            f"{path}: not a readable npz file ({type(exc).__name__}: {exc}). Replace it with the "
            f"official {medmnist_filename(flag, size)}."
        ) from exc
    return MedMNIST(flag=flag, size=size, path=path, **splits)
