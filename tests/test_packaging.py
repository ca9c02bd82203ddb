"""What Colab and any non-editable install get: a wheel that carries the shipped encoder and the data tables.

Built without isolation from the setuptools of the dev extras (>= 70.1 builds wheels itself), so no download.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGED_CURVE = "medssl_lab/results/compute_curve.csv"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's wheel, built once for the module's tests."""
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(ROOT / "medssl_lab", source / "medssl_lab", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), "."],
        check=True,
        cwd=source,
    )
    (built,) = out.glob("medssl_lab-*.whl")
    return built


def test_the_wheel_carries_the_shipped_encoder_and_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped_export = [f"medssl_lab/weights/encoder_cpu/{name}" for name in ("encoder.safetensors", "README.md")]
    for expected in ("medssl_lab/weights/encoder_cpu.pt", *shipped_export, "medssl_lab/cli.py"):
        assert expected in names, f"the wheel lacks {expected}"
    shipped_data = {p.relative_to(ROOT).as_posix() for p in (ROOT / "medssl_lab").rglob("*.json")}
    shipped_data |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "medssl_lab" / "results").glob("*.csv")}
    assert PACKAGED_CURVE in shipped_data and shipped_data <= names
    assert not any(n.startswith(("tests/", "notebooks/", "runs/", "benchmarks/")) for n in names)


def test_the_packaged_compute_curve_is_the_benchmarks_result() -> None:
    """benchmarks/compute_curve.py writes both copies; the docs link the benchmarks/ one, notebook 01 reads this."""
    assert (ROOT / PACKAGED_CURVE).read_bytes() == (ROOT / "benchmarks/results/compute_curve.csv").read_bytes()


INSTALLED_CHECK = """
import json, sys
from pathlib import Path

import medssl_lab
from medssl_lab.data.medmnist import medmnist_subsets
from medssl_lab.evaluation.representation import read_compute_curve
from medssl_lab.pretrain.checkpoint import shipped_encoder

curve = read_compute_curve()
encoder = shipped_encoder("cpu")
print(json.dumps({
    "prefix": str(Path(sys.prefix).resolve()),
    "package": str(Path(medssl_lab.__file__).resolve()),
    "encoder": str(encoder.resolve()) if encoder else None,
    "curve_points": len(curve[0]) if curve else 0,
    "curve_baselines": len(curve[1]) if curve else 0,
    "medmnist_subsets": len(medmnist_subsets()),
}))
"""


@pytest.mark.slow
def test_an_installed_wheel_finds_its_data_without_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """Installed in a fresh environment and run from elsewhere: nothing may come from the source tree."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = venv / Path(sysconfig.get_path("purelib")).relative_to(sys.prefix)  # same Python, same layout
    # The dependencies (torch, ...) from this environment, as a plain path entry: its .pth files, among them the
    # editable install of the checkout, are not run.
    (purelib / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    run = subprocess.run([python, "-c", INSTALLED_CHECK], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    prefix = Path(found["prefix"])
    assert prefix == venv.resolve()
    assert Path(found["package"]).is_relative_to(prefix), found
    assert found["encoder"] and Path(found["encoder"]).is_relative_to(prefix), found
    assert found["curve_points"] > 0 and found["curve_baselines"] > 0, found
    assert found["medmnist_subsets"] > 0
