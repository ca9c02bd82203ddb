"""MedNIST from the real archive: counts, modalities, cache, split; damaged inputs."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medssl_lab.data import mednist as mednist_module
from medssl_lab.data.mednist import MEDNIST_CLASSES, load_mednist, stratified_split
from medssl_lab.errors import DataError

COUNTS = {"AbdomenCT": 10000, "BreastMRI": 8954, "CXR": 10000, "ChestCT": 10000, "Hand": 10000, "HeadCT": 10000}


@pytest.fixture(scope="module")
def mednist(data_dir: Path):
    return load_mednist(data_dir)


def test_counts_and_modalities(mednist) -> None:
    assert mednist.all.images.shape == (58954, 64, 64) and mednist.all.images.dtype == np.uint8
    assert mednist.all.class_counts() == COUNTS
    modality_counts = dict(zip(*np.unique(mednist.all.modality.astype(str), return_counts=True)))
    assert modality_counts == {"CT": 30000, "MR": 8954, "X-ray": 20000}


def test_split_is_stratified_disjoint_and_seeded(mednist, data_dir: Path) -> None:
    idx = mednist.split_index
    assert sum(len(v) for v in idx.values()) == 58954
    assert len(np.intersect1d(idx["train"], idx["test"])) == 0 and len(np.intersect1d(idx["val"], idx["test"])) == 0
    assert mednist.train.class_counts()["BreastMRI"] == 7163 and mednist.test.class_counts()["Hand"] == 1000
    again = load_mednist(data_dir, seed=0).split_index
    other = load_mednist(data_dir, seed=1).split_index
    assert np.array_equal(again["test"], idx["test"]) and not np.array_equal(other["test"], idx["test"])


def test_second_load_comes_from_cache(mednist, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mednist.cache_path.exists()

    def no_decoding(source: Path) -> None:
        raise AssertionError(f"{source} was decoded again instead of read from the cache")

    monkeypatch.setattr(mednist_module, "_decode_archive", no_decoding)
    monkeypatch.setattr(mednist_module, "_decode_folder", no_decoding)
    again = load_mednist(data_dir)
    assert isinstance(again.all.images, np.memmap)  # read on demand, never whole
    assert np.array_equal(again.all.images[::997], mednist.all.images[::997])


def test_stratified_split_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        stratified_split(np.zeros(10, int), (0.5, 0.1, 0.1))


def _jpeg(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64), value, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def test_incomplete_folder_is_refused_and_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for i, name in enumerate(MEDNIST_CLASSES[:2]):
        (tmp_path / "MedNIST" / name).mkdir(parents=True)
        for j in range(3):
            (tmp_path / "MedNIST" / name / f"{j:06d}.jpeg").write_bytes(_jpeg(40 * (i + 1)))
    with pytest.raises(
        DataError,
        match="6 images where MedNIST has 58,954 .AbdomenCT 3 of 10,000, "
        "BreastMRI 3 of 8,954, CXR 0 of 10,000.*damaged or incomplete",
    ):
        load_mednist(tmp_path, download=False)
    assert not list((tmp_path / "cache").rglob("*.npy"))


def test_archive_cut_at_a_damaged_header_is_refused_and_the_intact_one_still_loads(
    mednist, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tarfile reads a damaged header as the end of the archive: without the layout check this was a short read
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    raw = bytearray(gzip.decompress((data_dir / "MedNIST.tar.gz").read_bytes()))
    header = raw.index(b"MedNIST/Hand/")  # a member header past the first classes
    header -= header % 512
    raw[header + 148 : header + 156] = b"garbage!"  # its checksum field
    (tmp_path / "MedNIST.tar.gz").write_bytes(gzip.compress(bytes(raw), compresslevel=1))
    with pytest.raises(DataError, match="the copy is damaged or incomplete"):
        load_mednist(tmp_path, download=False)
    assert np.array_equal(load_mednist(data_dir).all.labels, mednist.all.labels)


def test_truncated_archive(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    (tmp_path / "MedNIST.tar.gz").write_bytes((data_dir / "MedNIST.tar.gz").read_bytes()[:200_000])
    with pytest.raises(DataError, match="MedNIST.tar.gz: damaged or truncated archive"):
        load_mednist(tmp_path, download=False)


def test_damaged_gzip_stream_and_a_cache_folder_that_is_a_file(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    damaged = bytearray((data_dir / "MedNIST.tar.gz").read_bytes()[:3_000_000])
    damaged[1_000_000:1_000_400] = b"\xff" * 400  # garbage in the deflate stream
    (tmp_path / "MedNIST.tar.gz").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="MedNIST.tar.gz: damaged or truncated archive"):
        load_mednist(tmp_path, download=False)
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="cannot use the cache folder .*XDG_CACHE_HOME"):
        load_mednist(data_dir, download=False)


def test_archive_without_mednist_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    with tarfile.open(tmp_path / "MedNIST.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("other/readme.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    with pytest.raises(DataError, match="no MedNIST/<class>/\\*.jpeg images"):
        load_mednist(tmp_path, download=False)


def test_missing_without_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="MedNIST.tar.gz not found in"):
        load_mednist(tmp_path, download=False)
    with pytest.raises(DataError, match="the data folder .*empty does not exist"):
        load_mednist(tmp_path / "empty", download=False)
