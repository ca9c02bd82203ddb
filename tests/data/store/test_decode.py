"""One source file to pool images: the store reads DICOM by the reader's policy, volumes by their suffix, and
rejects by error type."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset

from medssl_lab.data.dicom import load_dicom
from medssl_lab.data.store import decode
from medssl_lab.data.store.decode import Rejected, decode_file
from medssl_lab.data.store.rules import Rules
from medssl_lab.errors import (
    CorruptDicom,
    CorruptVolume,
    DataError,
    NoPixelData,
    NotAVolume,
    NotDicom,
    UnsupportedTransferSyntax,
    UnsupportedVolume,
)
from tests.data.store.conftest import NIBABEL_DATA

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


def nibabel_file(name: str) -> Path:
    return NIBABEL_DATA / name


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_a_real_dicom_as_a_nifti_volume_gives_the_same_image_by_the_same_rules(tmp_path: Path, name: str) -> None:
    """A real CT (HU from -896 up) and MR converted to NIfTI by SimpleITK: the volume's modality comes from its
    values, its orientation from its direction cosines, and the pool image is the DICOM's to the pixel."""
    nifti = tmp_path / f"{name}.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(pydicom_file(name))), str(nifti))
    volume, dicom = decode_file(nifti, Rules(), SALT), decode_file(pydicom_file(name), Rules(), SALT)
    assert volume.modality == dicom.modality == name[:2]
    np.testing.assert_array_equal(volume.images, dicom.images)
    assert volume.frames == [0] and volume.patient == volume.study == "" and len(volume.series) == 16


def test_a_volume_gives_every_stride_th_slice_and_copies_share_their_keys(tmp_path: Path) -> None:
    nifti = nibabel_file("anatomical.nii")
    every = decode_file(nifti, Rules(size=32), SALT)
    assert every.images.shape == (25, 32, 32) and every.modality == "MR"
    third = decode_file(nifti, Rules(size=32, stride=3), SALT)
    assert third.frames == list(range(0, 25, 3))
    mha = tmp_path / "copy.mha"
    sitk.WriteImage(sitk.ReadImage(str(nifti)), str(mha))
    copy = decode_file(mha, Rules(size=32, stride=3), SALT)
    assert copy.instances == third.instances and copy.series == every.series  # one volume: kept once
    np.testing.assert_array_equal(copy.images, third.images)  # (percentiles over the slices kept, as for DICOM)
    assert len(set(every.instances)) == 25


def test_a_ct_volume_goes_through_the_hu_window(tmp_path: Path) -> None:
    hu = np.full((40, 40, 3), -1000, np.int16)  # air, and a square of soft tissue (40 HU) and of bone (1000 HU)
    hu[10:20, 10:20], hu[25:35, 25:35] = 40, 1000
    hu[39] = np.linspace(-1000, 1000, 40 * 3).astype(np.int16).reshape(40, 3)  # a ramp: an image, not a label map
    path = tmp_path / "ct.nii.gz"
    nibabel.save(nibabel.Nifti1Image(hu, np.diag([-1.0, -1.0, 2.5, 1.0])), path)  # LPS-stored: no flip on display
    decoded = decode_file(path, Rules(size=40, ct_window=(40.0, 400.0)), SALT)
    assert decoded.modality == "CT"
    image = decoded.images[0]
    assert (image[0, 0], image[15, 15], image[30, 30]) == (0, 128, 255)  # rows j, columns i, as stored in LPS


def _reworded_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    function = decode.read_volume

    def wrapper(path: Path) -> object:
        try:
            return function(path)
        except DataError as exc:
            raise type(exc)(f"{path}: something went wrong; try again") from exc

    monkeypatch.setattr(decode, "read_volume", wrapper)


def _truncated_nii_gz(tmp_path: Path) -> Path:
    data = gzip.compress(nibabel_file("anatomical.nii").read_bytes())
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) * 3 // 4])
    return tmp_path / "cut.nii.gz"


def _text_nii(tmp_path: Path) -> Path:
    (tmp_path / "notes.nii").write_text("exported by the PACS\n" * 30)
    return tmp_path / "notes.nii"


def _cifti(tmp_path: Path) -> Path:
    return Path(shutil.copy(nibabel_file("row_major.dconn.nii"), tmp_path))


def _label_map(tmp_path: Path) -> Path:  # a brain mask made from a real anatomy (as segmentation tools write)
    anatomy = nibabel.load(nibabel_file("anatomical.nii"))
    mask = (np.asanyarray(anatomy.dataobj) > 8000).astype(np.uint8) * 2
    nibabel.save(nibabel.Nifti1Image(mask, anatomy.affine), tmp_path / "brain_mask.nii.gz")
    return tmp_path / "brain_mask.nii.gz"


def _blank(tmp_path: Path) -> Path:
    nibabel.save(nibabel.Nifti1Image(np.full((16, 16, 4), 7, np.int16), np.eye(4)), tmp_path / "blank.nii")
    return tmp_path / "blank.nii"


def _nhdr_without_data(tmp_path: Path) -> Path:  # a detached NRRD header copied without its voxel file
    sitk.WriteImage(sitk.ReadImage(str(nibabel_file("anatomical.nii"))), str(tmp_path / "brain.nhdr"))
    for other in tmp_path.iterdir():
        if other.name != "brain.nhdr":
            other.unlink()
    return tmp_path / "brain.nhdr"


def _empty_nii_gz(tmp_path: Path) -> Path:  # a copy that never started
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    return tmp_path / "empty.nii.gz"


VOLUME_FAILURES = {
    "corrupt": _truncated_nii_gz,
    "not_an_image": _text_nii,
    "unsupported_volume": _cifti,
    "empty": _blank,
    "derived_object": _label_map,
    "too_small": lambda tmp_path: Path(shutil.copy(nibabel_file("standard.nii.gz"), tmp_path)),
}
#: more bad volumes, by what the ingest must say (the reasons above are the keys of VOLUME_FAILURES)
MORE_VOLUME_FAILURES = {"corrupt": _nhdr_without_data, "not_an_image": _empty_nii_gz}


@pytest.mark.parametrize("reason", list(MORE_VOLUME_FAILURES))
def test_empty_and_detached_volumes_are_rejected_without_their_folder(tmp_path: Path, reason: str) -> None:
    path = MORE_VOLUME_FAILURES[reason](tmp_path)
    with pytest.raises(Rejected) as info:
        decode_file(path, Rules(), SALT)
    assert info.value.reason == reason, info.value.detail
    assert info.value.detail and str(tmp_path) not in info.value.detail  # the data file's path is named relative


@pytest.mark.parametrize("reworded", [False, True], ids=["as-written", "reworded"])
@pytest.mark.parametrize("reason", list(VOLUME_FAILURES))
def test_bad_volumes_are_rejected_by_the_type_of_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reason: str, reworded: bool
) -> None:
    path = VOLUME_FAILURES[reason](tmp_path)
    if reworded:
        _reworded_volume(monkeypatch)
    with pytest.raises(Rejected) as info:
        decode_file(path, Rules(), SALT)
    assert info.value.reason == reason, info.value.detail
    assert info.value.detail and str(tmp_path) not in info.value.detail


@pytest.mark.parametrize(
    ("error", "reason"),
    [(NotAVolume, "not_an_image"), (CorruptVolume, "corrupt"), (UnsupportedVolume, "unsupported_volume")],
)
def test_every_volume_error_type_has_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[DataError], reason: str
) -> None:
    def fail(path: Path) -> None:
        raise error(f"{path}: a message without the usual words")

    monkeypatch.setattr(decode, "read_volume", fail)
    with pytest.raises(Rejected) as info:
        decode_file(nibabel_file("anatomical.nii"), Rules(), SALT)
    assert (info.value.reason, info.value.detail) == (reason, "a message without the usual words")
