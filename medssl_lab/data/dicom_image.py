"""A pydicom dataset as a :class:`DicomImage`: pixels in modality units, bright = dense, with what shows them.

Conventions, so that every image means the same thing whatever the file said:

* MONOCHROME1 files (bright = low value, common in radiography) are inverted on
  reading, so bright = dense everywhere; their window center is inverted with them.
* RGB, YBR and PALETTE COLOR images (ultrasound, secondary captures) are converted to
  grayscale luma ``0.299 R + 0.587 G + 0.114 B`` (BT.601): the package works on one channel,
  and the color overlays some ultrasound images carry are lost on purpose.
* Compressed transfer syntaxes are decoded by pydicom's plugins (pylibjpeg, gdcm);
  when none can, an :class:`~medssl_lab.errors.UnsupportedTransferSyntax` says which
  syntax, which file and what to install.

Which files are DICOM, and folders and series, are :mod:`medssl_lab.data.dicom`'s business; this module
only turns a dataset already read into pixels, and raises the reader's typed errors when it cannot.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.pixels
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID

from medssl_lab.data.intensity import LUMA_WEIGHTS, replace_non_finite, unit_to_uint8
from medssl_lab.errors import CorruptDicom, DataError, NoPixelData, UnsupportedTransferSyntax

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_INSTALL_HINT = (
    "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle python-gdcm (and pyjpegls for JPEG-LS)"
)


@dataclass
class DicomImage:
    """Pixels and the metadata needed to show them, from one DICOM file or series.

    Attributes:
        pixels: (frames, H, W) float32 in modality units (HU for CT), bright = dense.
        modality: the Modality tag ("CT", "MR", "CR", "US", ...), "" when absent.
        photometric: the file's Photometric Interpretation as written (before inversion
            or grayscale conversion), so a caller can tell what was done.
        window_center: the file's own window center in the units of ``pixels``
            (already inverted for MONOCHROME1), or None.
        window_width: the file's own window width, or None.
        spacing: (row, column) pixel spacing in mm, or None when absent or zero.
        positions: (frames, 3) ImagePositionPatient of each frame in mm, or None.
        orientation: the six ImageOrientationPatient direction cosines, or None.
        path: the file, or the folder for a series.
        series_uid: SeriesInstanceUID, or None.
        transfer_syntax: name of the (first) file's transfer syntax.
        files: the files the frames came from, in frame order.
        voi_lut: (frames, H, W) uint8 from the file's (first) VOI LUT Sequence, or None.
            A non-linear LUT cannot be stored as a center/width, so it is applied on reading.
    """

    pixels: np.ndarray
    modality: str
    photometric: str
    window_center: float | None
    window_width: float | None
    spacing: tuple[float, float] | None
    positions: np.ndarray | None
    orientation: tuple[float, ...] | None
    path: Path
    series_uid: str | None
    transfer_syntax: str
    files: tuple[Path, ...] = ()
    voi_lut: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        """Number of frames (slices)."""
        return int(self.pixels.shape[0])

    @property
    def slice_locations(self) -> np.ndarray | None:
        """Position of each frame along the slice normal (mm), or None without geometry."""
        if self.positions is None or self.orientation is None:
            return None
        return self.positions @ slice_normal(self.orientation)


def corrupt_dicom(path: Path, exc: Exception) -> CorruptDicom:
    """The one error for a file pydicom cannot parse: which file, what pydicom said, and what to do."""
    return CorruptDicom(
        f"{path}: the DICOM file is corrupt or truncated ({type(exc).__name__}: {exc}); "
        "re-export or re-copy it, or remove it from the folder"
    )


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit normal of the image plane from the six direction cosines."""
    row, col = np.asarray(orientation[:3], dtype=np.float64), np.asarray(orientation[3:6], dtype=np.float64)
    return np.cross(row, col)


def tag_vector(value: object, length: int, path: Path, keyword: str) -> tuple[float, ...] | None:
    """A geometry tag as ``length`` finite numbers; None when absent, or malformed (with a warning naming it)."""
    if value is None or value == "":
        return None
    items: Sequence[Any] = value if isinstance(value, (list, tuple, MultiValue)) else [value]
    try:
        numbers = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != length or not all(np.isfinite(numbers)):
        warnings.warn(
            f"{path}: {keyword} {value!r} is not {length} numbers; the file's geometry is treated as "
            f"unknown (slices sort by InstanceNumber)",
            stacklevel=2,
        )
        return None
    return numbers


def first_float(value: object) -> float | None:
    """First number of a possibly multi-valued DICOM value (several windows: take the first)."""
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _shared(ds: Dataset, sequence: str, keyword: str, frame: int | None = None) -> object | None:
    """``keyword`` from an enhanced (multi-frame) file's per-frame group, else its shared group."""
    groups = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if frame is not None and per_frame and frame < len(per_frame):
        groups.append(per_frame[frame])
    if ds.get("SharedFunctionalGroupsSequence"):
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    for group in groups:
        seq = group.get(sequence)
        if seq and keyword in seq[0]:
            return seq[0][keyword].value
    return None


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    """The decoded pixel array, or the typed error that says why not and what to do."""
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        kind = ds.get("SOPClassUID")
        kind_name = UID(str(kind)).name if kind else "unknown object"
        raise NoPixelData(
            f"{path}: the DICOM file has no pixel data ({kind_name}); it may be a non-image object "
            "(RT plan, structured report, ...) or a truncated file; pass an image file"
        )
    meta = getattr(ds, "file_meta", None)
    tsyntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if tsyntax is None:
        raise CorruptDicom(
            f"{path}: the DICOM file has no Transfer Syntax UID in its file meta header, so its pixels "
            "cannot be decoded; the file is corrupt or was written without a header: re-export it"
        )
    tsyntax = UID(str(tsyntax))
    if tsyntax.is_compressed:
        try:
            decoder = pydicom.pixels.get_decoder(tsyntax)
        except NotImplementedError as exc:
            raise UnsupportedTransferSyntax(
                f"{path}: pydicom has no decoder for transfer syntax '{tsyntax.name}' ({tsyntax}); convert "
                "the file to an uncompressed or JPEG syntax first (e.g. `gdcmconv --raw` or dcmtk's dcmdjpeg)"
            ) from exc
        if not decoder.is_available:
            missing = "; ".join(decoder.missing_dependencies) or "a decoder plugin"
            raise UnsupportedTransferSyntax(
                f"{path}: cannot decode transfer syntax '{tsyntax.name}' ({tsyntax}): no decoder plugin "
                f"is installed (needs {missing}); {_INSTALL_HINT}"
            )
    try:
        return ds.pixel_array
    except Exception as exc:
        if tsyntax.is_compressed:  # most often a variant the installed plugins do not read (12-bit JPEG, ...)
            raise UnsupportedTransferSyntax(
                f"{path}: no installed decoder could decode transfer syntax '{tsyntax.name}' ({tsyntax}); "
                f"the data may be corrupt, or need another plugin: {_INSTALL_HINT}. "
                f"Decoder said: {exc}"
            ) from exc
        raise CorruptDicom(
            f"{path}: the pixel data cannot be read ({exc}); the file is probably truncated or corrupt: re-copy it"
        ) from exc


def _to_gray(arr: np.ndarray, ds: Dataset, frames: int, path: Path) -> np.ndarray:
    """(frames, H, W) float from a decoded array; color images become luma."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        arr = pydicom.pixels.apply_color_lut(arr, ds)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples == 3 or photometric == "PALETTE COLOR":
        # pydicom already converted YBR_* to RGB; BT.601 luma keeps the perceived brightness.
        rgb = arr.astype(np.float32)
        red, green, blue = LUMA_WEIGHTS
        arr = red * rgb[..., 0] + green * rgb[..., 1] + blue * rgb[..., 2]
    if frames == 1 and arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise CorruptDicom(
            f"{path}: unexpected pixel array shape {arr.shape} for {frames} frame(s); the file's "
            "Rows/Columns/NumberOfFrames may be wrong: re-export it"
        )
    return arr


def image_from_dataset(ds: Dataset, path: Path) -> DicomImage:
    """Turn a read dataset into a DicomImage: decode, rescale, invert, keep the metadata.

    Raises:
        NoPixelData, UnsupportedTransferSyntax, CorruptDicom: the pixels cannot be had, and why. pydicom parses
            values lazily, so a damaged element fails only here: that is a CorruptDicom too.
    """
    try:
        return _image(ds, path)
    except DataError:
        raise
    except Exception as exc:
        raise corrupt_dicom(path, exc) from exc


def _image(ds: Dataset, path: Path) -> DicomImage:
    """:func:`image_from_dataset` without the net for pydicom's own errors."""
    raw = _decode(ds, path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    monochrome = photometric.startswith("MONOCHROME")
    gray = _to_gray(raw, ds, frames, path)
    gray = replace_non_finite(gray, str(path))  # float pixel data may hold NaN: one stated rule for every loader
    values, invert_about = _modality_values(gray, ds, monochrome)
    center, width = _file_window(ds)

    voi_lut = None
    if monochrome and ds.get("VOILUTSequence"):
        voi_lut = _apply_voi_lut(values, ds, photometric == "MONOCHROME1")

    if photometric == "MONOCHROME1":  # bright = dense, like MONOCHROME2
        values = invert_about - values
        if center is not None:
            center = invert_about - center

    spacing, positions, orientation = _geometry(ds, path, frames)
    series = ds.get("SeriesInstanceUID")
    return DicomImage(
        pixels=values.astype(np.float32),
        modality=str(ds.get("Modality", "") or ""),
        photometric=photometric,
        window_center=center,
        window_width=width,
        spacing=spacing,
        positions=positions,
        orientation=orientation,
        path=path,
        series_uid=str(series) if series else None,
        transfer_syntax=UID(str(ds.file_meta.TransferSyntaxUID)).name,
        files=(path,) * len(values),
        voi_lut=voi_lut,
    )


def _modality_values(gray: np.ndarray, ds: Dataset, monochrome: bool) -> tuple[np.ndarray, float]:
    """Stored values in modality units (HU for CT), and the value MONOCHROME1 is inverted about.

    The Modality LUT wins over rescale slope/intercept; enhanced (multi-frame) files keep the
    rescale per frame in their functional groups. Inverting about the sum of the ends of the
    stored range keeps values (and the file's window) in the same units after inversion.
    """
    if monochrome and ds.get("ModalityLUTSequence"):
        values = pydicom.pixels.apply_modality_lut(gray, ds).astype(np.float64)
        depth = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        return values, float(2**depth - 1)
    values = gray.astype(np.float64)
    slopes, intercepts = np.ones(len(values)), np.zeros(len(values))
    if monochrome:
        for i in range(len(values)):
            s = first_float(ds.get("RescaleSlope")) or first_float(
                _shared(ds, "PixelValueTransformationSequence", "RescaleSlope", i)
            )
            b = first_float(ds.get("RescaleIntercept"))
            if b is None:
                b = first_float(_shared(ds, "PixelValueTransformationSequence", "RescaleIntercept", i))
            slopes[i], intercepts[i] = s or 1.0, b or 0.0
        values = values * slopes[:, None, None] + intercepts[:, None, None]
    bits = int(ds.get("BitsStored", 0) or 0)
    if bits and "PixelData" in ds:
        signed = ds.get("PixelRepresentation", 0) == 1
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    else:
        lo, hi = float(gray.min()), float(gray.max())
    return values, float(slopes[0] * (lo + hi) + 2 * intercepts[0])


def _file_window(ds: Dataset) -> tuple[float | None, float | None]:
    """The file's own (center, width), from its top level or an enhanced file's frame groups.

    (None, None) when absent or unusable (width <= 0), so callers fall back to a preset or min-max.
    """
    center = first_float(ds.get("WindowCenter"))
    width = first_float(ds.get("WindowWidth"))
    if center is None or width is None:
        center = first_float(_shared(ds, "FrameVOILUTSequence", "WindowCenter"))
        width = first_float(_shared(ds, "FrameVOILUTSequence", "WindowWidth"))
    if width is None or center is None or width <= 0:
        return None, None
    return center, width


def _geometry(
    ds: Dataset, path: Path, frames: int
) -> tuple[tuple[float, float] | None, np.ndarray | None, tuple[float, ...] | None]:
    """Pixel spacing, per-frame positions and orientation, from the top level or an enhanced file's groups.

    Each is None when absent or malformed, so series sorting falls back to InstanceNumber.
    """
    raw_spacing = (
        ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing") or _shared(ds, "PixelMeasuresSequence", "PixelSpacing")
    )
    row_col = tag_vector(raw_spacing, 2, path, "PixelSpacing")
    spacing: tuple[float, float] | None = None
    if row_col is not None and min(row_col) > 0:  # zero spacing (seen in CR files) means unknown
        spacing = (row_col[0], row_col[1])

    positions = None
    if ds.get("ImagePositionPatient") and frames == 1:
        position = tag_vector(ds.ImagePositionPatient, 3, path, "ImagePositionPatient")
        positions = np.asarray([position], dtype=np.float64) if position is not None else None
    elif ds.get("PerFrameFunctionalGroupsSequence"):
        per_frame = [
            tag_vector(_shared(ds, "PlanePositionSequence", "ImagePositionPatient", i), 3, path, "ImagePositionPatient")
            for i in range(frames)
        ]
        if all(p is not None for p in per_frame):
            positions = np.asarray(per_frame, dtype=np.float64)
    orientation = tag_vector(
        ds.get("ImageOrientationPatient") or _shared(ds, "PlaneOrientationSequence", "ImageOrientationPatient"),
        6,
        path,
        "ImageOrientationPatient",
    )
    return spacing, positions, orientation


def _apply_voi_lut(values: np.ndarray, ds: Dataset, invert: bool) -> np.ndarray:
    """The file's first VOI LUT, applied to modality values and stretched to 0..255 uint8.

    Done here rather than with ``pydicom.pixels.apply_voi_lut``: pydicom 3.0 indexes an
    8-bit-output LUT with uint8 indices, which wraps for LUTs of more than 256 entries.
    The output is stretched over the LUT's own range (some files declare 16 bits and use 12).
    """
    item = ds.VOILUTSequence[0]
    entries, first = int(item.LUTDescriptor[0]) or 2**16, int(item.LUTDescriptor[1])
    if ds.get("PixelRepresentation", 0) == 1 and first >= 2**15:
        first -= 2**16  # the descriptor is often written as US even for signed data
    element = item["LUTData"]
    if isinstance(element.value, bytes):  # OW: raw words in the file's byte order
        little = ds.file_meta.TransferSyntaxUID != pydicom.uid.ExplicitVRBigEndian
        table = np.frombuffer(element.value, dtype="<u2" if little else ">u2")[:entries]
    else:
        table = np.asarray(element.value if isinstance(element.value, (list, MultiValue)) else [element.value])
    table = table.astype(np.float64)
    index = np.clip(np.rint(values).astype(np.int64) - first, 0, len(table) - 1)
    low, high = float(table.min()), float(table.max())
    scaled = (table[index] - low) / (high - low) if high > low else np.zeros(index.shape)
    if invert:
        scaled = 1.0 - scaled
    return unit_to_uint8(scaled)
