"""Pixel values to uint8, faithfully: wide integer and float images from folders and DICOM, NaN pixels, windows."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian

from medssl_lab.data import dicom
from medssl_lab.data.dicom import load_dicom
from medssl_lab.data.folder import load_image_folder
from medssl_lab.data.intensity import apply_window, replace_non_finite, to_uint8_by_range
from medssl_lab.data.synthetic import PHANTOM_WINDOW, make_phantoms
from medssl_lab.data.windowing import WINDOW_PRESETS, to_uint8
from medssl_lab.errors import DataError

RAMP = np.tile(np.arange(64), (64, 1))


def test_twelve_bit_data_in_a_16_bit_png_keeps_its_grey_levels(tmp_path: Path) -> None:
    (tmp_path / "xray").mkdir()
    Image.fromarray((RAMP * 65).astype(np.uint16)).save(tmp_path / "xray" / "a.png")  # 0..4095
    Image.fromarray((RAMP * 32).astype(np.uint16)).save(tmp_path / "xray" / "b.png")  # half as bright
    images = load_image_folder(tmp_path).images
    assert len(np.unique(images[0])) == 64 and images[0].max() == 255  # was 5 grey levels, clipped at 255
    assert int(images[1].max()) == 126  # 2016 of 4095 (both 12-bit): the darker image stays darker


def test_float_tiff_is_scaled_by_its_finite_range_and_nan_is_reported(tmp_path: Path) -> None:
    (tmp_path / "ct").mkdir()
    values = (RAMP * 20.0 - 300.0).astype(np.float32)
    values[0, 0] = np.nan
    Image.fromarray(values, mode="F").save(tmp_path / "ct" / "slice.tif")
    with pytest.warns(UserWarning, match="slice.tif: 1 NaN or infinite pixel"):
        image = load_image_folder(tmp_path).images[0]
    assert len(np.unique(image)) == 64 and image[0, 0] == 0  # was {0, 1}


def test_unreadable_files_raise_by_default_or_are_left_out_and_listed(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a").mkdir()
    Image.fromarray(np.full((64, 64), 9, np.uint8)).save(tmp_path / "a" / "big.png")
    Image.fromarray(np.full((8, 8), 9, np.uint8)).save(tmp_path / "a" / "small.png")
    (tmp_path / "a" / "empty.png").write_bytes(b"")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # big.png now looks like a decompression bomb
    with pytest.raises(DataError, match="big.png: not a readable image.*on_error='skip'"):
        load_image_folder(tmp_path, size=8)
    with pytest.warns(UserWarning, match="2 unreadable file.s. left out: .*big.png.*empty.png"):
        data = load_image_folder(tmp_path, size=8, on_error="skip")
    assert len(data) == 1
    with pytest.raises(ValueError, match="on_error must be"):
        load_image_folder(tmp_path, on_error="ignore")


def test_float_dicom_with_nan_pixels_is_not_blank(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    values = np.linspace(-100, 300, 128 * 128, dtype=np.float32).reshape(128, 128)
    values[5, 5] = np.nan
    del ds.PixelData
    for name in (
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "RescaleSlope",
        "RescaleIntercept",
        "WindowCenter",
        "WindowWidth",
    ):
        if name in ds:
            delattr(ds, name)
    ds.FloatPixelData, ds.BitsAllocated = values.tobytes(), 32
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(tmp_path / "float.dcm")
    with pytest.warns(UserWarning, match="float.dcm: 1 NaN or infinite pixel"):
        image = to_uint8(load_dicom(tmp_path / "float.dcm"))
    assert image.max() == 255 and len(np.unique(image)) > 200  # was all zero


def test_rules_directly() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(replace_non_finite(np.arange(4.0), "x"), np.arange(4.0))  # nothing to report
    with pytest.raises(DataError, match="x: every pixel is NaN"):
        replace_non_finite(np.full(4, np.nan), "x")
    assert to_uint8_by_range(np.full((2, 2), 7, np.uint16), "x").tolist() == [[7, 7], [7, 7]]  # at least 8 bits
    assert to_uint8_by_range(np.array([[-5, 5]], np.int32), "x").tolist() == [[0, 255]]  # signed: by range
    assert to_uint8_by_range(np.array([[0, 300]], np.uint16), "x").tolist() == [[0, 75]]  # 10 bits: 300 of 1023


def test_apply_window_maps_edges() -> None:
    hu = np.array([-2000.0, -1350.0, -600.0, 150.0, 3000.0])
    out = apply_window(hu, *WINDOW_PRESETS["lung"])
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 128, 255, 255]
    assert apply_window(np.array([30.0, 40.0, 50.0]), 40, 80).tolist() == [96, 128, 159]
    with pytest.raises(ValueError, match="width"):
        apply_window(hu, 0.0, 0.0)


def test_one_window_for_dicom_and_phantoms() -> None:
    assert dicom.apply_window is apply_window  # the DICOM module shows images through the same function
    hu = make_phantoms(8, 32, seed=1, hu=True).images
    np.testing.assert_array_equal(make_phantoms(8, 32, seed=1).images, apply_window(hu, *PHANTOM_WINDOW))
