"""The training loops and checkpoints import only what they use: no DICOM reader, no image codecs, no ingest.

Each module is imported in a fresh interpreter, so that what the test process already loaded does not hide an
import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pydicom", "PIL", "medssl_lab.data.store.ingest", "medssl_lab.data.pool")
LIGHT = (
    "medssl_lab.data",
    "medssl_lab.data.sampling",
    "medssl_lab.data.provenance",
    "medssl_lab.training",
    "medssl_lab.pretrain",
    "medssl_lab.pretrain.checkpoint",
    "medssl_lab.pretrain.pretrained",
    "medssl_lab.pretrain.trainer",
)


@pytest.mark.parametrize("module", LIGHT)
def test_module_imports_nothing_heavy(module: str) -> None:
    script = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    heavy = sorted(set(HEAVY) & set(json.loads(result.stdout)))
    assert not heavy, f"{module} imports {heavy}"


#: what only the course extra installs (pyproject.toml's [course]); the core package must work without any of them
COURSE_ONLY = ("umap", "ipywidgets", "IPython", "jupyterlab", "papermill", "nbformat", "ipykernel")
BLOCK = f"import sys\nfor name in {COURSE_ONLY!r}:\n    sys.modules[name] = None  # import fails: not installed\n"


@pytest.mark.slow
def test_the_core_commands_run_without_the_course_extra(tmp_path: Path) -> None:
    """`import medssl_lab`, `--help` and a smoke pretraining with the course's packages unimportable (the slow test
    in test_packaging.py does it in a fresh environment with the core install only)."""
    script = BLOCK + (
        "import medssl_lab\n"
        "from medssl_lab.cli import build_parser, main\n"
        "build_parser().format_help()\n"
        f"sys.exit(main(['pretrain', '--synthetic', '--profile', 'smoke', '--out', {str(tmp_path / 'run')!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


@pytest.mark.parametrize(
    ("call", "extra", "package"),
    [
        ("from medssl_lab.evaluation.embedding import compute_umap as f; f(np.eye(20, 4))", "course", "umap-learn"),
        ("from medssl_lab.notebooks import run_notebooks; run_notebooks(OUT)", "course", "papermill"),
    ],
    ids=["umap", "papermill"],
)
def test_a_course_tool_missing_is_an_error_naming_the_extra(
    tmp_path: Path, call: str, extra: str, package: str
) -> None:
    script = BLOCK + f"import numpy as np\nfrom medssl_lab.errors import MissingExtra\nOUT = {str(tmp_path)!r}\n"
    script += f"try:\n    {call}\nexcept MissingExtra as exc:\n    print(exc)\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"needs {package}, which is not installed" in result.stdout
    assert f'pip install "medssl-lab[{extra}]"' in result.stdout
