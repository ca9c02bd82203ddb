"""MedMNIST loading on the official PneumoniaMNIST file, and every way a file can be wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from medssl_lab.data import medmnist as mm
from medssl_lab.data.download import md5sum
from medssl_lab.errors import DataError


def test_pneumoniamnist_real_values(data_dir: Path) -> None:
    data = mm.load_medmnist("pneumoniamnist", data_dir=data_dir)
    assert data.train.images.shape == (4708, 28, 28) and data.train.images.dtype == np.uint8
    assert data.train.labels.shape == (4708, 1)
    assert data.train.class_counts() == {"normal": 1214, "pneumonia": 3494}
    assert len(data.val) == 524 and len(data.test) == 624
    assert data.test.class_counts() == {"normal": 234, "pneumonia": 390}
    assert data.train.task == "binary-class"
    assert set(data.train.modality) == {"X-ray"} and set(data.train.source) == {"pneumoniamnist"}
    assert 40 < data.train.images.mean() < 200  # real radiographs, not blank
    assert data.train.targets.shape == (4708,)


def test_metadata_covers_all_2d_subsets() -> None:
    subsets = mm.medmnist_subsets()
    assert len(subsets) == 12 and "pneumoniamnist" in subsets and "chestmnist" in subsets
    chest = mm.medmnist_info("chestmnist")
    assert chest["task"].startswith("multi-label") and len(chest["label"]) == 14
    assert mm.medmnist_filename("pneumoniamnist", 28) == "pneumoniamnist.npz"
    assert mm.medmnist_filename("pneumoniamnist", 64) == "pneumoniamnist_64.npz"


def test_unknown_subset_and_size() -> None:
    with pytest.raises(DataError, match="unknown MedMNIST subset 'pneumonia'.*pneumoniamnist"):
        mm.load_medmnist("pneumonia")
    with pytest.raises(DataError, match="size 30"):
        mm.load_medmnist("pneumoniamnist", size=30)


def test_missing_file_names_file_and_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    with pytest.raises(DataError) as err:
        mm.load_medmnist("breastmnist", data_dir=tmp_path, download=False)
    assert "breastmnist.npz not found" in str(err.value) and str(tmp_path) in str(err.value)
    assert "MEDSSL_DATA_DIR" in str(err.value)


def _fake_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_npz_missing_keys(tmp_path: Path) -> None:
    _fake_npz(tmp_path / "pneumoniamnist.npz", images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"pneumoniamnist.npz: keys \['train_images', 'train_labels'\] missing"):
        mm.load_medmnist("pneumoniamnist", data_dir=tmp_path, verify_md5=False)
    with pytest.raises(DataError, match="md5 is"):
        mm.load_medmnist("pneumoniamnist", data_dir=tmp_path)


def test_npz_wrong_shapes(tmp_path: Path) -> None:
    split = {f"{s}_images": np.zeros((n, 32, 32), np.uint8) for s, n in (("train", 4708), ("val", 524), ("test", 624))}
    split |= {f"{s}_labels": np.zeros((n, 1), np.uint8) for s, n in (("train", 4708), ("val", 524), ("test", 624))}
    _fake_npz(tmp_path / "pneumoniamnist.npz", **split)
    with pytest.raises(DataError, match=r"train_images has shape \(4708, 32, 32\) uint8, expected \(4708, 28, 28\)"):
        mm.load_medmnist("pneumoniamnist", data_dir=tmp_path, verify_md5=False)


def test_not_an_npz(tmp_path: Path) -> None:
    (tmp_path / "pneumoniamnist.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(DataError, match="not a readable npz"):
        mm.load_medmnist("pneumoniamnist", data_dir=tmp_path, verify_md5=False)


def _damaged(real: bytes, kind: str) -> bytes:
    if kind == "empty":
        return b""
    if kind == "truncated":
        return real[: len(real) // 2]
    damaged = bytearray(real)  # one byte of the compressed image data: the zip's CRC check fails on read
    damaged[len(real) // 3] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize("kind", ["empty", "truncated", "bad_crc"])
def test_damaged_npz_is_a_data_error_naming_the_file(kind: str, data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "pneumoniamnist.npz").write_bytes(_damaged((data_dir / "pneumoniamnist.npz").read_bytes(), kind))
    with pytest.raises(DataError, match="pneumoniamnist.npz: not a readable npz file.*Replace it with the official"):
        mm.load_medmnist("pneumoniamnist", data_dir=tmp_path, verify_md5=False)


def test_object_arrays_are_refused_not_unpickled(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "pneumoniamnist.npz",
        train_images=np.array([object()] * 2, dtype=object),
        train_labels=np.zeros((2, 1), np.uint8),
    )
    with pytest.raises(DataError, match="not a readable npz file .ValueError: Object arrays cannot be loaded"):
        mm.load_medmnist("pneumoniamnist", data_dir=tmp_path, verify_md5=False)


def test_download_from_local_url(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real download path, fed from a local file:// URL (no internet here)."""
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(data_dir / "pneumoniamnist.npz", mirror / "pneumoniamnist.npz")
    meta = dict(mm._metadata())
    meta["url_template"] = mirror.as_uri() + "/{name}"
    monkeypatch.setattr(mm, "_metadata", lambda: meta)
    target = tmp_path / "data"
    target.mkdir()
    data = mm.load_medmnist("pneumoniamnist", data_dir=target)
    assert data.path == target / "pneumoniamnist.npz"
    assert md5sum(data.path) == "28209eda62fecd6e6a2d98b1501bb15f"
    assert len(data.train) == 4708


def test_download_with_wrong_md5_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "pneumoniamnist.npz").write_bytes(b"not the real file")
    meta = dict(mm._metadata())
    meta["url_template"] = mirror.as_uri() + "/{name}"
    monkeypatch.setattr(mm, "_metadata", lambda: meta)
    target = tmp_path / "data"
    target.mkdir()  # a named folder must exist: downloads go into it, it is never created
    with pytest.raises(DataError, match="download failed.*md5"):
        mm.load_medmnist("pneumoniamnist", data_dir=target)
    assert list(target.iterdir()) == []


def test_download_unreachable_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    meta = dict(mm._metadata())
    meta["url_template"] = (tmp_path / "nowhere").as_uri() + "/{name}"
    monkeypatch.setattr(mm, "_metadata", lambda: meta)
    with pytest.raises(DataError, match="pneumoniamnist.npz not found in.*download failed"):
        mm.load_medmnist("pneumoniamnist", data_dir=tmp_path)
