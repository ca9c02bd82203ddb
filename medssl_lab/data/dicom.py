"""Read DICOM images with pydicom: one file, a folder, or a sorted series, by one policy on what is DICOM.

Everything comes back as a :class:`~medssl_lab.data.dicom_image.DicomImage` holding ``float32`` pixels of shape
``(frames, H, W)`` in modality units (Hounsfield units for CT), with the metadata needed to display them the way
the file asks (its own window or VOI LUT) or through a named preset. How a dataset becomes pixels is in
:mod:`medssl_lab.data.dicom_image`, display (``WINDOW_PRESETS``, ``window_image``, ``to_uint8``) in
:mod:`medssl_lab.data.windowing` and synthetic files in :mod:`medssl_lab.data.dicom_writer`; the reading and
display names stay importable from here, where notebooks and docs import them.

Files without the 128-byte preamble and 'DICM' marker (older exports, some archives) are read when they hold a
DICOM object (a SOPClassUID): :func:`read_dataset` is the one place that decides, for this reader and for a pool
store's ingest alike.

Every bad input raises a :class:`~medssl_lab.errors.DataError` naming the path; a file's own failures raise its
typed subclasses (:class:`~medssl_lab.errors.NotDicom`, :class:`~medssl_lab.errors.CorruptDicom`,
:class:`~medssl_lab.errors.NoPixelData`, :class:`~medssl_lab.errors.UnsupportedTransferSyntax`), so that callers
decide by type, never by the words of a message.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medssl_lab.data.dicom_image import (
    DicomImage,
    corrupt_dicom,
    first_float,
    image_from_dataset,
    slice_normal,
    tag_vector,
)
from medssl_lab.data.intensity import apply_window
from medssl_lab.data.windowing import WINDOW_PRESETS, to_uint8, window_image
from medssl_lab.errors import DataError, NotDicom

__all__ = [
    "WINDOW_PRESETS",  # display and conversion names are re-exported: notebooks and docs import them from here
    "DicomImage",
    "apply_window",
    "example_dicom_folders",
    "image_from_dataset",
    "load_dicom",
    "read_dataset",
    "read_dicom",
    "read_dicom_series",
    "to_uint8",
    "window_image",
]


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
    return image_from_dataset(read_dataset(p), p)


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


def read_dataset(path: Path, header_only: bool = False) -> Dataset:
    """The file's dataset, by the package's one policy on what counts as DICOM (this reader and store ingest).

    A file with the 'DICM' marker is read as it is. A file without the 128-byte preamble and marker (older
    exports and some archives write the bare dataset) is read too when it holds a DICOM object (a SOPClassUID),
    since real archives hold such files; anything else is :class:`NotDicom`, so that a folder scan can skip it.

    Raises:
        NotDicom: neither the marker nor a DICOM object without one (text, PNG, empty files).
        CorruptDicom: a DICOM file that pydicom cannot parse.
        DataError: the file cannot be read at all (permissions).
    """
    try:
        return pydicom.dcmread(path, stop_before_pixels=header_only)
    except InvalidDicomError:
        pass  # no marker: maybe a bare dataset, tried below
    except PermissionError as exc:
        raise DataError(f"{path}: cannot read the file (permission denied); check its permissions") from exc
    except Exception as exc:
        raise corrupt_dicom(path, exc) from exc
    ds = _read_bare_dataset(path, header_only)
    if ds is None or "SOPClassUID" not in ds:
        raise NotDicom(
            f"{path}: not a DICOM file (no 'DICM' marker after the 128-byte preamble, and no DICOM object "
            "without one); pass a .dcm file, or use the image-folder loader for PNG/JPEG files"
        )
    _infer_transfer_syntax(ds)
    return ds


def _read_bare_dataset(path: Path, header_only: bool) -> Dataset | None:
    """The file read as a dataset without preamble, or None when even that fails.

    Forcing pydicom through a file that is not DICOM is a probe, so its warnings are not shown.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, stop_before_pixels=header_only, force=True)
        except Exception:
            return None


def _infer_transfer_syntax(ds: Dataset) -> None:
    """Give a bare dataset (no file meta) the transfer syntax of the encoding pydicom found, so its pixels decode.

    Left unset when the pixel data is encapsulated: compressed by a syntax the file does not name.
    """
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    implicit, little = ds.original_encoding
    if "TransferSyntaxUID" in meta or implicit is None:
        return
    if "PixelData" in ds and ds["PixelData"].is_undefined_length:
        return
    meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    )


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
            headers.append((file, read_dataset(file, header_only=True)))
        except NotDicom:
            pass  # not DICOM (README, PNG, ...): skipped on purpose
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


def _sort_slices(members: list[tuple[Path, Dataset]]) -> list[tuple[Path, Dataset]]:
    """Slices in spatial order: position along the normal, else InstanceNumber, else file name."""
    positions = [tag_vector(ds.get("ImagePositionPatient"), 3, path, "ImagePositionPatient") for path, ds in members]
    orientation = tag_vector(members[0][1].get("ImageOrientationPatient"), 6, members[0][0], "ImageOrientationPatient")
    known = [p for p in positions if p is not None]
    if orientation is not None and len(known) == len(positions):
        normal = slice_normal(orientation)
        keys = {m[0]: float(np.dot(p, normal)) for m, p in zip(members, known)}
        return sorted(members, key=lambda m: (keys[m[0]], m[0].name))
    numbers = {path: first_float(ds.get("InstanceNumber")) for path, ds in members}
    if all(n is not None for n in numbers.values()):
        return sorted(members, key=lambda m: (numbers[m[0]], m[0].name))
    return sorted(members, key=lambda m: m[0].name)


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
