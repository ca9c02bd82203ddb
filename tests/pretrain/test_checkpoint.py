"""Checkpoint files: the encoder export, the encoder shipped with the package, and load-or-train."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import TrainingError
from medssl_lab.pretrain import (
    PretrainConfig,
    Pretrainer,
    ensure_pretrained,
    export_encoder,
    load_pretrained,
    shipped_encoder,
    shipped_run,
)
from medssl_lab.pretrain.checkpoint import FREE_ON_RESUME


def smoke_run(folder: Path, steps: int) -> Pretrainer:
    ph = make_phantoms(64, 32, seed=0)
    pool = ImageSet(ph.images, ph.labels, ph.class_names, "multi-class")
    config = PretrainConfig.for_profile("smoke", batch_size=32, max_steps=steps, device="cpu")
    trainer = Pretrainer(config, pool, folder)
    trainer.fit(progress=False)
    return trainer


def test_export_keeps_weights_config_provenance_and_command(tmp_path: Path) -> None:
    trainer = smoke_run(tmp_path / "run", steps=2)
    path = export_encoder(tmp_path / "run", tmp_path / "encoder.pt", "medssl-lab pretrain --profile smoke")
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == {"config", "data", "model", "step", "train_seconds", "history", "stopped", "made_by"}
    assert state["made_by"] == "medssl-lab pretrain --profile smoke" and state["stopped"] == "finished"
    loaded = load_pretrained(path)
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, loaded.model.state_dict()[name]), name
    assert path.stat().st_size < (tmp_path / "run" / "checkpoint.pt").stat().st_size  # no optimizer state


def test_export_refuses_an_unfinished_run(tmp_path: Path) -> None:
    trainer = smoke_run(tmp_path / "run", steps=2)
    trainer.history.stopped = "paused"
    trainer.save()
    with pytest.raises(TrainingError, match="not a finished run"):
        export_encoder(tmp_path / "run", tmp_path / "encoder.pt", "x")


def test_the_shipped_cpu_encoder_is_a_cpu_profile_run_of_the_pretrain_command() -> None:
    path = shipped_encoder("cpu")
    assert path is not None, "medssl_lab/weights/encoder_cpu.pt is missing: run scripts/make_shipped_encoder.sh"
    assert shipped_encoder("smoke") is None and shipped_encoder("gpu") is None
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["made_by"].startswith("medssl-lab pretrain --profile cpu") and state["stopped"] == "finished"
    shipped, expected = PretrainConfig(**state["config"]), PretrainConfig.for_profile("cpu")
    differ = {k for k, v in asdict(expected).items() if k not in FREE_ON_RESUME and asdict(shipped)[k] != v}
    assert not differ, f"the shipped encoder was made with other settings: {sorted(differ)}"
    assert state["data"]["images"] == 63662 and path.stat().st_size < 5e6


def test_ensure_pretrained_uses_the_shipped_encoder_before_training(tmp_path: Path) -> None:
    found = ensure_pretrained(tmp_path, profile="cpu", device="cpu")
    assert "encoder shipped with medssl-lab" in found.origin and found.config.profile == "cpu"
    assert not (tmp_path / "pretrain").exists()  # nothing was trained


def test_shipped_run_is_the_shipped_encoders_logged_run_and_only_stands_in_for_its_own_settings() -> None:
    run = shipped_run("cpu", method="swav")
    assert run is not None and run.path == shipped_encoder("cpu")
    state = torch.load(run.path, map_location="cpu", weights_only=True)
    assert run.config == PretrainConfig(**state["config"]) and run.made_by == state["made_by"]
    assert run.history.stopped == "finished" and run.history.rows == state["history"] and run.steps == state["step"]
    assert run.history.column("loss").shape == (len(state["history"]),)
    assert shipped_run("cpu", epochs=run.config.epochs) is not None  # asks for what it was made with
    assert shipped_run("cpu", method="simclr") is None and shipped_run("cpu", max_steps=5) is None
    assert shipped_run("smoke") is None  # the package ships no smoke encoder
    with pytest.raises(ValueError, match="unknown PretrainConfig fields"):
        shipped_run("cpu", epoch=4)


def test_the_shipped_encoder_was_trained_on_the_real_pool(data_dir: Path) -> None:
    from medssl_lab.data.pool import build_pool, pool_provenance

    path = shipped_encoder("cpu")
    assert path is not None
    recorded = torch.load(path, map_location="cpu", weights_only=True)["data"]
    assert pool_provenance(build_pool(size=32, data_dir=data_dir))["pixels_hash"] == recorded["pixels_hash"]
