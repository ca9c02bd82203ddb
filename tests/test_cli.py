"""The `medssl-lab` command: the default data job, its synthetic demo on request, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl_lab.cli import main


def test_default_job_on_real_data(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--data-dir", str(data_dir), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Pretraining pool: 63662 images at 32x32 px" in out
    assert "pneumoniamnist  X-ray               4708" in out and "mednist         MR                  8954" in out
    assert (tmp_path / "pool_overview.png").stat().st_size > 10_000


def test_missing_data_is_an_error_and_phantoms_only_on_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys) -> None:
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    from medssl_lab.data import mednist

    monkeypatch.setattr(mednist, "MEDNIST_URL", (tmp_path / "offline").as_uri() + "/MedNIST.tar.gz")
    typo = tmp_path / "dta"
    for command in (["data"], ["pretrain", "--profile", "smoke"]):
        assert main([*command, "--data-dir", str(typo), "--out", str(tmp_path / "out")]) == 2
        assert f"the data folder {typo} does not exist" in capsys.readouterr().err and not typo.exists()
    (tmp_path / "empty").mkdir()
    assert main(["pretrain", "--profile", "smoke", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "not found in" in capsys.readouterr().err and not (tmp_path / "out" / "checkpoint.pt").exists()
    assert main(["data", "--synthetic", "--out", str(tmp_path / "out"), "--size", "28"]) == 0
    captured = capsys.readouterr()
    assert "SYNTHETIC phantoms" in captured.err and "phantoms" in captured.out
    assert (tmp_path / "out" / "pool_overview.png").exists()


def test_pretrain_reports_missing_checkpoint_folder_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code = main(["pretrain", "--profile", "smoke", "--synthetic", "--out", str(tmp_path)])
    assert code == 2 and "not a readable medssl-lab checkpoint" in capsys.readouterr().err
