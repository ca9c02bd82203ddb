"""Image folders with one subfolder per class (PNG/JPEG), read as grayscale uint8."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def decode_gray(data: bytes | Path, where: str, size: int | None = None) -> np.ndarray:
    """Decode one image file (bytes or path) to (H, W) uint8 grayscale, resized to ``size`` if given."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
            gray = img.convert("L")
            if size is not None and gray.size != (size, size):
                gray = gray.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(gray, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{where}: not a readable image ({exc}). Remove or replace the file.") from exc


def list_class_folder(root: str | os.PathLike) -> dict[str, list[Path]]:
    """Map each class subfolder of ``root`` to its sorted image files; errors when there is nothing to read."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder. Pass a folder with one subfolder of images per class.")
    try:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except PermissionError as exc:
        raise DataError(f"{root}: folder is not readable ({exc}). Fix its permissions.") from exc
    classes = {d.name: sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) for d in subdirs}
    classes = {name: files for name, files in classes.items() if files}
    if not classes:
        raise DataError(
            f"{root}: no images found. Expected {root}/<class name>/<image>{'|'.join(IMAGE_SUFFIXES)}."
        )
    return classes


def load_image_folder(
    root: str | os.PathLike, size: int | None = None, modality: str = "unknown", source: str | None = None
) -> ImageSet:
    """Read a folder of class subfolders into an :class:`ImageSet` (classes in sorted order).

    Images of different sizes need ``size`` so that they can be stacked.
    """
    classes = list_class_folder(root)
    images, labels = [], []
    for index, (name, files) in enumerate(classes.items()):
        for file in files:
            images.append(decode_gray(file, str(file), size))
            labels.append(index)
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(f"{root}: images have different sizes {sorted(shapes)[:4]}; pass size=... to resize them.")
    n = len(images)
    return ImageSet(
        np.stack(images), np.asarray(labels), tuple(classes), "multi-class",
        np.full(n, modality, dtype=object), np.full(n, source or Path(root).name, dtype=object),
    )
