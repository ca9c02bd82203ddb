"""What Colab and any non-editable install get: a wheel that carries the shipped encoder and the data tables.

Built without isolation from the setuptools of the dev extras (>= 70.1 builds wheels itself), so no download.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
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


#: what the course extra brings and the core install must leave out (import names)
COURSE_MODULES = ("jupyterlab", "umap", "ipywidgets")


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_extras_fit_their_users_and_the_readme_lists_them() -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core, extras = _names(project["dependencies"]), project["optional-dependencies"]
    assert {"torch", "monai", "pydicom", "safetensors", "matplotlib"} <= core
    assert not {"jupyterlab", "umap-learn", "ipywidgets", "ipykernel", "papermill"} & core
    assert {"jupyterlab", "umap-learn", "ipywidgets", "papermill"} <= _names(extras["course"])
    assert extras["notebooks"] == ["medssl-lab[course]"]  # the earlier name installs the same
    assert "dev,course,docs,export" in (ROOT / "scripts" / "install.sh").read_text()
    readme = (ROOT / "README.md").read_text()
    for extra in extras:
        assert f'".[{extra}]"' in readme or f"alias `{extra}`" in readme, f"README's Install table lacks [{extra}]"


def _index_reachable(python: str) -> bool:
    """Whether pip, as configured here (pip.conf, PIP_* variables), reaches a package index that has MONAI."""
    probe = subprocess.run([python, "-m", "pip", "index", "versions", "monai"], capture_output=True, text=True)
    return probe.returncode == 0


@pytest.mark.slow
def test_the_core_install_pretrains_without_the_course_tools(tmp_path: Path) -> None:
    """`pip install medssl-lab` without extras, in a fresh environment: no Jupyter, UMAP or widgets, and the
    command line pretrains. torch is installed first at this environment's version (a bare `torch` would pull a
    multi-GB CUDA build), as scripts/install.sh does.

    Measured on the 2-core development machine (torch 2.13.0+cpu from local wheels, the rest from the index):
    the core install takes about 80 s (35 s torch, 45 s the rest) and 1.7 GB of site-packages, 0.75 GB of it
    torch; jupyterlab, umap-learn (with numba and llvmlite) and ipywidgets are no longer part of it.
    """
    import torch

    if not _index_reachable(sys.executable):
        pytest.skip("pip reaches no package index here (pip index versions monai failed): cannot install from nothing")
    source = tmp_path / "source"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(ROOT / "medssl_lab", source / "medssl_lab", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    torch_spec = os.environ.get("MEDSSL_TORCH_SPEC", f"torch=={torch.__version__.split('+')[0]}")
    start = time.perf_counter()
    for what in (torch_spec, str(source)):  # non-editable, no extras
        subprocess.run([python, "-m", "pip", "install", "-q", what], check=True, env=env, cwd=tmp_path)
    seconds = time.perf_counter() - start
    check = "import importlib.util, json, sysconfig; "
    check += f"print(json.dumps([[importlib.util.find_spec(m) is not None for m in {COURSE_MODULES!r}], "
    check += "sysconfig.get_path('purelib')]))"
    found = subprocess.run([python, "-c", check], capture_output=True, text=True, env=env, check=True)
    importable, site_packages = json.loads(found.stdout)
    assert importable == [False] * len(COURSE_MODULES), dict(zip(COURSE_MODULES, importable))
    size = sum(f.stat().st_size for f in Path(site_packages).rglob("*") if f.is_file() and not f.is_symlink())
    print(f"core install: {seconds:.0f} s, {size / 1e9:.2f} GB of site-packages")  # shown with pytest -s
    command = [str(venv / "bin" / "medssl-lab"), "pretrain", "--synthetic", "--profile", "smoke"]
    run = subprocess.run(
        [*command, "--out", str(tmp_path / "run")],
        cwd=tmp_path,
        env={**env, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and "checkpoint:" in run.stdout
