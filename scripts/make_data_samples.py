"""Write the tiny example files in ``data_samples/`` from the package's synthetic phantoms.

Everything here is generated (seeded, deterministic): no patient data, nothing copied
from elsewhere. Re-running the script rewrites the same bytes.

    python scripts/make_data_samples.py [--out data_samples]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from medssl_lab.data.dicom_writer import write_dicom, write_dicom_series
from medssl_lab.data.synthetic import LESION_HU, PHANTOM_CLASSES, make_phantoms, phantom_hu

SEED = 2022
PNG_PER_CLASS = 3

README = """\
# data_samples: tiny synthetic examples

Every file here is a **synthetic phantom** made by `scripts/make_data_samples.py` from
`medssl_lab.data.synthetic` (air, an elliptical body, two lungs, a spine, sometimes a
lesion). They are **not patient data** and not medical images of anyone; they exist so
a newcomer can open a DICOM file, a series and an image folder at once, offline.
Regenerate them (same bytes every time) with:

    python scripts/make_data_samples.py

- `ct_slice.dcm`: one CT slice, 128 x 128, in Hounsfield units, stored as int16 with
  RescaleIntercept -1024 (air about -1000 HU, lungs -850, soft tissue 40, a round
  lesion 120, spine 700). Carries a lung-and-tissue window (center -300, width 1600).
- `ct_series/slice_000.dcm` .. `slice_003.dcm`: a 4-slice CT series, 64 x 64, 2.5 mm
  apart along z; a spherical lesion grows and shrinks across the slices. Shows slice
  sorting by ImagePositionPatient.
- `radiograph_mono1.dcm`: a radiograph-like CR image, 128 x 128, stored as
  **MONOCHROME1** (low values display bright, as in many CR/DX files); the reader
  inverts it so bright = dense. It is a phantom slice mapped to 12-bit detector-like
  values, not a real projection.
- `phantom_png/<class>/*.png`: 64 x 64 grayscale PNGs, {png} per class, in the
  class-per-subfolder layout of an image-folder data set. Classes:
  {classes}.

Read them with:

```python
from medssl_lab.data.dicom import load_dicom, window_image
ct = load_dicom("data_samples/ct_slice.dcm")          # pixels in HU, shape (1, 128, 128)
lung = window_image(ct, "lung")                       # uint8 through the lung preset
series = load_dicom("data_samples/ct_series")         # (4, 64, 64), sorted along z
```
"""


def _atomic_png(path: Path, image: np.ndarray) -> None:
    """Save a uint8 PNG via a temporary file, so a crash leaves no half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(handle, format="PNG", optimize=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_text(path: Path, text: str) -> None:
    """Write a text file via a temporary file in the same folder."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _series_volume(size: int, slices: int, rng: np.random.Generator) -> np.ndarray:
    """A phantom volume: the same anatomy on every slice, a sphere lesion cut at each z."""
    base = phantom_hu(size, 0, rng)
    yy, xx = np.mgrid[0:size, 0:size] / size
    cy, cx, radius = 0.45, 0.3, 0.09
    volume = []
    for k in range(slices):
        dz = (k - (slices - 1) / 2) / (slices - 1) * 1.5 * radius  # -0.75r .. +0.75r
        r = np.sqrt(max(radius**2 - dz**2, 0.0))
        img = base.copy()
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = LESION_HU
        volume.append(img + rng.normal(0.0, 5.0, size=img.shape))
    return np.stack(volume).astype(np.float32)


def make_data_samples(out: str | os.PathLike = "data_samples") -> list[Path]:
    """Write every sample file into ``out`` and return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    written: list[Path] = []

    ct = phantom_hu(128, 1, rng)
    written.append(
        write_dicom(
            out / "ct_slice.dcm",
            ct,
            "CT",
            spacing=(0.7, 0.7),
            slice_thickness=2.5,
            window=(-300.0, 1600.0),
            series_description="synthetic CT phantom slice",
            uid_seed="medssl-ct-slice",
        )
    )

    written += write_dicom_series(
        out / "ct_series",
        _series_volume(64, 4, rng),
        "CT",
        spacing=(1.4, 1.4),
        slice_thickness=2.5,
        origin=(-44.8, -44.8, 0.0),
        window=(40.0, 400.0),
        series_description="synthetic CT phantom series",
        uid_seed="medssl-ct-series",
    )

    # Radiograph-like: dense = high detector value here; stored MONOCHROME1 (inverted) in the file.
    detector = np.clip(np.rint((phantom_hu(128, 3, rng) + 1000.0) * 2.0), 0, 4095)
    written.append(
        write_dicom(
            out / "radiograph_mono1.dcm",
            detector,
            "CR",
            spacing=(0.5, 0.5),
            window=(2048.0, 4096.0),
            photometric="MONOCHROME1",
            series_description="synthetic radiograph-like phantom",
            uid_seed="medssl-radiograph",
        )
    )

    phantoms = make_phantoms(PNG_PER_CLASS * len(PHANTOM_CLASSES), size=64, seed=SEED)
    counts = dict.fromkeys(PHANTOM_CLASSES, 0)
    for image, label in zip(phantoms.images, phantoms.labels):
        name = PHANTOM_CLASSES[int(label)]
        path = out / "phantom_png" / name / f"{name}_{counts[name]:02d}.png"
        counts[name] += 1
        _atomic_png(path, image)
        written.append(path)

    readme = README.format(png=PNG_PER_CLASS, classes=", ".join(f"`{c}`" for c in PHANTOM_CLASSES))
    _atomic_text(out / "README.md", readme)
    written.append(out / "README.md")
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: write the samples and print what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent / "data_samples"
    parser.add_argument("--out", type=Path, default=default, help=f"output folder (default: {default})")
    args = parser.parse_args(argv)
    paths = make_data_samples(args.out)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files, {total / 1024:.0f} KiB, into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
