"""One source file to pool images: the store reads DICOM by the reader's policy and rejects by error type."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset

from medssl_lab.data.dicom import load_dicom
from medssl_lab.data.store import decode
from medssl_lab.data.store.decode import Rejected, decode_file
from medssl_lab.data.store.rules import Rules
from medssl_lab.errors import CorruptDicom, DataError, NoPixelData, NotDicom, UnsupportedTransferSyntax

SALT = b"test-salt"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def pydicom_file(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} not found"
    return Path(path)


def without_preamble(src: Path, dst: Path, how: str) -> Path:
    """``src`` as archives hold it without the 128-byte preamble and 'DICM': cut off, or a bare dataset."""
    if how == "cut":  # the file meta group stays, only the preamble and marker go
        dst.write_bytes(src.read_bytes()[132:])
        return dst
    ds = pydicom.dcmread(src)
    ds.file_meta, ds.preamble = FileMetaDataset(), None  # no file meta: nothing names the transfer syntax
    pydicom.dcmwrite(dst, ds, enforce_file_format=False, implicit_vr=how == "bare implicit", little_endian=True)
    return dst


@pytest.mark.parametrize("how", ["cut", "bare implicit", "bare explicit"])
def test_a_file_without_preamble_is_read_alike_by_load_dicom_and_the_store(tmp_path: Path, how: str) -> None:
    src = pydicom_file("CT_small.dcm")
    path = without_preamble(src, tmp_path / "noext", how)
    assert path.read_bytes()[128:132] != b"DICM"
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(path)  # what made the two paths disagree
    np.testing.assert_array_equal(load_dicom(path).pixels, load_dicom(src).pixels)
    decoded, reference = decode_file(path, Rules(), SALT), decode_file(src, Rules(), SALT)
    np.testing.assert_array_equal(decoded.images, reference.images)
    assert (decoded.modality, decoded.instances) == (reference.modality, reference.instances)


def _reworded(function: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every DataError ``function`` raises keep its type but lose its words (no 'decoder', no 'DICOM')."""

    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return function(*args, **kwargs)
        except DataError as exc:
            raise type(exc)("something went wrong; try again") from exc

    monkeypatch.setattr(decode, function.__name__, wrapper)


def _no_pixels(tmp_path: Path) -> Path:
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    del ds.PixelData  # a CT header without its image
    ds.save_as(tmp_path / "no_pixels.dcm")
    return tmp_path / "no_pixels.dcm"


def _text(tmp_path: Path) -> Path:
    (tmp_path / "notes").write_text("exported by the PACS\n")
    return tmp_path / "notes"


def _copy(name: str) -> Callable[[Path], Path]:
    return lambda tmp_path: Path(shutil.copy(pydicom_file(name), tmp_path / name))


REAL_FAILURES = {
    "not_an_image": _text,
    "corrupt": _copy("MR_truncated.dcm"),
    "no_pixel_data": _no_pixels,
    "unsupported_compression": _copy("JPEG-lossy.dcm"),  # 12-bit JPEG Extended: no installed decoder reads it
}


@pytest.mark.parametrize("reworded", [False, True], ids=["as-written", "reworded"])
@pytest.mark.parametrize("reason", list(REAL_FAILURES))
def test_real_failures_are_rejected_by_the_type_of_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reason: str, reworded: bool
) -> None:
    path = REAL_FAILURES[reason](tmp_path)
    if reworded:  # rewording a message must not change a store's rejected table
        _reworded(decode.read_dataset, monkeypatch)
        _reworded(decode.image_from_dataset, monkeypatch)
    with pytest.raises(Rejected) as info:
        decode_file(path, Rules(), SALT)
    assert info.value.reason == reason, info.value.detail
    assert info.value.detail and str(tmp_path) not in info.value.detail  # the path is the table's own column


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (NotDicom, "not_an_image"),
        (CorruptDicom, "corrupt"),
        (NoPixelData, "no_pixel_data"),
        (UnsupportedTransferSyntax, "unsupported_compression"),
        (DataError, "decode_error"),  # not one of the reader's kinds (e.g. permission denied)
    ],
)
def test_every_reader_error_type_has_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[DataError], reason: str
) -> None:
    def fail(ds: object, path: Path) -> None:
        raise error(f"{path}: a message without the usual words")

    monkeypatch.setattr(decode, "image_from_dataset", fail)
    with pytest.raises(Rejected) as info:
        decode_file(pydicom_file("CT_small.dcm"), Rules(), SALT)
    assert (info.value.reason, info.value.detail) == (reason, "a message without the usual words")
    assert set(decode.READER_REASONS.values()) < set(decode.REASONS)
