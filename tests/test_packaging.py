"""What Colab and any non-editable install get: a wheel that carries the shipped encoder and the data tables.

Built without isolation from the setuptools of the dev extras (>= 70.1 builds wheels itself), so no download.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_the_shipped_encoder_and_package_data(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(ROOT / "medssl_lab", source / "medssl_lab", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        check=True,
        cwd=source,
    )
    (wheel,) = tmp_path.glob("medssl_lab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("medssl_lab/weights/encoder_cpu.pt", "medssl_lab/cli.py", "medssl_lab/pretrain/trainer.py"):
        assert expected in names, f"the wheel lacks {expected}"
    shipped_data = {p.relative_to(ROOT).as_posix() for p in (ROOT / "medssl_lab").rglob("*.json")}
    assert shipped_data and shipped_data <= names
    assert not any(n.startswith(("tests/", "notebooks/", "runs/")) for n in names)
