"""NIfTI, MHA and NRRD volumes: real files read, slices oriented from the direction cosines, typed failures."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk

from medssl_lab.data.volume import RAS_TO_LPS, read_volume, volume_suffix
from medssl_lab.errors import CorruptVolume, NotAVolume, UnsupportedVolume

NIBABEL_DATA = Path(nibabel.__file__).parent / "tests" / "data"
#: nibabel's real NIfTI images: name -> (format, voxels of the volume read, slices, plane)
REAL = {
    "anatomical.nii": ("NIfTI-1", (33, 41, 25), 25, "axial"),  # SPM-normalised anatomy, big-endian, L-A-S
    "reoriented_anat_moved.nii": ("NIfTI-1", (21, 26, 22), 22, "axial"),  # R-A-S: the same brain, x mirrored
    "example4d.nii.gz": ("NIfTI-1", (128, 96, 24), 24, "axial"),  # FSL fMRI, 2 time points, tilted 9 degrees
    "example_nifti2.nii.gz": ("NIfTI-2", (32, 20, 12), 12, "axial"),  # NIfTI-2, 2 time points
    "functional.nii": ("NIfTI-1", (17, 21, 3), 3, "axial"),  # SPM fMRI, 20 time points, scaled to floats
}


def real(name: str) -> Path:
    path = NIBABEL_DATA / name
    assert path.is_file(), f"nibabel's test file {name} is missing from the installed nibabel"
    return path


def radiological_axial(path: Path) -> np.ndarray:
    """The reference: nibabel's own reorientation to RAS+ of the file's first volume, shown radiologically
    (patient's left on the image's right: i reversed; anterior at the top: j reversed; rows j, columns i)."""
    image = nibabel.load(path)
    data = np.asanyarray(image.dataobj)
    data = data[..., 0] if data.ndim == 4 else data
    canonical = np.asanyarray(nibabel.as_closest_canonical(nibabel.Nifti1Image(data, image.affine)).dataobj)
    return canonical[::-1, ::-1, :].transpose(2, 1, 0)


@pytest.mark.parametrize("name", list(REAL))
def test_real_nifti_files_are_read_with_slices_as_radiologists_see_them(name: str) -> None:
    volume = read_volume(real(name))
    fmt, shape, slices, plane = REAL[name]
    assert (volume.format, volume.voxels.shape, volume.plane()) == (fmt, shape, plane)
    assert volume.slices().shape[0] == slices and volume.modality() == "MR"
    np.testing.assert_array_equal(volume.slices(), radiological_axial(real(name)))  # nibabel's orientation, not ours


def phantom(shape: tuple[int, int, int] = (20, 24, 9)) -> np.ndarray:
    """An asymmetric volume in RAS index order with one bright voxel at the patient's left, anterior, superior."""
    rng = np.random.default_rng(0)
    voxels = rng.integers(0, 100, shape).astype(np.int16)
    voxels[0, -1, -1] = 1000  # i towards the right: 0 is the left; j towards anterior; k towards superior
    return voxels


def save_nifti(path: Path, voxels: np.ndarray, affine: np.ndarray) -> Path:
    nibabel.save(nibabel.Nifti1Image(voxels, affine), path)
    return path


def save_itk(path: Path, voxels: np.ndarray, affine_ras: np.ndarray) -> Path:
    """The same grid through SimpleITK (LPS direction and spacing; its arrays are [k, j, i])."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(voxels.T))
    lps = RAS_TO_LPS @ affine_ras[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    image.SetSpacing(spacing.tolist())
    image.SetDirection((lps / spacing).flatten().tolist())
    image.SetOrigin((RAS_TO_LPS @ affine_ras[:3, 3]).tolist())
    sitk.WriteImage(image, str(path))
    return path


def stored_differently(voxels: np.ndarray, spacing: tuple[float, float, float]) -> dict[str, tuple]:
    """One anatomy, stored as (voxels, RAS affine) with the index axes flipped and swapped in several ways."""
    base = np.diag([*spacing, 1.0])
    out = {"RAS": (voxels, base)}
    flip_i = base.copy()
    flip_i[:, 0] *= -1
    flip_i[0, 3] = spacing[0] * (voxels.shape[0] - 1)  # the same voxel centres, stored right to left
    out["LAS (x flipped)"] = (voxels[::-1], flip_i)
    flip_ij = flip_i.copy()
    flip_ij[:, 1] *= -1
    flip_ij[1, 3] = spacing[1] * (voxels.shape[1] - 1)
    out["LPS (x and y flipped)"] = (voxels[::-1, ::-1], flip_ij)
    swap = base[:, [1, 0, 2, 3]]  # i along y, j along x
    out["i and j swapped"] = (voxels.transpose(1, 0, 2), swap)
    return out


@pytest.mark.parametrize("writer", ["nifti", "mha", "nrrd"])
def test_one_anatomy_under_different_direction_matrices_gives_identical_slices(tmp_path: Path, writer: str) -> None:
    voxels = phantom()
    slices = {}
    for k, (label, (stored, affine)) in enumerate(stored_differently(voxels, (1.0, 1.0, 3.0)).items()):
        path = tmp_path / f"{k}.{'nii.gz' if writer == 'nifti' else writer}"
        saved = save_nifti(path, stored, affine) if writer == "nifti" else save_itk(path, stored, affine)
        slices[label] = read_volume(saved).slices()
    reference = slices.pop("RAS")
    assert reference.shape == (9, 24, 20)  # axial: k is the thickest axis
    assert reference[-1, 0, -1] == 1000  # left-anterior-superior: the top right of the last (most superior) slice
    for label, other in slices.items():
        np.testing.assert_array_equal(other, reference, err_msg=label)


@pytest.mark.parametrize(
    ("spacing", "plane", "where"),
    [
        ((1.0, 3.0, 1.0), "coronal", (0, -1)),  # left on the right, superior at the top
        ((3.0, 1.0, 1.0), "sagittal", (0, 0)),  # anterior on the left, superior at the top
    ],
)
def test_coronal_and_sagittal_acquisitions_are_shown_by_their_convention(
    tmp_path: Path, spacing: tuple[float, float, float], plane: str, where: tuple[int, int]
) -> None:
    voxels = phantom((12, 14, 16))
    for k, (stored, affine) in enumerate(stored_differently(voxels, spacing).values()):
        volume = read_volume(save_nifti(tmp_path / f"{plane}{k}.nii", stored, affine))
        slices = volume.slices()
        assert volume.plane() == plane
        hit = np.argwhere(slices == 1000)
        assert len(hit) == 1 and tuple(hit[0, 1:]) == tuple(np.array(where) % slices.shape[1:]), (k, hit)


def test_the_slice_axis_is_the_thickest_else_the_last() -> None:
    def axis(shape: tuple[int, ...], spacing: tuple[float, ...]) -> int:
        from medssl_lab.data.volume import Volume

        return Volume(np.zeros(shape), np.diag(spacing)).slice_axis()

    assert axis((10, 10, 10), (1, 1, 1)) == 2  # isotropic: the last axis
    assert axis((10, 10, 10), (1, 4, 1)) == 1
    assert axis((10, 10, 10), (2, 2, 1)) == 1  # a tie: the later of the two
    assert axis((10, 1, 10), (1, 1, 5)) == 1  # one voxel thick: that is the slice


def test_mha_and_nrrd_copies_of_a_real_nifti_give_the_same_slices(tmp_path: Path) -> None:
    for name in ("anatomical.nii", "example4d.nii.gz"):
        nifti = read_volume(real(name))
        image = sitk.ReadImage(str(real(name)))  # SimpleITK converts: an independent route to MHA and NRRD
        for suffix in (".mha", ".nrrd"):
            path = tmp_path / (name.split(".")[0] + suffix)
            sitk.WriteImage(image, str(path), useCompression=True)
            other = read_volume(path)
            assert other.format == ("NRRD" if suffix == ".nrrd" else "MetaImage")
            np.testing.assert_array_equal(other.slices(), nifti.slices(), err_msg=f"{name} as {suffix}")
            assert (other.digest(), other.modality()) == (nifti.digest(), "MR")


def test_the_modality_by_tag_else_by_values() -> None:
    from medssl_lab.data.volume import Volume

    def modality(voxels: np.ndarray, tag: str = "") -> str:
        return Volume(voxels, np.eye(3), tag).modality()

    ct = np.full((4, 4, 4), 40, np.int16)
    ct[0] = -1024
    assert modality(ct) == "CT"
    assert modality(ct.astype(np.float32)) == "CT"  # integer values, whatever the type
    assert modality(ct + 0.5) == "MR"  # not integers: not HU
    assert modality(ct + 500) == "MR"  # nothing near air
    assert modality(ct - 3000) == "MR"  # below any CT's padding
    assert modality(np.abs(ct)) == "MR"
    assert modality(np.abs(ct), "CT") == "CT"  # the file's own tag wins


def test_label_maps_are_told_from_images() -> None:
    from medssl_lab.data.volume import Volume

    anatomy = read_volume(real("anatomical.nii"))
    assert not anatomy.is_label_map()
    labels = (anatomy.voxels // 3000).astype(np.int16)  # 12 classes from a real anatomy
    assert len(np.unique(labels)) == 12 and Volume(labels, np.eye(3)).is_label_map()
    assert Volume(labels.astype(np.float32), np.eye(3)).is_label_map()  # whole numbers in a float type
    assert not Volume(labels + np.float32(0.5) * (labels > 3), np.eye(3)).is_label_map()
    assert not Volume(anatomy.voxels // 1000, np.eye(3)).is_label_map()  # 32 grey levels: an image


def test_an_mha_modality_tag_is_used(tmp_path: Path) -> None:
    image = sitk.GetImageFromArray(np.arange(8 * 9 * 10, dtype=np.float32).reshape(8, 9, 10) / 7)
    path = tmp_path / "ct.mha"
    sitk.WriteImage(image, str(path))
    path.write_bytes(path.read_bytes().replace(b"ElementSpacing", b"Modality = MET_MOD_CT\nElementSpacing", 1))
    assert read_volume(path).modality() == "CT"


def test_a_4d_file_gives_its_first_volume_and_nan_becomes_the_lowest_value(tmp_path: Path) -> None:
    volume = read_volume(real("example4d.nii.gz"))
    first = np.asanyarray(nibabel.load(real("example4d.nii.gz")).dataobj)[..., 0]
    np.testing.assert_array_equal(volume.voxels, first)
    voxels = np.arange(1000, dtype=np.float32).reshape(10, 10, 10) + 5
    voxels[:, :, 0] = np.nan
    volume = read_volume(save_nifti(tmp_path / "spm.nii", voxels, np.eye(4)))
    lowest = np.nanmin(voxels)
    assert np.isfinite(volume.voxels).all() and volume.voxels[:, :, 0].max() == volume.voxels.min() == lowest


def gzipped(path: Path, out: Path) -> Path:
    out.write_bytes(gzip.compress(path.read_bytes()))
    return out


def _truncated_gzip(tmp_path: Path) -> Path:  # a copy cut off in transfer: the gzip stream has no end
    data = gzipped(real("anatomical.nii"), tmp_path / "x.nii.gz").read_bytes()
    (tmp_path / "truncated.nii.gz").write_bytes(data[: len(data) * 2 // 3])
    return tmp_path / "truncated.nii.gz"


def _bad_crc(tmp_path: Path) -> Path:  # one byte changed in the compressed data
    data = bytearray(gzipped(real("anatomical.nii"), tmp_path / "x.nii.gz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "damaged.nii.gz").write_bytes(bytes(data))
    return tmp_path / "damaged.nii.gz"


def _truncated_nii(tmp_path: Path) -> Path:
    data = real("anatomical.nii").read_bytes()
    (tmp_path / "short.nii").write_bytes(data[: len(data) // 2])
    return tmp_path / "short.nii"


def _cut_header(tmp_path: Path) -> Path:
    (tmp_path / "header.nii").write_bytes(real("anatomical.nii").read_bytes()[:200])
    return tmp_path / "header.nii"


def _truncated_itk(suffix: str):
    def make(tmp_path: Path) -> Path:
        path = tmp_path / f"x{suffix}"
        sitk.WriteImage(sitk.ReadImage(str(real("anatomical.nii"))), str(path))
        path.write_bytes(path.read_bytes()[: path.stat().st_size - 5000])
        return path

    return make


def _text(name: str):
    def make(tmp_path: Path) -> Path:
        (tmp_path / name).write_text("exported by the PACS\n" * 300)
        return tmp_path / name

    return make


def _empty(name: str):  # a copy that never started: zero bytes
    def make(tmp_path: Path) -> Path:
        (tmp_path / name).write_bytes(b"")
        return tmp_path / name

    return make


def _without_data_file(suffix: str):  # a detached header (.mhd, .nhdr) copied without its voxel file
    def make(tmp_path: Path) -> Path:
        path = tmp_path / f"x{suffix}"
        sitk.WriteImage(sitk.ReadImage(str(real("anatomical.nii"))), str(path))
        for other in tmp_path.iterdir():
            if other != path:
                other.unlink()
        return path

    return make


def _rgb(tmp_path: Path) -> Path:
    path = tmp_path / "rgb.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((10, 12, 3), np.uint8), isVector=True), str(path))
    return path


def _five_d(tmp_path: Path) -> Path:  # a displacement field: 3 values per voxel in a 5th dimension
    return save_nifti(tmp_path / "field.nii.gz", np.zeros((10, 10, 10, 1, 3), np.float32), np.eye(4))


FAILURES = {
    "truncated .nii.gz": (_truncated_gzip, CorruptVolume),
    "damaged .nii.gz": (_bad_crc, CorruptVolume),
    "truncated .nii": (_truncated_nii, CorruptVolume),
    "cut in its header": (_cut_header, CorruptVolume),
    "truncated .mha": (_truncated_itk(".mha"), CorruptVolume),
    "truncated .nrrd": (_truncated_itk(".nrrd"), CorruptVolume),
    "empty .nii.gz": (_empty("empty.nii.gz"), NotAVolume),
    "empty .nii": (_empty("empty.nii"), NotAVolume),
    "empty .mha": (_empty("empty.mha"), NotAVolume),
    "empty .nrrd": (_empty("empty.nrrd"), NotAVolume),
    ".mhd without its data file": (_without_data_file(".mhd"), CorruptVolume),
    ".nhdr without its data file": (_without_data_file(".nhdr"), CorruptVolume),
    "text named .nii": (_text("notes.nii"), NotAVolume),
    "text named .nii.gz": (_text("notes.nii.gz"), NotAVolume),
    "text named .mha": (_text("notes.mha"), NotAVolume),
    "text named .nrrd": (_text("notes.nrrd"), NotAVolume),
    "colour voxels": (_rgb, UnsupportedVolume),
    "5 dimensions": (_five_d, UnsupportedVolume),
    "CIFTI-2 (real)": (lambda tmp_path: Path(shutil.copy(real("row_major.dconn.nii"), tmp_path)), UnsupportedVolume),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_bad_volumes_fail_by_type_with_a_message_that_says_what(
    tmp_path: Path, case: str, capfd: pytest.CaptureFixture
) -> None:
    make, error = FAILURES[case]
    path = make(tmp_path)
    capfd.readouterr()  # what making the file printed
    with pytest.raises(error) as info:
        read_volume(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and str(path) not in message[len(str(path)) :]
    assert len(message) > len(str(path)) + 20
    assert capfd.readouterr().err == ""  # ITK's own complaints kept off the console


def test_volume_suffixes() -> None:
    assert [volume_suffix(n) for n in ("a.nii", "A.NII.GZ", "b.mha", "c.mhd", "d.nrrd", "e.nhdr")] == [
        ".nii",
        ".nii.gz",
        ".mha",
        ".mhd",
        ".nrrd",
        ".nhdr",
    ]
    assert [volume_suffix(n) for n in ("x.gz", "x.dcm", "x.niigz", "nii", "x.png")] == [None] * 5
