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
