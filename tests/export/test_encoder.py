import json
import os
import stat
import sys

import numpy as np
import pytest
import torch

from medssl_lab.errors import DataError
from medssl_lab.evaluation.inference import extract_features
from medssl_lab.export import FILE_NAMES, ExportMismatch, check_images, export_encoder
from medssl_lab.export import encoder as encoder_module
from medssl_lab.pretrain import load_pretrained, shipped_encoder


def test_every_format_gives_the_packages_features_on_real_images(exported):
    assert set(exported.differences) == {"safetensors", "torchscript", "onnx"}
    assert all(d <= 1e-5 for d in exported.differences.values()), exported.differences
    assert exported.n_check_images >= 10
    assert set(exported.files) == {"config.json", "README.md", *FILE_NAMES.values()}
    assert sorted(p.name for p in exported.out_dir.iterdir()) == sorted(exported.files)  # no staging left
    for name, size in exported.files.items():
        assert (exported.out_dir / name).stat().st_size == size > 0
        assert stat.S_IMODE((exported.out_dir / name).stat().st_mode) == 0o644  # others may read a shared export


def test_the_check_images_are_real_and_varied():
    images = check_images(32)
    assert images.dtype == np.uint8 and images.shape[1:] == (32, 32)
    assert len({img.tobytes() for img in images}) == len(images)  # no duplicates
    assert images.std() > 20  # real anatomy, not blank frames


def test_onnx_takes_any_batch_size(exported):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(exported.out_dir / FILE_NAMES["onnx"]))
    pretrained = load_pretrained(shipped_encoder("cpu"))
    for batch in (1, 7):
        x = torch.rand(batch, 1, 32, 32)
        out = session.run(["features"], {"image": ((x - 0.5) / 0.25).numpy()})[0]
        expected = extract_features(pretrained.model, x, 32, device="cpu")
        assert out.shape == (batch, 128)
        assert np.abs(out - expected).max() <= 1e-5


@pytest.mark.slow
def test_config_json_rebuilds_the_network_without_medssl_lab(exported, tmp_path):
    """The card's own lines, run where medssl_lab cannot be imported, give the package's features."""
    card = (exported.out_dir / "README.md").read_text()
    lines = card.split("```python\n")[1].split("```")[0]
    images = check_images(32)
    np.save(tmp_path / "images.npy", images)
    script = f"""
import sys
sys.modules["medssl_lab"] = None  # importing the package now fails
try:
    import medssl_lab
    raise SystemExit("medssl_lab was importable")
except ImportError:
    pass
import os, numpy as np, torch
os.chdir({str(exported.out_dir)!r})
images = torch.from_numpy(np.load({str(tmp_path / "images.npy")!r})).float().div(255).unsqueeze(1)
{lines}
np.save({str(tmp_path / "features.npy")!r}, features.detach().numpy())
"""
    import subprocess

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    pretrained = load_pretrained(shipped_encoder("cpu"))
    expected = extract_features(pretrained.model, images, 32, device="cpu")
    assert np.abs(np.load(tmp_path / "features.npy") - expected).max() <= 1e-5
    config = json.loads((exported.out_dir / "config.json").read_text())
    assert config["feature_size"] == 128 and config["input"]["size"] == 32
    assert config["pretraining"]["method"] == "swav" and config["data"]["images"] == 63662


def test_a_mismatching_export_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(encoder_module, "TOLERANCE", -1.0)  # no file can pass
    out = tmp_path / "out"
    with pytest.raises(ExportMismatch, match="nothing was written"):
        export_encoder(shipped_encoder("cpu"), out, formats=("safetensors",))
    assert list(out.iterdir()) == []


def test_bad_places_and_formats_are_refused_clearly(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown export formats \\['keras'\\]"):
        export_encoder(shipped_encoder("cpu"), tmp_path / "x", formats=("keras",))
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="is a file, not a folder"):
        export_encoder(shipped_encoder("cpu"), tmp_path / "file", formats=("safetensors",))
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if os.geteuid() == 0:  # root writes into read-only folders: make the folder refuse as it would refuse a user

        def refuse(**_):
            raise PermissionError(13, "Permission denied", str(locked))

        monkeypatch.setattr(encoder_module.tempfile, "mkdtemp", refuse)
    with pytest.raises(DataError, match="permission denied"):
        export_encoder(shipped_encoder("cpu"), locked, formats=("safetensors",))


def test_a_missing_tool_is_named_with_the_extra_that_installs_it(tmp_path, monkeypatch):
    real = encoder_module.importlib.util.find_spec
    monkeypatch.setattr(encoder_module.importlib.util, "find_spec", lambda m: None if m == "onnxruntime" else real(m))
    with pytest.raises(ImportError, match=r"onnxruntime not installed; pip install 'medssl-lab\[export\]'"):
        export_encoder(shipped_encoder("cpu"), tmp_path / "out", formats=("safetensors", "onnx"))
    assert not (tmp_path / "out").exists()


def test_the_export_command_writes_checked_files_and_says_how_close_they_came(tmp_path, capsys):
    from medssl_lab.cli import main

    out = tmp_path / "encoder"
    assert main(["export", str(shipped_encoder("cpu")), "--out", str(out), "--formats", "safetensors"]) == 0
    printed = capsys.readouterr().out
    assert "max abs feature difference on 15 real DICOM images: safetensors 0.0e+00" in printed
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "encoder.safetensors"]
    assert main(["export", str(tmp_path / "no_run"), "--out", str(tmp_path / "x")]) == 2
    assert "no_run" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_no_file_names_a_folder_of_the_machine_that_exported_it(exported):
    """The ONNX exporter records a stack trace per node and TorchScript source positions, both with the exporting
    machine's site-packages paths; neither is kept."""
    import zipfile

    onnx_bytes = (exported.out_dir / FILE_NAMES["onnx"]).read_bytes()
    assert b"site-packages" not in onnx_bytes and b"stack_trace" not in onnx_bytes
    with zipfile.ZipFile(exported.out_dir / FILE_NAMES["torchscript"]) as archive:
        leaking = [n for n in archive.namelist() if b"site-packages" in archive.read(n)]
    assert not leaking, leaking
