"""Synthetic DICOM files: valid, read back unchanged, written atomically, refused before writing when bad."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID

from medssl_lab.data.dicom import read_dicom
from medssl_lab.data.dicom_writer import write_dicom


def test_write_dicom_round_trip_ct(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    hu = rng.integers(-1024, 3000, size=(20, 30)).astype(np.float32)
    path = write_dicom(tmp_path / "sub" / "ct.dcm", hu, "CT", spacing=(0.5, 0.7), window=(40, 400), slice_thickness=2)
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["ct.dcm"]  # no temp files left
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == pydicom.uid.CTImageStorage == ds.file_meta.MediaStorageSOPClassUID
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.FrameOfReferenceUID):
        assert UID(uid).is_valid
    assert len({ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID}) == 3
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert str(ds.PatientName) == "Phantom^Synthetic"
    assert ds.PixelRepresentation == 1 and ds.BitsAllocated == 16 and ds.pixel_array.dtype == np.int16
    assert float(ds.RescaleIntercept) == -1024.0 and float(ds.RescaleSlope) == 1.0 and ds.RescaleType == "HU"
    np.testing.assert_array_equal(ds.pixel_array, (hu + 1024).astype(np.int16))
    img = read_dicom(path)
    np.testing.assert_array_equal(img.pixels[0], hu)
    assert (img.window_center, img.window_width) == (40.0, 400.0)
    assert img.spacing == (0.5, 0.7) and img.modality == "CT"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by all, like any data file


def test_write_dicom_monochrome1_round_trip(tmp_path: Path) -> None:
    values = np.arange(0, 4000, 10, dtype=np.float32).reshape(20, 20)
    path = write_dicom(tmp_path / "cr.dcm", values, "CR", window=(1000, 2000), photometric="MONOCHROME1")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == pydicom.uid.ComputedRadiographyImageStorage
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.PixelRepresentation == 0
    np.testing.assert_array_equal(ds.pixel_array, 65535 - values.astype(np.uint16))  # stored inverted
    img = read_dicom(path)
    np.testing.assert_array_equal(img.pixels[0], values)  # read back: bright = dense again
    assert img.window_center == 1000.0


def test_write_dicom_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        write_dicom(tmp_path / "a.dcm", np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        write_dicom(tmp_path / "a.dcm", np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="rescale_slope"):
        write_dicom(tmp_path / "a.dcm", np.full((4, 4), 1e6))
    assert list(tmp_path.iterdir()) == []


def test_write_dicom_failure_leaves_old_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_dicom(tmp_path / "ct.dcm", np.zeros((8, 8)))
    before = path.read_bytes()

    def broken_save(self: pydicom.Dataset, handle: object, **kwargs: object) -> None:
        handle.write(b"\0" * 64)  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(pydicom.Dataset, "save_as", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_dicom(path, np.ones((8, 8)))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ct.dcm"]
