"""NIfTI, MHA and NRRD volumes as 2D slices in the plane they were acquired in, oriented as radiologists read them.

**Readers.** nibabel reads NIfTI (``.nii``, ``.nii.gz``; NIfTI-1 and NIfTI-2); SimpleITK reads MetaImage (``.mha``,
``.mhd``) and NRRD (``.nrrd``, ``.nhdr``). Why two: nibabel is the reference NIfTI implementation, reads both NIfTI
versions and any affine the standard allows, and fails on a truncated file or a damaged gzip stream, whereas
SimpleITK 2.5 (ITK 5.4) reads no NIfTI-2 and returned truncated and corrupted ``.nii.gz`` files as images without an
error (tried on nibabel's example files). nibabel reads neither MetaImage nor NRRD; ITK is MetaImage's own
implementation, reads NRRD, and fails on a truncated file of either. Both readers' geometry is brought to one
convention here, so the rules below do not depend on the format (tested: one real NIfTI and its MHA and NRRD
copies give the same slices).

**Geometry.** A :class:`Volume` holds its voxels in index order ``[i, j, k]`` and a 3x3 matrix whose column ``a``
is the physical step (mm) of one voxel along index axis ``a`` in patient LPS coordinates (x towards the patient's
left, y posterior, z superior: DICOM's convention). nibabel's affine is RAS (its first two rows are negated here);
SimpleITK's direction times spacing is LPS already.

**Rules** (docs/stores.md repeats them):

* **Slice axis** (the acquired plane): an axis one voxel long if there is one, else the axis with the largest voxel
  spacing (slice thickness or gap), the last of those when several share it (``k`` for an isotropic volume: the
  axis writers stack slices along). Slices come in index order along it; nothing is resampled.
* **Orientation**: each index axis is matched to the patient axis nearest to it (the assignment with the largest
  sum of the absolute direction cosines); the slice axis's patient axis names the plane. The two in-plane axes are then
  transposed and flipped by the direction cosines, never by the array order, so that an axial slice has the
  patient's left on the image's right and anterior at the top, a coronal slice the left on the right and superior
  at the top, and a sagittal slice anterior on the left and superior at the top (the radiological convention, the
  way DICOM images are stored and shown). An oblique volume is shown in its nearest such plane.
* **Dimensions**: trailing axes one long are dropped; a 2D image is one slice; a 4D file (a time series, diffusion
  directions, echoes) gives its first 3D volume only, read alone. More dimensions, vector or colour voxels and
  complex values are :class:`~medssl_lab.errors.UnsupportedVolume`.
* **Values**: as the file scales them (NIfTI ``scl_slope``/``scl_inter``); NaN and infinite voxels (SPM writes NaN
  outside the brain) become the volume's lowest finite value.
* **Label maps**: whole numbers with at most 16 distinct values (in a sample of a million voxels) make a
  segmentation or mask, not an image (a store rejects it as a derived object, as it does DICOM SEG).
* **Modality**: an MHA's own ``Modality`` tag when it names one (``MET_MOD_CT``, ``MET_MOD_MR``, ...); else (NIfTI
  and NRRD carry none) CT when every voxel value is an integer and the minimum lies between -3100 and -800 (air is
  about -1000 HU, but pydicom's small real CT, cropped and downsampled, holds nothing below -896; scanners write
  -2000 or -3024 outside the field of view), else MR. MR values are counts from 0 up, far from -800.

Failures are typed: the file's first bytes decide whether it is the format its suffix names
(:class:`~medssl_lab.errors.NotAVolume` if not), and whatever then fails to read is
:class:`~medssl_lab.errors.CorruptVolume`, whatever the readers' messages say. Messages never hold the file's path
beyond their ``path:`` prefix (paths may identify; a store keeps them salted).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import re
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medssl_lab.errors import CorruptVolume, NotAVolume, UnsupportedVolume

NIFTI_SUFFIXES = (".nii", ".nii.gz")
METAIMAGE_SUFFIXES = (".mha", ".mhd")
NRRD_SUFFIXES = (".nrrd", ".nhdr")
VOLUME_SUFFIXES = NIFTI_SUFFIXES + METAIMAGE_SUFFIXES + NRRD_SUFFIXES
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])
#: MetaImage's Modality values -> the pool's names (MET_MOD_UNKNOWN and MET_MOD_OTHER are decided by the values)
METAIMAGE_MODALITIES = {
    "MET_MOD_CT": "CT",
    "MET_MOD_MR": "MR",
    "MET_MOD_NM": "nuclear medicine",
    "MET_MOD_US": "ultrasound",
}
#: a volume without a modality tag is CT when its values are integers and its minimum lies in this range (HU)
CT_MINIMUM = (-3100.0, -800.0)
#: a volume of whole numbers with at most this many distinct values is a label map (segmentation, mask)
LABEL_VALUES = 16
#: the plane named by the slice axis's patient axis (0: x, left; 1: y, posterior; 2: z, superior) -> the patient
#: axis and sign that the image's columns (left to right) and rows (top to bottom) must run along
DISPLAY = {
    2: ("axial", (0, 1.0), (1, 1.0)),  # the patient's left on the right, anterior at the top
    1: ("coronal", (0, 1.0), (2, -1.0)),  # the patient's left on the right, superior at the top
    0: ("sagittal", (1, 1.0), (2, -1.0)),  # anterior on the left, superior at the top
}
#: a NIfTI file's first 4 bytes: sizeof_hdr, 348 (NIfTI-1) or 540 (NIfTI-2), in either byte order
NIFTI_HEADER_SIZES = {v.to_bytes(4, "little") for v in (348, 540)} | {v.to_bytes(4, "big") for v in (348, 540)}


def volume_suffix(path: str | os.PathLike) -> str | None:
    """The volume suffix the file's name ends with (``.nii.gz`` included, any case), or None."""
    name = Path(path).name.lower()
    return next((s for s in VOLUME_SUFFIXES if name.endswith(s)), None)


@dataclass
class Volume:
    """One 3D grid of grey values and where it lies in the patient (see the module's rules)."""

    voxels: np.ndarray  # [i, j, k], real numbers, all finite
    axes: np.ndarray  # 3x3: column a = the physical step (mm, LPS) of one voxel along index axis a
    modality_tag: str = ""  # the file's own modality in the pool's names; "" when it names none
    format: str = ""  # "NIfTI-1", "NIfTI-2", "MetaImage" or "NRRD"

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along each index axis (mm)."""
        return np.linalg.norm(self.axes, axis=0)

    def slice_axis(self) -> int:
        """The index axis slices are taken across: one voxel long, else the largest spacing, the last on a tie."""
        ones = [a for a in range(3) if self.voxels.shape[a] == 1]
        if ones:
            return ones[-1]
        spacing = self.spacing
        return max(a for a in range(3) if spacing[a] >= spacing.max() * (1 - 1e-3))

    def patient_axes(self) -> tuple[int, ...]:
        """For each index axis, the patient axis (0 x, 1 y, 2 z) nearest to it, as one assignment of all three."""
        cosines = np.abs(self.axes / self.spacing)
        return max(itertools.permutations(range(3)), key=lambda p: sum(cosines[p[a], a] for a in range(3)))

    def plane(self) -> str:
        """``axial``, ``coronal`` or ``sagittal``: the plane the slices lie in (the nearest one for oblique ones)."""
        return DISPLAY[self.patient_axes()[self.slice_axis()]][0]

    def slices(self) -> np.ndarray:
        """(n, rows, columns): every slice in index order, in radiological orientation (a view, not a copy)."""
        s, patient = self.slice_axis(), self.patient_axes()
        _, (column_axis, column_sign), (row_axis, row_sign) = DISPLAY[patient[s]]
        c, r = patient.index(column_axis), patient.index(row_axis)
        out = np.moveaxis(self.voxels, (s, r, c), (0, 1, 2))
        if self.axes[row_axis, r] * row_sign < 0:
            out = out[:, ::-1]
        if self.axes[column_axis, c] * column_sign < 0:
            out = out[:, :, ::-1]
        return out

    def integer_valued(self) -> bool:
        """Whether every voxel value is a whole number (in any type)."""
        return self.voxels.dtype.kind != "f" or bool(np.array_equal(self.voxels, np.round(self.voxels)))

    def modality(self) -> str:
        """The file's own tag, else CT by its values (integers, minimum in :data:`CT_MINIMUM`), else MR."""
        if self.modality_tag:
            return self.modality_tag
        if self.voxels.size == 0 or not self.integer_valued():
            return "MR"
        return "CT" if CT_MINIMUM[0] <= float(self.voxels.min()) <= CT_MINIMUM[1] else "MR"

    def is_label_map(self) -> bool:
        """Whether the volume is a segmentation or mask: whole numbers, at most :data:`LABEL_VALUES` distinct
        values among a million voxels spread over it (an image has hundreds)."""
        if self.voxels.size == 0 or not self.integer_valued():
            return False
        sample = self.voxels.reshape(-1, order="A")[:: max(1, self.voxels.size // 1_000_000)]
        return len(np.unique(sample)) <= LABEL_VALUES

    def digest(self) -> str:
        """A hash of the voxels (values, type and grid), the same for one volume in any of the three formats."""
        digest = hashlib.blake2b(f"{self.voxels.dtype.str}{self.voxels.shape}".encode(), digest_size=16)
        digest.update(np.asfortranarray(self.voxels).T.data)  # index order i fastest, without a copy when F-ordered
        return digest.hexdigest()


def read_volume(path: str | os.PathLike) -> Volume:
    """The volume in ``path`` (NIfTI, MetaImage or NRRD by its suffix), or NotAVolume, CorruptVolume or
    UnsupportedVolume; an OSError if the file cannot be opened at all."""
    path = Path(path)
    suffix = volume_suffix(path)
    if suffix is None:
        raise NotAVolume(f"{path}: not a volume's name; volumes end in {', '.join(VOLUME_SUFFIXES)}")
    head = _head(path, 4096)
    volume = _read_nifti(path, head) if suffix in NIFTI_SUFFIXES else _read_itk(path, head, suffix)
    volume.voxels = _finite(_native(volume.voxels))
    unusable = (np.linalg.norm(volume.axes, axis=0) == 0) | ~np.isfinite(volume.axes).all(axis=0)
    volume.axes[:, unusable] = np.eye(3)[:, unusable]  # no direction given: the index axis, 1 mm
    return volume


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of the file, decompressed when it is gzip."""
    with path.open("rb") as handle:
        start = handle.read(size)
    if start[:2] != b"\x1f\x8b":
        return start
    try:
        with gzip.open(path) as stream:
            return stream.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptVolume(f"{path}: a gzip file damaged at its start ({exc}); re-copy or re-export it") from exc


def _without_path(text: str, path: Path) -> str:
    """A reader's message without the file's path (it can identify, and the rejected table has it already)."""
    return re.sub(r"\s+", " ", text.replace(str(path), "the file")).strip()


def _grid(path: Path, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape without trailing axes one long; more than 4 axes is UnsupportedVolume."""
    dims = list(shape)
    while len(dims) > 3 and dims[-1] == 1:
        dims.pop()
    if len(dims) > 4:
        raise UnsupportedVolume(
            f"{path}: {len(dims)} dimensions {tuple(shape)}; volumes of 2 to 4 are read (of 4, the first volume)"
        )
    return tuple(dims)


def _three_axes(voxels: np.ndarray) -> np.ndarray:
    """``voxels`` with axes of length one added up to 3 (a 2D image is one slice)."""
    return voxels.reshape(voxels.shape + (1,) * (3 - voxels.ndim), order="A")


def _check_type(path: Path, dtype: np.dtype) -> None:
    if dtype.kind not in "biuf":
        what = "complex" if dtype.kind == "c" else "colour or structured"
        raise UnsupportedVolume(f"{path}: {what} voxels ({dtype}); only grey values are read")


def _read_nifti(path: Path, head: bytes) -> Volume:
    import nibabel

    if len(head) >= 348 and head[344:348] == b"n+1\0":
        image_class, name = nibabel.Nifti1Image, "NIfTI-1"
    elif len(head) >= 540 and head[4:8] == b"n+2\0":
        image_class, name = nibabel.Nifti2Image, "NIfTI-2"
    elif head[:4] in NIFTI_HEADER_SIZES and len(head) < 540:
        raise CorruptVolume(f"{path}: cut off within its NIfTI header ({len(head)} bytes); re-copy or re-export it")
    else:
        raise NotAVolume(
            f"{path}: not a single-file NIfTI (no 'n+1' or 'n+2' header); a NIfTI .hdr/.img pair or another "
            "format needs converting to .nii or .nii.gz"
        )
    gzipped = _is_gzip(path)
    with gzip.open(path) if gzipped else path.open("rb") as stream:
        try:
            image = image_class.from_stream(stream)
            shape, dtype = tuple(int(d) for d in image.shape), image.get_data_dtype()
        except Exception as exc:  # the header said NIfTI: whatever fails now is damage
            reason = _without_path(str(exc), path)
            raise CorruptVolume(
                f"{path}: its {name} header cannot be read ({reason}); re-copy or re-export it"
            ) from exc
        _check_type(path, dtype)
        dims = _grid(path, shape)
        index = (slice(None),) * min(len(shape), 3) + (0,) * max(len(shape) - 3, 0)  # 4D: the first volume alone
        try:
            voxels = np.asarray(image.dataobj[index])
            while gzipped and stream.read(1 << 24):  # to the end, where gzip checks the data's length and checksum
                pass
        except Exception as exc:
            raise CorruptVolume(
                f"{path}: its voxels cannot be read, the file is damaged or cut off "
                f"({type(exc).__name__}: {_without_path(str(exc), path)}); re-copy or re-export it"
            ) from exc
    voxels = _three_axes(voxels.reshape(dims[:3], order="A"))
    return Volume(voxels, RAS_TO_LPS @ np.asarray(image.affine, float)[:3, :3], "", name)


def _read_itk(path: Path, head: bytes, suffix: str) -> Volume:
    import SimpleITK as sitk

    if suffix in NRRD_SUFFIXES:
        name, image_io, found = "NRRD", "NrrdImageIO", head.startswith(b"NRRD000")
    else:
        name, image_io, found = "MetaImage", "MetaImageIO", b"NDims" in head
    if not found:
        raise NotAVolume(f"{path}: no {name} header ({'NRRD000x magic' if name == 'NRRD' else 'an NDims line'})")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO(image_io)

    def run(step: str, call: Callable[[], object]) -> None:
        printed: list[str] = []
        try:
            with _native_stderr_captured(printed):  # ITK's MetaImage code prints why to the process's stderr
                call()
        except RuntimeError as exc:  # the header said MetaImage or NRRD: whatever fails now is damage
            reason = _itk_reason(exc, printed, path)
            raise CorruptVolume(f"{path}: its {step} cannot be read ({reason}); re-copy or re-export it") from exc

    run("header", reader.ReadImageInformation)
    if reader.GetNumberOfComponents() != 1:
        raise UnsupportedVolume(
            f"{path}: {reader.GetNumberOfComponents()} values per voxel (vector or colour); only grey values are read"
        )
    if reader.GetPixelID() in (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64):
        raise UnsupportedVolume(f"{path}: complex voxels; only grey values are read")
    size = tuple(int(s) for s in reader.GetSize())
    dims = _grid(path, size)
    if len(size) > 3:  # 4D: the first volume alone
        reader.SetExtractIndex([0] * len(size))
        reader.SetExtractSize([*size[:3], *([0] * (len(size) - 3))])
    images: list = []
    run("voxels", lambda: images.append(reader.Execute()))
    image = images[0]
    d = image.GetDimension()
    axes = np.eye(3)
    axes[:d, :d] = np.asarray(image.GetDirection(), float).reshape(d, d) * np.asarray(image.GetSpacing(), float)
    modality = reader.GetMetaData("Modality") if reader.HasMetaDataKey("Modality") else ""
    voxels = sitk.GetArrayFromImage(image).T  # SimpleITK's arrays are [k, j, i]
    _check_type(path, voxels.dtype)
    return Volume(_three_axes(voxels.reshape(dims[:3], order="A")), axes, METAIMAGE_MODALITIES.get(modality, ""), name)


def _itk_reason(exc: RuntimeError, printed: list[str], path: Path) -> str:
    """Why SimpleITK failed: what MetaImage printed, else the innermost line of the exception (NRRD's), else its
    ITK ERROR line; without source locations, object addresses and a stale system error."""
    lines = [line for line in str(exc).splitlines() if line.strip() and not line.startswith("Reason:")]
    nrrd = [line for line in lines if line.startswith("[nrrd]")]
    error = [re.sub(r"^.*ERROR:\s*(\w+\(0x[0-9a-f]+\):\s*)?", "", line) for line in lines if "ERROR" in line]
    if "".join(printed).strip():
        text = re.sub(r"^MetaImage: \w+: ", "", " ".join(printed).strip())
    elif nrrd:
        text = re.sub(r"^\[nrrd\] \w+: ", "", nrrd[-1])
    else:
        text = error[0] if error else (lines[-1] if lines else type(exc).__name__)
    return _without_path(text, path)


@contextmanager
def _native_stderr_captured(printed: list[str]) -> Iterator[None]:
    """What C++ code writes to the process's stderr (fd 2) in the block, appended to ``printed`` and not shown."""
    try:
        sys.stderr.flush()
        saved: int | None = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to capture
        saved = None
    if saved is None:
        yield
        return
    try:
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                capture.seek(0)
                printed.append(capture.read(4096).decode(errors="replace"))
    finally:
        os.close(saved)


def _native(voxels: np.ndarray) -> np.ndarray:
    """Voxels in the machine's byte order (NIfTI may be big-endian), bool as uint8."""
    if voxels.dtype.kind == "b":
        return voxels.astype(np.uint8)
    return voxels if voxels.dtype.isnative else voxels.astype(voxels.dtype.newbyteorder("="))


def _finite(voxels: np.ndarray) -> np.ndarray:
    """NaN and infinite voxels set to the lowest finite value (0 when none is finite)."""
    if voxels.dtype.kind != "f":
        return voxels
    finite = np.isfinite(voxels)
    if finite.all():
        return voxels
    return np.where(finite, voxels, voxels[finite].min() if finite.any() else 0).astype(voxels.dtype)
