"""hubconf.py: the shipped encoder through torch.hub, without medssl-lab."""

from pathlib import Path

import numpy as np
import pytest
import torch

from medssl_lab.evaluation.inference import extract_features
from medssl_lab.pretrain import load_pretrained, shipped_encoder

ROOT = Path(__file__).resolve().parents[1]


def test_torch_hub_loads_the_shipped_encoder_from_a_checkout():
    encoder = torch.hub.load(str(ROOT), "encoder_cpu", source="local")
    x = torch.rand(6, 1, 32, 32)
    with torch.no_grad():
        hub = encoder((x - 0.5) / 0.25).numpy()
    expected = extract_features(load_pretrained(shipped_encoder("cpu")).model, x, 32, device="cpu")
    assert np.abs(hub - expected).max() <= 1e-5
    fresh = torch.hub.load(str(ROOT), "encoder_cpu", source="local", pretrained=False)
    assert not torch.equal(fresh.conv1.weight, encoder.conv1.weight)


@pytest.mark.slow
def test_torch_hub_needs_no_medssl_lab():
    import subprocess
    import sys

    script = f"""
import sys
sys.modules["medssl_lab"] = None  # any import of the package now fails
import torch
encoder = torch.hub.load({str(ROOT)!r}, "encoder_cpu", source="local")
print(tuple(encoder(torch.zeros(2, 1, 32, 32)).shape))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(2, 128)"


def test_the_shipped_export_is_current():
    """The committed export's config and card come from the committed checkpoint (same data, same steps)."""
    import json

    folder = ROOT / "medssl_lab" / "weights" / "encoder_cpu"
    state = torch.load(shipped_encoder("cpu"), map_location="cpu", weights_only=False)
    config = json.loads((folder / "config.json").read_text())
    assert config["data"] == state["data"]
    assert config["pretraining"] == state["config"]  # as the run recorded it, not later defaults
    card = (folder / "README.md").read_text()
    assert f"{state['step']} steps" in card and "Not for clinical use" in card
    assert "## Evaluation" in card and "Not measured" not in card
