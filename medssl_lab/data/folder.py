"""Image folders with one subfolder per class (PNG/JPEG), read as grayscale uint8."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medssl_lab.data.intensity import to_uint8_by_range
from medssl_lab.data.resize import resize_uint8
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # PIL modes of images wider than 8 bits


def decode_gray(data: bytes | Path, where: str, size: int | None = None) -> np.ndarray:
    """Decode one image file (bytes or path) to (H, W) uint8 grayscale, resized to ``size`` if given.

    8-bit and colour images are converted to grey by PIL; 16-bit, 32-bit and float images are
    scaled by :func:`~medssl_lab.data.intensity.to_uint8_by_range` (their bit depth in use, or
    their finite range), never clipped to 8 bits. The resize is the package's one uint8 resize
    (:func:`~medssl_lab.data.resize.resize_uint8`): a folder loaded at a size has the pixels of
    one loaded as it is and resized later, in a pool or a stack.
    """
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
            if img.mode in WIDE_MODES:
                gray = np.asarray(to_uint8_by_range(np.asarray(img), where), dtype=np.uint8)
            else:
                gray = np.asarray(img.convert("L"), dtype=np.uint8)
        return gray if size is None else resize_uint8(gray[None], size)[0]
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
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
        raise DataError(f"{root}: no images found. Expected {root}/<class name>/<image>{'|'.join(IMAGE_SUFFIXES)}.")
    return classes


def load_image_folder(
    root: str | os.PathLike,
    size: int | None = None,
    modality: str = "unknown",
    source: str | None = None,
    on_error: str = "raise",
) -> ImageSet:
    """Read a folder of class subfolders into an :class:`ImageSet` (classes in sorted order).

    Images of different sizes need ``size`` so that they can be stacked. A file that cannot be
    decoded stops the load with an error naming it (``on_error="raise"``), or is left out with
    one warning that lists every such file (``on_error="skip"``).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    classes = list_class_folder(root)
    images, labels, skipped = [], [], []
    for index, (_name, files) in enumerate(classes.items()):
        for file in files:
            try:
                images.append(decode_gray(file, str(file), size))
            except DataError as exc:
                if on_error == "raise":
                    raise DataError(f"{exc} (or pass on_error='skip' to leave unreadable files out)") from exc
                skipped.append(f"{file} ({exc.__cause__ or exc})")
                continue
            labels.append(index)
    if skipped:
        warnings.warn(f"{root}: {len(skipped)} unreadable file(s) left out: " + "; ".join(skipped), stacklevel=2)
    if not images:
        raise DataError(f"{root}: none of its images could be read; see the warning for each file.")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(f"{root}: images have different sizes {sorted(shapes)[:4]}; pass size=... to resize them.")
    n = len(images)
    return ImageSet(
        np.stack(images),
        np.asarray(labels),
        tuple(classes),
        "multi-class",
        np.full(n, modality, dtype=object),
        np.full(n, source or Path(root).name, dtype=object),
    )
