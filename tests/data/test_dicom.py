"""DICOM reading, checked on real files shipped with pydicom(-data): values, series, one policy, typed errors."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pydicom.pixels
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate

from medssl_lab.data.dicom import load_dicom, read_dicom, read_dicom_series
from medssl_lab.data.dicom_image import DicomImage
from medssl_lab.data.dicom_writer import write_dicom, write_dicom_series
from medssl_lab.data.intensity import apply_window
from medssl_lab.data.synthetic import AIR_HU, BONE_HU, LESION_HU, LUNG_HU, PHANTOM_CLASSES, TISSUE_HU
from medssl_lab.data.windowing import to_uint8, window_image
from medssl_lab.errors import CorruptDicom, DataError, NoPixelData, NotDicom, UnsupportedTransferSyntax

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data_samples"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def pydicom_file(name: str) -> Path:
    """Path of a pydicom test file; fails loudly (not skips) when it is missing."""
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} not found; is pydicom-data installed?"
    return Path(path)


def raw(name: str) -> np.ndarray:
    """The pixel array exactly as pydicom decodes it."""
    return pydicom.dcmread(pydicom_file(name)).pixel_array


# ---------------------------------------------------------------- real files: values and metadata


def test_ct_small_in_hounsfield_units() -> None:
    img = read_dicom(pydicom_file("CT_small.dcm"))
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    assert img.pixels.shape == (1, 128, 128) and img.pixels.dtype == np.float32
    assert img.modality == "CT" and img.photometric == "MONOCHROME2"
    # RescaleIntercept -1024, slope 1: HU = stored - 1024.
    np.testing.assert_array_equal(img.pixels[0], ds.pixel_array.astype(np.float32) - 1024.0)
    assert img.pixels.min() == -896.0 and img.pixels.max() == 1167.0
    assert np.percentile(img.pixels, 5) < -800  # air/lung, near -1000 HU
    assert 0.0 < np.median(img.pixels) < 100.0  # soft tissue is positive, around water
    assert img.spacing == pytest.approx((0.661468, 0.661468))
    np.testing.assert_allclose(img.positions, [[-158.135803, -179.035797, -75.699997]])
    assert img.orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert img.series_uid == "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322"
    assert img.window_center is None and img.window_width is None
    assert img.path == pydicom_file("CT_small.dcm") and img.num_frames == 1


def test_ct_j2k_lossless_keeps_padding_value() -> None:
    img = read_dicom(pydicom_file("693_J2KR.dcm"))
    assert img.transfer_syntax == "JPEG 2000 Image Compression (Lossless Only)"
    assert img.pixels.shape == (1, 512, 512)
    assert img.pixels.min() == -3024.0 and img.pixels.max() == 1468.0  # -3024: outside the scan circle
    assert (img.window_center, img.window_width) == (40.0, 100.0)


def test_mr_small_file_window_matches_pydicom() -> None:
    img = read_dicom(pydicom_file("MR_small.dcm"))
    assert img.modality == "MR" and img.pixels.shape == (1, 64, 64)
    assert img.pixels.min() == 127.0 and img.pixels.max() == 2145.0
    assert (img.window_center, img.window_width) == (600.0, 1600.0)
    shown = window_image(img, "file")
    assert shown.dtype == np.uint8 and shown.shape == (1, 64, 64)
    np.testing.assert_array_equal(shown, apply_window(img.pixels, 600, 1600))
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    ref = pydicom.pixels.apply_voi_lut(ds.pixel_array, ds)  # DICOM LINEAR onto 0..2**16-1 (signed range)
    ref8 = (ref - (-(2**15))) / (2**16 - 1) * 255
    assert np.abs(shown[0].astype(float) - ref8).max() <= 1.0
    np.testing.assert_array_equal(to_uint8(img), shown)


def test_multi_valued_window_takes_the_first() -> None:
    img = read_dicom(pydicom_file("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    assert (img.window_center, img.window_width) == (450.0, 790.0)


def test_monochrome1_is_inverted_with_its_window() -> None:
    img = read_dicom(pydicom_file("RG3_UNCR.dcm"))
    stored = raw("RG3_UNCR.dcm").astype(np.float32)  # BitsStored 10, unsigned: 0..1023
    assert img.modality == "CR" and img.photometric == "MONOCHROME1"
    np.testing.assert_array_equal(img.pixels[0], 1023.0 - stored)
    assert img.window_center == 1023.0 - 550.0 and img.window_width == 1024.0
    shown = window_image(img, "file").astype(int)
    as_displayed = 255 - apply_window(stored, 550.0, 1024.0).astype(int)  # how a viewer shows MONOCHROME1
    assert np.abs(shown[0] - as_displayed).max() <= 1
    assert img.spacing is None


def test_monochrome1_rg1_zero_spacing_is_unknown() -> None:
    img = read_dicom(pydicom_file("RG1_UNCR.dcm"))
    assert img.pixels.shape == (1, 1955, 1841)
    assert img.pixels.min() == 32767.0 - 26479.0 and img.pixels.max() == 32767.0 - 874.0  # BitsStored 15
    assert img.window_center == 32767.0 - 15000.0 and img.window_width == 30000.0
    assert img.spacing is None  # the file says 0.000 mm


def test_multiframe_shape_and_compressed_variants() -> None:
    img = read_dicom(pydicom_file("emri_small.dcm"))
    assert img.pixels.shape == (10, 64, 64) and img.modality == "MR"
    assert img.pixels.min() == 0.0 and img.pixels.max() == 467.0
    for name in ("emri_small_RLE.dcm", "emri_small_jpeg_2k_lossless.dcm"):
        np.testing.assert_array_equal(read_dicom(pydicom_file(name)).pixels, img.pixels)


def test_enhanced_ct_uses_functional_groups() -> None:
    img = read_dicom(pydicom_file("eCT_Supplemental.dcm"))
    stored = raw("eCT_Supplemental.dcm").astype(np.float32)
    assert img.pixels.shape == (2, 512, 512)
    np.testing.assert_array_equal(img.pixels, stored - 1024.0)  # shared PixelValueTransformation
    assert img.pixels.min() == -1024.0
    assert img.spacing == pytest.approx((0.388672, 0.388672))
    assert img.positions is not None and img.positions.shape == (2, 3)
    np.testing.assert_allclose(img.positions[0], [99.5, -301.5, -159.0])
    assert (img.window_center, img.window_width) == (49.0, 102.0)


@pytest.mark.parametrize(
    ("compressed", "plain"),
    [
        ("MR_small_RLE.dcm", "MR_small.dcm"),
        ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
        ("MR_small_bigendian.dcm", "MR_small.dcm"),
        ("RG3_J2KR.dcm", "RG3_UNCR.dcm"),
        ("MR2_J2KR.dcm", "MR2_UNCR.dcm"),
        ("US1_J2KR.dcm", "US1_UNCR.dcm"),
    ],
)
def test_lossless_compressed_equals_uncompressed(compressed: str, plain: str) -> None:
    a, b = read_dicom(pydicom_file(compressed)), read_dicom(pydicom_file(plain))
    assert a.transfer_syntax != b.transfer_syntax
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert (a.modality, a.window_center, a.window_width) == (b.modality, b.window_center, b.window_width)


def test_mr2_rescale_slope_applied() -> None:
    img = read_dicom(pydicom_file("MR2_UNCR.dcm"))
    ds = pydicom.dcmread(pydicom_file("MR2_UNCR.dcm"))
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(img.pixels[0], expected, rtol=1e-6)
    assert img.pixels.max() == pytest.approx(2245.597891, rel=1e-6)


def test_rgb_ultrasound_becomes_luma() -> None:
    img = read_dicom(pydicom_file("US1_UNCR.dcm"))
    rgb = raw("US1_UNCR.dcm").astype(np.float32)
    assert img.modality == "US" and img.photometric == "RGB"
    assert img.pixels.shape == (1, 480, 640)
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(img.pixels[0], expected, atol=1e-3)
    u8 = to_uint8(img)  # no window in the file: min-max
    assert u8.dtype == np.uint8 and u8.min() == 0 and u8.max() == 255


def test_ybr_jpeg_close_to_rgb_original() -> None:
    lossy = read_dicom(pydicom_file("SC_rgb_jpeg_dcmtk.dcm"))
    plain = read_dicom(pydicom_file("SC_rgb.dcm"))
    assert lossy.photometric == "YBR_FULL" and lossy.pixels.shape == (1, 100, 100)
    assert np.abs(lossy.pixels - plain.pixels).mean() < 2.0


def test_palette_color_becomes_gray() -> None:
    img = read_dicom(pydicom_file("OBXXXX1A.dcm"))
    ds = pydicom.dcmread(pydicom_file("OBXXXX1A.dcm"))
    rgb = pydicom.pixels.apply_color_lut(ds.pixel_array, ds).astype(np.float32)
    assert img.photometric == "PALETTE COLOR" and img.pixels.shape == (1, 600, 800)
    expected = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(img.pixels[0], expected, rtol=1e-5)


def test_voi_lut_from_the_file() -> None:
    img = read_dicom(pydicom_file("vlut_04.dcm"))
    ds = pydicom.dcmread(pydicom_file("vlut_04.dcm"))
    assert img.voi_lut is not None and img.voi_lut.shape == (1, 512, 512)
    lut_out = pydicom.pixels.apply_voi_lut(ds.pixel_array, ds).astype(float)
    table = pydicom.pixels.apply_voi_lut(np.arange(256), ds).astype(float)
    expected = np.rint((lut_out - table.min()) / (table.max() - table.min()) * 255)
    np.testing.assert_array_equal(window_image(img, "file")[0], expected)
    np.testing.assert_array_equal(to_uint8(img), img.voi_lut)
    # vlut_04's LUT is the identity stretched to 16 bits (x -> 257 x): back on 0..255 it is x again.
    assert table[1] == 257 and table[-1] == 65535
    np.testing.assert_array_equal(img.voi_lut[0], img.pixels[0].astype(np.uint8))


def _with_voi_lut(photometric: str) -> pydicom.Dataset:
    """MR_small with a non-linear (square-root) VOI LUT over 0..2047, 8 bits out."""
    ds = pydicom.dcmread(pydicom_file("MR_small.dcm"))
    item = pydicom.Dataset()
    item.add_new("LUTDescriptor", "US", [2048, 0, 8])
    item.add_new("LUTData", "US", [int(v) for v in np.rint(np.sqrt(np.arange(2048) / 2047) * 255)])
    ds.VOILUTSequence = [item]
    ds.PhotometricInterpretation = photometric
    return ds


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_nonlinear_voi_lut_is_applied(tmp_path: Path, photometric: str) -> None:
    ds = _with_voi_lut(photometric)
    path = tmp_path / "mr_lut.dcm"
    ds.save_as(path)
    img = read_dicom(path)
    stored = ds.pixel_array.astype(float)
    expected = np.rint(np.sqrt(np.clip(stored, 0, 2047) / 2047) * 255)
    if photometric == "MONOCHROME1":
        expected = 255 - expected
    assert img.voi_lut is not None
    assert np.abs(window_image(img, "file")[0].astype(float) - expected).max() <= 1
    assert len(np.unique(window_image(img, "file"))) > 100  # not a binary or constant image


def test_modality_lut_sequence_is_applied() -> None:
    img = read_dicom(pydicom_file("mlut_18.dcm"))
    ds = pydicom.dcmread(pydicom_file("mlut_18.dcm"))
    assert ds.pixel_array.min() == -2048 and ds.pixel_array.max() == 2047
    np.testing.assert_array_equal(img.pixels[0], pydicom.pixels.apply_modality_lut(ds.pixel_array, ds))
    assert img.pixels.min() == 0.0 and img.pixels.max() == 65535.0


# ---------------------------------------------------------------- series


def test_series_sorted_by_position_along_the_normal(tmp_path: Path) -> None:
    # Coronal slices (normal = +y) written in shuffled order with misleading names and
    # instance numbers: only the projected position gives the right order.
    n = 5
    volume = np.stack([np.full((6, 7), 100.0 * k) for k in range(n)])
    order = [3, 0, 4, 1, 2]
    series, study = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    for file_index, k in enumerate(order):
        write_dicom(
            tmp_path / f"img{file_index}.dcm",
            volume[k],
            "CT",
            position=(10.0, -20.0 + 3.0 * k, 5.0),
            orientation=(1, 0, 0, 0, 0, -1),
            instance_number=n - file_index,
            series_uid=series,
            study_uid=study,
        )
    img = read_dicom_series(tmp_path)
    assert img.pixels.shape == (n, 6, 7)
    np.testing.assert_array_equal(img.pixels[:, 0, 0], [0, 100, 200, 300, 400])
    np.testing.assert_allclose(img.slice_locations, [-20, -17, -14, -11, -8])
    assert img.series_uid == series and img.path == tmp_path
    assert [f.name for f in img.files] == ["img1.dcm", "img3.dcm", "img4.dcm", "img0.dcm", "img2.dcm"]


def test_series_without_positions_sorted_by_instance_number(tmp_path: Path) -> None:
    series = pydicom.uid.generate_uid()
    for file_index, k in enumerate([2, 0, 1]):
        write_dicom(
            tmp_path / f"x{file_index}.dcm", np.full((4, 4), 10.0 * k), "CR", instance_number=k + 1, series_uid=series
        )
    assert "ImagePositionPatient" not in pydicom.dcmread(tmp_path / "x0.dcm")
    img = load_dicom(tmp_path)
    np.testing.assert_array_equal(img.pixels[:, 0, 0], [0, 10, 20])
    assert img.positions is None


@pytest.mark.parametrize(
    "keyword, value",
    [
        ("ImageOrientationPatient", [1, 0, 0, 0]),  # 4 of 6 direction cosines
        ("ImagePositionPatient", ["a", "b", "c"]),  # not numbers
        ("ImagePositionPatient", [0, 0]),
    ],
)
def test_malformed_geometry_is_a_warning_and_slices_sort_by_instance_number(
    keyword: str, value: list, tmp_path: Path
) -> None:
    series = pydicom.uid.generate_uid()
    for file_index, k in enumerate([2, 0, 1]):
        path = write_dicom(
            tmp_path / f"x{file_index}.dcm",
            np.full((4, 4), 10.0 * k),
            "CT",
            position=(0, 0, -k),
            instance_number=k + 1,
            series_uid=series,
        )
        ds = pydicom.dcmread(path)
        ds.data_element(keyword).VR = "LO" if isinstance(value[0], str) else ds.data_element(keyword).VR
        ds.data_element(keyword).value = value
        ds.save_as(path)
    with pytest.warns(UserWarning, match=f"x.\\.dcm: {keyword} .* is not [36] numbers; .* InstanceNumber"):
        img = load_dicom(tmp_path)
    np.testing.assert_array_equal(img.pixels[:, 0, 0], [0, 10, 20])


def test_write_dicom_series_and_non_dicom_files_skipped(tmp_path: Path) -> None:
    volume = np.stack([np.full((5, 5), v, dtype=np.float32) for v in (-1000, 0, 40, 700)])
    paths = write_dicom_series(tmp_path, volume, slice_thickness=2.5, uid_seed="s")
    (tmp_path / "notes.txt").write_text("not a DICOM file")
    assert [p.name for p in paths] == [f"slice_{i:03d}.dcm" for i in range(4)]
    img = read_dicom_series(tmp_path)
    np.testing.assert_array_equal(img.pixels, volume)
    np.testing.assert_allclose(img.slice_locations, [0, 2.5, 5, 7.5])
    # Same seed, same bytes: reproducible sample files.
    again = write_dicom_series(tmp_path / "again", volume, slice_thickness=2.5, uid_seed="s")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


def test_folder_with_two_series(tmp_path: Path) -> None:
    a = write_dicom_series(tmp_path, np.zeros((2, 4, 4)), series_description="first")
    b = write_dicom(tmp_path / "other.dcm", np.ones((4, 4)), "MR", series_description="second")
    uid_a = pydicom.dcmread(a[0]).SeriesInstanceUID
    uid_b = pydicom.dcmread(b).SeriesInstanceUID
    with pytest.raises(DataError) as info:
        read_dicom_series(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and uid_a in message and uid_b in message and "series_uid" in message
    assert read_dicom_series(tmp_path, series_uid=uid_a).pixels.shape == (2, 4, 4)
    assert load_dicom(tmp_path, series_uid=uid_b).modality == "MR"
    with pytest.raises(DataError, match="1.2.3.4"):
        read_dicom_series(tmp_path, series_uid="1.2.3.4")


def test_series_with_mismatched_sizes(tmp_path: Path) -> None:
    series = pydicom.uid.generate_uid()
    write_dicom(tmp_path / "a.dcm", np.zeros((4, 4)), position=(0, 0, 0), series_uid=series)
    write_dicom(tmp_path / "b.dcm", np.zeros((5, 4)), position=(0, 0, 1), series_uid=series)
    with pytest.raises(DataError, match="differ in size"):
        read_dicom_series(tmp_path)


def test_load_dicom_dispatches(tmp_path: Path) -> None:
    assert isinstance(load_dicom(pydicom_file("CT_small.dcm")), DicomImage)
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(pydicom_file("CT_small.dcm"), folder / "ct.dcm")
    img = load_dicom(folder)
    np.testing.assert_array_equal(img.pixels, read_dicom(pydicom_file("CT_small.dcm")).pixels)


# ---------------------------------------------------------------- bad input: DataError naming the path


def _assert_data_error(path: Path, *, match: str, folder: bool = False) -> None:
    reader = read_dicom_series if folder else read_dicom
    with pytest.raises(DataError) as info:
        reader(path)
    assert str(path) in str(info.value)
    assert match.lower() in str(info.value).lower(), str(info.value)
    with pytest.raises(DataError):
        load_dicom(path)


def test_truncated_file(tmp_path: Path) -> None:
    data = pydicom_file("CT_small.dcm").read_bytes()
    half = tmp_path / "half.dcm"
    half.write_bytes(data[: len(data) // 2])
    _assert_data_error(half, match="truncated")
    header_only = tmp_path / "header_only.dcm"
    header_only.write_bytes(data[:1000])
    _assert_data_error(header_only, match="no pixel data")


def test_real_truncated_file() -> None:
    _assert_data_error(pydicom_file("MR_truncated.dcm"), match="truncated")


def test_corrupt_body_after_dicm_marker(tmp_path: Path) -> None:
    path = tmp_path / "garbage.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 12)
    _assert_data_error(path, match="corrupt")


def test_not_dicom_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.dcm"
    text.write_text("hello\n" * 50)
    _assert_data_error(text, match="not a DICOM file")
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    _assert_data_error(empty, match="not a DICOM file")
    png = tmp_path / "image.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(png)
    _assert_data_error(png, match="not a DICOM file")


def test_dicom_without_pixel_data() -> None:
    _assert_data_error(pydicom_file("rtplan.dcm"), match="no pixel data")


def test_missing_paths(tmp_path: Path) -> None:
    _assert_data_error(tmp_path / "nope.dcm", match="no such")
    _assert_data_error(tmp_path / "nope", match="no such", folder=True)
    with pytest.raises(DataError, match="folder"):
        read_dicom(tmp_path)
    with pytest.raises(DataError, match="read_dicom"):
        read_dicom_series(pydicom_file("CT_small.dcm"))


def test_empty_and_non_dicom_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_data_error(empty, match="no files", folder=True)
    nested = tmp_path / "nested"
    (nested / "series1").mkdir(parents=True)
    _assert_data_error(nested, match="series1", folder=True)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "readme.txt").write_text("hello")
    (junk / "a.png").write_bytes(b"\x89PNG not really")
    _assert_data_error(junk, match="none of its 2 files is a DICOM file", folder=True)


def test_unreadable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod does not stop root, so simulate the OS refusing to list the folder.
    def refuse(self: Path) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)
    _assert_data_error(tmp_path, match="permission denied", folder=True)


def test_corrupt_file_inside_a_series_is_named(tmp_path: Path) -> None:
    write_dicom_series(tmp_path, np.zeros((3, 8, 8)))
    bad = tmp_path / "slice_001.dcm"
    bad.write_bytes(bad.read_bytes()[:-40])
    with pytest.raises(DataError, match="slice_001.dcm"):
        read_dicom_series(tmp_path)


def test_undecodable_jpeg_names_syntax_and_install() -> None:
    path = pydicom_file("JPEG-lossy.dcm")  # 12-bit JPEG Extended that none of the installed plugins decodes
    with pytest.raises(DataError) as info:
        read_dicom(path)
    message = str(info.value)
    assert str(path) in message and "JPEG Extended" in message and "1.2.840.10008.1.2.4.51" in message
    assert "pip install" in message


def test_transfer_syntax_without_any_decoder(tmp_path: Path) -> None:
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    ds.PixelData = encapsulate([ds.PixelData])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML
    path = tmp_path / "video.dcm"
    ds.save_as(path)
    with pytest.raises(DataError) as info:
        read_dicom(path)
    message = str(info.value)
    assert str(path) in message and "MPEG2" in message and "no decoder" in message


def test_decoder_plugin_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    decoder = pydicom.pixels.get_decoder(pydicom.uid.RLELossless)
    monkeypatch.setattr(type(decoder), "is_available", property(lambda self: False))
    monkeypatch.setattr(type(decoder), "missing_dependencies", property(lambda self: ["pylibjpeg-rle>=2.0"]))
    path = pydicom_file("MR_small_RLE.dcm")
    with pytest.raises(DataError) as info:
        read_dicom(path)
    message = str(info.value)
    assert str(path) in message and "RLE Lossless" in message and "pylibjpeg-rle" in message


# ---------------------------------------------------------------- one policy on what is DICOM, typed errors


def _without_preamble(src: Path, dst: Path, bare: bool) -> Path:
    """``src`` without the 128-byte preamble and 'DICM': cut off, or rewritten as a bare dataset (no file meta)."""
    if not bare:
        dst.write_bytes(src.read_bytes()[132:])
        return dst
    ds = pydicom.dcmread(src)
    ds.file_meta, ds.preamble = pydicom.dataset.FileMetaDataset(), None
    pydicom.dcmwrite(dst, ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    return dst


def test_files_without_preamble_are_read_and_join_their_series(tmp_path: Path) -> None:
    volume = np.stack([np.full((8, 8), 100.0 * k) for k in range(3)])
    paths = write_dicom_series(tmp_path, volume, uid_seed="no-preamble")
    for path, bare in zip(paths[1:], (False, True)):
        _without_preamble(path, path, bare)
        assert path.read_bytes()[128:132] != b"DICM"
    (tmp_path / "readme").write_text("not DICOM, without a suffix\n")
    series = read_dicom_series(tmp_path)
    np.testing.assert_array_equal(series.pixels, volume)
    np.testing.assert_array_equal(read_dicom(paths[2]).pixels, volume[2:])


def _text_file(tmp_path: Path) -> Path:
    (tmp_path / "notes.dcm").write_text("hello\n" * 50)
    return tmp_path / "notes.dcm"


def _empty_file(tmp_path: Path) -> Path:
    (tmp_path / "empty").write_bytes(b"")
    return tmp_path / "empty"


def _half_file(tmp_path: Path) -> Path:
    data = pydicom_file("CT_small.dcm").read_bytes()
    (tmp_path / "half.dcm").write_bytes(data[: len(data) // 2])
    return tmp_path / "half.dcm"


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_text_file, NotDicom),
        (_empty_file, NotDicom),
        (lambda tmp_path: pydicom_file("MR_truncated.dcm"), CorruptDicom),
        (_half_file, CorruptDicom),
        (lambda tmp_path: pydicom_file("rtplan.dcm"), NoPixelData),
        (lambda tmp_path: pydicom_file("JPEG-lossy.dcm"), UnsupportedTransferSyntax),
    ],
)
def test_each_failure_of_a_file_raises_its_own_type(tmp_path: Path, make: Callable, kind: type) -> None:
    path = make(tmp_path)
    with pytest.raises(kind) as info:
        load_dicom(path)
    assert isinstance(info.value, DataError) and str(path) in str(info.value)  # callers catching DataError still do
    others = {NotDicom, CorruptDicom, NoPixelData, UnsupportedTransferSyntax} - {kind}
    assert not isinstance(info.value, tuple(others))


def test_names_the_notebooks_and_docs_import_from_here_stay_importable() -> None:
    import medssl_lab.data.dicom as dicom

    pattern = re.compile(r"from medssl_lab\.data\.dicom import ([\w, ]+)")
    places = [*(REPO / "notebooks").glob("*.ipynb"), *(REPO / "docs").rglob("*.md"), SAMPLES / "README.md"]
    names = {n.strip() for place in places for line in pattern.findall(place.read_text()) for n in line.split(",")}
    assert {"load_dicom", "window_image", "to_uint8", "WINDOW_PRESETS", "example_dicom_folders"} <= names
    assert [n for n in sorted(names) if not hasattr(dicom, n)] == []


# ---------------------------------------------------------------- data_samples/


def test_sample_ct_slice() -> None:
    img = load_dicom(SAMPLES / "ct_slice.dcm")
    ds = pydicom.dcmread(SAMPLES / "ct_slice.dcm")
    assert img.modality == "CT" and img.pixels.shape == (1, 128, 128)
    assert ds.pixel_array.dtype == np.int16 and float(ds.RescaleIntercept) == -1024.0
    assert str(ds.PatientName) == "Phantom^Synthetic"
    assert -1100 < np.percentile(img.pixels, 5) < -900  # air
    for hu in (AIR_HU, LUNG_HU, TISSUE_HU, BONE_HU, LESION_HU):  # every phantom material is there
        assert (np.abs(img.pixels - hu) < 45).sum() > 20, hu
    assert (img.window_center, img.window_width) == (-300.0, 1600.0)
    assert window_image(img, "lung").dtype == np.uint8


def test_sample_ct_series() -> None:
    img = load_dicom(SAMPLES / "ct_series")
    assert img.pixels.shape == (4, 64, 64) and img.modality == "CT"
    np.testing.assert_allclose(img.slice_locations, [0.0, 2.5, 5.0, 7.5])
    lesion = (np.abs(img.pixels - LESION_HU) < 30).sum(axis=(1, 2))
    assert lesion[1] > lesion[0] and lesion[2] > lesion[3]  # the sphere is widest in the middle


def test_sample_radiograph_is_monochrome1_and_inverted_on_read() -> None:
    img = load_dicom(SAMPLES / "radiograph_mono1.dcm")
    ds = pydicom.dcmread(SAMPLES / "radiograph_mono1.dcm")
    assert ds.PhotometricInterpretation == "MONOCHROME1" and img.modality == "CR"
    corner, centre_bottom = img.pixels[0, :8, :8].mean(), img.pixels[0].max()
    assert corner < 100 and centre_bottom > 3000  # air dark, spine bright after inversion
    assert ds.pixel_array[:8, :8].mean() > 60000  # ... while the stored air is high


def test_sample_png_folder() -> None:
    root = SAMPLES / "phantom_png"
    assert sorted(p.name for p in root.iterdir()) == sorted(PHANTOM_CLASSES)
    for cls in PHANTOM_CLASSES:
        files = sorted((root / cls).glob("*.png"))
        assert len(files) >= 2
        for f in files:
            with Image.open(f) as im:
                assert im.mode == "L" and im.size == (64, 64)


def test_samples_small_and_documented() -> None:
    total = sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file())
    assert total < 300_000
    readme = (SAMPLES / "README.md").read_text()
    assert "synthetic" in readme.lower() and "not patient data" in readme.lower()
    for name in ("ct_slice.dcm", "ct_series", "radiograph_mono1.dcm", "phantom_png"):
        assert name in readme


def test_make_data_samples_is_deterministic(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_data_samples", REPO / "scripts" / "make_data_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def digest(folder: Path) -> dict[str, str]:
        return {
            str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    module.make_data_samples(tmp_path / "a")
    module.make_data_samples(tmp_path / "a")  # re-runnable in place
    module.make_data_samples(tmp_path / "b")
    first, second = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert first == second
    assert set(first) == set(digest(SAMPLES))  # the committed folder holds exactly what the script writes
