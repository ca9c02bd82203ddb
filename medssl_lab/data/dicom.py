"""Read and write DICOM images with pydicom: one file, a folder, or a sorted series.

Everything comes back as a :class:`DicomImage` holding ``float32`` pixels of shape
``(frames, H, W)`` in modality units (Hounsfield units for CT), with the metadata
needed to display them the way the file asks (its own window or VOI LUT) or through
a named preset (:data:`WINDOW_PRESETS`). Display-ready ``uint8`` comes from
:func:`window_image` or :func:`to_uint8`, which is what the rest of the package eats;
both window through :func:`~medssl_lab.data.intensity.apply_window`, the package's one
window function (importable from here too).

Conventions, so that every image means the same thing whatever the file said:

* MONOCHROME1 files (bright = low value, common in radiography) are inverted on
  reading, so bright = dense everywhere; their window center is inverted with them.
* RGB, YBR and PALETTE COLOR images (ultrasound, secondary captures) are converted to
  grayscale luma ``0.299 R + 0.587 G + 0.114 B`` (BT.601): the package works on one channel,
  and the color overlays some ultrasound images carry are lost on purpose.
* Compressed transfer syntaxes are decoded by pydicom's plugins (pylibjpeg, gdcm);
  when none can, a :class:`~medssl_lab.errors.DataError` says which syntax, which
  file and what to install.

Every bad input (missing, non-DICOM, corrupt, truncated, without pixels, an empty or
mixed folder) raises :class:`~medssl_lab.errors.DataError` naming the path.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.pixels
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID, generate_uid

from medssl_lab.data.intensity import LUMA_WEIGHTS, apply_window, replace_non_finite, unit_to_uint8
from medssl_lab.errors import DataError
from medssl_lab.files import atomic_file

#: Common CT windows as (center, width) in HU.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "brain": (40.0, 80.0),
    "bone": (400.0, 1800.0),
    "abdomen": (40.0, 400.0),
}

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_SOP_CLASSES = {
    "CT": pydicom.uid.CTImageStorage,
    "MR": pydicom.uid.MRImageStorage,
    "CR": pydicom.uid.ComputedRadiographyImageStorage,
}
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
        return self.positions @ _slice_normal(self.orientation)


# ---------------------------------------------------------------------------- windowing


def window_image(image: DicomImage, window: str | tuple[float, float] = "file") -> np.ndarray:
    """Display ``image`` as (frames, H, W) uint8 through a window.

    Args:
        image: the image to show.
        window: "file" for the file's own VOI LUT (preferred) or window center/width,
            a preset name from :data:`WINDOW_PRESETS` (CT presets, in HU), or a
            ``(center, width)`` pair in the units of ``image.pixels``.

    Raises:
        DataError: ``window="file"`` but the file carries no window or VOI LUT.
        ValueError: an unknown preset name or a width <= 0.
    """
    if isinstance(window, str):
        name = window.lower()
        if name == "file":
            if image.voi_lut is not None:
                return image.voi_lut
            if image.window_center is None or image.window_width is None:
                raise DataError(
                    f"{image.path}: the file has no window center/width or VOI LUT of its own; "
                    f"pass a preset ({', '.join(WINDOW_PRESETS)}), a (center, width) pair, "
                    "or use to_uint8() for a min-max scaling"
                )
            return apply_window(image.pixels, image.window_center, image.window_width)
        if name not in WINDOW_PRESETS:
            raise ValueError(f"unknown window {window!r}; use 'file', one of {list(WINDOW_PRESETS)} or (center, width)")
        return apply_window(image.pixels, *WINDOW_PRESETS[name])
    center, width = window
    return apply_window(image.pixels, center, width)


def to_uint8(image: DicomImage) -> np.ndarray:
    """(frames, H, W) uint8 for the rest of the package: the file's window, else min-max.

    The min-max fallback is taken over the whole volume, so the frames of a series
    stay comparable with each other.
    """
    if image.voi_lut is not None or (image.window_center is not None and image.window_width is not None):
        return window_image(image, "file")
    low, high = float(image.pixels.min()), float(image.pixels.max())
    if high <= low:
        return np.zeros(image.pixels.shape, dtype=np.uint8)
    return unit_to_uint8((image.pixels - low) / (high - low))


# ---------------------------------------------------------------------------- reading


def load_dicom(path: str | os.PathLike, series_uid: str | None = None) -> DicomImage:
    """Read a DICOM file, or the (chosen) series in a folder."""
    p = Path(path)
    if p.is_dir():
        return read_dicom_series(p, series_uid=series_uid)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder; check the path (a DICOM file or a folder of them)")
    return read_dicom(p)


def read_dicom(path: str | os.PathLike) -> DicomImage:
    """Read one DICOM file (single- or multi-frame) into a :class:`DicomImage`."""
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: is a folder, not a DICOM file; use read_dicom_series() or load_dicom() for folders")
    if not p.is_file():
        raise DataError(f"{p}: no such DICOM file; check the path")
    ds = _read_dataset(p)
    try:
        return image_from_dataset(ds, p)
    except DataError:
        raise
    except Exception as exc:  # pydicom parses values lazily; a corrupt element fails here
        raise _corrupt(p, exc) from exc


def read_dicom_series(folder: str | os.PathLike, series_uid: str | None = None) -> DicomImage:
    """Read the DICOM files of one series in ``folder`` as a (slices, H, W) volume.

    Slices are sorted by ImagePositionPatient projected on the slice normal (from
    ImageOrientationPatient), else by InstanceNumber, else by file name. Only the
    folder's own files are read (not subfolders); hidden files, DICOMDIR and
    non-DICOM files are skipped.

    Args:
        folder: the folder holding the files.
        series_uid: which SeriesInstanceUID to read when the folder holds several.

    Raises:
        DataError: the folder is missing, unreadable, empty, holds no DICOM files,
            holds several series and none was chosen, or its slices do not match.
    """
    root = Path(folder)
    headers = _scan_folder(root)
    groups: dict[str | None, list[tuple[Path, Dataset]]] = {}
    for file, ds in headers:
        uid = ds.get("SeriesInstanceUID")
        groups.setdefault(str(uid) if uid else None, []).append((file, ds))

    if series_uid is not None:
        if series_uid not in groups:
            raise DataError(f"{root}: no series {series_uid!r} here; found:\n{_describe_series(groups)}")
        chosen = groups[series_uid]
    elif len(groups) > 1:
        raise DataError(
            f"{root}: holds {len(groups)} series; pass series_uid= to pick one:\n{_describe_series(groups)}"
        )
    else:
        chosen = next(iter(groups.values()))

    ordered = _sort_slices(chosen)
    images = [read_dicom(file) for file, _ in ordered]
    first = images[0]
    for img in images[1:]:
        if img.pixels.shape[1:] != first.pixels.shape[1:]:
            raise DataError(
                f"{root}: slices differ in size ({first.path.name} is {first.pixels.shape[1:]}, "
                f"{img.path.name} is {img.pixels.shape[1:]}); keep one series of one size in the folder"
            )
    positions = None
    if all(img.positions is not None and len(img.positions) == img.num_frames for img in images):
        positions = np.concatenate([img.positions for img in images])
    files: list[Path] = []
    for img in images:
        files.extend([img.path] * img.num_frames)
    return DicomImage(
        pixels=np.concatenate([img.pixels for img in images]),
        modality=first.modality,
        photometric=first.photometric,
        window_center=first.window_center,
        window_width=first.window_width,
        spacing=first.spacing,
        positions=positions,
        orientation=first.orientation,
        path=root,
        series_uid=first.series_uid,
        transfer_syntax=first.transfer_syntax,
        files=tuple(files),
        voi_lut=np.concatenate([img.voi_lut for img in images])
        if all(img.voi_lut is not None for img in images)
        else None,
    )


def _corrupt(path: Path, exc: Exception) -> DataError:
    """The one error for a file pydicom cannot parse: which file, what pydicom said, and what to do."""
    return DataError(
        f"{path}: the DICOM file is corrupt or truncated ({type(exc).__name__}: {exc}); "
        "re-export or re-copy it, or remove it from the folder"
    )


def _read_dataset(path: Path, header_only: bool = False) -> Dataset:
    """dcmread with every failure turned into a DataError that names the file.

    A file that is not DICOM at all gets a DataError caused by ``InvalidDicomError``, so
    that a folder scan can tell it (skipped) from a damaged DICOM file (an error).
    """
    try:
        return pydicom.dcmread(path, stop_before_pixels=header_only)
    except InvalidDicomError as exc:
        raise DataError(
            f"{path}: not a DICOM file (no 'DICM' marker after the 128-byte preamble); "
            "pass a .dcm file, or use the image-folder loader for PNG/JPEG files"
        ) from exc
    except PermissionError as exc:
        raise DataError(f"{path}: cannot read the file (permission denied); check its permissions") from exc
    except Exception as exc:
        raise _corrupt(path, exc) from exc


def _scan_folder(root: Path) -> list[tuple[Path, Dataset]]:
    """Headers of the DICOM files directly in ``root``, with a clear error when there are none."""
    if not root.exists():
        raise DataError(f"{root}: no such folder; check the path")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, not a folder; use read_dicom() or load_dicom() for one file")
    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        raise DataError(f"{root}: cannot list the folder ({exc.strerror or exc}); check its permissions") from exc
    files = [e for e in entries if e.is_file() and not e.name.startswith(".") and e.name.upper() != "DICOMDIR"]
    subdirs = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    hint = f"; it has subfolders {subdirs[:5]}, point at one of them" if subdirs else ""
    if not files:
        raise DataError(f"{root}: the folder holds no files{hint}; point at a folder of .dcm files")
    headers: list[tuple[Path, Dataset]] = []
    for file in files:
        try:
            headers.append((file, _read_dataset(file, header_only=True)))
        except DataError as exc:
            if not isinstance(exc.__cause__, InvalidDicomError):
                raise
            # not DICOM (README, PNG, ...): skipped on purpose
    if not headers:
        names = ", ".join(f.name for f in files[:5])
        raise DataError(
            f"{root}: none of its {len(files)} files is a DICOM file (e.g. {names}){hint}; "
            "point at a folder of .dcm files"
        )
    return headers


def _describe_series(groups: dict[str | None, list[tuple[Path, Dataset]]]) -> str:
    """One line per series: uid, modality, description, number of files."""
    lines = []
    for uid, members in groups.items():
        ds = members[0][1]
        lines.append(
            f"  {uid or '<no SeriesInstanceUID>'}: {ds.get('Modality', '?')} "
            f"'{ds.get('SeriesDescription', '')}', {len(members)} file(s)"
        )
    return "\n".join(lines)


def _slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit normal of the image plane from the six direction cosines."""
    row, col = np.asarray(orientation[:3], dtype=np.float64), np.asarray(orientation[3:6], dtype=np.float64)
    return np.cross(row, col)


def _vector(value: object, length: int, path: Path, keyword: str) -> tuple[float, ...] | None:
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


def _sort_slices(members: list[tuple[Path, Dataset]]) -> list[tuple[Path, Dataset]]:
    """Slices in spatial order: position along the normal, else InstanceNumber, else file name."""
    positions = [_vector(ds.get("ImagePositionPatient"), 3, path, "ImagePositionPatient") for path, ds in members]
    orientation = _vector(members[0][1].get("ImageOrientationPatient"), 6, members[0][0], "ImageOrientationPatient")
    known = [p for p in positions if p is not None]
    if orientation is not None and len(known) == len(positions):
        normal = _slice_normal(orientation)
        keys = {m[0]: float(np.dot(p, normal)) for m, p in zip(members, known)}
        return sorted(members, key=lambda m: (keys[m[0]], m[0].name))
    numbers = {path: _first_float(ds.get("InstanceNumber")) for path, ds in members}
    if all(n is not None for n in numbers.values()):
        return sorted(members, key=lambda m: (numbers[m[0]], m[0].name))
    return sorted(members, key=lambda m: m[0].name)


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


def _first_float(value: object) -> float | None:
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


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    """The decoded pixel array, or a DataError that says why not and what to do."""
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        kind = ds.get("SOPClassUID")
        kind_name = UID(str(kind)).name if kind else "unknown object"
        raise DataError(
            f"{path}: the DICOM file has no pixel data ({kind_name}); it may be a non-image object "
            "(RT plan, structured report, ...) or a truncated file; pass an image file"
        )
    meta = getattr(ds, "file_meta", None)
    tsyntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if tsyntax is None:
        raise DataError(
            f"{path}: the DICOM file has no Transfer Syntax UID in its file meta header, so its pixels "
            "cannot be decoded; the file is corrupt or was written without a header: re-export it"
        )
    tsyntax = UID(str(tsyntax))
    if tsyntax.is_compressed:
        try:
            decoder = pydicom.pixels.get_decoder(tsyntax)
        except NotImplementedError as exc:
            raise DataError(
                f"{path}: pydicom has no decoder for transfer syntax '{tsyntax.name}' ({tsyntax}); convert "
                "the file to an uncompressed or JPEG syntax first (e.g. `gdcmconv --raw` or dcmtk's dcmdjpeg)"
            ) from exc
        if not decoder.is_available:
            missing = "; ".join(decoder.missing_dependencies) or "a decoder plugin"
            raise DataError(
                f"{path}: cannot decode transfer syntax '{tsyntax.name}' ({tsyntax}): no decoder plugin "
                f"is installed (needs {missing}); {_INSTALL_HINT}"
            )
    try:
        return ds.pixel_array
    except Exception as exc:
        if tsyntax.is_compressed:
            raise DataError(
                f"{path}: no installed decoder could decode transfer syntax '{tsyntax.name}' ({tsyntax}); "
                f"the data may be corrupt, or need another plugin: {_INSTALL_HINT}. "
                f"Decoder said: {exc}"
            ) from exc
        raise DataError(
            f"{path}: the pixel data cannot be read ({exc}); the file is probably truncated or corrupt: re-copy it"
        ) from exc


def _to_gray(arr: np.ndarray, ds: Dataset, frames: int) -> np.ndarray:
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
        raise DataError(f"unexpected pixel array shape {arr.shape} for {frames} frame(s)")
    return arr


def image_from_dataset(ds: Dataset, path: Path) -> DicomImage:
    """Turn a read dataset into a DicomImage: decode, rescale, invert, keep the metadata (DataError on failure)."""
    raw = _decode(ds, path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    monochrome = photometric.startswith("MONOCHROME")
    try:
        gray = _to_gray(raw, ds, frames)
    except DataError as exc:
        raise DataError(f"{path}: {exc}; the file's Rows/Columns/NumberOfFrames may be wrong") from exc
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
            s = _first_float(ds.get("RescaleSlope")) or _first_float(
                _shared(ds, "PixelValueTransformationSequence", "RescaleSlope", i)
            )
            b = _first_float(ds.get("RescaleIntercept"))
            if b is None:
                b = _first_float(_shared(ds, "PixelValueTransformationSequence", "RescaleIntercept", i))
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
    center = _first_float(ds.get("WindowCenter"))
    width = _first_float(ds.get("WindowWidth"))
    if center is None or width is None:
        center = _first_float(_shared(ds, "FrameVOILUTSequence", "WindowCenter"))
        width = _first_float(_shared(ds, "FrameVOILUTSequence", "WindowWidth"))
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
    row_col = _vector(raw_spacing, 2, path, "PixelSpacing")
    spacing: tuple[float, float] | None = None
    if row_col is not None and min(row_col) > 0:  # zero spacing (seen in CR files) means unknown
        spacing = (row_col[0], row_col[1])

    positions = None
    if ds.get("ImagePositionPatient") and frames == 1:
        position = _vector(ds.ImagePositionPatient, 3, path, "ImagePositionPatient")
        positions = np.asarray([position], dtype=np.float64) if position is not None else None
    elif ds.get("PerFrameFunctionalGroupsSequence"):
        per_frame = [
            _vector(_shared(ds, "PlanePositionSequence", "ImagePositionPatient", i), 3, path, "ImagePositionPatient")
            for i in range(frames)
        ]
        if all(p is not None for p in per_frame):
            positions = np.asarray(per_frame, dtype=np.float64)
    orientation = _vector(
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


# ---------------------------------------------------------------------------- writing


def example_dicom_folders() -> dict[str, Path]:
    """Folders of real DICOM files of several modalities, by the package they ship with: pydicom (its test files:
    CT, MR, US, RT objects, broken files) and the registry package pydicom-data (larger CR, US, MR volumes and cine
    loops). ``[f"{name}={folder}" for name, folder in ...items()]`` ingests them under those names."""
    from pydicom.data import get_testdata_file

    folders = {"pydicom": Path(str(get_testdata_file("CT_small.dcm"))).parent}
    try:
        import data_store  # the import name of pydicom-data

        folders["pydicom-data"] = Path(data_store.__file__).parent / "data"
    except ImportError:
        pass
    return {name: f for name, f in folders.items() if f.is_dir()}


def write_dicom(
    path: str | os.PathLike,
    pixels: np.ndarray,
    modality: str = "CT",
    *,
    spacing: tuple[float, float] = (1.0, 1.0),
    position: Sequence[float] | None = None,
    orientation: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    slice_thickness: float | None = None,
    window: tuple[float, float] | None = None,
    photometric: str = "MONOCHROME2",
    rescale_slope: float = 1.0,
    rescale_intercept: float | None = None,
    instance_number: int = 1,
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_description: str = "medssl-lab synthetic phantom",
    uid_seed: str | None = None,
) -> Path:
    """Write one (H, W) image as a valid single-frame DICOM file, atomically.

    Values are stored as 16-bit integers ``round((pixels - intercept) / slope)``: signed
    int16 for CT (intercept -1024 by default, so ``pixels`` are HU), unsigned when every
    stored value is >= 0 otherwise. For MONOCHROME1 the stored values and the window
    are inverted, so :func:`read_dicom` gives ``pixels`` back. The patient is
    'Phantom^Synthetic': this writer is for synthetic data, not for patient images.
    The file is written through :func:`~medssl_lab.files.atomic_file` (readable by all,
    mode 0o644, like any data file), so a failure never leaves a half-written file.

    Args:
        path: where to write (the folder is created if needed).
        pixels: (H, W) values in modality units (HU for CT).
        modality: "CT", "MR" and "CR" get their own SOP class, others Secondary Capture.
        spacing: (row, column) pixel spacing in mm.
        position: ImagePositionPatient in mm (CT and MR default to the origin).
        orientation: ImageOrientationPatient direction cosines (CT and MR only).
        slice_thickness: SliceThickness in mm, or None to leave it out.
        window: (center, width) to store as the file's window, in units of ``pixels``.
        photometric: "MONOCHROME2" (bright = high) or "MONOCHROME1".
        rescale_slope: RescaleSlope; raise it to fit wide or fractional ranges.
        rescale_intercept: RescaleIntercept; None means -1024 for CT, else 0.
        instance_number: InstanceNumber.
        series_uid, study_uid, frame_of_reference_uid: shared by the slices of a series;
            generated when None.
        series_description: SeriesDescription.
        uid_seed: when given, every generated UID is derived from it, so rewriting the
            same data gives the same bytes (for reproducible sample files).

    Returns:
        The path written.

    Raises:
        ValueError: bad shape, non-finite values, or values that do not fit 16 bits.
    """
    path, modality = Path(path), modality.upper()
    stored, intercept, (lo, hi) = _stored_values(pixels, modality, photometric, rescale_slope, rescale_intercept)
    center = None if window is None else float(window[0])
    if photometric == "MONOCHROME1":  # stored inverted, so that read_dicom's inversion gives ``pixels`` back
        invert_about = float(lo + hi)
        stored = invert_about - stored
        if center is not None:
            center = rescale_slope * invert_about + 2 * intercept - center

    ds = _new_dataset(modality, instance_number, series_description, uid_seed)
    ds.StudyInstanceUID = study_uid or _uid(uid_seed, "study")
    ds.SeriesInstanceUID = series_uid or _uid(uid_seed, "series")
    if modality in ("CT", "MR"):
        ds.FrameOfReferenceUID = frame_of_reference_uid or _uid(uid_seed, "frame-of-reference")
    _set_geometry(ds, spacing, position, orientation, slice_thickness)
    _set_pixels(ds, stored, lo < 0, photometric, intercept, rescale_slope)
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = center, float(window[1])
    with atomic_file(path, permissions=0o644) as tmp, tmp.open("wb") as handle:
        ds.save_as(handle, enforce_file_format=True)
    return path


def _stored_values(
    pixels: np.ndarray, modality: str, photometric: str, rescale_slope: float, rescale_intercept: float | None
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The 16-bit values to store, the intercept used and the storage range; a ValueError before anything is written.

    Signed storage for CT (HU go below zero) or any negative stored value, unsigned otherwise.
    """
    arr = np.asarray(pixels, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"write_dicom writes one (H, W) image, got {arr.shape}; use write_dicom_series for volumes")
    if not np.isfinite(arr).all():
        raise ValueError("pixels contain NaN or infinity; DICOM stores integers")
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric must be 'MONOCHROME1' or 'MONOCHROME2', got {photometric!r}")
    if rescale_slope <= 0:
        raise ValueError(f"rescale_slope must be > 0, got {rescale_slope}")
    intercept = float(rescale_intercept if rescale_intercept is not None else (-1024.0 if modality == "CT" else 0.0))
    stored = np.rint((arr - intercept) / rescale_slope)
    signed = modality == "CT" or stored.min() < 0
    lo, hi = (-32768, 32767) if signed else (0, 65535)
    if stored.min() < lo or stored.max() > hi:
        raise ValueError(
            f"values {arr.min():g}..{arr.max():g} do not fit 16-bit storage with slope {rescale_slope} and "
            f"intercept {intercept}; pass a larger rescale_slope or another rescale_intercept"
        )
    return stored, intercept, (lo, hi)


def _set_pixels(
    ds: Dataset, stored: np.ndarray, signed: bool, photometric: str, intercept: float, rescale_slope: float
) -> None:
    """The 16-bit pixel data and the rescale that turns it back into modality units (HU for CT)."""
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleIntercept, ds.RescaleSlope = intercept, float(rescale_slope)
    ds.RescaleType = "HU" if ds.Modality == "CT" else "US"
    ds.PixelData = stored.astype("<i2" if signed else "<u2").tobytes()


def _uid(seed: str | None, kind: str) -> UID:
    """A new UID; derived from ``seed`` and ``kind`` when a seed is given, so rewriting gives the same bytes."""
    return generate_uid(entropy_srcs=[seed, kind]) if seed is not None else generate_uid()


def _new_dataset(modality: str, instance_number: int, series_description: str, uid_seed: str | None) -> Dataset:
    """File meta, SOP class and the patient, study and series tags of a synthetic image (no geometry, no pixels).

    The patient is 'Phantom^Synthetic' and the comments say so: files from here are never patient data.
    """
    sop_class = _SOP_CLASSES.get(modality, pydicom.uid.SecondaryCaptureImageStorage)
    sop_instance = _uid(uid_seed, f"sop-{instance_number}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_instance
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.PatientName, ds.PatientID = "Phantom^Synthetic", "SYNTHETIC-PHANTOM"
    ds.PatientBirthDate, ds.PatientSex = "", ""
    ds.StudyDate = ds.StudyTime = ds.ReferringPhysicianName = ds.StudyID = ds.AccessionNumber = ""
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, 1, int(instance_number)
    ds.SeriesDescription = series_description
    ds.Manufacturer = "medssl-lab (synthetic phantom)"
    ds.ImageComments = "Synthetic phantom generated by medssl-lab; not patient data."
    ds.BurnedInAnnotation = "NO"
    if sop_class == pydicom.uid.SecondaryCaptureImageStorage:
        ds.ConversionType = "WSD"
    if modality == "MR":
        ds.ScanningSequence, ds.SequenceVariant = "RM", "NONE"
    return ds


def _set_geometry(
    ds: Dataset,
    spacing: tuple[float, float],
    position: Sequence[float] | None,
    orientation: Sequence[float],
    slice_thickness: float | None,
) -> None:
    """Plane position, orientation, thickness and spacing: CT and MR always carry a position (the origin by default)."""
    if ds.Modality in ("CT", "MR"):
        ds.PositionReferenceIndicator = ""
        ds.ImagePositionPatient = [float(v) for v in (position if position is not None else (0.0, 0.0, 0.0))]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.AcquisitionNumber = 1
        if ds.Modality == "CT":
            ds.KVP = ""
    elif position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    if slice_thickness is not None:
        ds.SliceThickness = float(slice_thickness)
    ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]


def write_dicom_series(
    folder: str | os.PathLike,
    volume: np.ndarray,
    modality: str = "CT",
    *,
    spacing: tuple[float, float] = (1.0, 1.0),
    slice_thickness: float = 1.0,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    window: tuple[float, float] | None = None,
    series_description: str = "medssl-lab synthetic phantom",
    uid_seed: str | None = None,
) -> list[Path]:
    """Write a (slices, H, W) volume as one axial series ``slice_000.dcm``, ... in ``folder``.

    Slices share study, series and frame-of-reference UIDs and step ``slice_thickness``
    mm along z. Each file is written atomically; the series as a whole is not.
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"volume must be (slices, H, W), got shape {vol.shape}")
    folder = Path(folder)
    seed = uid_seed if uid_seed is not None else str(generate_uid())
    shared = {k: generate_uid(entropy_srcs=[seed, k]) for k in ("series", "study", "frame-of-reference")}
    paths = []
    for i, image in enumerate(vol):
        paths.append(
            write_dicom(
                folder / f"slice_{i:03d}.dcm",
                image,
                modality,
                spacing=spacing,
                position=(float(origin[0]), float(origin[1]), float(origin[2]) + i * slice_thickness),
                slice_thickness=slice_thickness,
                window=window,
                instance_number=i + 1,
                series_uid=shared["series"],
                study_uid=shared["study"],
                frame_of_reference_uid=shared["frame-of-reference"],
                series_description=series_description,
                uid_seed=f"{seed}-{i}",
            )
        )
    return paths
