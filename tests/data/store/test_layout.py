"""A store's layout and manifest: readable without the DICOM stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("module", ["medssl_lab.data.store.layout", "medssl_lab.data.store.rules"])
def test_layout_and_rules_do_not_import_pydicom(module: str) -> None:
    script = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "pydicom" not in json.loads(result.stdout), f"{module} imports pydicom"
