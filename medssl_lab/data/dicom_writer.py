"""Synthetic DICOM files, for tests, demos and the package's sample data: never patient images.

:func:`write_dicom` writes one (H, W) image in modality units as a valid single-frame file that
:func:`~medssl_lab.data.dicom.read_dicom` gives back unchanged; :func:`write_dicom_series` writes a volume as
one axial series. Kept apart from the reader: reading real archives must not depend on how test files are made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, generate_uid

from medssl_lab.files import atomic_file

_SOP_CLASSES = {
    "CT": pydicom.uid.CTImageStorage,
    "MR": pydicom.uid.MRImageStorage,
    "CR": pydicom.uid.ComputedRadiographyImageStorage,
}


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
