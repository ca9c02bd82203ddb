"""MedNIST (58,954 64x64 JPEGs of 6 classes, 3 modalities) with a seeded stratified split.

Read from ``MedNIST.tar.gz`` (the archive MONAI's tutorials use) or its extracted
``MedNIST/`` folder, decoded once, checked against the published layout (6 classes, 58,954 images), and
cached as a uint8 array in the cache folder, keyed by a hash of the archive's bytes (or of
the folder's file list), so that later loads take well under a second and a cache never
outlives the data it was built from.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medssl_lab.config import DATA_DIR_ENV, data_dirs, default_cache_dir, find_data_file, writable_dir
from medssl_lab.data.download import download_file
from medssl_lab.data.folder import decode_gray, load_image_folder
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError
from medssl_lab.files import atomic_file, content_key

MEDNIST_URL = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/MedNIST.tar.gz"
# MONAI's archive; repacked copies differ, so only downloads are checked
MEDNIST_MD5 = "0bc7306e7427e00ad1c5526a6677552d"
MEDNIST_CLASSES = ("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT")
MEDNIST_MODALITY = {
    "AbdomenCT": "CT",
    "BreastMRI": "MR",
    "CXR": "X-ray",
    "ChestCT": "CT",
    "Hand": "X-ray",
    "HeadCT": "CT",
}
#: Images per class in the published data set: a load that finds fewer is damaged or incomplete.
MEDNIST_COUNTS = {"AbdomenCT": 10000, "BreastMRI": 8954, "CXR": 10000, "ChestCT": 10000, "Hand": 10000, "HeadCT": 10000}
MEDNIST_SIZE = 64
CACHE_VERSION = 2


@dataclass
class MedNIST:
    """All of MedNIST plus a seeded, stratified train/val/test split (made on access, to save memory)."""

    all: ImageSet
    split_index: dict[str, np.ndarray]
    source_path: Path
    cache_path: Path

    def split(self, name: str) -> ImageSet:
        """The split called ``name`` (train, val or test)."""
        if name not in self.split_index:
            raise ValueError(f"unknown split {name!r}; choose one of {tuple(self.split_index)}")
        return self.all.subset(self.split_index[name])

    @property
    def train(self) -> ImageSet:
        """The training split (built on access, to save memory)."""
        return self.split("train")

    @property
    def val(self) -> ImageSet:
        """The validation split (built on access, to save memory)."""
        return self.split("val")

    @property
    def test(self) -> ImageSet:
        """The test split (built on access, to save memory)."""
        return self.split("test")


def _find_source(data_dir: str | os.PathLike | None, download: bool) -> Path:
    """The archive or its extracted folder in the data folders, else downloaded (when allowed)."""
    for name in ("MedNIST.tar.gz", "MedNIST"):
        path = find_data_file(name, data_dir)
        if path is not None:
            return path
    searched = ", ".join(str(d) for d in data_dirs(data_dir))
    how = (
        f"Put MedNIST.tar.gz (or its extracted MedNIST/ folder) into a folder and pass it as data_dir "
        f"or set {DATA_DIR_ENV}."
    )
    if not download:
        raise DataError(f"MedNIST.tar.gz not found in: {searched}. {how}")
    try:
        return download_file(MEDNIST_URL, writable_dir(data_dir) / "MedNIST.tar.gz", MEDNIST_MD5)
    except (DataError, PermissionError) as exc:
        raise DataError(f"MedNIST.tar.gz not found in: {searched}, and the download failed ({exc}). {how}") from exc


def _decode_archive(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of every MedNIST/<class>/*.jpeg in the tarball, read in one pass without extracting it."""
    images, labels = [], []
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                parts = Path(member.name).parts
                if not member.isfile() or len(parts) < 2 or parts[-2] not in MEDNIST_CLASSES:
                    continue
                fileobj = tar.extractfile(member)
                assert fileobj is not None  # a regular file (member.isfile() above)
                data = fileobj.read()
                images.append(decode_gray(data, f"{path}:{member.name}", MEDNIST_SIZE))
                labels.append(MEDNIST_CLASSES.index(parts[-2]))
    except (tarfile.TarError, EOFError, OSError, zlib.error, DataError) as exc:  # DataError: a member that is no JPEG
        raise DataError(f"{path}: damaged or truncated archive ({exc}). Download MedNIST.tar.gz again.") from exc
    if not images:
        raise DataError(f"{path}: no MedNIST/<class>/*.jpeg images inside (classes {MEDNIST_CLASSES}).")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _decode_folder(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of an extracted MedNIST/ folder, labels numbered as in the archive (MEDNIST_CLASSES)."""
    folder = load_image_folder(path, size=MEDNIST_SIZE)
    unknown = set(folder.class_names) - set(MEDNIST_CLASSES)
    if unknown:
        raise DataError(f"{path}: class folders {sorted(unknown)} are not MedNIST classes {MEDNIST_CLASSES}.")
    remap = np.array([MEDNIST_CLASSES.index(name) for name in folder.class_names])
    return folder.images, remap[folder.labels[:, 0]]


def check_layout(labels: np.ndarray, source: Path) -> None:
    """Refuse a decoded MedNIST whose class counts differ from the published ones (a damaged or partial copy)."""
    counts = np.bincount(labels, minlength=len(MEDNIST_CLASSES))
    wrong = [
        f"{name} {n:,} of {MEDNIST_COUNTS[name]:,}"
        for name, n in zip(MEDNIST_CLASSES, counts)
        if n != MEDNIST_COUNTS[name]
    ]
    if wrong:
        raise DataError(
            f"{source}: {counts.sum():,} images where MedNIST has {sum(MEDNIST_COUNTS.values()):,} "
            f"({', '.join(wrong)}): the copy is damaged or incomplete. Download MedNIST.tar.gz again "
            f"(or extract it again); nothing was cached."
        )


def _cache_files(source: Path) -> tuple[Path, Path]:
    """Decoded copy (images, labels) in the cache folder (never the data folder, which may be shared)."""
    folder = default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot use the cache folder {folder} ({exc}); point XDG_CACHE_HOME at a writable folder."
        ) from exc
    stem = f"mednist_v{CACHE_VERSION}_{content_key(source)}"
    return folder / f"{stem}_images.npy", folder / f"{stem}_labels.npy"


def _load_or_build_cache(source: Path) -> tuple[np.ndarray, np.ndarray, Path]:
    """Images come back memory-mapped: only what is indexed or resized is ever read into memory."""
    image_file, label_file = _cache_files(source)
    if image_file.exists() and label_file.exists():
        try:
            images = np.load(image_file, mmap_mode="r")
            labels = np.load(label_file)
            if images.shape == (len(labels), MEDNIST_SIZE, MEDNIST_SIZE) and images.dtype == np.uint8:
                check_layout(labels, source)
                return images, labels, image_file
        except (OSError, ValueError, DataError):
            pass  # a damaged cache is rebuilt, not trusted
    images, labels = _decode_archive(source) if source.is_file() else _decode_folder(source)
    check_layout(labels, source)
    for path, array in ((label_file, labels), (image_file, images)):  # images last: their file marks a complete cache
        with atomic_file(path, suffix=".npy") as tmp:
            np.save(tmp, array)
    return np.load(image_file, mmap_mode="r"), labels, image_file


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, val, test) holding each class in the given proportions, fixed by ``seed``."""
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        for part, chunk in zip(parts, np.split(idx, [n_train, n_train + n_val])):
            part.append(chunk)
    return tuple(np.sort(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def load_mednist(
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    download: bool = True,
) -> MedNIST:
    """Load MedNIST (decoding and caching it on first use) with a seeded stratified split."""
    source = _find_source(data_dir, download)
    images, labels, cache = _load_or_build_cache(source)
    modality = np.array([MEDNIST_MODALITY[c] for c in MEDNIST_CLASSES], dtype=object)[labels]
    sources = np.full(len(labels), "mednist", dtype=object)
    everything = ImageSet(images, labels, MEDNIST_CLASSES, "multi-class", modality, sources)
    split_index = dict(zip(("train", "val", "test"), stratified_split(labels, fractions, seed)))
    return MedNIST(all=everything, split_index=split_index, source_path=source, cache_path=cache)
