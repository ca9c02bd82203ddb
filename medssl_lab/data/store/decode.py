"""One source file to pool images: uint8 at N px by a stated rule per modality, or the reason it is rejected.

The rules, applied in this order (docs/stores.md repeats them):

* **Frames.** Every stored frame of a file is one 2D image in the plane it was acquired in; a multi-frame file
  (an enhanced CT or MR volume, a cine loop) gives every ``stride``-th frame. A NIfTI, MHA or NRRD volume gives
  every ``stride``-th slice across its slice axis, oriented from its direction cosines as DICOM images are shown
  (:mod:`medssl_lab.data.volume` states the rules); a volume whose voxels all hold one value is ``empty``, one of
  a few whole values a label map (``derived_object``). Volumes are not resampled to another plane.
* **Intensities to uint8.** MONOCHROME1 is inverted and colour becomes luma on reading
  (:func:`medssl_lab.data.dicom_image.image_from_dataset`). Then CT (for a volume: by its MHA tag, else by its
  values being HU) goes through an HU window (default soft tissue, 40/400); MR and ultrasound through the 0.5th to
  99.5th percentile of the file's pixels (their stored values have no common scale); every other modality
  (radiographs, mammograms, ...) through the file's own VOI LUT or window when it has one, else those
  percentiles (volumes have neither). Image files: 8-bit as stored, wider ones over their bit depth in use.
* **Size.** The image is padded with black to a square (nothing is cut off), then resized to ``size`` px
  (bilinear, antialiased).

Which files are volumes is their suffix (``.nii``, ``.nii.gz``, ``.mha``, ``.mhd``, ``.nrrd``, ``.nhdr``); which
other files are DICOM is the reader's policy (:func:`medssl_lab.data.dicom.read_dataset`: files without the
preamble too). Both readers' failures are rejected by their type (:data:`READER_REASONS`), never by their words.

Nothing identifying leaves this module in clear: patient, study, series and instance identifiers come back as
salted keys (:func:`salted_key`), and a file flagged ``BurnedInAnnotation = YES`` is rejected unless allowed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medssl_lab.data.dicom import read_dataset
from medssl_lab.data.dicom_image import image_from_dataset
from medssl_lab.data.folder import IMAGE_SUFFIXES, decode_gray
from medssl_lab.data.intensity import apply_window, unit_to_uint8
from medssl_lab.data.resize import resize_uint8
from medssl_lab.data.store.rules import Rules
from medssl_lab.data.volume import LABEL_VALUES, read_volume, volume_suffix
from medssl_lab.data.windowing import window_image
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

#: DICOM Modality tag -> the pool's modality name (others keep their tag)
MODALITY_NAMES = {
    "CT": "CT",
    "MR": "MR",
    "CR": "X-ray",
    "DX": "X-ray",
    "DR": "X-ray",
    "RG": "X-ray",
    "PX": "X-ray",
    "MG": "mammography",
    "US": "ultrasound",
    "XA": "angiography",
    "RF": "fluoroscopy",
    "PT": "PET",
    "NM": "nuclear medicine",
    "OT": "other",
}
PERCENTILE_MODALITIES = ("MR", "ultrasound")
RT_MODALITIES = ("RTSTRUCT", "RTPLAN", "RTDOSE", "RTIMAGE", "RTRECORD", "RTSEGANN", "RTTREAT")
DERIVED_MODALITIES = ("SEG", "REG", "PR", "SR", "KO")  # segmentations, registrations, documents: not images
#: why a file gave no image; the rejected table's ``reason`` column takes these values
REASONS = (
    "not_an_image",  # neither DICOM nor a readable image file
    "corrupt",  # DICOM or image that cannot be parsed or decoded
    "no_pixel_data",  # a DICOM object without pixels (structured report, presentation state, ...)
    "rt_object",  # radiotherapy objects (structures, plans, dose grids): not images to learn from
    "derived_object",  # segmentations, registrations, reports and other objects made from images
    "unsupported_compression",  # no installed decoder for the transfer syntax
    "unsupported_volume",  # a volume that is no grey-value grid: over 4 dimensions, vector, colour or complex voxels
    "empty",  # a volume whose voxels all hold one value
    "burned_in_annotation",  # flagged as carrying text in its pixels (allow with allow_burned_in)
    "too_small",  # smaller than MIN_SIDE px on a side
    "decode_error",  # anything else that went wrong with the file (the detail has the exception)
)
MIN_SIDE = 8
#: the DICOM and volume readers' error types -> the rejected reason, so that rewording a message never changes a
#: store's tables; any other DataError (a file that cannot be opened) is a ``decode_error``
READER_REASONS: dict[type[DataError], str] = {
    NotDicom: "not_an_image",
    CorruptDicom: "corrupt",
    NoPixelData: "no_pixel_data",
    UnsupportedTransferSyntax: "unsupported_compression",
    NotAVolume: "not_an_image",
    CorruptVolume: "corrupt",
    UnsupportedVolume: "unsupported_volume",
}


class Rejected(Exception):
    """A file that yields no image, with one of :data:`REASONS` and a detail a person can act on."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass
class Decoded:
    """The images one file gave, with their tags and salted keys (one entry per image in each list)."""

    images: np.ndarray  # (n, size, size) uint8
    frames: list[int]
    modality: str
    body_part: str
    patient: str
    study: str
    series: str
    instances: list[str]


def salted_key(salt: bytes, value: object) -> str:
    """A 16-hex-digit keyed hash: equal values give equal keys within a store, and the value cannot be read back."""
    if value is None or str(value) == "":
        return ""
    return hashlib.blake2b(str(value).encode(), key=salt, digest_size=8).hexdigest()


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W) uint8 padded with black to a centred square, then resized to (size, size) (bilinear, antialiased)."""
    h, w = image.shape
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    square[top : top + h, left : left + w] = image
    return resize_uint8(square[None], size)[0]


def percentile_uint8(pixels: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """Pixels scaled so that the two percentiles (over all frames) map to 0 and 255."""
    low, high = np.percentile(pixels, percentiles)
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.uint8)
    return unit_to_uint8((pixels - low) / (high - low))


def rejected_by_reader(exc: DataError, path: Path) -> Rejected:
    """The rejection for an error of a reader: its reason by the error's type, its detail the message, without the
    file's folder (a detached header names its data file by full path)."""
    reason = next((r for kind, r in READER_REASONS.items() if isinstance(exc, kind)), "decode_error")
    return Rejected(reason, str(exc).replace(f"{path}: ", "").replace(f"{path.parent}{os.sep}", ""))


def decode_dicom(path: Path, rules: Rules, salt: bytes) -> Decoded:
    """The frames of one DICOM file as pool images, or :class:`Rejected`.

    The file is read by :func:`~medssl_lab.data.dicom.read_dataset`, the reader's own policy (files without
    the preamble included), so that a file is a DICOM image here exactly when ``load_dicom`` reads it.
    """
    try:
        ds = read_dataset(path)
    except DataError as exc:
        raise rejected_by_reader(exc, path) from exc
    tag = str(ds.get("Modality", "") or "").upper()
    if tag in RT_MODALITIES:
        raise Rejected("rt_object", f"a radiotherapy object (Modality {tag})")
    if tag in DERIVED_MODALITIES:
        raise Rejected("derived_object", f"not an acquired image (Modality {tag})")
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES" and not rules.allow_burned_in:
        raise Rejected("burned_in_annotation", "BurnedInAnnotation is YES (text in the pixels may identify)")
    try:
        image = image_from_dataset(ds, path)  # no pixels, an unknown compression, damage: each its own type
    except DataError as exc:
        raise rejected_by_reader(exc, path) from exc
    modality = MODALITY_NAMES.get(tag, tag or rules.default_modality)
    frames = list(range(0, image.num_frames, max(1, rules.stride)))
    pixels = image.pixels[frames]
    if min(pixels.shape[1:]) < MIN_SIDE:
        raise Rejected("too_small", f"{pixels.shape[2]}x{pixels.shape[1]} px")
    if modality == "CT":
        gray = apply_window(pixels, *rules.ct_window)
    elif modality in PERCENTILE_MODALITIES or (image.voi_lut is None and image.window_width is None):
        gray = percentile_uint8(pixels, rules.percentiles)
    else:
        gray = window_image(image, "file")[frames]
    sop = ds.get("SOPInstanceUID")
    return Decoded(
        images=np.stack([square_resize(g, rules.size) for g in gray]),
        frames=frames,
        modality=modality,
        body_part=str(ds.get("BodyPartExamined", "") or "").upper(),
        patient=salted_key(salt, ds.get("PatientID")),
        study=salted_key(salt, ds.get("StudyInstanceUID")),
        series=salted_key(salt, ds.get("SeriesInstanceUID")),
        instances=[salted_key(salt, f"{sop}/{f}") if sop else "" for f in frames],
    )


def decode_image_file(path: Path, rules: Rules, salt: bytes) -> Decoded:
    """One PNG/JPEG/TIFF/BMP file (any bit depth) as one pool image; its key is a hash of the file's bytes."""
    data = path.read_bytes()
    try:
        gray = decode_gray(data, str(path.name))
    except DataError as exc:
        raise Rejected("corrupt", str(exc).replace(f"{path.name}: ", "")) from exc
    if min(gray.shape) < MIN_SIDE:
        raise Rejected("too_small", f"{gray.shape[1]}x{gray.shape[0]} px")
    return Decoded(
        images=square_resize(gray, rules.size)[None],
        frames=[0],
        modality=rules.default_modality,
        body_part="",
        patient="",
        study="",
        series="",
        instances=[salted_key(salt, hashlib.blake2b(data, digest_size=16).hexdigest())],
    )


def decode_volume(path: Path, rules: Rules, salt: bytes) -> Decoded:
    """Every ``stride``-th slice of one NIfTI, MHA or NRRD volume as pool images, or :class:`Rejected`.

    Slices, orientation and modality follow :mod:`medssl_lab.data.volume`; intensities follow the DICOM rules.
    A volume has no patient or study identifiers: its series key is a salted hash of its voxels, and its slices'
    keys add the slice number, so the same volume in two files or formats is kept once.
    """
    try:
        volume = read_volume(path)
    except DataError as exc:
        raise rejected_by_reader(exc, path) from exc
    voxels = volume.voxels
    if voxels.size == 0 or voxels.min() == voxels.max():
        raise Rejected("empty", f"{voxels.shape} voxels, all {voxels.flat[0] if voxels.size else 'absent'}")
    slices = volume.slices()
    frames = list(range(0, len(slices), max(1, rules.stride)))
    pixels = slices[frames]
    if min(pixels.shape[1:]) < MIN_SIDE:
        raise Rejected("too_small", f"{pixels.shape[2]}x{pixels.shape[1]} px slices ({volume.plane()})")
    if volume.is_label_map():
        raise Rejected("derived_object", f"a label map or mask (at most {LABEL_VALUES} distinct whole values)")
    modality = volume.modality()
    if modality == "CT":
        gray = apply_window(pixels, *rules.ct_window)
    else:  # MR, and anything else a volume holds (no VOI LUT or window in these formats)
        gray = percentile_uint8(pixels, rules.percentiles)
    digest = volume.digest()
    return Decoded(
        images=np.stack([square_resize(g, rules.size) for g in gray]),
        frames=frames,
        modality=modality,
        body_part="",
        patient="",
        study="",
        series=salted_key(salt, digest),
        instances=[salted_key(salt, f"{digest}/{f}") for f in frames],
    )


def decode_file(path: Path, rules: Rules, salt: bytes) -> Decoded:
    """Any source file: volume and image suffixes as such, everything else tried as DICOM (many have none)."""
    if volume_suffix(path):
        return decode_volume(path, rules, salt)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return decode_image_file(path, rules, salt)
    return decode_dicom(path, rules, salt)
