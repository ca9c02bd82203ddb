"""A small archive as a hospital export looks: real DICOMs of several modalities in nested folders, plus the
unusual and bad files every archive has, one of each kind the ingest must reject or handle."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image
from pydicom.data import get_testdata_file

from medssl_lab.data.dicom_writer import write_dicom

PATIENT_NAME, PATIENT_ID, ACCESSION = "Doe^Jane", "PID-0042-SECRET", "ACC-77-SECRET"
#: real files from pydicom's test data: where they go in the archive
REAL = {
    "CT_small.dcm": "patient1/ct/1.dcm",
    "MR_small.dcm": "patient1/mr/1.dcm",
    "US1_UNCR.dcm": "patient2/us/1.dcm",
    "emri_small.dcm": "patient2/mr_multiframe/1.dcm",  # 10 frames
    "rtplan.dcm": "patient3/rt/plan.dcm",
    "rtstruct.dcm": "patient3/rt/struct.dcm",  # written without the 128-byte preamble
    "test-SR.dcm": "patient3/report.dcm",
    "JPEG-lossy.dcm": "patient4/jpeg12bit.dcm",  # 12-bit JPEG Extended: no installed decoder reads it
}
#: file (relative to the archive) -> the reason the ingest must give
EXPECTED_REJECTIONS = {
    "patient3/rt/plan.dcm": "rt_object",
    "patient3/rt/struct.dcm": "rt_object",
    "patient3/report.dcm": "derived_object",  # a structured report
    "patient4/jpeg12bit.dcm": "unsupported_compression",
    "patient4/truncated.dcm": "corrupt",
    "patient4/no_pixels.dcm": "no_pixel_data",
    "patient4/burned_in.dcm": "burned_in_annotation",
    "notes/readme.txt": "not_an_image",
    "notes/broken.png": "corrupt",
}


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    for name, where in REAL.items():
        (root / where).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(get_testdata_file(name), root / where)
    ct = root / "patient1/ct/1.dcm"  # identifying values that must never reach the store
    ds = pydicom.dcmread(ct)
    ds.PatientName, ds.PatientID, ds.AccessionNumber, ds.PatientBirthDate = (
        PATIENT_NAME,
        PATIENT_ID,
        ACCESSION,
        "19700101",
    )
    ds.BodyPartExamined = "CHEST"
    ds.save_as(ct)
    data = ct.read_bytes()
    (root / "patient4/truncated.dcm").write_bytes(data[: len(data) // 2])
    del ds.PixelData  # a CT header without its image (e.g. a failed export)
    ds.save_as(root / "patient4/no_pixels.dcm")
    flagged = write_dicom(root / "patient4/burned_in.dcm", np.full((32, 32), 100, np.int16), "US", uid_seed="burn")
    ds = pydicom.dcmread(flagged)
    ds.BurnedInAnnotation = "YES"
    ds.save_as(flagged)
    (root / "notes").mkdir()
    (root / "notes/readme.txt").write_text("exported by the PACS\n")
    (root / "notes/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (root / "photos").mkdir()
    ramp = np.tile(np.linspace(0, 4095, 48).astype(np.uint16), (40, 1))  # 12 bits in use, in a 16-bit PNG
    Image.fromarray(ramp).save(root / "photos/wide.png")
    Image.fromarray(np.full((20, 30), 200, np.uint8)).save(root / "photos/flat.jpg")
    return root


NIBABEL_DATA = Path(nibabel.__file__).parent / "tests" / "data"
#: real NIfTI files from nibabel's test data: where they go in the volume archive, and the images each gives
REAL_VOLUMES = {
    "anatomical.nii": ("brain/anatomical.nii", 25),  # SPM anatomy, stored x towards the left
    "reoriented_anat_moved.nii": ("brain/reoriented.nii", 22),  # stored x towards the right
    "example4d.nii.gz": ("fmri/example4d.nii.gz", 24),  # 4D: its first volume
    "example_nifti2.nii.gz": ("fmri/nifti2.nii.gz", 12),  # NIfTI-2, 4D
    "functional.nii": ("fmri/functional.nii", 3),  # 4D, scaled to floats
    "standard.nii.gz": ("bad/standard.nii.gz", 0),  # 4x5x7 voxels: too small
    "row_major.dconn.nii": ("bad/row_major.dconn.nii", 0),  # CIFTI-2: a connectivity matrix, not a voxel grid
}
#: file (relative to the volume archive) -> the reason the ingest must give
EXPECTED_VOLUME_REJECTIONS = {
    "bad/standard.nii.gz": "too_small",
    "bad/row_major.dconn.nii": "unsupported_volume",
    "bad/truncated.nii.gz": "corrupt",  # cut off in transfer
    "bad/notes.nii": "not_an_image",
    "bad/blank.nii.gz": "empty",
    "bad/labels.nii.gz": "derived_object",  # a segmentation
}


@pytest.fixture
def volumes(tmp_path: Path) -> Path:
    """Real NIfTI files, MHA and NRRD copies of one of them (the same voxels: kept once), a real CT converted to
    NIfTI, and the bad volumes an archive has."""
    root = tmp_path / "volumes"
    for name, (where, _) in REAL_VOLUMES.items():
        (root / where).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NIBABEL_DATA / name, root / where)
    anatomy = sitk.ReadImage(str(NIBABEL_DATA / "anatomical.nii"))
    (root / "brain/copies").mkdir()
    sitk.WriteImage(anatomy, str(root / "brain/copies/anatomical.mha"), useCompression=True)
    sitk.WriteImage(anatomy, str(root / "brain/copies/anatomical.nrrd"))
    (root / "ct").mkdir()
    sitk.WriteImage(sitk.ReadImage(get_testdata_file("CT_small.dcm")), str(root / "ct/ct_small.nii.gz"))
    data = gzip.compress((NIBABEL_DATA / "anatomical.nii").read_bytes())
    (root / "bad/truncated.nii.gz").write_bytes(data[: len(data) // 2])
    (root / "bad/notes.nii").write_text("exported by the PACS\n" * 30)
    nibabel.save(nibabel.Nifti1Image(np.zeros((16, 16, 4), np.int16), np.eye(4)), root / "bad/blank.nii.gz")
    anatomy = nibabel.load(NIBABEL_DATA / "anatomical.nii")
    labels = (np.asanyarray(anatomy.dataobj) // 6000).astype(np.uint8)
    nibabel.save(nibabel.Nifti1Image(labels, anatomy.affine), root / "bad/labels.nii.gz")
    return root
